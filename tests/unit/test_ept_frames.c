/*
 * Unit tests of ept/frames.c: the frame table and its page hash (take, lookup,
 * release under random churn against a model, with clusters built on purpose
 * so that backward-shift deletion has to move entries, including across the
 * end of the table), the page buffer pool and the region-wide remote bitmap.
 */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ept/frames.h"
#include "memserver/proto.h"

/* Check records every passing ck_assert (a write to its log file): hot loops
 * test first and only call into Check on failure. */
#define REQUIRE(cond, ...)                                                     \
	do {                                                                   \
		if (!(cond))                                                   \
			ck_abort_msg(__VA_ARGS__);                             \
	} while (0)

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The same mixing as frames.c, used only to build colliding pages on
 * purpose; were it to change, the tests still hold, only less adversarially. */
static uint64_t home_of(const struct ept_frames *t, uint64_t page)
{
	page ^= page >> 33;
	page *= 0xff51afd7ed558ccdull;
	page ^= page >> 33;
	return page & t->hash_mask;
}

/* Model: which frame holds which page. */
struct fmodel {
	int64_t *page_of;	/* per frame, -1 when free */
	uint32_t nused;
};

static void check_all(const struct ept_frames *t, const struct fmodel *m, const char *when)
{
	uint32_t used = 0;

	for (uint32_t f = 0; f < t->nframes; f++) {
		if (m->page_of[f] < 0)
			continue;
		used++;
		REQUIRE(ept_frames_lookup(t, (uint64_t)m->page_of[f]) == (int32_t)f,
			      "%s: page %lld (frame %u) lost by the hash: lookup gives %d", when,
			      (long long)m->page_of[f], f,
			      ept_frames_lookup(t, (uint64_t)m->page_of[f]));
		REQUIRE(t->frames[f].page == (uint64_t)m->page_of[f], "%s: frame %u page", when, f);
	}
	REQUIRE(used == m->nused && t->nfree == t->nframes - m->nused, "%s: %u used, %u free",
		when, used, t->nfree);
}

static bool model_has(const struct fmodel *m, uint32_t n, uint64_t page)
{
	for (uint32_t f = 0; f < n; f++)
		if (m->page_of[f] == (int64_t)page)
			return true;
	return false;
}

/*
 * Random take/release over a page population chosen to collide: part of it
 * shares a handful of home slots (long clusters), including the last slots of
 * the table (clusters that wrap round to slot 0).
 */
static void churn(uint32_t nframes, uint64_t npages, unsigned nops, uint64_t seed)
{
	struct ept_frames t;
	struct fmodel m;
	uint64_t *pop, npop = 0, cap = 4 * (uint64_t)nframes + 64;
	uint64_t homes[4];

	ck_assert_int_eq(ept_frames_init(&t, nframes, npages), 0);
	ck_assert_uint_ge(t.hash_mask + 1, 2ull * nframes);
	m.page_of = malloc(nframes * sizeof(*m.page_of));
	pop = malloc(cap * sizeof(*pop));
	ck_assert(m.page_of && pop);
	for (uint32_t f = 0; f < nframes; f++)
		m.page_of[f] = -1;
	m.nused = 0;
	homes[0] = t.hash_mask;		/* wraps */
	homes[1] = t.hash_mask - 1;	/* wraps */
	homes[2] = 0;
	homes[3] = t.hash_mask / 2;
	/* Colliding pages: scan for pages whose home is one of homes[] (a few
	 * dozen per home: clusters long enough to shift, short enough to keep
	 * the run quick). */
	for (uint64_t p = 0; p < npages && npop < cap / 2 && npop < 4 * 24; p++)
		for (unsigned h = 0; h < 4; h++)
			if (home_of(&t, p) == homes[h])
				pop[npop++] = p;
	/* And random pages. */
	while (npop < cap)
		pop[npop++] = rng(&seed) % npages;

	for (unsigned op = 0; op < nops; op++) {
		uint64_t r = rng(&seed) % 100;

		if (r < 55) {
			uint64_t page = pop[rng(&seed) % npop];
			int32_t f;

			if (model_has(&m, nframes, page))
				continue; /* the engine never indexes a page twice */
			f = ept_frames_take(&t, page);
			if (m.nused == nframes) {
				REQUIRE(f == -1, "take with no free frame gave %d", f);
				continue;
			}
			REQUIRE(f >= 0 && (uint32_t)f < nframes, "take gave %d", f);
			REQUIRE(m.page_of[f] < 0, "frame %d handed out twice", f);
			REQUIRE(t.frames[f].page == page && !t.frames[f].buf && !t.frames[f].wb &&
					!t.frames[f].pending,
				"frame %d not reset by take", f);
			t.frames[f].state = FR_MAPPED;
			m.page_of[f] = (int64_t)page;
			m.nused++;
		} else if (m.nused) {
			uint32_t f = (uint32_t)(rng(&seed) % nframes);
			uint32_t gen;

			while (m.page_of[f] < 0)
				f = (f + 1) % nframes;
			gen = t.frames[f].gen;
			ept_frames_release(&t, f);
			REQUIRE(t.frames[f].state == FR_FREE && t.frames[f].gen != gen,
				"frame %u not freed", f);
			REQUIRE(ept_frames_lookup(&t, (uint64_t)m.page_of[f]) == -1,
				"released page %lld still found", (long long)m.page_of[f]);
			m.page_of[f] = -1;
			m.nused--;
		}
		/* Every live entry must still be found after each step. */
		if (nframes <= 64 || op % 16 == 0)
			check_all(&t, &m, "churn");
	}
	check_all(&t, &m, "end");
	/* Pages never taken are not found. */
	for (unsigned i = 0; i < 1000; i++) {
		uint64_t page = rng(&seed) % npages;

		if (!model_has(&m, nframes, page))
			REQUIRE(ept_frames_lookup(&t, page) == -1, "page %llu found, never taken",
				(unsigned long long)page);
	}
	/* Release everything: the table is empty again. */
	for (uint32_t f = 0; f < nframes; f++)
		if (m.page_of[f] >= 0) {
			ept_frames_release(&t, f);
			m.page_of[f] = -1;
			m.nused--;
		}
	for (uint64_t i = 0; i <= t.hash_mask; i++)
		REQUIRE(t.keys[i] == 0, "slot %llu not emptied", (unsigned long long)i);
	ck_assert_uint_eq(t.nfree, nframes);
	free(pop);
	free(m.page_of);
	ept_frames_free(&t);
}

START_TEST(frames_take_lookup_release)
{
	struct ept_frames t;
	int32_t f0, f1;
	uint32_t g;

	ck_assert_int_eq(ept_frames_init(&t, 4, 1000), 0);
	ck_assert_uint_eq(t.nframes, 4);
	ck_assert_uint_eq(t.nfree, 4);
	ck_assert_int_eq(ept_frames_lookup(&t, 0), -1);
	/* Page 0 is a valid key (the hash stores page + 1). */
	f0 = ept_frames_take(&t, 0);
	ck_assert_int_ge(f0, 0);
	ck_assert_int_eq(ept_frames_lookup(&t, 0), f0);
	f1 = ept_frames_take(&t, 999);
	ck_assert_int_ne(f1, f0);
	ck_assert_int_eq(ept_frames_lookup(&t, 999), f1);
	ck_assert_int_ge(ept_frames_take(&t, 5), 0);
	ck_assert_int_ge(ept_frames_take(&t, 6), 0);
	ck_assert_uint_eq(t.nfree, 0);
	ck_assert_int_eq(ept_frames_take(&t, 7), -1);
	ck_assert_int_eq(ept_frames_lookup(&t, 7), -1);
	g = t.frames[f0].gen;
	ept_frames_release(&t, (uint32_t)f0);
	ck_assert_uint_eq(t.nfree, 1);
	ck_assert_int_eq(ept_frames_lookup(&t, 0), -1);
	ck_assert_int_eq(ept_frames_lookup(&t, 999), f1);
	/* The freed frame is reused, with a new generation. */
	ck_assert_int_eq(ept_frames_take(&t, 7), f0);
	ck_assert_uint_ne(t.frames[f0].gen, g);
	ck_assert_uint_eq(t.frames[f0].page, 7);
	ck_assert_uint_eq(t.frames[f0].flags, 0);
	ept_frames_free(&t);
}
END_TEST

START_TEST(frames_churn_small)
{
	churn(8, 1 << 16, 20000, 7);
	churn(64, 1 << 20, 50000, 8);
}
END_TEST

START_TEST(frames_churn_large)
{
	churn(1000, 1ull << 24, 30000, 9);
	churn(4096, 1ull << 30, 20000, 10);
}
END_TEST

/* A full cluster that wraps round the end of the table, emptied in every
 * order of deletion position. */
START_TEST(frames_wrapping_cluster)
{
	struct ept_frames t;
	uint64_t pages[12];
	unsigned n = 0;

	ck_assert_int_eq(ept_frames_init(&t, 8, 1 << 20), 0); /* 16 slots */
	for (uint64_t p = 0; n < 12 && p < (1 << 20); p++) {
		uint64_t h = home_of(&t, p);

		if (h >= t.hash_mask - 1 || h == 0)
			pages[n++] = p;
	}
	ck_assert_uint_eq(n, 12);
	for (unsigned del = 0; del < 8; del++) {
		int32_t f[8];

		for (unsigned i = 0; i < 8; i++) {
			f[i] = ept_frames_take(&t, pages[i + (del % 4)]);
			ck_assert_int_ge(f[i], 0);
		}
		/* Delete entry del first, then the rest from the back. */
		ept_frames_release(&t, (uint32_t)f[del]);
		for (unsigned i = 0; i < 8; i++)
			if (i != del)
				ck_assert_int_eq(ept_frames_lookup(&t, pages[i + (del % 4)]), f[i]);
		for (unsigned i = 8; i-- > 0;) {
			if (i == del)
				continue;
			ept_frames_release(&t, (uint32_t)f[i]);
			for (unsigned k = 0; k < i; k++)
				if (k != del)
					ck_assert_int_eq(ept_frames_lookup(&t, pages[k + (del % 4)]),
							 f[k]);
		}
		ck_assert_uint_eq(t.nfree, 8);
	}
	ept_frames_free(&t);
}
END_TEST

START_TEST(buffer_pool)
{
	struct ept_frames t;
	uint32_t n = 16, nbufs;
	uint8_t **bufs;

	ck_assert_int_eq(ept_frames_init(&t, n, 100), 0);
	nbufs = n * EPT_BUFS_PER_FRAME;
	ck_assert_uint_eq(t.nbufs, nbufs);
	bufs = calloc(nbufs, sizeof(*bufs));
	ck_assert_ptr_nonnull(bufs);
	for (uint32_t i = 0; i < nbufs; i++) {
		bufs[i] = ept_buf_get(&t);
		ck_assert_ptr_nonnull(bufs[i]);
		/* Page-aligned, inside the pool, usable. */
		ck_assert_uint_eq((uintptr_t)bufs[i] % MS_PAGE_SIZE, 0);
		ck_assert(bufs[i] >= t.pool &&
			  bufs[i] + MS_PAGE_SIZE <= t.pool + (size_t)nbufs * MS_PAGE_SIZE);
		memset(bufs[i], (int)i, MS_PAGE_SIZE);
	}
	/* Distinct buffers: each still holds its own fill. */
	for (uint32_t i = 0; i < nbufs; i++)
		ck_assert_uint_eq(bufs[i][MS_PAGE_SIZE - 1], (uint8_t)i);
	ck_assert_uint_eq(t.nbuf_free, 0);
	/* LIFO: the buffer put last comes back first. */
	ept_buf_put(&t, bufs[3]);
	ept_buf_put(&t, bufs[7]);
	ck_assert_ptr_eq(ept_buf_get(&t), bufs[7]);
	ck_assert_ptr_eq(ept_buf_get(&t), bufs[3]);
	for (uint32_t i = 0; i < nbufs; i++)
		ept_buf_put(&t, bufs[i]);
	ck_assert_uint_eq(t.nbuf_free, nbufs);
	free(bufs);
	ept_frames_free(&t);
}
END_TEST

/* EPT_BUFS_PER_FRAME per frame is the invariant: asking for more aborts
 * loudly rather than corrupting memory. */
START_TEST(buffer_pool_exhaustion_aborts)
{
	struct ept_frames t;

	ck_assert_int_eq(ept_frames_init(&t, 2, 100), 0);
	for (uint32_t i = 0; i < 2 * EPT_BUFS_PER_FRAME; i++)
		ept_buf_get(&t);
	ept_buf_get(&t);
}
END_TEST

START_TEST(remote_bitmap)
{
	static const uint64_t edges[] = { 0, 1, 62, 63, 64, 65, 127, 128, 129 };
	struct ept_frames t;
	uint64_t npages = 130, seed = 5;
	bool model[130] = { false };

	ck_assert_int_eq(ept_frames_init(&t, 4, npages), 0);
	for (uint64_t p = 0; p < npages; p++)
		ck_assert(!ept_remote_test(&t, p));
	for (unsigned i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		ept_remote_set(&t, edges[i], true);
		model[edges[i]] = true;
		for (uint64_t p = 0; p < npages; p++)
			REQUIRE(ept_remote_test(&t, p) == model[p],
				      "after setting %llu: page %llu", (unsigned long long)edges[i],
				      (unsigned long long)p);
	}
	for (unsigned i = 0; i < 5000; i++) {
		uint64_t p = rng(&seed) % npages;
		bool on = rng(&seed) & 1;

		ept_remote_set(&t, p, on);
		model[p] = on;
		REQUIRE(ept_remote_test(&t, p) == on, "page %llu", (unsigned long long)p);
	}
	for (uint64_t p = 0; p < npages; p++)
		ck_assert(ept_remote_test(&t, p) == model[p]);
	/* Setting twice and clearing twice are idempotent. */
	ept_remote_set(&t, 129, true);
	ept_remote_set(&t, 129, true);
	ck_assert(ept_remote_test(&t, 129));
	ept_remote_set(&t, 129, false);
	ept_remote_set(&t, 129, false);
	ck_assert(!ept_remote_test(&t, 129));
	ept_frames_free(&t);

	/* A large region costs one bit per page. */
	ck_assert_int_eq(ept_frames_init(&t, 64, 1ull << 30), 0);
	ept_remote_set(&t, (1ull << 30) - 1, true);
	ck_assert(ept_remote_test(&t, (1ull << 30) - 1));
	ck_assert(!ept_remote_test(&t, (1ull << 30) - 2));
	ept_frames_free(&t);
}
END_TEST

static Suite *frames_suite(void)
{
	Suite *s = suite_create("ept_frames");
	TCase *tc = tcase_create("frames");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, frames_take_lookup_release);
	tcase_add_test(tc, frames_churn_small);
	tcase_add_test(tc, frames_churn_large);
	tcase_add_test(tc, frames_wrapping_cluster);
	tcase_add_test(tc, buffer_pool);
	tcase_add_test_raise_signal(tc, buffer_pool_exhaustion_aborts, SIGABRT);
	tcase_add_test(tc, remote_bitmap);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(frames_suite());
	int failed;

	log_init("test_ept_frames", LOG_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

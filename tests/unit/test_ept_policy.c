/*
 * Unit tests of the replacement policies (ept/policy*.c): the policy table,
 * FIFO order, CLOCK's active/inactive semantics (which victims are cold,
 * prefetched frames entering at the active head like demand-fetched ones, the
 * inactive target, removal from anywhere), and a
 * randomized check of both policies against straightforward reference models
 * over thousands of operations, driven the way the engine drives them
 * (reference only on inactive frames, deactivate under pressure).
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ept/ept.h"
#include "ept/policy.h"

static struct ept_policy *make(const struct ept_policy_ops *ops, unsigned n)
{
	struct ept_policy *p = NULL;

	ck_assert_int_eq(ops->create(n, &p), 0);
	ck_assert_ptr_nonnull(p);
	return p;
}

static void expect_victim(const struct ept_policy_ops *ops, struct ept_policy *p, unsigned want,
			  bool want_cold)
{
	unsigned f = ~0u;
	bool cold = !want_cold;

	ck_assert_msg(ops->victim(p, &f, &cold), "%s: no victim, expected frame %u", ops->name,
		      want);
	ck_assert_msg(f == want && cold == want_cold, "%s: victim %u (cold %d), expected %u (cold %d)",
		      ops->name, f, cold, want, want_cold);
}

static void expect_empty(const struct ept_policy_ops *ops, struct ept_policy *p)
{
	unsigned f;
	bool cold;

	ck_assert_msg(!ops->victim(p, &f, &cold), "%s: victim %u from an empty policy", ops->name,
		      f);
}

START_TEST(table_and_lookup)
{
	unsigned n = 0;

	ck_assert_ptr_eq(ept_policy_find("fifo"), &ept_policy_fifo);
	ck_assert_ptr_eq(ept_policy_find("clock"), &ept_policy_clock);
	ck_assert_ptr_null(ept_policy_find("lru"));
	ck_assert_ptr_null(ept_policy_find(""));
	ck_assert_ptr_null(ept_policy_find("FIFO"));
	for (; ept_policies[n]; n++) {
		ck_assert_ptr_nonnull(ept_policy_names[n]);
		ck_assert_str_eq(ept_policies[n]->name, ept_policy_names[n]);
		ck_assert_ptr_eq(ept_policy_find(ept_policy_names[n]), ept_policies[n]);
	}
	ck_assert_ptr_null(ept_policy_names[n]);
	ck_assert_uint_ge(n, 2);
}
END_TEST

START_TEST(fifo_order)
{
	const struct ept_policy_ops *ops = &ept_policy_fifo;
	struct ept_policy *p = make(ops, 16);
	unsigned out[4];

	ck_assert_ptr_null(ops->deactivate); /* FIFO never samples */
	expect_empty(ops, p);
	/* Insertion order, whatever the frame numbers and prefetch flags. */
	for (unsigned i = 0; i < 16; i++)
		ops->insert(p, (i * 7) % 16, i % 3 == 0);
	for (unsigned i = 0; i < 16; i++) {
		expect_victim(ops, p, (i * 7) % 16, true);
		/* A reference changes nothing: FIFO observes no use. */
		ops->reference(p, (i * 7) % 16);
		expect_victim(ops, p, (i * 7) % 16, true);
		ops->remove(p, (i * 7) % 16);
	}
	expect_empty(ops, p);
	/* Removal from the middle and the ends keeps the rest in order. */
	for (unsigned i = 0; i < 8; i++)
		ops->insert(p, i, false);
	ops->remove(p, 3);
	ops->remove(p, 0);
	ops->remove(p, 7);
	ops->remove(p, 7); /* not tracked any more: a no-op */
	{
		static const unsigned want[] = { 1, 2, 4, 5, 6 };

		for (unsigned i = 0; i < 5; i++) {
			expect_victim(ops, p, want[i], true);
			ops->remove(p, want[i]);
		}
	}
	expect_empty(ops, p);
	/* A frame re-inserted after removal goes to the back. */
	ops->insert(p, 9, false);
	ops->insert(p, 10, false);
	ops->remove(p, 9);
	ops->insert(p, 9, false);
	expect_victim(ops, p, 10, true);
	(void)out;
	ops->destroy(p);
}
END_TEST

static unsigned deactivate_all(struct ept_policy *p, unsigned *out, unsigned max)
{
	return ept_policy_clock.deactivate(p, out, max);
}

START_TEST(clock_inactive_victim_is_cold)
{
	const struct ept_policy_ops *ops = &ept_policy_clock;
	struct ept_policy *p = make(ops, 64);
	unsigned out[64], n;

	for (unsigned f = 0; f < 64; f++)
		ops->insert(p, f, false);
	/* Nothing sampled yet: the oldest active frame, not known to be cold. */
	expect_victim(ops, p, 0, false);
	/* The oldest active frames are sampled first, oldest first. */
	n = deactivate_all(p, out, 64);
	ck_assert_uint_eq(n, 64 / 8);
	for (unsigned i = 0; i < n; i++)
		ck_assert_uint_eq(out[i], i);
	/* The target is reached: nothing more to sample. */
	ck_assert_uint_eq(deactivate_all(p, out, 64), 0);
	/* The victim is the oldest inactive frame, and cold. */
	expect_victim(ops, p, 0, true);
	/* A referenced inactive frame is no longer a candidate... */
	ops->reference(p, 0);
	expect_victim(ops, p, 1, true);
	/* ...and went to the active head: the last active frame to sample. */
	for (unsigned i = 1; i < 8; i++)
		ops->remove(p, i);
	for (unsigned i = 8; i < 64; i++) {
		n = deactivate_all(p, out, 1);
		ck_assert_uint_eq(n, 1);
		ck_assert_uint_eq(out[0], i);
		ops->remove(p, i);
	}
	/* Only frame 0 is left: the active list is never emptied by sampling. */
	ck_assert_uint_eq(deactivate_all(p, out, 64), 0);
	expect_victim(ops, p, 0, false);
	ops->remove(p, 0);
	expect_empty(ops, p);
	ops->destroy(p);
}
END_TEST

START_TEST(clock_active_tail_victim_not_cold)
{
	const struct ept_policy_ops *ops = &ept_policy_clock;
	struct ept_policy *p = make(ops, 64);

	for (unsigned f = 10; f < 14; f++)
		ops->insert(p, f, false);
	expect_victim(ops, p, 10, false);
	ops->remove(p, 10);
	expect_victim(ops, p, 11, false);
	ops->destroy(p);
}
END_TEST

START_TEST(clock_prefetched_enter_active_head)
{
	const struct ept_policy_ops *ops = &ept_policy_clock;
	struct ept_policy *p = make(ops, 64);
	unsigned out[64];

	/* A prefetched frame alone is both head and tail. */
	ops->insert(p, 5, true);
	expect_victim(ops, p, 5, false);
	ops->remove(p, 5);

	/* Placed at the tail, a prefetched page would be sampled (a fault)
	 * before its reader reaches it: it enters the head like a demand page
	 * (prefetch protects pages in use by taking only cold victims). */
	for (unsigned f = 0; f < 4; f++)
		ops->insert(p, f, false);
	ops->insert(p, 20, true);
	expect_victim(ops, p, 0, false);
	for (unsigned f = 0; f < 4; f++) {
		ck_assert_uint_eq(deactivate_all(p, out, 1), 1);
		ck_assert_uint_eq(out[0], f);
	}
	/* The last active frame is never sampled. */
	ck_assert_uint_eq(deactivate_all(p, out, 1), 0);
	expect_victim(ops, p, 0, true);
	ops->destroy(p);
}
END_TEST

START_TEST(clock_inactive_target)
{
	static const unsigned sizes[] = { 1, 2, 8, 16, 17, 64, 100, 1000, 4096 };
	const struct ept_policy_ops *ops = &ept_policy_clock;

	for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		unsigned n = sizes[s], want = n / 8 > 2 ? n / 8 : 2, got = 0, k;
		struct ept_policy *p = make(ops, n);
		unsigned *out = calloc(n + 1, sizeof(*out));

		ck_assert_ptr_nonnull(out);
		for (unsigned f = 0; f < n; f++)
			ops->insert(p, f, false);
		/* In steps of at most 3, as the engine's max allows. */
		while ((k = deactivate_all(p, out, 3)) > 0) {
			ck_assert_uint_le(k, 3);
			got += k;
		}
		/* ~1/8 of the frames (at least 2), never the last active one. */
		if (want > n - 1)
			want = n - 1;
		ck_assert_msg(got == want, "%u frames: %u inactive, expected %u", n, got, want);
		/* Evicting inactive frames lets sampling refill the list. */
		if (got) {
			unsigned f;
			bool cold;

			ck_assert(ops->victim(p, &f, &cold) && cold);
			ops->remove(p, f);
			if (n - 1 > want) {
				ck_assert_uint_eq(deactivate_all(p, out, 64), 1);
			}
		}
		free(out);
		ops->destroy(p);
	}
}
END_TEST

START_TEST(clock_remove_anywhere)
{
	const struct ept_policy_ops *ops = &ept_policy_clock;
	struct ept_policy *p = make(ops, 64);
	unsigned out[64];

	for (unsigned f = 0; f < 32; f++)
		ops->insert(p, f, false);
	ck_assert_uint_eq(deactivate_all(p, out, 64), 8); /* inactive: 7..0, tail 0 */
	/* Inactive: tail, middle, head. */
	ops->remove(p, 0);
	ops->remove(p, 4);
	ops->remove(p, 7);
	/* Active: tail (8), middle, head (31). */
	ops->remove(p, 8);
	ops->remove(p, 20);
	ops->remove(p, 31);
	/* Removing an untracked frame is a no-op. */
	ops->remove(p, 31);
	ops->remove(p, 50);
	{
		static const unsigned inactive[] = { 1, 2, 3, 5, 6 };

		for (unsigned i = 0; i < 5; i++) {
			expect_victim(ops, p, inactive[i], true);
			ops->remove(p, inactive[i]);
		}
	}
	/* Then the active list, oldest first, skipping the removed ones. */
	for (unsigned f = 9; f < 31; f++) {
		if (f == 20)
			continue;
		expect_victim(ops, p, f, false);
		ops->remove(p, f);
	}
	expect_empty(ops, p);
	ops->destroy(p);
}
END_TEST

/* ---- reference models ------------------------------------------------- */

/* Ordered lists as arrays, index 0 = head (newest). */
struct model {
	bool clock;
	unsigned n, target;
	unsigned *act, nact;
	unsigned *inact, ninact;
};

static void list_remove(unsigned *l, unsigned *len, unsigned f)
{
	for (unsigned i = 0; i < *len; i++) {
		if (l[i] == f) {
			memmove(l + i, l + i + 1, (*len - i - 1) * sizeof(*l));
			(*len)--;
			return;
		}
	}
}

static void list_push_head(unsigned *l, unsigned *len, unsigned f)
{
	memmove(l + 1, l, *len * sizeof(*l));
	l[0] = f;
	(*len)++;
}

static void model_insert(struct model *m, unsigned f, bool prefetched)
{
	(void)prefetched; /* both policies: the head, whatever the origin */
	list_push_head(m->act, &m->nact, f);
}

static void model_remove(struct model *m, unsigned f)
{
	list_remove(m->act, &m->nact, f);
	list_remove(m->inact, &m->ninact, f);
}

static void model_reference(struct model *m, unsigned f)
{
	if (!m->clock)
		return;
	model_remove(m, f);
	list_push_head(m->act, &m->nact, f);
}

static bool model_victim(const struct model *m, unsigned *f, bool *cold)
{
	if (m->ninact) {
		*f = m->inact[m->ninact - 1];
		*cold = true;
		return true;
	}
	if (m->nact) {
		*f = m->act[m->nact - 1];
		*cold = !m->clock;
		return true;
	}
	return false;
}

static unsigned model_deactivate(struct model *m, unsigned *out, unsigned max)
{
	unsigned k = 0;

	while (k < max && m->ninact < m->target && m->nact > 1) {
		unsigned f = m->act[--m->nact];

		list_push_head(m->inact, &m->ninact, f);
		out[k++] = f;
	}
	return k;
}

static bool model_inactive(const struct model *m, unsigned f)
{
	for (unsigned i = 0; i < m->ninact; i++)
		if (m->inact[i] == f)
			return true;
	return false;
}

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random operations against the policy and its model; every victim and
 * every sampled frame must agree. */
static void model_check(const struct ept_policy_ops *ops, unsigned n, unsigned nops,
			uint64_t seed)
{
	struct ept_policy *p = make(ops, n);
	struct model m = { .clock = ops == &ept_policy_clock, .n = n,
			   .target = n / 8 > 2 ? n / 8 : 2 };
	bool *tracked = calloc(n, sizeof(*tracked));
	unsigned *out = calloc(n, sizeof(*out)), *mout = calloc(n, sizeof(*mout));
	unsigned ntracked = 0;

	m.act = calloc(n, sizeof(unsigned));
	m.inact = calloc(n, sizeof(unsigned));
	ck_assert(tracked && out && mout && m.act && m.inact);
	for (unsigned op = 0; op < nops; op++) {
		unsigned r = (unsigned)(rng(&seed) % 100), f = (unsigned)(rng(&seed) % n);
		unsigned pf, mf;
		bool pc, mc, pv, mv;

		if (r < 40) {
			/* Insert into a free frame (the engine's take_frame). */
			for (unsigned k = 0; k < n && tracked[f]; k++)
				f = (f + 1) % n;
			if (tracked[f])
				continue;
			bool pre = rng(&seed) % 4 == 0;

			ops->insert(p, f, pre);
			model_insert(&m, f, pre);
			tracked[f] = true;
			ntracked++;
		} else if (r < 55) {
			/* Evict the victim, as take_frame does. */
			pv = ops->victim(p, &pf, &pc);
			mv = model_victim(&m, &mf, &mc);
			ck_assert_msg(pv == mv, "op %u: victim %d, model %d", op, pv, mv);
			if (!pv)
				continue;
			ck_assert_msg(pf == mf && pc == mc,
				      "op %u (%s, %u frames): victim %u cold %d, model %u cold %d", op,
				      ops->name, n, pf, pc, mf, mc);
			ops->remove(p, pf);
			model_remove(&m, pf);
			tracked[pf] = false;
			ntracked--;
		} else if (r < 70) {
			/* Removal of any tracked frame (flush, drop, failure). */
			if (!tracked[f])
				continue;
			ops->remove(p, f);
			model_remove(&m, f);
			tracked[f] = false;
			ntracked--;
		} else if (r < 85) {
			/* A reference to a sampled (inactive) frame. */
			if (!model_inactive(&m, f)) {
				if (!m.ninact)
					continue;
				f = m.inact[rng(&seed) % m.ninact];
			}
			ops->reference(p, f);
			model_reference(&m, f);
		} else if (ops->deactivate) {
			unsigned max = 1 + (unsigned)(rng(&seed) % 16);
			unsigned k = ops->deactivate(p, out, max), mk = model_deactivate(&m, mout, max);

			ck_assert_msg(k == mk, "op %u: deactivated %u, model %u", op, k, mk);
			for (unsigned i = 0; i < k; i++)
				ck_assert_msg(out[i] == mout[i], "op %u: sampled %u, model %u", op,
					      out[i], mout[i]);
		}
	}
	/* Drain: the whole order must agree to the end. */
	for (;;) {
		unsigned pf, mf;
		bool pc, mc, pv = ops->victim(p, &pf, &pc), mv = model_victim(&m, &mf, &mc);

		ck_assert_int_eq(pv, mv);
		if (!pv)
			break;
		ck_assert_msg(pf == mf && pc == mc, "drain: victim %u cold %d, model %u cold %d",
			      pf, pc, mf, mc);
		ops->remove(p, pf);
		model_remove(&m, pf);
		ntracked--;
	}
	ck_assert_uint_eq(ntracked, 0);
	free(m.act);
	free(m.inact);
	free(tracked);
	free(out);
	free(mout);
	ops->destroy(p);
}

START_TEST(fifo_model)
{
	model_check(&ept_policy_fifo, 8, 5000, 1);
	model_check(&ept_policy_fifo, 64, 20000, 2);
	model_check(&ept_policy_fifo, 300, 20000, 3);
}
END_TEST

START_TEST(clock_model)
{
	model_check(&ept_policy_clock, 8, 5000, 11);
	model_check(&ept_policy_clock, 17, 10000, 12);
	model_check(&ept_policy_clock, 64, 20000, 13);
	model_check(&ept_policy_clock, 300, 20000, 14);
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("ept_policy");
	TCase *tc = tcase_create("policy");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, table_and_lookup);
	tcase_add_test(tc, fifo_order);
	tcase_add_test(tc, clock_inactive_victim_is_cold);
	tcase_add_test(tc, clock_active_tail_victim_not_cold);
	tcase_add_test(tc, clock_prefetched_enter_active_head);
	tcase_add_test(tc, clock_inactive_target);
	tcase_add_test(tc, clock_remove_anywhere);
	tcase_add_test(tc, fifo_model);
	tcase_add_test(tc, clock_model);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(policy_suite());
	int failed;

	log_init("test_ept_policy", LOG_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

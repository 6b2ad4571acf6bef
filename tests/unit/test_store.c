/*
 * Unit tests of memserver/store.c: capacity reservation, region lifecycle,
 * tokens, epochs and fencing, page I/O with checksums, the corruption hook,
 * resident accounting and leases (RDMA registrations) revoked by fencing.
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "memserver/store.h"

#define MiB (1ull << 20)

static struct ms_store *st;

static void setup(void)
{
	ck_assert_int_eq(ms_store_create(64 * MiB, &st), 0);
}

static void teardown(void)
{
	ms_store_destroy(st);
	st = NULL;
}

static void stat_of(struct ms_stat *s)
{
	memset(s, 0, sizeof(*s));
	ms_store_stat(st, s);
}

static void fill(uint8_t *page, unsigned seed)
{
	for (unsigned i = 0; i < MS_PAGE_SIZE; i++)
		page[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

/* Writes one page of pattern seed (within an I/O section). */
static void put_page(struct ms_region *r, uint64_t page, unsigned seed)
{
	uint8_t buf[MS_PAGE_SIZE];

	fill(buf, seed);
	ms_region_write_page(r, page, buf, ms_page_sum(buf));
}

/* Reads one page and checks it holds pattern seed. */
static void check_page(struct ms_region *r, uint64_t page, unsigned seed)
{
	uint8_t buf[MS_PAGE_SIZE], want[MS_PAGE_SIZE];
	uint64_t sum = 0;
	bool zero = true;

	fill(want, seed);
	ck_assert_int_eq(ms_region_read_page(r, page, buf, &sum, &zero), 0);
	ck_assert(!zero);
	ck_assert_uint_eq(sum, ms_page_sum(want));
	ck_assert_mem_eq(buf, want, MS_PAGE_SIZE);
}

static void check_zero(struct ms_region *r, uint64_t page)
{
	uint8_t buf[MS_PAGE_SIZE];
	uint64_t sum = 1;
	bool zero = false;

	memset(buf, 0xa5, sizeof(buf));
	ck_assert_int_eq(ms_region_read_page(r, page, buf, &sum, &zero), 0);
	ck_assert(zero);
	ck_assert_uint_eq(sum, 0);
	ck_assert_uint_eq(buf[0], 0xa5); /* nothing copied */
}

START_TEST(capacity_reserved_at_create)
{
	uint8_t t1[MS_TOKEN_LEN], t2[MS_TOKEN_LEN], t3[MS_TOKEN_LEN];
	struct ms_stat s;

	stat_of(&s);
	ck_assert_uint_eq(s.capacity, 64 * MiB);
	ck_assert_uint_eq(s.reserved, 0);
	ck_assert_uint_eq(s.regions, 0);

	ck_assert_int_eq(ms_store_region_create(st, 1, 48 * MiB, t1), 0);
	/* Nothing written, yet the space is gone. */
	ck_assert_int_eq(ms_store_region_create(st, 2, 32 * MiB, t2), -ENOSPC);
	ck_assert_int_eq(ms_store_region_create(st, 2, 16 * MiB + MS_PAGE_SIZE, t2), -ENOSPC);
	ck_assert_int_eq(ms_store_region_create(st, 2, 16 * MiB, t2), 0);
	ck_assert_int_eq(ms_store_region_create(st, 3, MS_PAGE_SIZE, t3), -ENOSPC);
	stat_of(&s);
	ck_assert_uint_eq(s.reserved, 64 * MiB);
	ck_assert_uint_eq(s.regions, 2);
	ck_assert_uint_eq(s.resident, 0);
	/* Tokens are random per region. */
	ck_assert_mem_ne(t1, t2, MS_TOKEN_LEN);

	/* Deleting releases the reservation. */
	ck_assert_int_eq(ms_store_region_delete(st, 1, t1), 0);
	stat_of(&s);
	ck_assert_uint_eq(s.reserved, 16 * MiB);
	ck_assert_uint_eq(s.regions, 1);
	ck_assert_int_eq(ms_store_region_create(st, 3, 32 * MiB, t3), 0);
	ck_assert_int_eq(ms_store_region_create(st, 4, 16 * MiB, t1), 0);
	stat_of(&s);
	ck_assert_uint_eq(s.reserved, 64 * MiB);
}
END_TEST

START_TEST(create_bad_args)
{
	uint8_t t[MS_TOKEN_LEN];
	struct ms_store *big;

	ck_assert_int_eq(ms_store_region_create(st, 1, 0, t), -EINVAL);
	ck_assert_int_eq(ms_store_region_create(st, 1, 1, t), -EINVAL);
	ck_assert_int_eq(ms_store_region_create(st, 1, MS_PAGE_SIZE + 1, t), -EINVAL);
	ck_assert_int_eq(ms_store_region_create(st, 1, MS_PAGE_SIZE - 1, t), -EINVAL);
	ck_assert_int_eq(ms_store_region_create(st, 1, UINT64_MAX, t), -EINVAL);
	ck_assert_int_eq(ms_store_region_create(st, 1, MS_MAX_REGION_SIZE + MS_PAGE_SIZE, t),
			 -EINVAL);
	/* Beyond capacity but a valid size: ENOSPC, not EINVAL. */
	ck_assert_int_eq(ms_store_region_create(st, 1, MS_MAX_REGION_SIZE, t), -ENOSPC);

	ck_assert_int_eq(ms_store_region_create(st, 1, MS_PAGE_SIZE, t), 0);
	ck_assert_int_eq(ms_store_region_create(st, 1, MS_PAGE_SIZE, t), -EEXIST);
	ck_assert_int_eq(ms_store_region_create(st, 1, 2 * MS_PAGE_SIZE, t), -EEXIST);

	/* A largest-size region on a large pool costs no RAM up front. */
	ck_assert_int_eq(ms_store_create(MS_MAX_REGION_SIZE, &big), 0);
	ck_assert_int_eq(ms_store_region_create(big, UINT64_MAX, MS_MAX_REGION_SIZE, t), 0);
	ms_store_destroy(big);
}
END_TEST

START_TEST(open_token_and_epochs)
{
	uint8_t t[MS_TOKEN_LEN], bad[MS_TOKEN_LEN];
	struct ms_region *r1, *r2, *r3;
	uint64_t e1, e2, e3, size;

	ck_assert_int_eq(ms_store_region_create(st, 9, 16 * MS_PAGE_SIZE, t), 0);
	memcpy(bad, t, sizeof(bad));
	bad[MS_TOKEN_LEN - 1] ^= 1;
	ck_assert_int_eq(ms_store_region_open(st, 9, bad, &r1, &e1, &size), -EACCES);
	memset(bad, 0, sizeof(bad));
	ck_assert_int_eq(ms_store_region_open(st, 9, bad, &r1, &e1, &size), -EACCES);
	ck_assert_int_eq(ms_store_region_open(st, 10, t, &r1, &e1, &size), -ENOENT);

	ck_assert_int_eq(ms_store_region_open(st, 9, t, &r1, &e1, &size), 0);
	ck_assert_uint_eq(size, 16 * MS_PAGE_SIZE);
	ck_assert_uint_eq(ms_region_id(r1), 9);
	ck_assert_int_eq(ms_region_io_begin(r1, e1), 0);
	put_page(r1, 0, 1);
	ms_region_io_end(r1);

	/* A newer open fences the older one. */
	ck_assert_int_eq(ms_store_region_open(st, 9, t, &r2, &e2, &size), 0);
	ck_assert_uint_gt(e2, e1);
	ck_assert_int_eq(ms_region_io_begin(r1, e1), -ESTALE);
	ck_assert_int_eq(ms_region_io_begin(r2, e2), 0);
	check_page(r2, 0, 1);
	ms_region_io_end(r2);
	ck_assert_int_eq(ms_store_region_open(st, 9, t, &r3, &e3, &size), 0);
	ck_assert_uint_gt(e3, e2);
	ck_assert_int_eq(ms_region_io_begin(r2, e2), -ESTALE);
	ck_assert_int_eq(ms_region_io_begin(r2, e1), -ESTALE);
	ck_assert_int_eq(ms_region_io_begin(r3, e3 + 1), -ESTALE);
	ck_assert_int_eq(ms_region_io_begin(r3, e3), 0);
	ms_region_io_end(r3);

	ms_region_put(r1);
	ms_region_put(r2);
	ms_region_put(r3);
}
END_TEST

START_TEST(delete_and_recreate)
{
	uint8_t t[MS_TOKEN_LEN], t2[MS_TOKEN_LEN], bad[MS_TOKEN_LEN];
	struct ms_region *r, *r2;
	uint64_t e, e2, size;
	struct ms_stat s;

	ck_assert_int_eq(ms_store_region_create(st, 5, 8 * MS_PAGE_SIZE, t), 0);
	ck_assert_int_eq(ms_store_region_open(st, 5, t, &r, &e, &size), 0);
	ck_assert_int_eq(ms_region_io_begin(r, e), 0);
	for (unsigned p = 0; p < 8; p++)
		put_page(r, p, p + 10);
	ms_region_io_end(r);
	stat_of(&s);
	ck_assert_uint_eq(s.resident, 8 * MS_PAGE_SIZE);

	memset(bad, 7, sizeof(bad));
	ck_assert_int_eq(ms_store_region_delete(st, 5, bad), -EACCES);
	ck_assert_int_eq(ms_store_region_delete(st, 6, t), -ENOENT);
	ck_assert_int_eq(ms_store_region_delete(st, 5, t), 0);
	ck_assert_int_eq(ms_store_region_delete(st, 5, t), -ENOENT);
	stat_of(&s);
	ck_assert_uint_eq(s.resident, 0);
	ck_assert_uint_eq(s.reserved, 0);
	ck_assert_uint_eq(s.regions, 0);

	/* The old holder's reference stays valid but leads nowhere. */
	ck_assert_int_eq(ms_region_io_begin(r, e), -ENOENT);
	ck_assert_int_eq(ms_store_region_open(st, 5, t, &r2, &e2, &size), -ENOENT);
	ck_assert_int_eq(ms_store_debug_corrupt(st, 5, 0), -ENOENT);

	/* Recreated under the same id: new token, old token refused, and every
	 * page reads as never written. */
	ck_assert_int_eq(ms_store_region_create(st, 5, 8 * MS_PAGE_SIZE, t2), 0);
	ck_assert_mem_ne(t, t2, MS_TOKEN_LEN);
	ck_assert_int_eq(ms_store_region_open(st, 5, t, &r2, &e2, &size), -EACCES);
	ck_assert_int_eq(ms_store_region_open(st, 5, t2, &r2, &e2, &size), 0);
	ck_assert_ptr_ne(r2, r);
	ck_assert_int_eq(ms_region_io_begin(r, e), -ENOENT);
	ck_assert_int_eq(ms_region_io_begin(r2, e2), 0);
	for (unsigned p = 0; p < 8; p++)
		check_zero(r2, p);
	ms_region_io_end(r2);
	ms_region_put(r);
	ms_region_put(r2);
}
END_TEST

START_TEST(page_io_round_trip)
{
	uint8_t t[MS_TOKEN_LEN];
	struct ms_region *r;
	uint64_t e, size, npages = 300;
	struct ms_stat s;

	ck_assert_int_eq(ms_store_region_create(st, 1, npages * MS_PAGE_SIZE, t), 0);
	ck_assert_int_eq(ms_store_region_open(st, 1, t, &r, &e, &size), 0);
	ck_assert(ms_region_page_valid(r, 0));
	ck_assert(ms_region_page_valid(r, npages - 1));
	ck_assert(!ms_region_page_valid(r, npages));
	ck_assert(!ms_region_page_valid(r, UINT64_MAX));

	ck_assert_int_eq(ms_region_io_begin(r, e), 0);
	for (uint64_t p = 0; p < npages; p += 3)
		put_page(r, p, (unsigned)p);
	for (uint64_t p = 0; p < npages; p++) {
		if (p % 3 == 0)
			check_page(r, p, (unsigned)p);
		else
			check_zero(r, p);
	}
	/* Overwrites replace content and do not count twice. */
	put_page(r, 0, 999);
	check_page(r, 0, 999);
	ms_region_io_end(r);
	stat_of(&s);
	ck_assert_uint_eq(s.resident, 100 * MS_PAGE_SIZE);

	/* An all-zero page that was written is data, not "never written". */
	ck_assert_int_eq(ms_region_io_begin(r, e), 0);
	{
		uint8_t zero[MS_PAGE_SIZE] = { 0 }, out[MS_PAGE_SIZE];
		uint64_t sum;
		bool z = true;

		ms_region_write_page(r, 1, zero, ms_page_sum(zero));
		memset(out, 1, sizeof(out));
		ck_assert_int_eq(ms_region_read_page(r, 1, out, &sum, &z), 0);
		ck_assert(!z);
		ck_assert_mem_eq(out, zero, MS_PAGE_SIZE);
		ck_assert_uint_eq(sum, ms_page_sum(zero));
	}
	ms_region_io_end(r);
	stat_of(&s);
	ck_assert_uint_eq(s.resident, 101 * MS_PAGE_SIZE);
	ms_region_put(r);
}
END_TEST

START_TEST(corruption_detected)
{
	uint8_t t[MS_TOKEN_LEN], buf[MS_PAGE_SIZE];
	struct ms_region *r;
	uint64_t e, size, sum;
	bool zero;

	ck_assert_int_eq(ms_store_region_create(st, 2, 4 * MS_PAGE_SIZE, t), 0);
	ck_assert_int_eq(ms_store_region_open(st, 2, t, &r, &e, &size), 0);
	ck_assert_int_eq(ms_region_io_begin(r, e), 0);
	put_page(r, 0, 1);
	put_page(r, 1, 2);
	ms_region_io_end(r);

	ck_assert_int_eq(ms_store_debug_corrupt(st, 2, 0), 0);
	ck_assert_int_eq(ms_store_debug_corrupt(st, 2, 2), -ENODATA); /* never written */
	ck_assert_int_eq(ms_store_debug_corrupt(st, 2, 4), -ERANGE);
	ck_assert_int_eq(ms_store_debug_corrupt(st, 3, 0), -ENOENT);

	ck_assert_int_eq(ms_region_io_begin(r, e), 0);
	ck_assert_int_eq(ms_region_read_page(r, 0, buf, &sum, &zero), -EBADMSG);
	check_page(r, 1, 2);
	check_zero(r, 2);
	/* A rewrite heals the page. */
	put_page(r, 0, 3);
	check_page(r, 0, 3);
	ms_region_io_end(r);
	ms_region_put(r);
}
END_TEST

START_TEST(resident_accounting)
{
	uint8_t t1[MS_TOKEN_LEN], t2[MS_TOKEN_LEN];
	struct ms_region *r1, *r2;
	uint64_t e1, e2, size;
	struct ms_stat s;

	ck_assert_int_eq(ms_store_region_create(st, 1, 128 * MS_PAGE_SIZE, t1), 0);
	ck_assert_int_eq(ms_store_region_create(st, 2, 128 * MS_PAGE_SIZE, t2), 0);
	ck_assert_int_eq(ms_store_region_open(st, 1, t1, &r1, &e1, &size), 0);
	ck_assert_int_eq(ms_store_region_open(st, 2, t2, &r2, &e2, &size), 0);
	ck_assert_int_eq(ms_region_io_begin(r1, e1), 0);
	ck_assert_int_eq(ms_region_io_begin(r2, e2), 0);
	for (unsigned p = 0; p < 128; p++) {
		put_page(r1, p, p);
		put_page(r1, p, p + 1);
		if (p % 2)
			put_page(r2, p, p);
	}
	ms_region_io_end(r1);
	ms_region_io_end(r2);
	stat_of(&s);
	ck_assert_uint_eq(s.resident, (128 + 64) * MS_PAGE_SIZE);
	ck_assert_uint_eq(s.reserved, 256 * MS_PAGE_SIZE);
	ck_assert_int_eq(ms_store_region_delete(st, 1, t1), 0);
	stat_of(&s);
	ck_assert_uint_eq(s.resident, 64 * MS_PAGE_SIZE);
	ck_assert_int_eq(ms_store_region_delete(st, 2, t2), 0);
	stat_of(&s);
	ck_assert_uint_eq(s.resident, 0);
	ms_region_put(r1);
	ms_region_put(r2);
}
END_TEST

/* Regions still in the table and still referenced by nobody are freed by
 * ms_store_destroy (the sanitizer build checks for leaks). */
struct test_lease {
	struct ms_region_lease l;
	unsigned revoked;
	uint8_t *slots;
	size_t len;
};

static int test_expose(struct ms_region_lease *l, void *slots, size_t len)
{
	struct test_lease *t = (struct test_lease *)l;

	t->slots = slots;
	t->len = len;
	return 0;
}

/* Page p's stored sum as an RDMA reader finds it: right after the page. */
static uint64_t slot_sum_of(const struct test_lease *t, uint64_t p)
{
	uint64_t le;

	memcpy(&le, t->slots + p * MS_SLOT_SIZE + MS_PAGE_SIZE, 8);
	return le64toh(le);
}

static void test_revoke(struct ms_region_lease *l)
{
	((struct test_lease *)l)->revoked++;
}

START_TEST(leases_revoked_by_fence_and_delete)
{
	uint8_t tok[MS_TOKEN_LEN];
	struct ms_region *r1, *r2;
	struct test_lease a = { .l.expose = test_expose, .l.revoke = test_revoke };
	struct test_lease b = a;
	uint64_t e1, e2, size;
	struct ms_stat s;

	ck_assert_int_eq(ms_store_region_create(st, 7, 4 * MiB, tok), 0);
	ck_assert_int_eq(ms_store_region_open(st, 7, tok, &r1, &e1, &size), 0);
	ck_assert_int_eq(ms_region_io_begin(r1, e1), 0);
	put_page(r1, 3, 9);
	ms_region_io_end(r1);
	ck_assert_int_eq(ms_region_lease_add(r1, e1, &a.l), 0);
	ck_assert_ptr_nonnull(a.slots);
	ck_assert_uint_eq(a.len, 4 * MiB / MS_PAGE_SIZE * MS_SLOT_SIZE);
	/* A written page and its sum are where an RDMA reader finds them, in
	 * the page's slot, and the sum is never 0; an unwritten page's is 0. */
	{
		uint8_t want[MS_PAGE_SIZE];

		fill(want, 9);
		ck_assert_mem_eq(a.slots + 3 * MS_SLOT_SIZE, want, MS_PAGE_SIZE);
		ck_assert_uint_eq(slot_sum_of(&a, 3), ms_page_sum(want));
		ck_assert_uint_ne(slot_sum_of(&a, 3), 0);
		ck_assert_uint_eq(slot_sum_of(&a, 2), 0);
		ck_assert_uint_eq(slot_sum_of(&a, 4), 0);
	}
	stat_of(&s);
	ck_assert_uint_eq(s.resident, 4 * MiB);	/* pinned: all of it */

	/* A newer open revokes it, once; the fenced epoch cannot take one. */
	ck_assert_int_eq(ms_store_region_open(st, 7, tok, &r2, &e2, &size), 0);
	ck_assert_uint_eq(a.revoked, 1);
	ck_assert_int_eq(ms_region_lease_add(r1, e1, &b.l), -ESTALE);
	ms_region_lease_drop(r1, &a.l);
	ck_assert_uint_eq(a.revoked, 1);

	/* Dropping a live lease revokes it; delete revokes the rest. */
	ck_assert_int_eq(ms_region_lease_add(r2, e2, &b.l), 0);
	ms_region_lease_drop(r2, &b.l);
	ck_assert_uint_eq(b.revoked, 1);
	ck_assert_int_eq(ms_region_lease_add(r2, e2, &b.l), 0);
	ck_assert_int_eq(ms_store_region_delete(st, 7, tok), 0);
	ck_assert_uint_eq(b.revoked, 2);
	ms_region_lease_drop(r2, &b.l);
	ck_assert_uint_eq(b.revoked, 2);
	ck_assert_int_eq(ms_region_lease_add(r2, e2, &a.l), -ENOENT);
	stat_of(&s);
	ck_assert_uint_eq(s.resident, 0);
	ms_region_put(r1);
	ms_region_put(r2);
}
END_TEST

START_TEST(destroy_frees_regions)
{
	uint8_t t[MS_TOKEN_LEN];
	struct ms_region *r;
	uint64_t e, size;

	for (uint64_t id = 0; id < 100; id++)
		ck_assert_int_eq(ms_store_region_create(st, id * 4096, MS_PAGE_SIZE, t), 0);
	ck_assert_int_eq(ms_store_region_open(st, 4096, t, &r, &e, &size), -EACCES);
	ck_assert_int_eq(ms_store_region_create(st, 7, MS_PAGE_SIZE, t), 0);
	ck_assert_int_eq(ms_store_region_open(st, 7, t, &r, &e, &size), 0);
	ck_assert_int_eq(ms_region_io_begin(r, e), 0);
	put_page(r, 0, 5);
	ms_region_io_end(r);
	ms_region_put(r);
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");

	tcase_set_timeout(tc, 10);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, capacity_reserved_at_create);
	tcase_add_test(tc, create_bad_args);
	tcase_add_test(tc, open_token_and_epochs);
	tcase_add_test(tc, delete_and_recreate);
	tcase_add_test(tc, page_io_round_trip);
	tcase_add_test(tc, corruption_detected);
	tcase_add_test(tc, resident_accounting);
	tcase_add_test(tc, leases_revoked_by_fence_and_delete);
	tcase_add_test(tc, destroy_frees_regions);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	/* The error paths under test log warnings; keep only errors. */
	log_init("test_store", LOG_ERROR);
	sr = srunner_create(store_suite());

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

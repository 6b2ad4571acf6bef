/*
 * Unit tests of the stream detector (ept/prefetch.c): strides +1, +3 and -2
 * are found, random faults prefetch nothing, a stream being continued never
 * re-issues pages already issued, and the depth follows the feedback.
 *
 * Two ways of feeding it: every access reported (as when the pages ahead are
 * still in flight), and as the engine really does, where pages already issued
 * are present and raise no fault, so the detector sees only the misses.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ept/prefetch.h"

#define MAXD 32

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The stride a fresh detector would vote for with this history (0: none):
 * a copy with the continuation state cleared. */
static int64_t majority_of(const struct ept_prefetch *p)
{
	struct ept_prefetch c = *p;
	int64_t s = 0;
	uint64_t first;
	uint64_t last = c.history[(c.next + PREFETCH_HISTORY - 1) % PREFETCH_HISTORY];

	/* Re-recording the last page adds a zero delta; use a copy whose ring
	 * drops that entry instead. */
	c.next = (c.next + PREFETCH_HISTORY - 1) % PREFETCH_HISTORY;
	c.count--;
	c.last_stride = 0;
	c.last_issued = 0;
	return ept_prefetch_on_fault(&c, last, &s, &first) ? s : 0;
}

/* Feeds faults start, start+stride, ... (every access reported) and checks
 * detection after three faults. */
static void stride_detected(int64_t stride, uint64_t start)
{
	struct ept_prefetch p;
	int64_t s = 0;
	uint64_t first = 0, page = start;
	unsigned n;

	ept_prefetch_init(&p, MAXD);
	/* One or two faults are no stream. */
	ck_assert_uint_eq(ept_prefetch_on_fault(&p, page, &s, &first), 0);
	page += (uint64_t)stride;
	ck_assert_uint_eq(ept_prefetch_on_fault(&p, page, &s, &first), 0);
	page += (uint64_t)stride;
	n = ept_prefetch_on_fault(&p, page, &s, &first);
	ck_assert_msg(n > 0, "stride %lld not detected after 3 faults", (long long)stride);
	ck_assert_int_eq(s, stride);
	ck_assert_uint_eq(first, page + (uint64_t)stride);
	ck_assert_uint_eq(n, p.depth);
	ck_assert_uint_le(n, MAXD);
}

START_TEST(detects_plus_one)
{
	stride_detected(1, 1000);
}
END_TEST

START_TEST(detects_plus_three)
{
	stride_detected(3, 77);
}
END_TEST

START_TEST(detects_minus_two)
{
	stride_detected(-2, 100000);
}
END_TEST

START_TEST(random_faults_prefetch_nothing)
{
	struct ept_prefetch p;
	uint64_t seed = 42, issued = 0;

	ept_prefetch_init(&p, MAXD);
	for (unsigned i = 0; i < 20000; i++) {
		int64_t s;
		uint64_t first;

		issued += ept_prefetch_on_fault(&p, rng(&seed) % (1ull << 30), &s, &first);
	}
	ck_assert_msg(issued == 0, "%llu pages prefetched on random faults",
		      (unsigned long long)issued);
}
END_TEST

/* A majority, not unanimity: one outlier in the history does not break a
 * stream. */
START_TEST(majority_tolerates_outlier)
{
	struct ept_prefetch p;
	static const uint64_t pages[] = { 10, 11, 12, 13, 300, 14 };
	int64_t s = 0;
	uint64_t first = 0;
	unsigned n = 0;

	ept_prefetch_init(&p, MAXD);
	for (unsigned i = 0; i < 6; i++)
		n = ept_prefetch_on_fault(&p, pages[i], &s, &first);
	/* deltas 1,1,1,287,-286: stride 1 holds 3 of 5 */
	ck_assert_int_eq(majority_of(&p), 1);
	(void)n;
}
END_TEST

/*
 * A stream interrupted by one far access (a page-table walk, a stack page,
 * another vCPU) must go on being prefetched once it resumes: each of its
 * later faults has stride 1 by majority and the pages ahead of it were never
 * issued. Every access is reported here, as when nothing ahead is present.
 */
static void stream_resumes_after_outlier(int64_t stride, uint64_t start, int64_t jump)
{
	struct ept_prefetch p;
	int64_t s = 0;
	uint64_t first = 0, page = start, issued = 0;

	ept_prefetch_init(&p, MAXD);
	for (unsigned i = 0; i < 4; i++, page += (uint64_t)stride)
		ept_prefetch_on_fault(&p, page, &s, &first);
	/* The outlier, then the stream goes on where it was. */
	ept_prefetch_on_fault(&p, page + (uint64_t)jump, &s, &first);
	for (unsigned i = 0; i < 20; i++, page += (uint64_t)stride) {
		unsigned n = ept_prefetch_on_fault(&p, page, &s, &first);

		if (n && s == stride)
			issued += n;
	}
	ck_assert_msg(issued > 0,
		      "stride %lld: nothing prefetched over 20 faults of the stream after one "
		      "fault %+lld pages away (the window of the outlier, up to page %llu, is "
		      "taken as still ahead of the stream)",
		      (long long)stride, (long long)jump, (unsigned long long)p.last_issued);
}

START_TEST(stream_resumes_after_far_fault)
{
	stream_resumes_after_outlier(1, 1000, 5000);
	stream_resumes_after_outlier(-2, 100000, -20000);
}
END_TEST

/*
 * Every access of a stream reported as a fault: what is issued is issued
 * once, always ahead of the fault, and the window stays at most depth ahead.
 */
static void continuation_all_reported(int64_t stride, uint64_t start, unsigned len)
{
	struct ept_prefetch p;
	uint8_t *seen = calloc(1 << 20, 1);
	uint64_t page = start, total = 0;

	ck_assert_ptr_nonnull(seen);
	ept_prefetch_init(&p, MAXD);
	for (unsigned i = 0; i < len; i++, page += (uint64_t)stride) {
		int64_t s;
		uint64_t q;
		unsigned n = ept_prefetch_on_fault(&p, page, &s, &q);

		for (unsigned k = 0; k < n; k++, q += (uint64_t)s) {
			ck_assert_int_eq(s, stride);
			ck_assert_uint_lt(q, 1 << 20);
			ck_assert_msg(!seen[q], "page %llu issued twice (fault %u at %llu)",
				      (unsigned long long)q, i, (unsigned long long)page);
			/* Ahead of the fault, within depth strides. */
			ck_assert((int64_t)(q - page) / stride > 0);
			ck_assert((int64_t)(q - page) / stride <= (int64_t)p.depth);
			seen[q] = 1;
			total++;
		}
	}
	/* Everything from the fourth access to depth past the end. */
	ck_assert_uint_ge(total, len - 3);
	free(seen);
}

START_TEST(continuation_does_not_reissue)
{
	continuation_all_reported(1, 100, 5000);
	continuation_all_reported(3, 7, 3000);
	continuation_all_reported(-2, (1 << 20) - 1, 3000);
}
END_TEST

/*
 * As the engine uses it: pages already issued are present and do not fault.
 * A scan of len pages with stride; returns how many accesses were misses.
 */
static unsigned scan_as_engine(int64_t stride, uint64_t start, unsigned len, uint64_t *issued_out,
			       unsigned *reissued)
{
	struct ept_prefetch p;
	uint8_t *present = calloc(1 << 20, 1);
	uint64_t page = start, issued = 0;
	unsigned misses = 0;

	ck_assert_ptr_nonnull(present);
	ept_prefetch_init(&p, MAXD);
	for (unsigned i = 0; i < len; i++, page += (uint64_t)stride) {
		int64_t s;
		uint64_t q;
		unsigned n;

		if (present[page]) {
			continue;
		}
		misses++;
		present[page] = 1;
		n = ept_prefetch_on_fault(&p, page, &s, &q);
		for (unsigned k = 0; k < n; k++, q += (uint64_t)s) {
			if (q >= (1 << 20))
				break;
			/* The engine skips pages it holds; count what the
			 * detector asks for again anyway. */
			if (present[q])
				(*reissued)++;
			present[q] = 1;
			issued++;
		}
	}
	free(present);
	*issued_out = issued;
	return misses;
}

START_TEST(continuation_engine_view)
{
	static const int64_t strides[] = { 1, 3, -2 };
	char report[512] = "";
	bool ok = true;

	for (unsigned i = 0; i < 3; i++) {
		uint64_t issued;
		unsigned len = 4000, reissued = 0;
		uint64_t start = strides[i] > 0 ? 10 : (1 << 20) - 10;
		unsigned misses = scan_as_engine(strides[i], start, len, &issued, &reissued);
		size_t used = strlen(report);

		/* A strided scan must mostly hit prefetched pages (with a depth
		 * of at least 8, well under half the accesses may miss), and the
		 * detector must not ask for pages it already issued. */
		snprintf(report + used, sizeof(report) - used,
			 " [stride %lld: %u/%u missed, %llu prefetched, %u re-issued]",
			 (long long)strides[i], misses, len, (unsigned long long)issued, reissued);
		if (misses >= len / 2 || reissued)
			ok = false;
	}
	ck_assert_msg(ok,
		      "%s: the misses of a prefetched stream are depth+1 strides apart and "
		      "out-vote the stream's own stride",
		      report);
}
END_TEST

START_TEST(depth_feedback)
{
	struct ept_prefetch p;
	int64_t s;
	uint64_t first;

	ept_prefetch_init(&p, MAXD);
	ck_assert_uint_eq(p.depth, MAXD / 4);
	/* Used windows grow the depth (by whatever law) up to the maximum. */
	for (unsigned i = 0; i < 100; i++) {
		unsigned before = p.depth;

		ept_prefetch_feedback(&p, 1);
		if (before < MAXD)
			ck_assert_uint_gt(p.depth, before);
		ck_assert_uint_le(p.depth, MAXD);
	}
	ck_assert_uint_eq(p.depth, MAXD);
	/* A fresh stream then gets the full window. */
	ept_prefetch_on_fault(&p, 10, &s, &first);
	ept_prefetch_on_fault(&p, 11, &s, &first);
	ck_assert_uint_eq(ept_prefetch_on_fault(&p, 12, &s, &first), MAXD);
	/* Unused ones shrink it, down to one page. */
	for (unsigned i = 0; i < 100; i++) {
		unsigned before = p.depth;

		ept_prefetch_feedback(&p, 0);
		if (before > 1)
			ck_assert_uint_lt(p.depth, before);
		ck_assert_uint_ge(p.depth, 1);
	}
	ck_assert_uint_eq(p.depth, 1);
	/* Never below one page. */
	ept_prefetch_feedback(&p, 0);
	ck_assert_uint_eq(p.depth, 1);
	/* A new stream, far from the old one, gets that one page. */
	memset(p.history, 0, sizeof(p.history));
	p.count = p.next = 0;
	p.last_stride = 0;
	p.last_issued = 0;
	ept_prefetch_on_fault(&p, 5000, &s, &first);
	ept_prefetch_on_fault(&p, 5003, &s, &first);
	ck_assert_uint_eq(ept_prefetch_on_fault(&p, 5006, &s, &first), 1);
	ck_assert_uint_eq(first, 5009);

	/* Small maxima: the depth starts at one page. */
	ept_prefetch_init(&p, 2);
	ck_assert_uint_eq(p.depth, 1);
	ept_prefetch_feedback(&p, 1);
	ept_prefetch_feedback(&p, 1);
	ck_assert_uint_eq(p.depth, 2);
}
END_TEST

START_TEST(depth_zero_disables)
{
	struct ept_prefetch p;
	int64_t s;
	uint64_t first;

	ept_prefetch_init(&p, 0);
	for (uint64_t page = 0; page < 100; page++)
		ck_assert_uint_eq(ept_prefetch_on_fault(&p, page, &s, &first), 0);
}
END_TEST

static Suite *prefetch_suite(void)
{
	Suite *s = suite_create("ept_prefetch");
	TCase *tc = tcase_create("prefetch");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, detects_plus_one);
	tcase_add_test(tc, detects_plus_three);
	tcase_add_test(tc, detects_minus_two);
	tcase_add_test(tc, random_faults_prefetch_nothing);
	tcase_add_test(tc, majority_tolerates_outlier);
	tcase_add_test(tc, stream_resumes_after_far_fault);
	tcase_add_test(tc, continuation_does_not_reissue);
	tcase_add_test(tc, continuation_engine_view);
	tcase_add_test(tc, depth_feedback);
	tcase_add_test(tc, depth_zero_disables);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(prefetch_suite());
	int failed;

	log_init("test_ept_prefetch", LOG_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

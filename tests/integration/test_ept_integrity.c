/*
 * Integrity of the virtual cache (ept/) over real memserver daemons (loopback
 * TCP) with real userfaultfd, driven by the verifying workload of
 * ept_harness.h: 16 runs over two servers (one extent each) crossing uniform
 * and zipf access, FIFO and CLOCK, prefetch on and off, and random completion
 * delays. Every read is verified, the engine's frame count never exceeds the
 * cache, and after flush, stop and destroy every page on the servers matches
 * what was written.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/log.h"
#include "ept/ept.h"
#include "tests/integration/ept_harness.h"

/* ---- integrity and write-back ------------------------------------------- */

/*
 * Case i: bit 0 zipf, bit 1 clock (else fifo), bit 2 prefetch, bit 3 random
 * completion delays. Two servers, one extent each; region 8x the cache; four
 * threads, half writes. Every read is verified; then flush, stop, destroy,
 * and every page on the servers must match the shadow.
 */
START_TEST(integrity)
{
	bool zipf = _i & 1, clock = _i & 2, prefetch = _i & 4, delay = _i & 8;
	struct ept_config cfg = { .cache_size = 256 * PAGE, .policy = clock ? "clock" : "fifo",
				  .prefetch = prefetch, .test_delay_us = delay ? 400 : 0 };
	struct rig r;
	struct wl w;
	struct sampler smp;
	struct ept_stats st;

	eh_start_servers(2);
	eh_rig_regions(&r, 2048, 2, false);
	eh_rig_start(&r, &cfg);
	eh_wl_init(&w, r.e, 4, 50, zipf, delay ? 1500 : 4000);
	eh_sampler_start(&smp, r.e, false);
	eh_wl_run(&w);
	eh_sampler_stop(&smp);
	eh_assert_no_mismatch(&w, "integrity run");
	ck_assert_msg(smp.max_resident <= smp.cap,
		      "engine held %llu frames, capacity %llu (the documented bound is 0 extra "
		      "pages: frames include every page held)",
		      (unsigned long long)smp.max_resident, (unsigned long long)smp.cap);
	ck_assert_int_eq(eh_flush_w(r.e), 0);
	eh_stats(r.e, &st);
	ck_assert_ptr_null(ept_error(r.e));
	ck_assert_uint_gt(st.faults_missing, 0);
	ck_assert_uint_gt(st.evictions, 0);
	ck_assert_uint_gt(st.pages_written_back, 0);
	ck_assert_uint_gt(st.faults_remote, 0);
	ck_assert_uint_le(st.resident_peak, st.capacity_pages);
	if (!prefetch)
		ck_assert_uint_eq(st.prefetched, 0);
	eh_rig_stop(&r);
	eh_assert_servers_match(&r, w.shadow, ~0u);
	eh_wl_free(&w);
	eh_stop_servers();
}
END_TEST

static Suite *ept_suite(void)
{
	Suite *s = suite_create("ept_integrity");
	TCase *tc;

	tc = tcase_create("integrity");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, integrity, 0, 16);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ept_suite());
	int failed;

	/* Errors the engine logs stay visible. */
	log_init("test_ept_integrity", LOG_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

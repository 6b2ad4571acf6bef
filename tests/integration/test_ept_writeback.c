/*
 * Write-back and residency of the virtual cache (ept/) over real memserver
 * daemons with real userfaultfd: the region's Rss from smaps and the engine's
 * frame count never exceed the cache, clean pages are never written back,
 * never-written pages cost no server read (and zeros written into them no
 * write), flush makes the servers hold what the region holds (zeros too), drop
 * leaves nothing resident even with prefetches in flight, and a second engine
 * over the same regions reads what the first wrote.
 */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "common/log.h"
#include "common/util.h"
#include "ept/ept.h"
#include "memserver/client.h"
#include "tests/integration/ept_harness.h"
#include "tests/integration/harness.h"

/* ---- residency ---------------------------------------------------------- */

/*
 * The region's resident set, as the kernel counts it (Rss of its mapping in
 * /proc/self/smaps) and as the engine counts it (frames in use), never exceeds
 * the cache. A 2 MiB region has one page table when the kernel aligns it (as
 * 6.7+ does for 2 MiB anonymous mappings): the smaps walk then holds that
 * table's lock throughout and is an exact snapshot.
 */
START_TEST(residency)
{
	struct ept_config cfg = { .cache_size = 64 * PAGE, .policy = _i ? "clock" : "fifo",
				  .prefetch = true };
	struct rig r;
	struct wl w;
	struct sampler smp;

	eh_start_servers(1);
	eh_rig_regions(&r, 512, 1, false);
	eh_rig_start(&r, &cfg);
	eh_wl_init(&w, r.e, 4, 50, false, 3000);
	eh_sampler_start(&smp, r.e, true);
	eh_wl_run(&w);
	eh_sampler_stop(&smp);
	eh_assert_no_mismatch(&w, "residency run");
	ck_assert_msg(!smp.vma_missing && smp.vma_len == 512 * PAGE,
		      "no mapping of %u bytes starts at the region's base in smaps",
		      512 * PAGE);
	ck_assert_uint_gt(smp.samples, 3);
	ck_assert_msg(smp.max_rss_pages <= smp.cap,
		      "the region's Rss reached %llu pages with a cache of %llu (the documented "
		      "bound is 0 extra pages: frames include every page held; base %p, %s)",
		      (unsigned long long)smp.max_rss_pages, (unsigned long long)smp.cap,
		      ept_base(r.e),
		      (uintptr_t)ept_base(r.e) % (2u << 20) ? "not 2 MiB aligned" : "2 MiB aligned");
	ck_assert_msg(smp.max_resident <= smp.cap,
		      "the engine held %llu frames with a cache of %llu (the documented bound is "
		      "0 extra pages: frames include every page held)",
		      (unsigned long long)smp.max_resident, (unsigned long long)smp.cap);
	eh_rig_stop(&r);
	eh_wl_free(&w);
	eh_stop_servers();
}
END_TEST

/* ---- clean pages -------------------------------------------------------- */

/*
 * Pages written back and evicted, then only read, are never written back
 * again: not when evicted by the read pass, not by a second drop.
 */
START_TEST(read_only_pass_writes_nothing)
{
	struct ept_config cfg = { .cache_size = 128 * PAGE, .policy = _i ? "clock" : "fifo" };
	struct ept_stats s1, s2, s3;
	struct rig r;
	struct wl w;

	eh_start_servers(1);
	eh_rig_regions(&r, 1024, 1, false);
	eh_rig_start(&r, &cfg);
	eh_wl_init(&w, r.e, 4, 100, false, -1);
	w.sweep = true; /* every page written once */
	eh_wl_run(&w);
	ck_assert_int_eq(eh_drop_w(r.e), 0);
	eh_stats(r.e, &s1);
	ck_assert_uint_eq(s1.resident, 0);
	ck_assert_uint_ge(s1.pages_written_back, 1024);

	/* Read everything back (twice the cache, so the pass evicts). */
	w.write_pct = 0;
	eh_wl_run(&w);
	eh_assert_no_mismatch(&w, "read pass");
	eh_stats(r.e, &s2);
	ck_assert_uint_ge(s2.pages_fetched, 1024);
	ck_assert_msg(s2.pages_written_back == s1.pages_written_back,
		      "a read-only pass wrote back %llu pages",
		      (unsigned long long)(s2.pages_written_back - s1.pages_written_back));
	ck_assert_uint_gt(s2.skipped_clean, s1.skipped_clean);

	ck_assert_int_eq(eh_drop_w(r.e), 0);
	eh_stats(r.e, &s3);
	ck_assert_msg(s3.pages_written_back == s1.pages_written_back,
		      "dropping clean pages wrote back %llu pages",
		      (unsigned long long)(s3.pages_written_back - s1.pages_written_back));
	ck_assert_uint_gt(s3.skipped_clean, s2.skipped_clean);
	ck_assert_uint_eq(s3.resident, 0);
	eh_rig_stop(&r);
	eh_assert_servers_match(&r, w.shadow, ~0u);
	eh_wl_free(&w);
	eh_stop_servers();
}
END_TEST

/* ---- zero pages --------------------------------------------------------- */

static uint64_t server_op_count(const char *url, unsigned op)
{
	struct ms_client *c = client_connect(url, NULL);
	struct ms_stat s;

	ck_assert_int_eq(ms_client_stat(c, &s), 0);
	ms_client_close(c);
	return s.ops[op].count;
}

/*
 * Never-written pages are zero-filled locally: touching 10000 of them sends no
 * READ to the server; writing zeros into them sends no WRITE.
 */
START_TEST(zero_pages_cost_no_round_trip)
{
	struct ept_config cfg = { .cache_size = 1024 * PAGE, .policy = "clock",
				  .prefetch = false };
	uint64_t reads0, writes0, n = 10000;
	struct ept_stats st;
	struct rig r;
	uint8_t *base;

	eh_start_servers(1);
	eh_rig_regions(&r, 12000, 1, false);
	eh_rig_start(&r, &cfg);
	base = ept_base(r.e);
	reads0 = server_op_count(eh_da.url, MS_OP_READ);
	writes0 = server_op_count(eh_da.url, MS_OP_WRITE);
	for (uint64_t p = 0; p < n; p++)
		if (eh_check_page(base + p * PAGE, p, 0) >= 0)
			ck_abort_msg("never-written page %llu is not zeros", (unsigned long long)p);
	eh_stats(r.e, &st);
	ck_assert_uint_eq(server_op_count(eh_da.url, MS_OP_READ), reads0);
	ck_assert_uint_eq(st.faults_zero_fill, n);
	ck_assert_uint_eq(st.faults_remote, 0);
	ck_assert_uint_eq(st.pages_fetched, 0);
	ck_assert_uint_gt(st.evictions, 0); /* 10000 pages through a 1024-page cache */

	/* Zeros written into zero pages: nothing to send, even when evicted. */
	for (uint64_t p = 0; p < 2000; p++)
		memset(base + p * PAGE, 0, PAGE);
	ck_assert_int_eq(eh_drop_w(r.e), 0);
	eh_stats(r.e, &st);
	ck_assert_uint_eq(st.pages_written_back, 0);
	ck_assert_uint_eq(server_op_count(eh_da.url, MS_OP_WRITE), writes0);
	ck_assert_uint_eq(server_op_count(eh_da.url, MS_OP_READ), reads0);
	eh_rig_stop(&r);
	eh_stop_servers();
}
END_TEST

/* ---- flush and drop contracts ------------------------------------------- */

/*
 * ept_flush "waits for the servers to have them all": a page written back
 * once and then zeroed must read as zeros from the server after a flush, or a
 * restarted or migrated VMM (which starts from the servers) sees stale data.
 */
START_TEST(flush_sends_zeroed_page)
{
	struct ept_config cfg = { .cache_size = 64 * PAGE, .policy = "clock" };
	struct ept_stats st;
	struct rig r;
	uint8_t *base;
	uint32_t *shadow;

	eh_start_servers(1);
	eh_rig_regions(&r, 256, 1, false);
	shadow = calloc(256, sizeof(*shadow));
	ck_assert_ptr_nonnull(shadow);
	eh_rig_start(&r, &cfg);
	base = ept_base(r.e);
	eh_fill_page(base + 5 * PAGE, 5, 1);
	eh_fill_page(base + 6 * PAGE, 6, 1);
	ck_assert_int_eq(eh_flush_w(r.e), 0);
	/* The servers hold version 1 of pages 5 and 6; now page 5 is zeroed. */
	memset(base + 5 * PAGE, 0, PAGE);
	shadow[6] = 1;
	ck_assert_int_eq(eh_flush_w(r.e), 0);
	eh_stats(r.e, &st);
	ck_assert_ptr_null(ept_error(r.e));
	/* Within the engine the zeros are kept (read back after a drop). */
	ck_assert_int_eq(eh_drop_w(r.e), 0);
	ck_assert_int_eq(eh_check_page(base + 5 * PAGE, 5, 0), -1);
	ck_assert_int_eq(eh_check_page(base + 6 * PAGE, 6, 1), -1);
	eh_rig_stop(&r);
	{
		char first[400] = "";
		uint64_t bad = eh_server_mismatches(&r, 0, shadow, first, sizeof(first));

		ck_assert_msg(bad == 0,
			      "after ept_flush the server does not hold what the region holds "
			      "(skipped_zero %llu): %s",
			      (unsigned long long)st.skipped_zero, first);
	}
	free(shadow);
	eh_stop_servers();
}
END_TEST

/* Waits (bounded) until every thread of pid is stopped (state T). */
static void wait_stopped(pid_t pid)
{
	char path[64];
	uint64_t deadline = now_ns() + 10000000000ull;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	for (;;) {
		DIR *d = opendir(path);
		struct dirent *de;
		bool all = d != NULL;

		while (d && (de = readdir(d))) {
			char stat[400], line[512];
			FILE *f;

			if (de->d_name[0] == '.')
				continue;
			snprintf(stat, sizeof(stat), "%s/%s/stat", path, de->d_name);
			f = fopen(stat, "r");
			if (f && fgets(line, sizeof(line), f)) {
				char *rp = strrchr(line, ')');

				if (!rp || rp[2] != 'T')
					all = false;
			}
			if (f)
				fclose(f);
		}
		if (d)
			closedir(d);
		if (all)
			return;
		ck_assert_msg(now_ns() < deadline, "memserver %d did not stop", (int)pid);
		eh_sleep_us(1000);
	}
}

/*
 * ept_drop leaves "nothing resident", even when prefetches are in flight: the
 * server is stopped (SIGSTOP) so that the prefetch of written pages, started
 * by a stream of faults on never-written pages, is still out during the drop.
 * (Faults on written pages would wait for the stopped server: none is made.)
 */
static int drop_thread_ret;

static void *drop_thread(void *arg)
{
	drop_thread_ret = eh_drop_w(arg);
	return NULL;
}

START_TEST(drop_leaves_nothing_resident)
{
	struct ept_config cfg = { .cache_size = 64 * PAGE, .policy = "clock", .prefetch = true };
	struct ept_stats s0, s1, s2;
	struct rig r;
	uint8_t *base;
	uint64_t deadline;

	eh_start_servers(1);
	if (over_rdma()) {
		/* It holds prefetches in flight by stopping the server, whose CPU
		 * one-sided reads never need. */
		fprintf(stderr, "drop_leaves_nothing_resident: skipped over rdma://\n");
		return;
	}
	eh_rig_regions(&r, 512, 1, false);
	eh_rig_start(&r, &cfg);
	base = ept_base(r.e);
	/* Written in a shuffled order: no stream, so no prefetch yet (and no
	 * prefetched page evicted unused, which would shrink the depth). */
	{
		uint64_t order[60], seed = 77;

		for (unsigned i = 0; i < 60; i++)
			order[i] = 40 + i;
		for (unsigned i = 59; i > 0; i--) {
			unsigned j = (unsigned)(eh_xs(&seed) % (i + 1));
			uint64_t t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		for (unsigned i = 0; i < 60; i++)
			eh_fill_page(base + order[i] * PAGE, order[i], 1);
	}
	ck_assert_int_eq(eh_drop_w(r.e), 0);

	/* Only never-written pages are touched while the server is stopped
	 * (they never wait for it); the stream over them runs into the written
	 * pages, whose prefetches stay in flight. */
	ck_assert_int_eq(kill(eh_da.pid, SIGSTOP), 0);
	wait_stopped(eh_da.pid);
	for (uint64_t p = 30; p < 40; p++)
		ck_assert_int_eq(eh_check_page(base + p * PAGE, p, 0), -1);
	eh_stats(r.e, &s0);
	/* The drop waits for the prefetches in flight: let the server go on
	 * while it waits. */
	{
		pthread_t t;
		int ret;

		ck_assert_int_eq(pthread_create(&t, NULL, drop_thread, r.e), 0);
		eh_sleep_us(200000);
		ck_assert_int_eq(kill(eh_da.pid, SIGCONT), 0);
		pthread_join(t, NULL);
		ret = drop_thread_ret;
		ck_assert_int_eq(ret, 0);
	}
	eh_stats(r.e, &s1);
	deadline = now_ns() + 10000000000ull;
	do {
		eh_sleep_us(5000);
		eh_stats(r.e, &s2);
	} while (s2.pages_fetched == s0.pages_fetched && now_ns() < deadline);
	eh_sleep_us(20000);
	eh_stats(r.e, &s2);
	ck_assert_msg(s0.prefetched > 0 && s2.pages_fetched > s0.pages_fetched,
		      "no prefetch was in flight during the drop (prefetched %llu, fetched %llu)",
		      (unsigned long long)s0.prefetched, (unsigned long long)s2.pages_fetched);
	ck_assert_msg(s1.resident == 0 && s2.resident == 0,
		      "after ept_drop %llu frames were held (prefetches in flight), %llu once they "
		      "completed: ept_drop must wait for fetches in flight and evict them too",
		      (unsigned long long)s1.resident, (unsigned long long)s2.resident);
	/* Whatever is resident is right. */
	for (uint64_t p = 40; p < 100; p++)
		ck_assert_int_eq(eh_check_page(base + p * PAGE, p, 1), -1);
	eh_rig_stop(&r);
	eh_stop_servers();
}
END_TEST

/*
 * A second engine over the same regions (a restarted or migrated VMM, which
 * "starts with a cold cache and faults pages in from the memory servers")
 * must see what the first one wrote and flushed.
 */
START_TEST(reopen_sees_written_pages)
{
	struct ept_config cfg = { .cache_size = 64 * PAGE, .policy = "clock" };
	struct rig r;
	uint8_t *base;
	uint64_t bad = 0, first_bad = 0;

	eh_start_servers(2);
	eh_rig_regions(&r, 256, 2, false);
	eh_rig_start(&r, &cfg);
	base = ept_base(r.e);
	for (uint64_t p = 0; p < 256; p += 3)
		eh_fill_page(base + p * PAGE, p, 1);
	ck_assert_int_eq(eh_flush_w(r.e), 0);
	eh_rig_stop(&r);
	/* The servers hold it... */
	{
		uint32_t shadow[256] = { 0 };

		for (uint64_t p = 0; p < 256; p += 3)
			shadow[p] = 1;
		eh_assert_servers_match(&r, shadow, ~0u);
	}
	/* ...and a new engine must show it. */
	eh_rig_start(&r, &cfg);
	base = ept_base(r.e);
	for (uint64_t p = 0; p < 256; p++)
		if (eh_check_page(base + p * PAGE, p, p % 3 == 0 ? 1 : 0) >= 0 && !bad++)
			first_bad = p;
	eh_rig_stop(&r);
	ck_assert_msg(bad == 0,
		      "a new engine over regions holding data reads %llu of 86 written pages "
		      "wrong (first: page %llu): it starts believing no page was ever written "
		      "(the remote bitmap starts empty and ept_config cannot say otherwise), so "
		      "it zero-fills them without asking the servers",
		      (unsigned long long)bad, (unsigned long long)first_bad);
	eh_stop_servers();
}
END_TEST

static Suite *ept_suite(void)
{
	Suite *s = suite_create("ept_writeback");
	TCase *tc;

	tc = tcase_create("residency");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, residency, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("clean");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, read_only_pass_writes_nothing, 0, 2);
	tcase_add_test(tc, zero_pages_cost_no_round_trip);
	tcase_add_test(tc, flush_sends_zeroed_page);
	tcase_add_test(tc, drop_leaves_nothing_resident);
	tcase_add_test(tc, reopen_sees_written_pages);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ept_suite());
	int failed;

	/* Errors the engine logs stay visible. */
	log_init("test_ept_writeback", LOG_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/*
 * Lifecycle of the virtual cache (ept/): a clean shutdown (stop flag, join,
 * ept_stop, ept_destroy) with faults in flight, with no hang and no leak; and
 * ept_create's errors (sizes, policy, extents that do not tile the region,
 * regions, tokens, servers), each leaving no file descriptor open, and
 * commands before ept_start refused rather than hung.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ept/ept.h"
#include "tests/integration/ept_harness.h"

/* ---- shutdown ----------------------------------------------------------- */

/*
 * Threads running with faults in flight (completions delayed), a stop flag,
 * join, ept_stop, ept_destroy: no hang (Check's timeout), no leak (SAN=1).
 */
START_TEST(clean_shutdown_with_faults_in_flight)
{
	struct ept_config cfg = { .cache_size = 128 * PAGE, .policy = _i ? "clock" : "fifo",
				  .prefetch = true, .test_delay_us = 3000 };
	struct ept_stats st;
	struct rig r;
	struct wl w;
	struct wl_run run;
	uint64_t deadline;

	eh_start_servers(2);
	eh_rig_regions(&r, 2048, 2, false);
	eh_rig_start(&r, &cfg);
	eh_wl_init(&w, r.e, 4, 50, false, -1);
	eh_wl_start(&w, &run);
	deadline = now_ns() + 20000000000ull;
	while (atomic_load(&w.progress) < 3000 && now_ns() < deadline)
		eh_sleep_us(1000);
	eh_stats(r.e, &st);
	atomic_store(&w.stop, true);
	eh_wl_join(&w, &run);
	eh_assert_no_mismatch(&w, "run before shutdown");
	ck_assert_uint_gt(st.faults_missing, 0);
	eh_rig_stop(&r);
	eh_wl_free(&w);
	eh_stop_servers();
}
END_TEST

/* ---- ept_create errors -------------------------------------------------- */

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int try_create(const struct ept_config *cfg)
{
	struct ept *e = NULL;
	int ret = ept_create(cfg, &e);

	if (ret == 0)
		ept_destroy(e);
	return ret;
}

START_TEST(create_errors)
{
	struct rig r;
	struct ept_extent ext[3];
	struct ept_config good, cfg;
	unsigned fds;
	int lfd;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t salen = sizeof(sa);
	char refused[64];

	eh_start_servers(1);
	eh_rig_regions(&r, 1024, 1, false);
	good = (struct ept_config){ .mem_size = 1024 * PAGE, .cache_size = 64 * PAGE,
				    .extents = r.ext, .nextents = 1 };
	/* The good configuration works (and closes what it opened). */
	ck_assert_int_eq(try_create(&good), 0);
	fds = open_fds();

#define EXPECT(errno_, ...)                                                            \
	do {                                                                           \
		cfg = good;                                                            \
		__VA_ARGS__;                                                           \
		int ret_ = try_create(&cfg);                                           \
		ck_assert_msg(ret_ == (errno_), "%s: got %d (%s), expected %d", #__VA_ARGS__, \
			      ret_, strerror(-ret_), (errno_));                        \
		ck_assert_uint_eq(open_fds(), fds);                                    \
	} while (0)

	/* Sizes. */
	EXPECT(-EINVAL, cfg.mem_size = 0);
	EXPECT(-EINVAL, cfg.mem_size = 1024 * PAGE + 1);
	EXPECT(-EINVAL, cfg.cache_size = 64 * PAGE + 512);
	EXPECT(-EINVAL, cfg.cache_size = 63 * PAGE);
	EXPECT(-EINVAL, cfg.cache_size = 0);
	/* Policy. */
	EXPECT(-EINVAL, cfg.policy = "lru");
	EXPECT(-EINVAL, cfg.policy = "");
	EXPECT(0, cfg.policy = "fifo");
	EXPECT(0, cfg.policy = "clock");
	/* Extents that do not tile [0, mem_size). */
	EXPECT(-EINVAL, cfg.nextents = 0);
	EXPECT(-EINVAL, cfg.extents = NULL);
	EXPECT(-EINVAL, cfg.mem_size = 2048 * PAGE);	/* covers half */
	EXPECT(-EINVAL, cfg.mem_size = 512 * PAGE);	/* covers more */
	ext[0] = r.ext[0];
	ext[0].npages = 512;
	ext[1] = r.ext[0];
	ext[1].first_page = 513;			/* a gap */
	ext[1].npages = 511;
	EXPECT(-EINVAL, cfg.extents = ext; cfg.nextents = 2);
	ext[1].first_page = 500;			/* an overlap */
	ext[1].npages = 524;
	EXPECT(-EINVAL, cfg.extents = ext; cfg.nextents = 2);
	ext[1].first_page = 512;			/* exact: fine, in any order */
	ext[1].npages = 512;
	ext[1].replicas[0].region_page = 512;
	ext[2] = ext[0];
	EXPECT(0, cfg.extents = &ext[1]; cfg.nextents = 2);
	ext[0].npages = 0;
	EXPECT(-EINVAL, cfg.extents = ext; cfg.nextents = 2);
	ext[0] = ext[2];
	ext[0].nreplicas = 0;
	EXPECT(-EINVAL, cfg.extents = ext; cfg.nextents = 2);
	ext[0].nreplicas = EPT_MAX_REPLICAS + 1;
	EXPECT(-EINVAL, cfg.extents = ext; cfg.nextents = 2);
	ext[0] = ext[2];
	/* The region is too small for the extent. */
	ext[1].replicas[0].region_page = 513;
	EXPECT(-EINVAL, cfg.extents = ext; cfg.nextents = 2);
	ext[1].replicas[0].region_page = 512;
	/* A wrong token, an unknown region. */
	ext[0].replicas[0].token[0] ^= 1;
	EXPECT(-EACCES, cfg.extents = ext; cfg.nextents = 2);
	ext[0] = ext[2];
	ext[0].replicas[0].region = 999;
	EXPECT(-ENOENT, cfg.extents = ext; cfg.nextents = 2);
	ext[0] = ext[2];
	/* Servers: a bad URL, one nobody listens on (a bound socket that does
	 * not listen), a second server that fails after the first connected. */
	ext[0].replicas[0].url = "bogus://127.0.0.1:1";
	EXPECT(-EINVAL, cfg.extents = ext; cfg.nextents = 2);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);
	snprintf(refused, sizeof(refused), "tcp://127.0.0.1:%u", ntohs(sa.sin_port));
	fds = open_fds();
	ext[0].replicas[0].url = refused;
	EXPECT(-ECONNREFUSED, cfg.extents = ext; cfg.nextents = 2);
	ext[0] = ext[2];
	ext[1].replicas[0].url = refused;
	EXPECT(-ECONNREFUSED, cfg.extents = ext; cfg.nextents = 2);
	ext[1].replicas[0].url = r.ext[0].replicas[0].url;
	/* A second replica on an unreachable server fails the create too. */
	ext[0].nreplicas = 2;
	ext[0].replicas[1] = ext[0].replicas[0];
	ext[0].replicas[1].url = refused;
	EXPECT(-ECONNREFUSED, cfg.extents = ext; cfg.nextents = 2);
#undef EXPECT
	close(lfd);

	/* Commands before start are refused, not hung. */
	{
		struct ept *e;
		struct ept_stats st;

		ck_assert_int_eq(ept_create(&good, &e), 0);
		ck_assert_int_eq(ept_flush(e), -EINVAL);
		ck_assert_int_eq(ept_drop(e), -EINVAL);
		ept_get_stats(e, &st);
		ck_assert_uint_eq(st.capacity_pages, 64);
		ck_assert_uint_eq(st.resident, 0);
		ept_stop(e);
		ept_destroy(e);
	}
	eh_stop_servers();
}
END_TEST

static Suite *ept_suite(void)
{
	Suite *s = suite_create("ept_lifecycle");
	TCase *tc;

	tc = tcase_create("lifecycle");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, clean_shutdown_with_faults_in_flight, 0, 2);
	tcase_add_test(tc, create_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ept_suite());
	int failed;

	/* The failure cases log errors on purpose; keep them visible. */
	log_init("test_ept_lifecycle", LOG_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

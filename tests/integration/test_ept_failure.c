/*
 * Server failures under the virtual cache (ept/): reads survive the loss of
 * one replica and writes go on to the survivor, which ends up holding
 * everything; the loss of the only replica is fatal and reported through
 * on_fatal, naming the server and a page, with no wrong read before it (the
 * engine runs in a forked child, reaped with a timeout).
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ept/ept.h"
#include "tests/integration/ept_harness.h"

/* ---- replicas and failures ---------------------------------------------- */

/*
 * One extent replicated on two servers. Written and flushed, dropped, then the
 * first replica's server is SIGKILLed: a read-only pass is served from the
 * other replica with the right data and no fatal error; then, degraded,
 * writes go on to the surviving replica, which ends up holding everything.
 */
START_TEST(replica_survives_server_loss)
{
	struct ept_config cfg = { .cache_size = 128 * PAGE, .policy = "clock", .prefetch = _i };
	struct ept_stats st;
	struct rig r;
	struct wl w;

	eh_start_servers(2);
	eh_rig_regions(&r, 1024, 2, true);
	eh_rig_start(&r, &cfg);
	eh_wl_init(&w, r.e, 4, 100, false, -1);
	w.sweep = true;
	eh_wl_run(&w); /* every page version 1 */
	w.sweep = false;
	w.write_pct = 50;
	w.ops = 1000;
	eh_wl_run(&w);
	eh_assert_no_mismatch(&w, "write phase");
	ck_assert_int_eq(eh_flush_w(r.e), 0);
	ck_assert_int_eq(eh_drop_w(r.e), 0);

	eh_daemon_kill(&eh_da);
	w.write_pct = 0;
	w.sweep = true;
	w.ops = -1;
	eh_wl_run(&w);
	eh_assert_no_mismatch(&w, "read pass after losing a replica");
	w.sweep = false;
	w.ops = 2000;
	eh_wl_run(&w);
	eh_assert_no_mismatch(&w, "random reads after losing a replica");
	eh_stats(r.e, &st);
	ck_assert_msg(ept_error(r.e) == NULL, "engine failed: %s", ept_error(r.e));
	ck_assert_uint_ge(st.pages_fetched, 1024);
	ck_assert_uint_eq(st.servers_failed, 1);
	/* Degraded: writes go on to the surviving replica. */
	w.write_pct = 50;
	w.ops = 2000;
	eh_wl_run(&w);
	eh_assert_no_mismatch(&w, "mixed run on one replica");
	ck_assert_int_eq(eh_flush_w(r.e), 0);
	ck_assert_msg(ept_error(r.e) == NULL, "engine failed: %s", ept_error(r.e));
	eh_rig_stop(&r);
	eh_assert_servers_match(&r, w.shadow, 1);
	eh_wl_free(&w);
	eh_stop_servers();
}
END_TEST

/* Shared with the forked child that runs the engine. */
struct fatal_box {
	long progress;
	long mismatches;
	long mismatches_at_fatal;
	int fatal_calls;
	char msg[600];
};

static struct fatal_box *box;

static void child_on_fatal(void *ctx, const char *message)
{
	(void)ctx;
	box->mismatches_at_fatal = __atomic_load_n(&box->mismatches, __ATOMIC_SEQ_CST);
	box->fatal_calls++;
	snprintf(box->msg, sizeof(box->msg), "%s", message);
	_exit(3);
}

/* The child: engine plus four endless workers; only on_fatal ends it. */
static void __attribute__((noreturn)) fatal_child(struct rig *r)
{
	struct ept_config cfg = { .mem_size = r->npages * PAGE, .cache_size = 128 * PAGE,
				  .extents = r->ext, .nextents = r->next, .policy = "clock",
				  .prefetch = true, .timeout_ms = 2000,
				  .on_fatal = child_on_fatal };
	static struct wl w;
	struct wl_run run;
	struct ept *e;

	if (ept_create(&cfg, &e) || ept_start(e))
		_exit(10);
	eh_wl_init(&w, e, 4, 50, false, -1);
	w.shared_mismatches = &box->mismatches;
	w.shared_progress = &box->progress;
	eh_wl_start(&w, &run);
	for (int i = 0; i < 600; i++)
		eh_sleep_us(100000);
	_exit(11); /* no fatal within a minute */
}

/*
 * The only replica's server is SIGKILLed mid-run: the engine calls on_fatal
 * with a message naming the server and a page, and no reader ever saw wrong
 * data. The engine runs in a forked child (its workers stay blocked by
 * design) that exits from on_fatal; the test reaps it with a timeout.
 */
START_TEST(server_loss_is_fatal)
{
	struct rig r;
	pid_t pid;
	int status = 0;
	uint64_t deadline;

	box = mmap(NULL, sizeof(*box), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(box, MAP_FAILED);
	memset(box, 0, sizeof(*box));
	eh_start_servers(1);
	eh_rig_regions(&r, 2048, 1, false);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		fatal_child(&r);
	/* Let it run for a while. */
	deadline = now_ns() + 30000000000ull;
	while (__atomic_load_n(&box->progress, __ATOMIC_RELAXED) < 4000 && now_ns() < deadline &&
	       waitpid(pid, &status, WNOHANG) == 0)
		eh_sleep_us(2000);
	ck_assert_msg(__atomic_load_n(&box->progress, __ATOMIC_RELAXED) >= 4000,
		      "the child made no progress (status 0x%x)", status);
	eh_daemon_kill(&eh_da);
	/* Reap the child with a bound: a hang fails, it does not block. */
	deadline = now_ns() + 30000000000ull;
	for (;;) {
		pid_t got = waitpid(pid, &status, WNOHANG);

		if (got == pid)
			break;
		if (now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			ck_abort_msg("the engine did not report the lost server within 30 s");
		}
		eh_sleep_us(5000);
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 3,
		      "child status 0x%x, expected exit 3 from on_fatal", status);
	ck_assert_int_eq(box->fatal_calls, 1);
	ck_assert_msg(strstr(box->msg, eh_da.url) || strstr(box->msg, "tcp://127.0.0.1:"),
		      "fatal message names no server: %s", box->msg);
	ck_assert_msg(strstr(box->msg, "page "), "fatal message names no page: %s", box->msg);
	ck_assert_msg(box->mismatches_at_fatal == 0 && box->mismatches == 0,
		      "%ld wrong reads before the fatal error (%ld in all)", box->mismatches_at_fatal,
		      box->mismatches);
	munmap(box, sizeof(*box));
}
END_TEST

static Suite *ept_suite(void)
{
	Suite *s = suite_create("ept_failure");
	TCase *tc;

	tc = tcase_create("failures");
	tcase_set_timeout(tc, 90);
	tcase_add_loop_test(tc, replica_survives_server_loss, 0, 2);
	tcase_add_test(tc, server_loss_is_fatal);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ept_suite());
	int failed;

	/* The failure cases log errors on purpose; keep them visible. */
	log_init("test_ept_failure", LOG_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

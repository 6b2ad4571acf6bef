/*
 * Integration tests of what a fenced or foreign client can get from the
 * memory server, against the real daemon through the client library: a
 * fenced holder reads nothing (either transport), and over rdma:// (the
 * host tier sets LEGATO_TEST_RDMA_ADDR, see harness.h) no registration for a
 * wrong token and an error completion, never data, for a forged rkey from
 * another connection's protection domain; also the client's busy-polling
 * mode, round trips and a disconnect noticed while spinning.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "memserver/client_impl.h"
#include "tests/integration/harness.h"

#define MiB (1ull << 20)

/*
 * What a fenced holder gets. a writes pages 0..7 of X; c's open fences a;
 * c reads what a wrote, then overwrites page 0. a's READ (the old epoch, the
 * only one it was given) fails with -ESTALE and leaves a's buffer untouched:
 * neither what it wrote nor what c wrote since. Over rdma:// a still holds
 * its old addresses and rkeys, so the READ went to the wire and the server's
 * deregistration failed it (an error completion, which kills a); over TCP
 * the server refused it and a lives on.
 */
START_TEST(fenced_holder_reads_nothing)
{
	enum { N = 8 };
	struct ms_client *a = client_connect(D.url, NULL), *c = client_connect(D.url, NULL);
	uint8_t token[MS_TOKEN_LEN];
	static uint8_t buf[N * MS_PAGE_SIZE];
	uint64_t ea, ec, pages[N];
	struct ms_rdma_remote ra;

	client_create_open(a, 64, MiB, token, &ea);
	for (unsigned i = 0; i < N; i++) {
		pages[i] = i;
		pattern_fill(buf + i * MS_PAGE_SIZE, 64, i);
	}
	ck_assert_int_eq(ms_client_write(a, 64, ea, pages, N, buf), 0);
	ck_assert_int_eq(ms_client_open(c, 64, token, &ec, NULL), 0);
	ck_assert_uint_gt(ec, ea);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(ms_client_read(c, 64, ec, pages, N, buf, NULL), 0);
	for (unsigned i = 0; i < N; i++)
		ck_assert_msg(pattern_check(buf + i * MS_PAGE_SIZE, 64, i),
			      "page %u: not what the fenced holder wrote before the fence", i);
	pattern_fill(buf, 64, 100);
	ck_assert_int_eq(ms_client_write(c, 64, ec, pages, 1, buf), 0);

	if (over_rdma())
		ck_assert_int_eq(ms_client_rdma_debug_remote(a, 64, &ra, NULL), 0);
	memset(buf, 0xcc, sizeof(buf));
	ck_assert_int_eq(ms_client_read(a, 64, ea, pages, N, buf, NULL), -ESTALE);
	for (unsigned i = 0; i < sizeof(buf); i++)
		ck_assert_msg(buf[i] == 0xcc, "the fenced READ wrote byte %u of its buffer", i);
	ck_assert_int_eq(ms_client_ping(a, 0), over_rdma() ? -ENOTCONN : 0);

	ck_assert_int_eq(ms_client_read(c, 64, ec, pages, N, buf, NULL), 0);
	ck_assert(pattern_check(buf, 64, 100));
	for (unsigned i = 1; i < N; i++)
		ck_assert(pattern_check(buf + i * MS_PAGE_SIZE, 64, i));
	ms_client_close(a);
	ms_client_close(c);
}
END_TEST

/*
 * rdma://: a REGION_OPEN with a wrong token hands out no registration. The
 * client remembers nothing (a READ is refused locally: -EBADF), the server
 * registered nothing (a registration pins the whole region: still nothing
 * resident), and the region's holder is not fenced, on another connection or
 * on its own.
 */
START_TEST(rdma_wrong_token_gets_no_rkey)
{
	struct ms_client *a, *b;
	uint8_t token[MS_TOKEN_LEN], bad[MS_TOKEN_LEN], page[MS_PAGE_SIZE];
	uint64_t epoch = 0, e2 = 0, p = 0;
	struct ms_rdma_remote ra, r2;
	static struct ms_stat st;

	if (!over_rdma()) {
		fputs("rdma_wrong_token_gets_no_rkey: rdma:// only (LEGATO_TEST_RDMA_ADDR unset): "
		      "skipped\n", stderr);
		return;
	}
	a = client_connect(D.url, NULL);
	b = client_connect(D.url, NULL);
	ck_assert_int_eq(ms_client_create(a, 65, MiB, token), 0);
	memcpy(bad, token, sizeof(bad));
	bad[MS_TOKEN_LEN - 1] ^= 1;

	ck_assert_int_eq(ms_client_open(a, 65, bad, &epoch, NULL), -EACCES);
	ck_assert_int_eq(ms_client_rdma_debug_remote(a, 65, &ra, NULL), -ENOENT);
	ck_assert_int_eq(ms_client_read(a, 65, epoch, &p, 1, page, NULL), -EBADF);
	ck_assert_int_eq(ms_client_read(a, 65, 1, &p, 1, page, NULL), -EBADF);
	ck_assert_int_eq(ms_client_stat(a, &st), 0);
	ck_assert_uint_eq(st.resident, 0);
	ck_assert_int_eq(ms_client_ping(a, 0), 0);

	/* A holder, then wrong tokens from another connection and its own. */
	ck_assert_int_eq(ms_client_open(a, 65, token, &epoch, NULL), 0);
	ck_assert_int_eq(ms_client_rdma_debug_remote(a, 65, &ra, NULL), 0);
	pattern_fill(page, 65, 0);
	ck_assert_int_eq(ms_client_write(a, 65, epoch, &p, 1, page), 0);
	ck_assert_int_eq(ms_client_open(b, 65, bad, &e2, NULL), -EACCES);
	ck_assert_int_eq(ms_client_rdma_debug_remote(b, 65, &r2, NULL), -ENOENT);
	ck_assert_int_eq(ms_client_open(a, 65, bad, &e2, NULL), -EACCES);
	ck_assert_int_eq(ms_client_rdma_debug_remote(a, 65, &r2, NULL), 0);
	ck_assert_mem_eq(&r2, &ra, sizeof(ra));
	memset(page, 0, sizeof(page));
	ck_assert_int_eq(ms_client_read(a, 65, epoch, &p, 1, page, NULL), 0);
	ck_assert(pattern_check(page, 65, 0));
	ck_assert_int_eq(ms_client_ping(b, 0), 0);
	ms_client_close(a);
	ms_client_close(b);
}
END_TEST

/*
 * rdma://: an rkey is worth nothing outside its connection. a opens X and
 * writes it; b and w open regions of their own and replace what they know of
 * them with a's addresses and rkeys of X. b's READ and w's WRITE reach the
 * server with rkeys of another protection domain: an error completion each
 * (-ESTALE, as for any remote access error), no data into b's buffer, none
 * into X, and both connections dead. a still reads X intact, and a fresh
 * connection works.
 */
START_TEST(rdma_forged_rkey_gets_error_completion)
{
	struct ms_client *a, *b, *w, *f;
	uint8_t tx[MS_TOKEN_LEN], ty[MS_TOKEN_LEN], tz[MS_TOKEN_LEN];
	static uint8_t page[4 * MS_PAGE_SIZE];
	uint64_t ex, ey, ez, pages[4] = { 0, 1, 2, 3 };
	struct ms_rdma_remote rx, ry, rz;

	if (!over_rdma()) {
		fputs("rdma_forged_rkey_gets_error_completion: rdma:// only (LEGATO_TEST_RDMA_ADDR unset): "
		      "skipped\n", stderr);
		return;
	}
	a = client_connect(D.url, NULL);
	b = client_connect(D.url, NULL);
	w = client_connect(D.url, NULL);
	client_create_open(a, 66, MiB, tx, &ex);
	for (unsigned i = 0; i < 4; i++)
		pattern_fill(page + i * MS_PAGE_SIZE, 66, i);
	ck_assert_int_eq(ms_client_write(a, 66, ex, pages, 4, page), 0);
	client_create_open(b, 67, MiB, ty, &ey);
	client_create_open(w, 68, MiB, tz, &ez);
	ck_assert_int_eq(ms_client_rdma_debug_remote(a, 66, &rx, NULL), 0);
	ck_assert_int_eq(ms_client_rdma_debug_remote(b, 67, &ry, &rx), 0);
	ck_assert_int_eq(ms_client_rdma_debug_remote(w, 68, &rz, &rx), 0);
	ck_assert_uint_ne(ry.rkey, rx.rkey); /* else the forgery proves nothing */
	ck_assert_uint_ne(rz.rkey, rx.rkey);

	/* b reads "its" region at X's addresses (one page, then a run). */
	memset(page, 0xcc, sizeof(page));
	ck_assert_int_eq(ms_client_read(b, 67, ey, pages, 1, page, NULL), -ESTALE);
	ck_assert(!pattern_check(page, 66, 0));
	for (unsigned i = 0; i < sizeof(page); i++)
		ck_assert_msg(page[i] == 0xcc, "the forged READ wrote byte %u of its buffer", i);
	ck_assert_int_eq(ms_client_ping(b, 0), -ENOTCONN);
	ck_assert_int_eq(ms_client_read(b, 67, ey, pages, 4, page, NULL), -ENOTCONN);

	/* w writes "its" region at X's addresses. */
	for (unsigned i = 0; i < 4; i++)
		pattern_fill(page + i * MS_PAGE_SIZE, 68, i);
	ck_assert_int_eq(ms_client_write(w, 68, ez, pages, 4, page), -ESTALE);
	ck_assert_int_eq(ms_client_ping(w, 0), -ENOTCONN);

	/* X is intact, its holder alive; others connect and work. */
	memset(page, 0, sizeof(page));
	ck_assert_int_eq(ms_client_read(a, 66, ex, pages, 4, page, NULL), 0);
	for (unsigned i = 0; i < 4; i++)
		ck_assert_msg(pattern_check(page + i * MS_PAGE_SIZE, 66, i),
			      "page %u of X changed", i);
	ck_assert_int_eq(ms_client_ping(a, 0), 0);
	f = client_connect(D.url, NULL);
	ck_assert_int_eq(ms_client_open(f, 67, ty, &ey, NULL), 0);
	ck_assert_int_eq(ms_client_read(f, 67, ey, pages, 4, page, NULL), 0);
	for (unsigned i = 0; i < sizeof(page); i++)
		ck_assert_uint_eq(page[i], 0);
	ck_assert_int_eq(ms_client_open(f, 68, tz, &ez, NULL), 0);
	ck_assert_int_eq(ms_client_read(f, 68, ez, pages, 4, page, NULL), 0);
	for (unsigned i = 0; i < sizeof(page); i++)
		ck_assert_uint_eq(page[i], 0);
	ms_client_close(f);
	ms_client_close(a);
	ms_client_close(b);
	ms_client_close(w);
}
END_TEST

/* Switches c to busy polling; false (after a note) where the transport has no
 * such mode (tcp://), which the caller then tests in its ordinary mode. */
static bool busy_on(struct ms_client *c, const char *test)
{
	int ret = ms_client_set_busy_poll(c, true);

	if (over_rdma()) {
		ck_assert_int_eq(ret, 0);
		return true;
	}
	ck_assert_int_eq(ret, -EOPNOTSUPP);
	fprintf(stderr, "%s: busy polling is rdma:// only: the default mode tested\n", test);
	return false;
}

/*
 * Busy polling: everything works as in the default mode (synchronous calls,
 * control replies, hundreds in flight, an event loop on ms_client_fd), a
 * poll's timeout still ends a spin that finds nothing, and switching back
 * works at any time.
 */
START_TEST(busy_poll_round_trips)
{
	enum { N = 200 };
	struct ms_client *c = client_connect(D.url, NULL);
	uint8_t token[MS_TOKEN_LEN], *buf = malloc((size_t)N * MS_PAGE_SIZE);
	static struct ms_io ios[N], *done[N];
	static uint64_t pages[N];
	struct ms_io slow = { .op = MS_OP_PING, .arg = 300000 }, *d;
	uint64_t epoch, t0;

	ck_assert_ptr_nonnull(buf);
	busy_on(c, "busy_poll_round_trips");
	ck_assert_int_eq(ms_client_ping(c, 0), 0);
	ck_assert_int_eq(ms_client_ping(c, 2000), 0);
	client_create_open(c, 70, 4 * N * MS_PAGE_SIZE, token, &epoch);
	for (unsigned i = 0; i < N; i++) {
		pages[i] = i < N / 2 ? i : 3 * i; /* a run, then scattered */
		pattern_fill(buf + (size_t)i * MS_PAGE_SIZE, 70, pages[i]);
	}
	ck_assert_int_eq(ms_client_write(c, 70, epoch, pages, N, buf), 0);
	memset(buf, 0, (size_t)N * MS_PAGE_SIZE);
	ck_assert_int_eq(ms_client_read(c, 70, epoch, pages, N, buf, NULL), 0);
	for (unsigned i = 0; i < N; i++)
		ck_assert(pattern_check(buf + (size_t)i * MS_PAGE_SIZE, 70, pages[i]));

	/* Hundreds in flight, one page each. */
	memset(buf, 0, (size_t)N * MS_PAGE_SIZE);
	for (unsigned i = 0; i < N; i++) {
		ios[i] = (struct ms_io){ .op = MS_OP_READ, .region = 70, .epoch = epoch,
					 .npages = 1, .pages = &pages[i],
					 .buf = buf + (size_t)i * MS_PAGE_SIZE };
		client_submit(c, &ios[i]);
	}
	client_collect(c, done, N);
	for (unsigned i = 0; i < N; i++) {
		ck_assert_int_eq(done[i]->result, 0);
		ck_assert(pattern_check(buf + (size_t)i * MS_PAGE_SIZE, 70, pages[i]));
	}

	/* A spin that finds nothing ends at the timeout, and not before. */
	client_submit(c, &slow);
	t0 = now_ns();
	ck_assert_int_eq(ms_client_poll(c, &d, 1, 50), 0);
	ck_assert_uint_ge(now_ns() - t0, 49000000);
	client_collect(c, &d, 1);
	ck_assert_ptr_eq(d, &slow);
	ck_assert_int_eq(slow.result, 0);

	/* An event loop: wait on the fd, take what is ready without waiting. */
	for (unsigned i = 0; i < 20; i++) {
		struct pollfd pfd = { .fd = ms_client_fd(c), .events = POLLIN };
		int n = 0;

		ios[0] = (struct ms_io){ .op = MS_OP_READ, .region = 70, .epoch = epoch,
					 .npages = 1, .pages = &pages[i], .buf = buf };
		client_submit(c, &ios[0]);
		ck_assert_int_eq(ms_client_flush(c), 0);
		for (unsigned k = 0; k < 1000 && n == 0; k++) {
			ck_assert_int_ge(poll(&pfd, 1, 10000), 0);
			n = ms_client_poll(c, &d, 1, 0);
		}
		ck_assert_int_eq(n, 1);
		ck_assert_int_eq(d->result, 0);
		ck_assert(pattern_check(buf, 70, pages[i]));
		if (i == 10 && over_rdma()) /* and the same in the default mode */
			ck_assert_int_eq(ms_client_set_busy_poll(c, false), 0);
	}
	ck_assert_int_eq(ms_client_read(c, 70, epoch, pages, 1, buf, NULL), 0);
	ck_assert(pattern_check(buf, 70, pages[0]));
	ms_client_close(c);
	free(buf);
}
END_TEST

/*
 * Busy polling still notices a dead server while it spins on a request the
 * server will never answer: a delayed PING is outstanding (no RDMA in flight,
 * so no error completion will come) when the server is killed; the wait ends
 * with the request failed, long before the poll's timeout. A second daemon,
 * killed on purpose, so the fixture's stays clean.
 */
START_TEST(busy_poll_notices_disconnect)
{
	static const char *const extra[] = { "--log-level", "error", NULL };
	static struct daemon d2;
	struct ms_io ping = { .op = MS_OP_PING, .arg = MS_MAX_PING_DELAY_US }, *d;
	struct ms_client *c;
	uint64_t t0;
	int n;
	DIR *dir;
	struct dirent *e;

	memset(&d2, 0, sizeof(d2));
	daemon_start(&d2, extra);
	c = client_connect(d2.url, NULL);
	busy_on(c, "busy_poll_notices_disconnect");
	ck_assert_int_eq(ms_client_ping(c, 0), 0);
	client_submit(c, &ping);
	ck_assert_int_eq(ms_client_flush(c), 0);
	ck_assert_int_eq(ms_client_poll(c, &d, 1, 100), 0); /* on the server by now */
	ck_assert_int_ne(daemon_signal_wait(&d2, SIGKILL, 10000), -1);
	t0 = now_ns();
	n = ms_client_poll(c, &d, 1, 30000);
	ck_assert_msg(n == 1, "poll returned %d %llu ms after the server died", n,
		      (unsigned long long)((now_ns() - t0) / 1000000));
	ck_assert_ptr_eq(d, &ping);
	ck_assert_msg(ping.result < 0, "PING to a dead server: %d", ping.result);
	ck_assert_msg(now_ns() - t0 < 10000000000ull, "the disconnect took %llu ms to notice",
		      (unsigned long long)((now_ns() - t0) / 1000000));
	ck_assert_int_eq(ms_client_ping(c, 0), -ENOTCONN);
	ms_client_close(c);
	dir = opendir(d2.dir);
	while (dir && (e = readdir(dir))) {
		char path[600];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", d2.dir, e->d_name);
		unlink(path);
	}
	if (dir)
		closedir(dir);
	rmdir(d2.dir);
}
END_TEST

static Suite *protect_suite(void)
{
	Suite *s = suite_create("memserver_protect");
	TCase *tc = tcase_create("protect");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, fixture_start, fixture_stop);
	tcase_add_test(tc, fenced_holder_reads_nothing);
	tcase_add_test(tc, rdma_wrong_token_gets_no_rkey);
	tcase_add_test(tc, rdma_forged_rkey_gets_error_completion);
	tcase_add_test(tc, busy_poll_round_trips);
	tcase_add_test(tc, busy_poll_notices_disconnect);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	log_init("test_ms_protect", LOG_WARN);
	sr = srunner_create(protect_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

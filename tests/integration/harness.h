/*
 * Shared helpers of the integration suites: start the real memserver daemon
 * (posix_spawn, port 0, --ready-file), stop it with SIGTERM and check its exit
 * status, read its resident memory, and talk to it over raw TCP sockets with
 * frames built from memserver/proto.h.
 *
 * Suites start one daemon per test in a checked fixture, which runs inside
 * Check's forked child. The daemon stays in that child's process group, so
 * when a test fails (Check ends the child with _exit, skipping teardown) Check
 * kills the whole group and no daemon outlives its test. A failed test leaves
 * its scratch directory (with memserver.log) under $TMPDIR for inspection.
 *
 * With LEGATO_TEST_RDMA_ADDR=IP in the environment (an address of an RDMA
 * device: the host tier runs the suites so in a test host with Soft-RoCE),
 * every daemon also listens on rdma://IP:0 and D.url, which the suites hand
 * to the client library, is that one; raw sockets still reach the TCP
 * listener (tcp_url).
 */
#ifndef LEGATO_TESTS_INTEGRATION_HARNESS_H
#define LEGATO_TESTS_INTEGRATION_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/auth.h"
#include "memserver/client.h"
#include "memserver/proto.h"

struct daemon {
	pid_t pid;		/* 0 once reaped */
	int status;		/* wait status once reaped */
	char dir[256];		/* scratch directory */
	char url[300];		/* for clients: tcp://127.0.0.1:PORT or rdma://IP:PORT */
	char tcp_url[300];	/* tcp://127.0.0.1:PORT, for raw sockets */
	char log[300];		/* the daemon's stderr */
};

/* The daemon of the running test (started by a suite's fixture). */
extern struct daemon D;

/* True when the daemons' clients go over rdma:// (LEGATO_TEST_RDMA_ADDR). */
bool over_rdma(void);

/*
 * Creates a scratch directory and starts memserver with
 *   --listen tcp://127.0.0.1:0 --ready-file DIR/ready --capacity 1G
 *   --log-level warn EXTRA...
 * (later options override earlier ones), waits a bounded time for the ready
 * file, and fills d. asan_extra, when not NULL, is appended to ASAN_OPTIONS in
 * the daemon's environment. Fails the test on any error.
 */
void daemon_start_env(struct daemon *d, const char *const *extra, const char *asan_extra);
void daemon_start(struct daemon *d, const char *const *extra);

/* Creates the scratch directory only (for files the daemon is given). */
void daemon_prepare(struct daemon *d);

/* Writes len bytes into a file of the scratch directory; returns its path
 * (static storage, valid until the next call). */
const char *daemon_file(struct daemon *d, const char *name, const void *data, size_t len);

/*
 * Sends sig and waits up to timeout_ms for the daemon to exit. Returns its
 * wait status, or -1 when it did not exit in time (it is then SIGKILLed).
 */
int daemon_signal_wait(struct daemon *d, int sig, int timeout_ms);

/* SIGTERM, then asserts a clean exit (status 0) and removes the scratch
 * directory. Safe when the daemon was already reaped. */
void daemon_stop_clean(struct daemon *d);

/* VmRSS of the daemon in KiB. */
long daemon_rss_kib(const struct daemon *d);

/* Standard fixtures: a daemon with --test-hooks, torn down cleanly. */
void fixture_start(void);
void fixture_stop(void);

/* Connects with the client library; fails the test on error. */
struct ms_client *client_connect(const char *url, const struct auth_key *key);

/* Submits io; fails the test on error. */
void client_submit(struct ms_client *c, struct ms_io *io);

/* Polls until n requests completed (20 s each at most); stores them in
 * completion order. Fails the test otherwise. */
void client_collect(struct ms_client *c, struct ms_io **done, unsigned n);

/* Creates region id of size bytes and opens it: token and epoch out. */
void client_create_open(struct ms_client *c, uint64_t id, uint64_t size, uint8_t *token,
			uint64_t *epoch);

/* Fills a page with a pattern derived from (a, b). */
void pattern_fill(void *page, uint64_t a, uint64_t b);
bool pattern_check(const void *page, uint64_t a, uint64_t b);

/* ---- raw sockets ------------------------------------------------------ */

/* Connects a blocking socket with 10 s send/receive timeouts to url, or to
 * D's TCP listener when url is rdma://; fails the test on error. */
int raw_connect(const char *url);

/* Sends exactly len bytes. Returns 0 or -errno. */
int raw_send(int fd, const void *p, size_t len);

/* Sends one frame: a header for blen body bytes, then the body. */
int raw_frame(int fd, uint8_t op, uint64_t id, uint32_t count, const void *body, size_t blen);

/*
 * Receives one reply into *h and body (up to cap bytes; the rest is dropped).
 * Returns 0, -ECONNRESET when the server closed the connection first,
 * -ETIMEDOUT, or -EPROTO for a reply that does not decode.
 */
int raw_reply(int fd, struct ms_hdr *h, uint8_t *body, size_t cap);

/* Sends a frame and returns the reply status (or a negative raw_reply error);
 * checks the reply echoes op and id. */
int raw_call(int fd, uint8_t op, uint32_t count, const void *body, size_t blen);

/* HELLO on an open server; fails the test unless it succeeds. */
void raw_hello(int fd);

/* True when the server closes the connection (EOF or reset) before the
 * receive timeout, ignoring any bytes it still sends. */
bool raw_closed(int fd);

/* Builds READ and WRITE bodies into buf (which must be large enough); pages
 * of a WRITE are filled with pattern (region, page). Returns the body length. */
size_t raw_read_body(uint8_t *buf, uint64_t region, uint64_t epoch, const uint64_t *pages,
		     uint32_t n);
size_t raw_write_body(uint8_t *buf, uint64_t region, uint64_t epoch, const uint64_t *pages,
		      uint32_t n);

/* A fresh client (with key, when not NULL) can still ping the daemon D, and,
 * when token is not NULL, page 0 of region holds pattern (region, 0). */
void assert_daemon_serves(const struct auth_key *key, const uint8_t *token, uint64_t region);

#endif

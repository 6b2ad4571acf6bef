/*
 * Integration-test harness (see harness.h).
 */
#include "tests/integration/harness.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/net.h"
#include "common/url.h"
#include "common/util.h"
#include "common/wire.h"

#ifndef LEGATO_TEST_MEMSERVER
#define LEGATO_TEST_MEMSERVER "build/memserver"
#endif

#define READY_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 20000
#define RAW_TIMEOUT_S 10

extern char **environ;

struct daemon D;

bool over_rdma(void)
{
	const char *a = getenv("LEGATO_TEST_RDMA_ADDR");

	return a && *a;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static const char *memserver_path(void)
{
	const char *p = getenv("LEGATO_MEMSERVER");

	return p && *p ? p : LEGATO_TEST_MEMSERVER;
}

void daemon_prepare(struct daemon *d)
{
	const char *tmp = getenv("TMPDIR");

	if (d->dir[0])
		return;
	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "%s/legato-it-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ck_assert_msg(mkdtemp(d->dir), "mkdtemp: %s", strerror(errno));
	snprintf(d->log, sizeof(d->log), "%s/memserver.log", d->dir);
}

const char *daemon_file(struct daemon *d, const char *name, const void *data, size_t len)
{
	static char path[512];
	int fd;

	daemon_prepare(d);
	snprintf(path, sizeof(path), "%s/%s", d->dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(write_full(fd, data, len), 0);
	close(fd);
	return path;
}

/* The tail of the daemon's log, for failure messages. */
static const char *log_tail(const struct daemon *d)
{
	static char text[1024];
	uint8_t *buf;
	size_t len;

	text[0] = '\0';
	if (read_file(d->log, 1 << 20, &buf, &len) == 0) {
		size_t from = len > sizeof(text) - 1 ? len - (sizeof(text) - 1) : 0;

		memcpy(text, buf + from, len - from);
		text[len - from] = '\0';
		free(buf);
	}
	return text;
}

/* A copy of environ with extra appended to ASAN_OPTIONS. */
static char **env_with_asan(const char *extra)
{
	size_t n = 0;
	char **env;
	bool found = false;

	while (environ[n])
		n++;
	env = calloc(n + 2, sizeof(*env));
	ck_assert_ptr_nonnull(env);
	for (size_t i = 0; i < n; i++) {
		if (extra && strncmp(environ[i], "ASAN_OPTIONS=", 13) == 0) {
			ck_assert_int_ge(asprintf(&env[i], "%s:%s", environ[i], extra), 0);
			found = true;
		} else {
			env[i] = strdup(environ[i]);
		}
	}
	if (extra && !found)
		ck_assert_int_ge(asprintf(&env[n], "ASAN_OPTIONS=%s", extra), 0);
	return env;
}

static void env_free(char **env)
{
	for (size_t i = 0; env[i]; i++)
		free(env[i]);
	free(env);
}

/* Takes the bound URLs from the ready file's len bytes: one line (tcp), or
 * two with rdma (tcp, rdma). Returns false until the file is complete. */
static bool ready_urls(struct daemon *d, const char *buf, size_t len, bool rdma)
{
	const char *nl = memchr(buf, '\n', len), *nl2;
	size_t l1;

	if (!nl || (size_t)(nl - buf) >= sizeof(d->tcp_url))
		return false;
	l1 = (size_t)(nl - buf);
	memcpy(d->tcp_url, buf, l1);
	d->tcp_url[l1] = '\0';
	if (!rdma) {
		memcpy(d->url, d->tcp_url, l1 + 1);
		return true;
	}
	nl2 = memchr(nl + 1, '\n', len - l1 - 1);
	if (!nl2 || (size_t)(nl2 - nl - 1) >= sizeof(d->url))
		return false;
	memcpy(d->url, nl + 1, (size_t)(nl2 - nl - 1));
	d->url[nl2 - nl - 1] = '\0';
	return true;
}

void daemon_start_env(struct daemon *d, const char *const *extra, const char *asan_extra)
{
	char ready[300], listen[] = "tcp://127.0.0.1:0", listen2[300];
	const char *rdma = getenv("LEGATO_TEST_RDMA_ADDR"), *argv[64];
	posix_spawn_file_actions_t fa;
	unsigned argc = 0;
	uint64_t deadline;
	char **env;
	int ret;

	daemon_prepare(d);
	snprintf(ready, sizeof(ready), "%s/ready", d->dir);
	argv[argc++] = memserver_path();
	argv[argc++] = "--listen";
	argv[argc++] = listen;
	if (rdma && *rdma) {
		snprintf(listen2, sizeof(listen2), "rdma://%s:0", rdma);
		argv[argc++] = "--listen";
		argv[argc++] = listen2;
	}
	argv[argc++] = "--ready-file";
	argv[argc++] = ready;
	argv[argc++] = "--capacity";
	argv[argc++] = "1G";
	argv[argc++] = "--log-level";
	argv[argc++] = "warn";
	for (unsigned i = 0; extra && extra[i]; i++) {
		ck_assert_uint_lt(argc, ARRAY_SIZE(argv) - 1);
		argv[argc++] = extra[i];
	}
	argv[argc] = NULL;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, d->log,
					 O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
	env = env_with_asan(asan_extra);
	ret = posix_spawn(&d->pid, argv[0], &fa, NULL, (char *const *)argv, env);
	env_free(env);
	posix_spawn_file_actions_destroy(&fa);
	ck_assert_msg(ret == 0, "posix_spawn %s: %s", argv[0], strerror(ret));

	/* Bounded wait for the ready file; a daemon that dies is reported. */
	deadline = now_ns() + (uint64_t)READY_TIMEOUT_MS * 1000000;
	for (;;) {
		uint8_t *buf;
		size_t len;
		pid_t w;

		if (read_file(ready, sizeof(d->url) * 2, &buf, &len) == 0) {
			bool whole = ready_urls(d, (const char *)buf, len, rdma && *rdma);

			free(buf);
			if (whole)
				break;
		}
		w = waitpid(d->pid, &d->status, WNOHANG);
		if (w == d->pid) {
			d->pid = 0;
			ck_abort_msg("memserver exited during start-up (status 0x%x): %s",
				     d->status, log_tail(d));
		}
		ck_assert_msg(now_ns() < deadline, "memserver not ready after %d ms: %s",
			      READY_TIMEOUT_MS, log_tail(d));
		sleep_ms(5);
	}
	ck_assert_msg(strncmp(d->tcp_url, "tcp://127.0.0.1:", 16) == 0, "ready file holds '%s'",
		      d->tcp_url);
	ck_assert_str_ne(d->tcp_url, "tcp://127.0.0.1:0");
	ck_assert_msg(!(rdma && *rdma) || strncmp(d->url, "rdma://", 7) == 0,
		      "ready file's rdma:// line holds '%s'", d->url);
}

void daemon_start(struct daemon *d, const char *const *extra)
{
	daemon_start_env(d, extra, NULL);
}

int daemon_signal_wait(struct daemon *d, int sig, int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;

	if (!d->pid)
		return d->status;
	ck_assert_int_eq(kill(d->pid, sig), 0);
	for (;;) {
		pid_t w = waitpid(d->pid, &d->status, WNOHANG);

		if (w == d->pid) {
			d->pid = 0;
			return d->status;
		}
		if (now_ns() >= deadline) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &d->status, 0);
			d->pid = 0;
			return -1;
		}
		sleep_ms(5);
	}
}

static void remove_dir(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *e;

	if (!dir)
		return;
	while ((e = readdir(dir))) {
		char p[600];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		unlink(p);
	}
	closedir(dir);
	rmdir(path);
}

void daemon_stop_clean(struct daemon *d)
{
	int st = d->pid ? daemon_signal_wait(d, SIGTERM, STOP_TIMEOUT_MS) : d->status;

	ck_assert_msg(st != -1, "memserver did not stop within %d ms of SIGTERM: %s",
		      STOP_TIMEOUT_MS, log_tail(d));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "memserver did not exit cleanly (status 0x%x): %s", st, log_tail(d));
	remove_dir(d->dir);
	d->dir[0] = '\0';
}

long daemon_rss_kib(const struct daemon *d)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	ck_assert_int_gt(kib, 0);
	return kib;
}

void fixture_start(void)
{
	static const char *const extra[] = { "--test-hooks", NULL };

	memset(&D, 0, sizeof(D));
	daemon_start(&D, extra);
}

void fixture_stop(void)
{
	daemon_stop_clean(&D);
}

void client_submit(struct ms_client *c, struct ms_io *io)
{
	int ret = ms_client_submit(c, io);

	ck_assert_msg(ret == 0, "submit %s: %s", ms_op_name(io->op), strerror(-ret));
}

void client_collect(struct ms_client *c, struct ms_io **done, unsigned n)
{
	unsigned got = 0;

	while (got < n) {
		int k = ms_client_poll(c, done + got, n - got, 20000);

		ck_assert_msg(k > 0, "poll returned %d with %u of %u done", k, got, n);
		got += (unsigned)k;
	}
}

void client_create_open(struct ms_client *c, uint64_t id, uint64_t size, uint8_t *token,
			uint64_t *epoch)
{
	uint64_t got_size = 0;

	ck_assert_int_eq(ms_client_create(c, id, size, token), 0);
	ck_assert_int_eq(ms_client_open(c, id, token, epoch, &got_size), 0);
	ck_assert_uint_eq(got_size, size);
}

struct ms_client *client_connect(const char *url, const struct auth_key *key)
{
	struct ms_client *c = NULL;
	int ret = ms_client_connect(url, key, 20000, &c);

	ck_assert_msg(ret == 0, "ms_client_connect(%s): %s", url, strerror(-ret));
	return c;
}

void pattern_fill(void *page, uint64_t a, uint64_t b)
{
	uint64_t x = a * 0x9e3779b97f4a7c15ull ^ (b + 1) * 0xc2b2ae3d27d4eb4full;
	uint8_t *p = page;

	for (unsigned i = 0; i < MS_PAGE_SIZE; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		put_le64(p + i, x);
	}
}

bool pattern_check(const void *page, uint64_t a, uint64_t b)
{
	uint8_t want[MS_PAGE_SIZE];

	pattern_fill(want, a, b);
	return memcmp(page, want, MS_PAGE_SIZE) == 0;
}

/* ---- raw sockets ------------------------------------------------------ */

int raw_connect(const char *url)
{
	struct timeval tv = { .tv_sec = RAW_TIMEOUT_S };
	struct url u;
	int fd;

	if (strncmp(url, "rdma://", 7) == 0)
		url = D.tcp_url;	/* raw frames go over TCP */
	ck_assert_int_eq(url_parse(url, &u), 0);
	fd = net_tcp_connect(u.host, u.port, RAW_TIMEOUT_S * 1000);
	ck_assert_msg(fd >= 0, "connect %s: %s", url, strerror(-fd));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

int raw_send(int fd, const void *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, (const uint8_t *)p + done, len - done, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

int raw_frame(int fd, uint8_t op, uint64_t id, uint32_t count, const void *body, size_t blen)
{
	struct ms_hdr h = { .len = (uint32_t)(MS_HDR_LEN + blen), .version = MS_PROTO_VERSION,
			    .op = op, .id = id, .count = count };
	uint8_t hdr[MS_HDR_LEN];
	int ret;

	ms_hdr_encode(hdr, &h);
	ret = raw_send(fd, hdr, sizeof(hdr));
	if (!ret && blen)
		ret = raw_send(fd, body, blen);
	return ret;
}

/* Reads exactly len bytes: 0, -ECONNRESET at EOF/reset, -ETIMEDOUT. */
static int recv_exact(int fd, void *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = recv(fd, (uint8_t *)p + done, len - done, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -ETIMEDOUT;
			return errno == ECONNRESET ? -ECONNRESET : -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

int raw_reply(int fd, struct ms_hdr *h, uint8_t *body, size_t cap)
{
	uint8_t hdr[MS_HDR_LEN];
	size_t left;
	int ret = recv_exact(fd, hdr, sizeof(hdr));

	if (ret)
		return ret;
	if (ms_hdr_decode(hdr, sizeof(hdr), h) || !(h->op & MS_REPLY))
		return -EPROTO;
	left = h->len - MS_HDR_LEN;
	if (left) {
		uint8_t *tmp = malloc(left);

		ck_assert_ptr_nonnull(tmp);
		ret = recv_exact(fd, tmp, left);
		if (!ret && body)
			memcpy(body, tmp, MIN(left, cap));
		free(tmp);
	}
	return ret;
}

static uint64_t raw_ids = 1000;

int raw_call(int fd, uint8_t op, uint32_t count, const void *body, size_t blen)
{
	uint64_t id = raw_ids++;
	struct ms_hdr h;
	int ret = raw_frame(fd, op, id, count, body, blen);

	if (ret)
		return ret;
	ret = raw_reply(fd, &h, NULL, 0);
	if (ret)
		return ret;
	ck_assert_uint_eq(h.op, op | MS_REPLY);
	ck_assert_uint_eq(h.id, id);
	return (int)h.status;
}

void raw_hello(int fd)
{
	uint8_t b[40] = { 0 };

	put_le16(b, MS_PROTO_VERSION);
	put_le16(b + 2, MS_PROTO_VERSION);
	ck_assert_int_eq(raw_call(fd, MS_OP_HELLO, 0, b, sizeof(b)), MS_ST_OK);
}

bool raw_closed(int fd)
{
	uint8_t sink[4096];

	for (;;) {
		ssize_t n = recv(fd, sink, sizeof(sink), 0);

		if (n == 0)
			return true;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == ECONNRESET;
		}
	}
}

size_t raw_read_body(uint8_t *buf, uint64_t region, uint64_t epoch, const uint64_t *pages,
		     uint32_t n)
{
	put_le64(buf, region);
	put_le64(buf + 8, epoch);
	for (uint32_t i = 0; i < n; i++)
		put_le64(buf + 16 + 8 * i, pages[i]);
	return 16 + 8 * (size_t)n;
}

size_t raw_write_body(uint8_t *buf, uint64_t region, uint64_t epoch, const uint64_t *pages,
		      uint32_t n)
{
	uint8_t *data = buf + 16 + 16 * (size_t)n;

	put_le64(buf, region);
	put_le64(buf + 8, epoch);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *pg = data + (size_t)i * MS_PAGE_SIZE;

		pattern_fill(pg, region, pages[i]);
		put_le64(buf + 16 + 16 * i, pages[i]);
		put_le64(buf + 24 + 16 * i, ms_page_sum(pg));
	}
	return 16 + (size_t)n * (16 + MS_PAGE_SIZE);
}

void assert_daemon_serves(const struct auth_key *key, const uint8_t *token, uint64_t region)
{
	struct ms_client *c = client_connect(D.url, key);

	ck_assert_int_eq(ms_client_ping(c, 0), 0);
	if (token) {
		uint8_t page[MS_PAGE_SIZE];
		uint64_t epoch, p0 = 0;

		ck_assert_int_eq(ms_client_open(c, region, token, &epoch, NULL), 0);
		ck_assert_int_eq(ms_client_read(c, region, epoch, &p0, 1, page, NULL), 0);
		ck_assert(pattern_check(page, region, 0));
	}
	ms_client_close(c);
}

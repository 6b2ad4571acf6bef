/*
 * Integration tests of the memory server against bad input and abrupt
 * clients, over raw TCP sockets: every malformed frame gets an error reply
 * (closing the connection only when the stream cannot be trusted), other
 * clients are served throughout, memory stays bounded across thousands of
 * bad connections and a client that never reads, and SIGTERM stops a busy
 * server cleanly.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"
#include "tests/integration/harness.h"

#define REGION 7
#define REGION_PAGES 64

static uint8_t token[MS_TOKEN_LEN];
static uint8_t body[MS_MAX_FRAME + 4096];

/* The fixture's daemon plus one region whose page 0 holds pattern (7, 0):
 * assert_daemon_serves checks it after every abuse. */
static void fixture_region(void)
{
	struct ms_client *c;
	uint8_t page[MS_PAGE_SIZE];
	uint64_t epoch, p = 0;

	fixture_start();
	c = client_connect(D.url, NULL);
	ck_assert_int_eq(ms_client_create(c, REGION, REGION_PAGES * MS_PAGE_SIZE, token), 0);
	ck_assert_int_eq(ms_client_open(c, REGION, token, &epoch, NULL), 0);
	pattern_fill(page, REGION, 0);
	ck_assert_int_eq(ms_client_write(c, REGION, epoch, &p, 1, page), 0);
	ms_client_close(c);
}

static void serves(void)
{
	assert_daemon_serves(NULL, token, REGION);
}

/* A raw connection past HELLO with REGION open; returns its epoch. */
static int raw_open(uint64_t *epoch)
{
	int fd = raw_connect(D.url);
	uint8_t b[8 + MS_TOKEN_LEN], reply[16];
	struct ms_hdr h;

	raw_hello(fd);
	put_le64(b, REGION);
	memcpy(b + 8, token, MS_TOKEN_LEN);
	ck_assert_int_eq(raw_frame(fd, MS_OP_REGION_OPEN, 5, 0, b, sizeof(b)), 0);
	ck_assert_int_eq(raw_reply(fd, &h, reply, sizeof(reply)), 0);
	ck_assert_uint_eq(h.status, MS_ST_OK);
	*epoch = get_le64(reply);
	return fd;
}

/* Sends a bare header with the given fields and returns the reply status;
 * the server must then close the connection. */
static void bad_header_closes(uint32_t len, uint16_t magic, uint8_t version, unsigned want)
{
	uint8_t hdr[MS_HDR_LEN] = { 0 };
	struct ms_hdr h;
	int fd = raw_connect(D.url);

	raw_hello(fd);
	put_le32(hdr, len);
	put_le16(hdr + 4, magic);
	hdr[6] = version;
	hdr[7] = MS_OP_PING;
	put_le64(hdr + 8, 99);
	ck_assert_int_eq(raw_send(fd, hdr, sizeof(hdr)), 0);
	ck_assert_int_eq(raw_reply(fd, &h, NULL, 0), 0);
	ck_assert_uint_eq(h.status, want);
	ck_assert_uint_eq(h.id, 99); /* the id is echoed when it could be read */
	ck_assert(raw_closed(fd));
	close(fd);
	serves();
}

START_TEST(unknown_opcode_keeps_connection)
{
	uint8_t ping[8] = { 0 };
	int fd = raw_connect(D.url);

	raw_hello(fd);
	ck_assert_int_eq(raw_call(fd, 0, 0, NULL, 0), MS_ST_OPNOTSUPP);
	ck_assert_int_eq(raw_call(fd, 42, 0, ping, sizeof(ping)), MS_ST_OPNOTSUPP);
	ck_assert_int_eq(raw_call(fd, MS_REPLY | MS_OP_PING, 0, ping, sizeof(ping)),
			 MS_ST_OPNOTSUPP);
	ck_assert_int_eq(raw_call(fd, MS_OP_PING, 0, ping, sizeof(ping)), MS_ST_OK);
	close(fd);
	serves();
}
END_TEST

START_TEST(short_frame_length_closes)
{
	bad_header_closes(MS_HDR_LEN - 1, MS_MAGIC, MS_PROTO_VERSION, MS_ST_PROTO);
	bad_header_closes(0, MS_MAGIC, MS_PROTO_VERSION, MS_ST_PROTO);
}
END_TEST

START_TEST(oversized_frame_closes)
{
	bad_header_closes(MS_MAX_FRAME + 1, MS_MAGIC, MS_PROTO_VERSION, MS_ST_TOOBIG);
	bad_header_closes(UINT32_MAX, MS_MAGIC, MS_PROTO_VERSION, MS_ST_TOOBIG);
}
END_TEST

START_TEST(bad_magic_closes)
{
	bad_header_closes(MS_HDR_LEN + 8, 0x4d53 /* bytes swapped */, MS_PROTO_VERSION,
			  MS_ST_PROTO);
}
END_TEST

START_TEST(wrong_version_closes)
{
	bad_header_closes(MS_HDR_LEN + 8, MS_MAGIC, MS_PROTO_VERSION + 1, MS_ST_VERSION);
	bad_header_closes(MS_HDR_LEN + 8, MS_MAGIC, 0, MS_ST_VERSION);

	/* A HELLO whose version range excludes ours is refused too. */
	{
		uint8_t b[40] = { 0 };
		int fd = raw_connect(D.url);

		put_le16(b, MS_PROTO_VERSION + 1);
		put_le16(b + 2, MS_PROTO_VERSION + 3);
		ck_assert_int_eq(raw_call(fd, MS_OP_HELLO, 0, b, sizeof(b)), MS_ST_VERSION);
		ck_assert(raw_closed(fd));
		close(fd);
	}
	serves();
}
END_TEST

START_TEST(malformed_bodies_answered)
{
	uint64_t epoch, pages[2] = { 0, 1 };
	int fd = raw_open(&epoch);
	size_t n;

	/* Truncated READ, count beyond the batch limit, count 0, trailing bytes. */
	n = raw_read_body(body, REGION, epoch, pages, 2);
	ck_assert_int_eq(raw_call(fd, MS_OP_READ, 2, body, n - 1), MS_ST_PROTO);
	ck_assert_int_eq(raw_call(fd, MS_OP_READ, MS_MAX_BATCH + 1, body, n), MS_ST_INVAL);
	ck_assert_int_eq(raw_call(fd, MS_OP_READ, 0, body, 16), MS_ST_INVAL);
	ck_assert_int_eq(raw_call(fd, MS_OP_READ, 1, body, n), MS_ST_PROTO);
	n = raw_write_body(body, REGION, epoch, pages, 2);
	ck_assert_int_eq(raw_call(fd, MS_OP_WRITE, 2, body, n - MS_PAGE_SIZE), MS_ST_PROTO);
	ck_assert_int_eq(raw_call(fd, MS_OP_REGION_CREATE, 0, body, 15), MS_ST_PROTO);
	ck_assert_int_eq(raw_call(fd, MS_OP_STAT, 3, NULL, 0), MS_ST_PROTO);
	put_le32(body, MS_MAX_PING_DELAY_US + 1);
	put_le32(body + 4, 0);
	ck_assert_int_eq(raw_call(fd, MS_OP_PING, 0, body, 8), MS_ST_INVAL);
	/* Still usable. */
	n = raw_read_body(body, REGION, epoch, pages, 1);
	ck_assert_int_eq(raw_call(fd, MS_OP_READ, 1, body, n), MS_ST_OK);
	close(fd);
	serves();
}
END_TEST

START_TEST(out_of_range_page)
{
	uint64_t epoch, pages[3] = { 1, REGION_PAGES, 2 };
	int fd = raw_open(&epoch);
	size_t n;

	n = raw_read_body(body, REGION, epoch, pages, 3);
	ck_assert_int_eq(raw_call(fd, MS_OP_READ, 3, body, n), MS_ST_RANGE);
	pages[1] = UINT64_MAX;
	n = raw_read_body(body, REGION, epoch, pages, 3);
	ck_assert_int_eq(raw_call(fd, MS_OP_READ, 3, body, n), MS_ST_RANGE);
	pages[1] = 1ull << 52; /* page * 4096 would wrap */
	n = raw_write_body(body, REGION, epoch, pages, 3);
	ck_assert_int_eq(raw_call(fd, MS_OP_WRITE, 3, body, n), MS_ST_RANGE);
	/* The rejected write stored nothing, not even its in-range pages. */
	n = raw_read_body(body, REGION, epoch, pages, 1);
	{
		struct ms_hdr h;
		uint8_t reply[16];

		ck_assert_int_eq(raw_frame(fd, MS_OP_READ, 77, 1, body, n), 0);
		ck_assert_int_eq(raw_reply(fd, &h, reply, sizeof(reply)), 0);
		ck_assert_uint_eq(h.status, MS_ST_OK);
		ck_assert_uint_eq(get_le32(reply + 8), MS_PAGE_ZERO);
	}
	ck_assert_int_eq(raw_call(fd, MS_OP_PING, 0, (uint8_t[8]){ 0 }, 8), MS_ST_OK);
	close(fd);

	/* Through the client library: -ERANGE. */
	{
		struct ms_client *c = client_connect(D.url, NULL);
		uint8_t page[MS_PAGE_SIZE];
		uint64_t e, p = REGION_PAGES;

		ck_assert_int_eq(ms_client_open(c, REGION, token, &e, NULL), 0);
		ck_assert_int_eq(ms_client_read(c, REGION, e, &p, 1, page, NULL), -ERANGE);
		ck_assert_int_eq(ms_client_write(c, REGION, e, &p, 1, page), -ERANGE);
		ms_client_close(c);
	}
	serves();
}
END_TEST

START_TEST(wrong_token)
{
	uint8_t b[8 + MS_TOKEN_LEN], bad[MS_TOKEN_LEN];
	struct ms_client *c;
	uint64_t epoch;
	int fd = raw_connect(D.url);

	raw_hello(fd);
	memcpy(bad, token, sizeof(bad));
	bad[17] ^= 4;
	put_le64(b, REGION);
	memcpy(b + 8, bad, MS_TOKEN_LEN);
	ck_assert_int_eq(raw_call(fd, MS_OP_REGION_OPEN, 0, b, sizeof(b)), MS_ST_ACCESS);
	ck_assert_int_eq(raw_call(fd, MS_OP_REGION_DELETE, 0, b, sizeof(b)), MS_ST_ACCESS);
	ck_assert_int_eq(raw_call(fd, MS_OP_PING, 0, (uint8_t[8]){ 0 }, 8), MS_ST_OK);
	close(fd);

	c = client_connect(D.url, NULL);
	ck_assert_int_eq(ms_client_open(c, REGION, bad, &epoch, NULL), -EACCES);
	ck_assert_int_eq(ms_client_delete(c, REGION, bad), -EACCES);
	ms_client_close(c);
	serves(); /* the region survived */
}
END_TEST

START_TEST(fenced_epoch)
{
	uint64_t e1, e2, page = 0;
	int fd1 = raw_open(&e1), fd2 = raw_open(&e2);
	size_t n;

	ck_assert_uint_gt(e2, e1);
	n = raw_read_body(body, REGION, e1, &page, 1);
	ck_assert_int_eq(raw_call(fd1, MS_OP_READ, 1, body, n), MS_ST_FENCED);
	n = raw_write_body(body, REGION, e1, &page, 1);
	ck_assert_int_eq(raw_call(fd1, MS_OP_WRITE, 1, body, n), MS_ST_FENCED);
	/* A made-up epoch on the current holder's connection. */
	n = raw_read_body(body, REGION, e2 + 100, &page, 1);
	ck_assert_int_eq(raw_call(fd2, MS_OP_READ, 1, body, n), MS_ST_FENCED);
	n = raw_read_body(body, REGION, e2, &page, 1);
	ck_assert_int_eq(raw_call(fd2, MS_OP_READ, 1, body, n), MS_ST_OK);
	/* A region this connection never opened. */
	n = raw_read_body(body, REGION + 1, e2, &page, 1);
	ck_assert_int_eq(raw_call(fd2, MS_OP_READ, 1, body, n), MS_ST_NOTOPEN);
	close(fd1);
	close(fd2);
	serves();
}
END_TEST

START_TEST(garbage_bytes)
{
	uint64_t seed = 0x1234567;

	for (unsigned round = 0; round < 20; round++) {
		uint8_t junk[300];
		int fd = raw_connect(D.url);

		for (unsigned i = 0; i < sizeof(junk); i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			junk[i] = (uint8_t)(seed >> 56);
		}
		if (round % 2)
			raw_hello(fd);
		/* Whatever comes back, the server must end the connection. */
		ck_assert_int_eq(raw_send(fd, junk, sizeof(junk)), 0);
		ck_assert(raw_closed(fd));
		close(fd);
	}
	/* Plain text is garbage too. */
	{
		static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
		int fd = raw_connect(D.url);

		ck_assert_int_eq(raw_send(fd, http, strlen(http)), 0);
		ck_assert(raw_closed(fd));
		close(fd);
	}
	serves();
}
END_TEST

START_TEST(half_frame_then_disconnect)
{
	uint64_t epoch, pages[MS_MAX_BATCH];
	size_t n;
	int fd;

	for (unsigned i = 0; i < MS_MAX_BATCH; i++)
		pages[i] = i;
	/* Half a header. */
	fd = raw_connect(D.url);
	ck_assert_int_eq(raw_send(fd, "\x30\0\0\0MS", 6), 0);
	close(fd);
	/* A whole header, half a body. */
	fd = raw_open(&epoch);
	n = raw_write_body(body + MS_HDR_LEN, REGION, epoch, pages, MS_MAX_BATCH);
	{
		struct ms_hdr h = { .len = (uint32_t)(MS_HDR_LEN + n), .version = MS_PROTO_VERSION,
				    .op = MS_OP_WRITE, .id = 1, .count = MS_MAX_BATCH };

		ms_hdr_encode(body, &h);
	}
	ck_assert_int_eq(raw_send(fd, body, (MS_HDR_LEN + n) / 2), 0);
	close(fd);
	/* The half-sent batch must not have landed: page 1 was never written. */
	{
		struct ms_client *c = client_connect(D.url, NULL);
		uint8_t zero = 0, page[MS_PAGE_SIZE];
		uint64_t e, p = 1;

		ck_assert_int_eq(ms_client_open(c, REGION, token, &e, NULL), 0);
		ck_assert_int_eq(ms_client_read(c, REGION, e, &p, 1, page, &zero), 0);
		ck_assert_uint_eq(zero, 1);
		ms_client_close(c);
	}
	serves();
}
END_TEST

/* One abusive connection of kind k. */
static void abuse(unsigned k)
{
	int fd = raw_connect(D.url);
	uint8_t hdr[MS_HDR_LEN];
	struct ms_hdr h = { .version = MS_PROTO_VERSION, .op = MS_OP_PING, .id = k };

	switch (k % 8) {
	case 0: /* garbage */
		ck_assert_int_eq(raw_send(fd, "garbage garbage garbage garbage", 31), 0);
		(void)raw_closed(fd);
		break;
	case 1: /* short length */
		h.len = 8;
		ms_hdr_encode(hdr, &h);
		ck_assert_int_eq(raw_send(fd, hdr, sizeof(hdr)), 0);
		(void)raw_closed(fd);
		break;
	case 2: /* oversized length */
		h.len = MS_MAX_FRAME * 2;
		ms_hdr_encode(hdr, &h);
		ck_assert_int_eq(raw_send(fd, hdr, sizeof(hdr)), 0);
		(void)raw_closed(fd);
		break;
	case 3: /* request before HELLO */
		ck_assert_int_eq(raw_frame(fd, MS_OP_STAT, 1, 0, NULL, 0), 0);
		(void)raw_closed(fd);
		break;
	case 4: /* half a large frame, then gone */
		h.len = MS_MAX_FRAME;
		h.op = MS_OP_WRITE;
		h.count = MS_MAX_BATCH;
		ms_hdr_encode(body, &h);
		memset(body + MS_HDR_LEN, 0x5a, 100000);
		raw_hello(fd);
		ck_assert_int_eq(raw_send(fd, body, MS_HDR_LEN + 100000), 0);
		break;
	case 5: /* connect and vanish */
		break;
	case 6: /* unknown opcode, then a truncated header */
		raw_hello(fd);
		ck_assert_int_eq(raw_call(fd, 99, 0, NULL, 0), MS_ST_OPNOTSUPP);
		ck_assert_int_eq(raw_send(fd, "\x40\0\0", 3), 0);
		break;
	default: { /* a delayed PING the client never waits for */
		uint8_t ping[8] = { 0 };

		raw_hello(fd);
		put_le32(ping, 500000);
		ck_assert_int_eq(raw_frame(fd, MS_OP_PING, 3, 0, ping, sizeof(ping)), 0);
		break;
	}
	}
	close(fd);
}

/* Bounded wait until the daemon's connection count drops to want (closing is
 * asynchronous); returns the last count seen. */
static uint64_t wait_connections(struct ms_client *c, uint64_t want)
{
	static struct ms_stat st;

	for (unsigned i = 0; i < 2000; i++) {
		ck_assert_int_eq(ms_client_stat(c, &st), 0);
		if (st.connections <= want)
			break;
		usleep(10000);
	}
	return st.connections;
}

START_TEST(bad_connections_do_not_leak)
{
	struct ms_client *c;
	long before, after;

	for (unsigned i = 0; i < 200; i++)
		abuse(i);
	c = client_connect(D.url, NULL);
	ck_assert_uint_eq(wait_connections(c, 1), 1);
	before = daemon_rss_kib(&D);
	for (unsigned i = 0; i < 2000; i++)
		abuse(i);
	ck_assert_uint_eq(wait_connections(c, 1), 1);
	after = daemon_rss_kib(&D);
	ck_assert_msg(after <= before + 16 * 1024,
		      "memserver VmRSS grew from %ld KiB to %ld KiB over 2000 bad connections",
		      before, after);
	ck_assert_int_eq(ms_client_ping(c, 0), 0);
	ms_client_close(c);
	serves();
}
END_TEST

/* A client that pipelines reads and never reads a reply cannot make the
 * server buffer without bound; everyone else is still served. */
START_TEST(client_that_never_reads)
{
	uint64_t epoch, pages[MS_MAX_BATCH];
	long before, after;
	struct timeval tv = { .tv_sec = 1 };
	size_t n;
	int fd, bufsz = 64 * 1024;

	for (unsigned i = 0; i < MS_MAX_BATCH; i++)
		pages[i] = 0; /* a written page: full data in every reply */
	before = daemon_rss_kib(&D);
	fd = raw_open(&epoch);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = raw_read_body(body, REGION, epoch, pages, MS_MAX_BATCH);
	/* 1500 x 256 KiB of replies = 375 MiB if the server executed them all
	 * and queued the replies; it must stop reading instead. The requests
	 * themselves are small enough to sit in the socket buffers (should they
	 * not, the 1 s send timeout ends the loop). */
	for (unsigned i = 0; i < 1500; i++)
		if (raw_frame(fd, MS_OP_READ, i, MS_MAX_BATCH, body, n))
			break;
	after = daemon_rss_kib(&D);
	ck_assert_msg(after <= before + 64 * 1024,
		      "memserver VmRSS grew from %ld KiB to %ld KiB for one stalled client",
		      before, after);
	serves();
	close(fd);
	serves();
}
END_TEST

/* ---- stopping --------------------------------------------------------- */

struct busy {
	pthread_t thread;
	uint64_t region;
	uint8_t token[MS_TOKEN_LEN];
	unsigned long completed; /* atomic */
	int last_error;
	struct ms_io ios[40];
	uint64_t pages[40][8];
	uint8_t bufs[40][8 * MS_PAGE_SIZE];
};

/* Keeps writes, reads and a delayed PING in flight until the connection
 * dies. */
static void *busy_main(void *arg)
{
	struct busy *b = arg;
	struct ms_client *c;
	struct ms_io *ios = b->ios, *done[40];
	uint64_t (*pages)[8] = b->pages;
	uint8_t (*bufs)[8 * MS_PAGE_SIZE] = b->bufs;
	uint64_t epoch;
	int ret;

	ret = ms_client_connect(D.url, NULL, 20000, &c);
	if (ret) {
		b->last_error = ret;
		return NULL;
	}
	ret = ms_client_open(c, b->region, b->token, &epoch, NULL);
	for (unsigned i = 0; !ret && i < 40; i++) {
		for (unsigned k = 0; k < 8; k++)
			pages[i][k] = (i * 8 + k) % 256;
		if (i == 0)
			ios[i] = (struct ms_io){ .op = MS_OP_PING, .arg = 1000000 };
		else
			ios[i] = (struct ms_io){ .op = i % 2 ? MS_OP_WRITE : MS_OP_READ,
						 .region = b->region, .epoch = epoch, .npages = 8,
						 .pages = pages[i], .buf = bufs[i] };
		ret = ms_client_submit(c, &ios[i]);
	}
	while (!ret) {
		int k = ms_client_poll(c, done, 40, 1000);

		if (k < 0) {
			ret = k;
			break;
		}
		for (int i = 0; i < k; i++) {
			if (done[i]->result) {
				ret = done[i]->result;
				break;
			}
			__atomic_fetch_add(&b->completed, 1, __ATOMIC_RELAXED);
			ret = ms_client_submit(c, done[i]);
			if (ret)
				break;
		}
	}
	b->last_error = ret;
	ms_client_close(c);
	return NULL;
}

START_TEST(sigterm_with_requests_in_flight)
{
	enum { NB = 4 };
	static struct busy bs[NB];
	struct ms_client *c = client_connect(D.url, NULL);
	unsigned long total = 0;
	int st;

	for (unsigned i = 0; i < NB; i++) {
		memset(&bs[i], 0, sizeof(bs[i]));
		bs[i].region = 200 + i;
		ck_assert_int_eq(ms_client_create(c, bs[i].region, 256 * MS_PAGE_SIZE, bs[i].token),
				 0);
	}
	ms_client_close(c);
	for (unsigned i = 0; i < NB; i++)
		ck_assert_int_eq(pthread_create(&bs[i].thread, NULL, busy_main, &bs[i]), 0);
	/* Wait (bounded) until every client has real traffic going. */
	for (unsigned spin = 0; spin < 3000; spin++) {
		unsigned ready = 0;

		total = 0;
		for (unsigned i = 0; i < NB; i++) {
			unsigned long n = __atomic_load_n(&bs[i].completed, __ATOMIC_RELAXED);

			total += n;
			ready += n >= 200;
		}
		if (ready == NB)
			break;
		usleep(10000);
	}
	ck_assert_msg(total >= NB * 200, "clients made too little progress: %lu", total);

	st = daemon_signal_wait(&D, SIGTERM, 20000);
	ck_assert_msg(st != -1, "memserver did not stop within 20 s of SIGTERM");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "memserver did not exit cleanly (status 0x%x)", st);
	for (unsigned i = 0; i < NB; i++) {
		pthread_join(bs[i].thread, NULL);
		ck_assert_int_ne(bs[i].last_error, 0); /* the clients saw it go */
	}
}
END_TEST

START_TEST(sigint_stops_cleanly)
{
	struct ms_client *c = client_connect(D.url, NULL);
	int st;

	ck_assert_int_eq(ms_client_ping(c, 0), 0);
	st = daemon_signal_wait(&D, SIGINT, 20000);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	ck_assert_int_ne(ms_client_ping(c, 0), 0);
	ms_client_close(c);
}
END_TEST

static void fixture_small_quarantine(void)
{
	static const char *const extra[] = { "--test-hooks", NULL };
	struct ms_client *c;
	uint8_t page[MS_PAGE_SIZE];
	uint64_t epoch, p = 0;

	/* Under AddressSanitizer freed memory sits in a quarantine (256 MiB by
	 * default) and would read as growth; keep it small for the leak check.
	 * Harmless for an uninstrumented daemon. */
	memset(&D, 0, sizeof(D));
	daemon_start_env(&D, extra, "quarantine_size_mb=4:thread_local_quarantine_size_kb=64");
	c = client_connect(D.url, NULL);
	ck_assert_int_eq(ms_client_create(c, REGION, REGION_PAGES * MS_PAGE_SIZE, token), 0);
	ck_assert_int_eq(ms_client_open(c, REGION, token, &epoch, NULL), 0);
	pattern_fill(page, REGION, 0);
	ck_assert_int_eq(ms_client_write(c, REGION, epoch, &p, 1, page), 0);
	ms_client_close(c);
}

static Suite *robust_suite(void)
{
	Suite *s = suite_create("memserver_robust");
	TCase *tc;

	tc = tcase_create("bad_input");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, fixture_region, fixture_stop);
	tcase_add_test(tc, unknown_opcode_keeps_connection);
	tcase_add_test(tc, short_frame_length_closes);
	tcase_add_test(tc, oversized_frame_closes);
	tcase_add_test(tc, bad_magic_closes);
	tcase_add_test(tc, wrong_version_closes);
	tcase_add_test(tc, malformed_bodies_answered);
	tcase_add_test(tc, out_of_range_page);
	tcase_add_test(tc, wrong_token);
	tcase_add_test(tc, fenced_epoch);
	tcase_add_test(tc, garbage_bytes);
	tcase_add_test(tc, half_frame_then_disconnect);
	suite_add_tcase(s, tc);

	tc = tcase_create("memory");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, fixture_small_quarantine, fixture_stop);
	tcase_add_test(tc, bad_connections_do_not_leak);
	tcase_add_test(tc, client_that_never_reads);
	suite_add_tcase(s, tc);

	tc = tcase_create("stop");
	tcase_set_timeout(tc, 90);
	tcase_add_checked_fixture(tc, fixture_start, fixture_stop);
	tcase_add_test(tc, sigterm_with_requests_in_flight);
	tcase_add_test(tc, sigint_stops_cleanly);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	log_init("test_ms_robust", LOG_WARN);
	/* Writes to connections the server closed must fail, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	sr = srunner_create(robust_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

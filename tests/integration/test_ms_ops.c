/*
 * Integration tests of the memory server's operations against the real
 * daemon over loopback TCP, through the client library: round trips of every
 * operation, large transfers, pipelining with out-of-order completion,
 * concurrent clients, fencing, idempotent retries, capacity reservation,
 * reuse of deleted regions, checksums and STAT (over either transport:
 * LEGATO_TEST_RDMA_ADDR, see harness.h). What fencing and protection domains
 * guarantee, and busy polling, are in test_ms_protect.c.
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

START_TEST(every_operation_round_trips)
{
	struct ms_client *c = client_connect(D.url, NULL);
	uint8_t token[MS_TOKEN_LEN], t2[MS_TOKEN_LEN], page[MS_PAGE_SIZE];
	uint64_t epoch, e2, size = 0, p = 7;
	static struct ms_stat st;

	ck_assert_str_eq(ms_client_url(c), D.url);
	ck_assert_int_eq(ms_client_ping(c, 0), 0);
	ck_assert_int_eq(ms_client_ping(c, 1000), 0);
	ck_assert_int_eq(ms_client_create(c, 42, 4 * MiB, token), 0);
	ck_assert_int_eq(ms_client_create(c, 42, 4 * MiB, t2), -EEXIST);
	ck_assert_int_eq(ms_client_create(c, 43, 4097, t2), -EINVAL);
	ck_assert_int_eq(ms_client_open(c, 42, token, &epoch, &size), 0);
	ck_assert_uint_eq(size, 4 * MiB);
	ck_assert_uint_gt(epoch, 0);

	pattern_fill(page, 42, p);
	ck_assert_int_eq(ms_client_write(c, 42, epoch, &p, 1, page), 0);
	memset(page, 0, sizeof(page));
	ck_assert_int_eq(ms_client_read(c, 42, epoch, &p, 1, page, NULL), 0);
	ck_assert(pattern_check(page, 42, p));

	ck_assert_int_eq(ms_client_stat(c, &st), 0);
	ck_assert_uint_eq(st.regions, 1);
	ck_assert_uint_eq(st.reserved, 4 * MiB);
	/* Over rdma:// the open registered, so pinned, all of the region. */
	ck_assert_uint_eq(st.resident, over_rdma() ? 4 * MiB : MS_PAGE_SIZE);

	/* Reopening on the same connection gives a newer epoch. */
	ck_assert_int_eq(ms_client_open(c, 42, token, &e2, NULL), 0);
	ck_assert_uint_gt(e2, epoch);
	ck_assert_int_eq(ms_client_read(c, 42, epoch, &p, 1, page, NULL), -ESTALE);
	ck_assert_int_eq(ms_client_read(c, 42, e2, &p, 1, page, NULL), 0);

	ck_assert_int_eq(ms_client_delete(c, 42, token), 0);
	ck_assert_int_eq(ms_client_delete(c, 42, token), -ENOENT);
	ck_assert_int_eq(ms_client_open(c, 42, token, &epoch, NULL), -ENOENT);
	ck_assert_int_eq(ms_client_read(c, 42, e2, &p, 1, page, NULL), -ENOENT);
	ck_assert_int_eq(ms_client_stat(c, &st), 0);
	ck_assert_uint_eq(st.regions, 0);
	ck_assert_uint_eq(st.reserved, 0);
	ck_assert_uint_eq(st.resident, 0);
	/* Every error above left the connection usable. */
	ck_assert_int_eq(ms_client_ping(c, 0), 0);
	ms_client_close(c);
}
END_TEST

START_TEST(large_multi_batch_transfers)
{
	enum { N = 1000 };
	struct ms_client *c = client_connect(D.url, NULL);
	uint8_t token[MS_TOKEN_LEN], *buf = malloc((size_t)N * MS_PAGE_SIZE);
	uint8_t *zero = malloc(N);
	uint64_t epoch, *pages = malloc(N * sizeof(*pages));
	static struct ms_stat st;

	ck_assert(buf && zero && pages);
	client_create_open(c, 1, 4 * N * MS_PAGE_SIZE, token, &epoch);
	/* Scattered pages, in descending order, across 16 batches. */
	for (unsigned i = 0; i < N; i++) {
		pages[i] = (uint64_t)(N - 1 - i) * 3;
		pattern_fill(buf + (size_t)i * MS_PAGE_SIZE, 1, pages[i]);
	}
	ck_assert_int_eq(ms_client_write(c, 1, epoch, pages, N, buf), 0);
	memset(buf, 0, (size_t)N * MS_PAGE_SIZE);
	memset(zero, 7, N);
	ck_assert_int_eq(ms_client_read(c, 1, epoch, pages, N, buf, zero), 0);
	for (unsigned i = 0; i < N; i++) {
		ck_assert_uint_eq(zero[i], 0);
		ck_assert_msg(pattern_check(buf + (size_t)i * MS_PAGE_SIZE, 1, pages[i]),
			      "page %llu differs", (unsigned long long)pages[i]);
	}
	ck_assert_int_eq(ms_client_stat(c, &st), 0);
	ck_assert_uint_eq(st.resident, (uint64_t)(over_rdma() ? 4 * N : N) * MS_PAGE_SIZE);

	/* Never-written pages: flagged and left untouched, or zero-filled. */
	for (unsigned i = 0; i < N; i++)
		pages[i] = (uint64_t)i * 3 + 1;
	memset(buf, 0xee, (size_t)N * MS_PAGE_SIZE);
	ck_assert_int_eq(ms_client_read(c, 1, epoch, pages, N, buf, zero), 0);
	for (unsigned i = 0; i < N; i++) {
		ck_assert_uint_eq(zero[i], 1);
		ck_assert_uint_eq(buf[(size_t)i * MS_PAGE_SIZE + 100], 0xee);
	}
	ck_assert_int_eq(ms_client_read(c, 1, epoch, pages, N, buf, NULL), 0);
	for (size_t i = 0; i < (size_t)N * MS_PAGE_SIZE; i += 509)
		ck_assert_uint_eq(buf[i], 0);

	/* One page out of range fails the transfer. */
	pages[N - 1] = 4 * N;
	ck_assert_int_eq(ms_client_read(c, 1, epoch, pages, N, buf, NULL), -ERANGE);
	ck_assert_int_eq(ms_client_ping(c, 0), 0);
	ms_client_close(c);
	free(buf);
	free(zero);
	free(pages);
}
END_TEST

/*
 * A delayed PING, then WRITE A, READ, WRITE B, READ of one page, all in
 * flight together: same-page requests take effect in order, and the PING
 * completes after them although it was sent first.
 */
START_TEST(pipelined_out_of_order)
{
	struct ms_client *c = client_connect(D.url, NULL);
	uint8_t token[MS_TOKEN_LEN];
	static uint8_t a[MS_PAGE_SIZE], b[MS_PAGE_SIZE], r1[MS_PAGE_SIZE], r2[MS_PAGE_SIZE];
	uint64_t epoch, page = 5;
	struct ms_io ios[5], *done[5];
	int pos[5];

	client_create_open(c, 9, MiB, token, &epoch);
	pattern_fill(a, 9, 1000);
	pattern_fill(b, 9, 2000);
	memset(ios, 0, sizeof(ios));
	ios[0] = (struct ms_io){ .op = MS_OP_PING, .arg = 200000 };
	ios[1] = (struct ms_io){ .op = MS_OP_WRITE, .region = 9, .epoch = epoch, .npages = 1,
				 .pages = &page, .buf = a };
	ios[2] = (struct ms_io){ .op = MS_OP_READ, .region = 9, .epoch = epoch, .npages = 1,
				 .pages = &page, .buf = r1 };
	ios[3] = (struct ms_io){ .op = MS_OP_WRITE, .region = 9, .epoch = epoch, .npages = 1,
				 .pages = &page, .buf = b };
	ios[4] = (struct ms_io){ .op = MS_OP_READ, .region = 9, .epoch = epoch, .npages = 1,
				 .pages = &page, .buf = r2 };
	for (int i = 0; i < 5; i++) {
		ios[i].cookie = (void *)(intptr_t)i;
		client_submit(c, &ios[i]);
	}
	ck_assert_uint_eq(ms_client_inflight(c), 5);
	client_collect(c, done, 5);
	ck_assert_uint_eq(ms_client_inflight(c), 0);
	for (int i = 0; i < 5; i++) {
		int k = (int)(intptr_t)done[i]->cookie;

		pos[k] = i;
		ck_assert_msg(done[i]->result == 0, "request %d: %s", k,
			      strerror(-done[i]->result));
	}
	ck_assert_mem_eq(r1, a, MS_PAGE_SIZE);
	ck_assert_mem_eq(r2, b, MS_PAGE_SIZE);
	for (int k = 1; k < 5; k++)
		ck_assert_msg(pos[0] > pos[k], "the delayed PING completed before request %d", k);
	ms_client_close(c);
}
END_TEST

START_TEST(hundreds_in_flight)
{
	enum { N = 250 };
	struct ms_client *c = client_connect(D.url, NULL);
	uint8_t token[MS_TOKEN_LEN];
	uint8_t *bufs = malloc((size_t)N * MS_PAGE_SIZE);
	static struct ms_io ios[MS_CLIENT_MAX_INFLIGHT + 1];
	static struct ms_io *done[MS_CLIENT_MAX_INFLIGHT + 1];
	static uint64_t pages[N];
	uint64_t epoch;

	ck_assert_ptr_nonnull(bufs);
	client_create_open(c, 3, N * MS_PAGE_SIZE, token, &epoch);
	for (unsigned i = 0; i < N; i++) {
		pages[i] = i;
		pattern_fill(bufs + (size_t)i * MS_PAGE_SIZE, 3, i);
		ios[i] = (struct ms_io){ .op = MS_OP_WRITE, .region = 3, .epoch = epoch,
					 .npages = 1, .pages = &pages[i],
					 .buf = bufs + (size_t)i * MS_PAGE_SIZE };
		client_submit(c, &ios[i]);
	}
	/* Writes copy their data at submit: the buffers may be reused at once. */
	memset(bufs, 0, (size_t)N * MS_PAGE_SIZE);
	ck_assert_uint_eq(ms_client_inflight(c), N);
	client_collect(c, done, N);
	for (unsigned i = 0; i < N; i++)
		ck_assert_int_eq(done[i]->result, 0);

	for (unsigned i = 0; i < N; i++) {
		ios[i] = (struct ms_io){ .op = MS_OP_READ, .region = 3, .epoch = epoch,
					 .npages = 1, .pages = &pages[i],
					 .buf = bufs + (size_t)i * MS_PAGE_SIZE };
		client_submit(c, &ios[i]);
	}
	ck_assert_uint_eq(ms_client_inflight(c), N);
	client_collect(c, done, N);
	for (unsigned i = 0; i < N; i++) {
		ck_assert_int_eq(done[i]->result, 0);
		ck_assert(pattern_check(bufs + (size_t)i * MS_PAGE_SIZE, 3, i));
	}

	/* The in-flight limit is reported, not exceeded. */
	for (unsigned i = 0; i < MS_CLIENT_MAX_INFLIGHT; i++) {
		ios[i] = (struct ms_io){ .op = MS_OP_PING };
		client_submit(c, &ios[i]);
	}
	ios[MS_CLIENT_MAX_INFLIGHT] = (struct ms_io){ .op = MS_OP_PING };
	ck_assert_int_eq(ms_client_submit(c, &ios[MS_CLIENT_MAX_INFLIGHT]), -EAGAIN);
	client_collect(c, done, MS_CLIENT_MAX_INFLIGHT);
	ck_assert_int_eq(ms_client_ping(c, 0), 0);
	ms_client_close(c);
	free(bufs);
}
END_TEST

/*
 * client.h: submit returns -EAGAIN "when MS_CLIENT_MAX_INFLIGHT are in
 * flight". With one slow request outstanding, a client that keeps issuing
 * synchronous calls must not be refused while only two are in flight.
 */
START_TEST(slow_request_does_not_block_others)
{
	struct ms_client *c = client_connect(D.url, NULL);
	struct ms_io slow = { .op = MS_OP_PING, .arg = 1000000 }, *done;

	client_submit(c, &slow);
	for (unsigned i = 0; i < MS_CLIENT_MAX_INFLIGHT + 8; i++) {
		int ret = ms_client_ping(c, 0);

		ck_assert_msg(ret == 0, "ping %u with %u in flight: %s", i, ms_client_inflight(c),
			      strerror(-ret));
	}
	client_collect(c, &done, 1);
	ck_assert_ptr_eq(done, &slow);
	ms_client_close(c);
}
END_TEST

/* READ/WRITE with one buffer per page (ms_io.bufs), driven from an event
 * loop through ms_client_fd. */
START_TEST(per_page_buffers)
{
	enum { N = 10 };
	struct ms_client *c = client_connect(D.url, NULL);
	static uint8_t pagemem[N][MS_PAGE_SIZE];
	uint8_t *bufs[N], token[MS_TOKEN_LEN], zero[N];
	uint64_t epoch, pages[N];
	struct ms_io io, *done;

	ck_assert_int_ge(ms_client_fd(c), 0);
	client_create_open(c, 50, MiB, token, &epoch);
	for (unsigned i = 0; i < N; i++) {
		pages[i] = 100 - i * 7;
		bufs[i] = pagemem[N - 1 - i]; /* deliberately not in address order */
		pattern_fill(bufs[i], 50, pages[i]);
	}
	io = (struct ms_io){ .op = MS_OP_WRITE, .region = 50, .epoch = epoch, .npages = N,
			     .pages = pages, .bufs = bufs };
	client_submit(c, &io);
	client_collect(c, &done, 1);
	ck_assert_int_eq(done->result, 0);
	memset(pagemem, 0, sizeof(pagemem));
	io = (struct ms_io){ .op = MS_OP_READ, .region = 50, .epoch = epoch, .npages = N,
			     .pages = pages, .bufs = bufs, .zero = zero };
	client_submit(c, &io);
	client_collect(c, &done, 1);
	ck_assert_int_eq(done->result, 0);
	for (unsigned i = 0; i < N; i++) {
		ck_assert_uint_eq(zero[i], 0);
		ck_assert(pattern_check(bufs[i], 50, pages[i]));
	}
	/* The contiguous interface sees the same pages. */
	{
		static uint8_t flat[N * MS_PAGE_SIZE];

		ck_assert_int_eq(ms_client_read(c, 50, epoch, pages, N, flat, NULL), 0);
		for (unsigned i = 0; i < N; i++)
			ck_assert(pattern_check(flat + i * MS_PAGE_SIZE, 50, pages[i]));
	}
	ms_client_close(c);
}
END_TEST

struct worker {
	pthread_t thread;
	const char *url;
	unsigned index;
	uint8_t token[MS_TOKEN_LEN];
	char error[200];
};

#define WORKER_PAGES 256u

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t id = 100 + w->index, epoch, pages[WORKER_PAGES];
	uint8_t *buf = malloc((size_t)WORKER_PAGES * MS_PAGE_SIZE);
	struct ms_client *c = NULL;
	int ret;

	if (!buf) {
		snprintf(w->error, sizeof(w->error), "out of memory");
		return NULL;
	}
	ret = ms_client_connect(w->url, NULL, 20000, &c);
	if (!ret)
		ret = ms_client_create(c, id, WORKER_PAGES * 2 * MS_PAGE_SIZE, w->token);
	if (!ret)
		ret = ms_client_open(c, id, w->token, &epoch, NULL);
	for (unsigned round = 0; !ret && round < 4; round++) {
		for (unsigned i = 0; i < WORKER_PAGES; i++) {
			pages[i] = (i * 7 + round) % (WORKER_PAGES * 2);
			pattern_fill(buf + (size_t)i * MS_PAGE_SIZE, id, pages[i] + 1000 * round);
		}
		ret = ms_client_write(c, id, epoch, pages, WORKER_PAGES, buf);
		if (ret)
			break;
		memset(buf, 0, (size_t)WORKER_PAGES * MS_PAGE_SIZE);
		ret = ms_client_read(c, id, epoch, pages, WORKER_PAGES, buf, NULL);
		for (unsigned i = 0; !ret && i < WORKER_PAGES; i++)
			if (!pattern_check(buf + (size_t)i * MS_PAGE_SIZE, id,
					   pages[i] + 1000 * round))
				ret = -EILSEQ;
	}
	if (ret)
		snprintf(w->error, sizeof(w->error), "client %u: %s", w->index, strerror(-ret));
	ms_client_close(c);
	free(buf);
	return NULL;
}

START_TEST(concurrent_clients_distinct_regions)
{
	enum { NW = 8 };
	static struct worker ws[NW];
	static struct ms_stat st;
	struct ms_client *c;

	for (unsigned i = 0; i < NW; i++) {
		ws[i] = (struct worker){ .url = D.url, .index = i };
		ck_assert_int_eq(pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]), 0);
	}
	for (unsigned i = 0; i < NW; i++)
		pthread_join(ws[i].thread, NULL);
	for (unsigned i = 0; i < NW; i++)
		ck_assert_msg(ws[i].error[0] == '\0', "%s", ws[i].error);

	/* Afterwards each region holds exactly its own client's last round. */
	c = client_connect(D.url, NULL);
	for (unsigned i = 0; i < NW; i++) {
		uint64_t id = 100 + i, epoch, p = 3 % (WORKER_PAGES * 2);
		uint8_t page[MS_PAGE_SIZE];

		/* Page 3 was last written in round 3 (i = 0). */
		ck_assert_int_eq(ms_client_open(c, id, ws[i].token, &epoch, NULL), 0);
		ck_assert_int_eq(ms_client_read(c, id, epoch, &p, 1, page, NULL), 0);
		ck_assert(pattern_check(page, id, p + 3000));
	}
	ck_assert_int_eq(ms_client_stat(c, &st), 0);
	ck_assert_uint_eq(st.regions, NW);
	ck_assert_uint_eq(st.reserved, NW * WORKER_PAGES * 2 * MS_PAGE_SIZE);
	ms_client_close(c);
}
END_TEST

/*
 * Synchronous control calls back to back, each within a client timeout of a
 * few seconds. Over rdma:// each reply is a receive completion that may land
 * while the client re-arms its completion queue before sleeping; one taken
 * there and not acted on would leave the call asleep until the timeout
 * (ETIMEDOUT, the client dead). Not a timing assertion: any call that
 * completes at all passes.
 */
START_TEST(sync_calls_back_to_back)
{
	struct ms_client *c = NULL;
	uint8_t token[MS_TOKEN_LEN];
	uint8_t map[8];
	struct ms_stat st;
	uint64_t epoch;

	ck_assert_int_eq(ms_client_connect(D.url, NULL, 3000, &c), 0);
	client_create_open(c, 12, MiB, token, &epoch);
	for (unsigned i = 0; i < 300; i++) {
		ck_assert_int_eq(ms_client_ping(c, i % 3 ? 0 : 200), 0);
		ck_assert_int_eq(ms_client_stat(c, &st), 0);
		ck_assert_int_eq(ms_client_written(c, 12, epoch, 0, 64, map), 0);
	}
	ms_client_close(c);
}
END_TEST

START_TEST(second_open_fences_first)
{
	struct ms_client *a = client_connect(D.url, NULL), *b = client_connect(D.url, NULL);
	uint8_t token[MS_TOKEN_LEN], page[MS_PAGE_SIZE];
	uint64_t ea, eb, p = 1;

	client_create_open(a, 11, MiB, token, &ea);
	pattern_fill(page, 11, 0);
	ck_assert_int_eq(ms_client_write(a, 11, ea, &p, 1, page), 0);
	ck_assert_int_eq(ms_client_open(b, 11, token, &eb, NULL), 0);
	ck_assert_uint_gt(eb, ea);

	/* The first holder is fenced: a distinct error, for writes and reads.
	 * Borrowing the newer epoch does not help: it was not given to a. */
	pattern_fill(page, 11, 1);
	ck_assert_int_eq(ms_client_write(a, 11, eb, &p, 1, page), -ESTALE);
	ck_assert_int_eq(ms_client_write(a, 11, ea, &p, 1, page), -ESTALE);
	if (over_rdma()) {
		/* Its registration is gone: the one-sided write was a remote
		 * access error, which leaves the queue pair (so the client)
		 * dead. A new connection must open the region again. */
		ck_assert_int_eq(ms_client_read(a, 11, ea, &p, 1, page, NULL), -ENOTCONN);
		ck_assert_int_eq(ms_client_ping(a, 0), -ENOTCONN);
		ms_client_close(a);
		a = client_connect(D.url, NULL);
		ck_assert_int_eq(ms_client_read(a, 11, ea, &p, 1, page, NULL), -EBADF);
	} else {
		ck_assert_int_eq(ms_client_read(a, 11, ea, &p, 1, page, NULL), -ESTALE);
		/* Fencing does not kill the connection. */
		ck_assert_int_eq(ms_client_ping(a, 0), 0);
	}

	/* b sees what a wrote before the fence, never what it tried after. */
	ck_assert_int_eq(ms_client_read(b, 11, eb, &p, 1, page, NULL), 0);
	ck_assert(pattern_check(page, 11, 0));
	pattern_fill(page, 11, 2);
	ck_assert_int_eq(ms_client_write(b, 11, eb, &p, 1, page), 0);

	/* A reopen takes it back. */
	ck_assert_int_eq(ms_client_open(a, 11, token, &ea, NULL), 0);
	ck_assert_int_eq(ms_client_read(b, 11, eb, &p, 1, page, NULL), -ESTALE);
	ck_assert_int_eq(ms_client_read(a, 11, ea, &p, 1, page, NULL), 0);
	ck_assert(pattern_check(page, 11, 2));
	ms_client_close(a);
	ms_client_close(b);
}
END_TEST

/* A write whose connection died is retried on a new connection after a
 * reopen; applying it twice changes nothing. */
START_TEST(write_retry_after_reconnect_idempotent)
{
	struct ms_client *a = client_connect(D.url, NULL), *b;
	uint8_t token[MS_TOKEN_LEN], buf[8 * MS_PAGE_SIZE];
	uint64_t ea, eb, pages[8];
	static struct ms_stat st;
	struct ms_io io, *d;

	client_create_open(a, 12, MiB, token, &ea);
	for (unsigned i = 0; i < 8; i++) {
		pages[i] = i;
		pattern_fill(buf + i * MS_PAGE_SIZE, 12, i);
	}
	ck_assert_int_eq(ms_client_write(a, 12, ea, pages, 8, buf), 0);

	/* The second write is in flight when the connection goes away: it may or
	 * may not have landed. */
	pattern_fill(buf, 12, 1005);
	io = (struct ms_io){ .op = MS_OP_WRITE, .region = 12, .epoch = ea, .npages = 1,
			     .pages = &pages[5], .buf = buf };
	client_submit(a, &io);
	ck_assert_int_ge(ms_client_poll(a, &d, 1, 0), 0);
	ms_client_close(a);

	b = client_connect(D.url, NULL);
	ck_assert_int_eq(ms_client_open(b, 12, token, &eb, NULL), 0);
	for (unsigned attempt = 0; attempt < 2; attempt++) {
		uint8_t out[8 * MS_PAGE_SIZE];

		ck_assert_int_eq(ms_client_write(b, 12, eb, &pages[5], 1, buf), 0);
		ck_assert_int_eq(ms_client_read(b, 12, eb, pages, 8, out, NULL), 0);
		for (unsigned i = 0; i < 8; i++)
			ck_assert(pattern_check(out + i * MS_PAGE_SIZE, 12, i == 5 ? 1005 : i));
		ck_assert_int_eq(ms_client_stat(b, &st), 0);
		ck_assert_uint_eq(st.resident, over_rdma() ? MiB : 8 * MS_PAGE_SIZE);
	}
	ms_client_close(b);
}
END_TEST

START_TEST(deleted_region_recreated_reads_zero)
{
	enum { N = 64 };
	struct ms_client *c = client_connect(D.url, NULL);
	uint8_t token[MS_TOKEN_LEN], t2[MS_TOKEN_LEN], zero[N];
	static uint8_t buf[N * MS_PAGE_SIZE];
	uint64_t epoch, pages[N];

	client_create_open(c, 20, N * MS_PAGE_SIZE, token, &epoch);
	for (unsigned i = 0; i < N; i++) {
		pages[i] = i;
		pattern_fill(buf + i * MS_PAGE_SIZE, 20, i);
	}
	ck_assert_int_eq(ms_client_write(c, 20, epoch, pages, N, buf), 0);
	ck_assert_int_eq(ms_client_delete(c, 20, token), 0);

	ck_assert_int_eq(ms_client_create(c, 20, N * MS_PAGE_SIZE, t2), 0);
	ck_assert_mem_ne(token, t2, MS_TOKEN_LEN);
	ck_assert_int_eq(ms_client_open(c, 20, token, &epoch, NULL), -EACCES);
	ck_assert_int_eq(ms_client_open(c, 20, t2, &epoch, NULL), 0);
	memset(buf, 0xcc, sizeof(buf));
	memset(zero, 0, sizeof(zero));
	ck_assert_int_eq(ms_client_read(c, 20, epoch, pages, N, buf, zero), 0);
	for (unsigned i = 0; i < N; i++) {
		ck_assert_uint_eq(zero[i], 1);
		ck_assert_uint_eq(buf[i * MS_PAGE_SIZE], 0xcc);
	}
	ck_assert_int_eq(ms_client_read(c, 20, epoch, pages, N, buf, NULL), 0);
	for (unsigned i = 0; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0);
	ms_client_close(c);
}
END_TEST

START_TEST(checksum_catches_corruption)
{
	struct ms_client *c = client_connect(D.url, NULL);
	uint8_t token[MS_TOKEN_LEN];
	static uint8_t buf[4 * MS_PAGE_SIZE];
	uint64_t epoch, pages[4] = { 0, 1, 2, 3 };

	client_create_open(c, 30, MiB, token, &epoch);
	for (unsigned i = 0; i < 3; i++)
		pattern_fill(buf + i * MS_PAGE_SIZE, 30, i);
	ck_assert_int_eq(ms_client_write(c, 30, epoch, pages, 3, buf), 0);
	ck_assert_int_eq(ms_client_debug_corrupt(c, 30, 1), 0);

	ck_assert_int_eq(ms_client_read(c, 30, epoch, &pages[1], 1, buf, NULL), -EBADMSG);
	ck_assert_int_eq(ms_client_read(c, 30, epoch, pages, 3, buf, NULL), -EBADMSG);
	/* Other pages still read fine, on the same connection. */
	ck_assert_int_eq(ms_client_read(c, 30, epoch, &pages[0], 1, buf, NULL), 0);
	ck_assert(pattern_check(buf, 30, 0));
	ck_assert_int_eq(ms_client_read(c, 30, epoch, &pages[2], 1, buf, NULL), 0);
	ck_assert(pattern_check(buf, 30, 2));
	/* The hook's own errors. */
	ck_assert_int_eq(ms_client_debug_corrupt(c, 30, 3), -EINVAL); /* never written */
	ck_assert_int_eq(ms_client_debug_corrupt(c, 30, MiB), -ERANGE);
	ck_assert_int_eq(ms_client_debug_corrupt(c, 31, 0), -ENOENT);
	/* Rewriting the page heals it. */
	pattern_fill(buf, 30, 100);
	ck_assert_int_eq(ms_client_write(c, 30, epoch, &pages[1], 1, buf), 0);
	ck_assert_int_eq(ms_client_read(c, 30, epoch, &pages[1], 1, buf, NULL), 0);
	ck_assert(pattern_check(buf, 30, 100));
	ms_client_close(c);
}
END_TEST

START_TEST(stat_figures_consistent)
{
	struct ms_client *c = client_connect(D.url, NULL), *c2;
	uint8_t t1[MS_TOKEN_LEN], t2[MS_TOKEN_LEN], bad[MS_TOKEN_LEN] = { 0 };
	static uint8_t buf[100 * MS_PAGE_SIZE];
	static struct ms_stat s0, s1;
	uint64_t e1, e2, pages[100];

	ck_assert_int_eq(ms_client_stat(c, &s0), 0);
	ck_assert_uint_eq(s0.capacity, 1ull << 30);
	ck_assert_uint_eq(s0.regions, 0);
	ck_assert_uint_eq(s0.connections, 1);
	c2 = client_connect(D.url, NULL);

	client_create_open(c, 1, 8 * MiB, t1, &e1);
	client_create_open(c2, 2, 2 * MiB, t2, &e2);
	for (unsigned i = 0; i < 100; i++) {
		pages[i] = i;
		pattern_fill(buf + i * MS_PAGE_SIZE, 1, i);
	}
	ck_assert_int_eq(ms_client_write(c, 1, e1, pages, 100, buf), 0); /* 2 batches */
	ck_assert_int_eq(ms_client_write(c2, 2, e2, pages, 10, buf), 0);
	ck_assert_int_eq(ms_client_read(c, 1, e1, pages, 100, buf, NULL), 0);
	for (unsigned i = 0; i < 5; i++)
		ck_assert_int_eq(ms_client_ping(c, 0), 0);
	ck_assert_int_eq(ms_client_open(c, 1, bad, &e1, NULL), -EACCES);

	ck_assert_int_eq(ms_client_stat(c, &s1), 0);
	ck_assert_uint_eq(s1.capacity, s0.capacity);
	ck_assert_uint_eq(s1.regions, 2);
	ck_assert_uint_eq(s1.reserved, 10 * MiB);
	ck_assert_uint_eq(s1.resident, over_rdma() ? 10 * MiB : 110 * MS_PAGE_SIZE);
	ck_assert_uint_eq(s1.connections, 2);
	ck_assert_uint_ge(s1.uptime_ns, s0.uptime_ns);
	ck_assert_uint_eq(s1.ops[MS_OP_REGION_CREATE].count - s0.ops[MS_OP_REGION_CREATE].count, 2);
	ck_assert_uint_eq(s1.ops[MS_OP_REGION_OPEN].count - s0.ops[MS_OP_REGION_OPEN].count, 3);
	ck_assert_uint_eq(s1.ops[MS_OP_REGION_OPEN].errors - s0.ops[MS_OP_REGION_OPEN].errors, 1);
	if (over_rdma()) {
		/* One-sided: page I/O never reaches the server's CPU. */
		ck_assert_uint_eq(s1.ops[MS_OP_WRITE].count, 0);
		ck_assert_uint_eq(s1.ops[MS_OP_READ].count, 0);
	} else {
		ck_assert_uint_eq(s1.ops[MS_OP_WRITE].count - s0.ops[MS_OP_WRITE].count, 3);
		ck_assert_uint_eq(s1.ops[MS_OP_WRITE].errors, 0);
		ck_assert_uint_ge(s1.ops[MS_OP_WRITE].bytes_in - s0.ops[MS_OP_WRITE].bytes_in,
				  110 * MS_PAGE_SIZE);
		ck_assert_uint_eq(s1.ops[MS_OP_READ].count - s0.ops[MS_OP_READ].count, 2);
		ck_assert_uint_ge(s1.ops[MS_OP_READ].bytes_out - s0.ops[MS_OP_READ].bytes_out,
				  100 * MS_PAGE_SIZE);
	}
	ck_assert_uint_eq(s1.ops[MS_OP_PING].count - s0.ops[MS_OP_PING].count, 5);
	ck_assert_uint_eq(s1.ops[MS_OP_STAT].count - s0.ops[MS_OP_STAT].count, 1);
	ck_assert_uint_ge(s1.ops[MS_OP_HELLO].count, 2);
	for (unsigned op = 1; op < MS_OP_MAX; op++)
		ck_assert_uint_eq(hist_total(&s1.ops[op].latency), s1.ops[op].count);

	ms_client_close(c2);
	ck_assert_int_eq(ms_client_delete(c, 2, t2), 0);
	ck_assert_int_eq(ms_client_stat(c, &s1), 0);
	ck_assert_uint_eq(s1.regions, 1);
	ck_assert_uint_eq(s1.reserved, 8 * MiB);
	ck_assert_uint_eq(s1.resident, over_rdma() ? 8 * MiB : 100 * MS_PAGE_SIZE);
	ms_client_close(c);
}
END_TEST

/* ---- a 64 MiB server without test hooks ------------------------------- */

static void fixture_small(void)
{
	static const char *const extra[] = { "--capacity", "64M", NULL };

	memset(&D, 0, sizeof(D));
	daemon_start(&D, extra);
}

START_TEST(capacity_reserved_at_create)
{
	struct ms_client *c = client_connect(D.url, NULL);
	uint8_t t1[MS_TOKEN_LEN], t2[MS_TOKEN_LEN];
	static struct ms_stat st;

	ck_assert_int_eq(ms_client_create(c, 1, 48 * MiB, t1), 0);
	/* Nothing was written, yet the space is taken. */
	ck_assert_int_eq(ms_client_create(c, 2, 32 * MiB, t2), -ENOSPC);
	ck_assert_int_eq(ms_client_stat(c, &st), 0);
	ck_assert_uint_eq(st.capacity, 64 * MiB);
	ck_assert_uint_eq(st.reserved, 48 * MiB);
	ck_assert_uint_eq(st.resident, 0);
	ck_assert_uint_eq(st.regions, 1);
	ck_assert_uint_eq(st.ops[MS_OP_REGION_CREATE].errors, 1);
	ck_assert_int_eq(ms_client_create(c, 2, 16 * MiB, t2), 0);
	ck_assert_int_eq(ms_client_create(c, 3, MS_PAGE_SIZE, t2), -ENOSPC);
	/* Deleting frees the reservation. */
	ck_assert_int_eq(ms_client_delete(c, 1, t1), 0);
	ck_assert_int_eq(ms_client_create(c, 3, 32 * MiB, t1), 0);
	ck_assert_int_eq(ms_client_stat(c, &st), 0);
	ck_assert_uint_eq(st.reserved, 48 * MiB);
	ms_client_close(c);
}
END_TEST

START_TEST(corrupt_hook_disabled)
{
	struct ms_client *c = client_connect(D.url, NULL);
	uint8_t token[MS_TOKEN_LEN], page[MS_PAGE_SIZE];
	uint64_t epoch, p = 0;

	client_create_open(c, 1, MiB, token, &epoch);
	pattern_fill(page, 1, 0);
	ck_assert_int_eq(ms_client_write(c, 1, epoch, &p, 1, page), 0);
	ck_assert_int_eq(ms_client_debug_corrupt(c, 1, 0), -EOPNOTSUPP);
	ck_assert_int_eq(ms_client_read(c, 1, epoch, &p, 1, page, NULL), 0);
	ck_assert(pattern_check(page, 1, 0));
	ms_client_close(c);
}
END_TEST

static Suite *ops_suite(void)
{
	Suite *s = suite_create("memserver_ops");
	TCase *tc;

	tc = tcase_create("ops");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, fixture_start, fixture_stop);
	tcase_add_test(tc, every_operation_round_trips);
	tcase_add_test(tc, large_multi_batch_transfers);
	tcase_add_test(tc, pipelined_out_of_order);
	tcase_add_test(tc, hundreds_in_flight);
	tcase_add_test(tc, slow_request_does_not_block_others);
	tcase_add_test(tc, per_page_buffers);
	tcase_add_test(tc, concurrent_clients_distinct_regions);
	tcase_add_test(tc, sync_calls_back_to_back);
	tcase_add_test(tc, second_open_fences_first);
	tcase_add_test(tc, write_retry_after_reconnect_idempotent);
	tcase_add_test(tc, deleted_region_recreated_reads_zero);
	tcase_add_test(tc, checksum_catches_corruption);
	tcase_add_test(tc, stat_figures_consistent);
	suite_add_tcase(s, tc);

	tc = tcase_create("small");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, fixture_small, fixture_stop);
	tcase_add_test(tc, capacity_reserved_at_create);
	tcase_add_test(tc, corrupt_hook_disabled);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	log_init("test_ms_ops", LOG_WARN);
	sr = srunner_create(ops_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

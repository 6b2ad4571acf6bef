/*
 * Unit tests of the client library's shared framing as the rdma:// transport
 * uses it, on any machine (no RDMA device needed): every request the encoder
 * frames decodes with the server's decoder; a REGION_OPEN reply carries
 * exactly open_extra more bytes and the transport's hook sees them (and a
 * DELETE) before the request completes; an rdma:// connect that cannot
 * succeed fails within its timeout with a -errno, never hangs; the busy-poll
 * and registration test hooks reach the rdma:// transport (and tcp:// says
 * it has neither); and the chains of work requests the data path posts move
 * every page and every sum to the right place, each page before its sum.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/util.h"
#include "common/wire.h"
#include "memserver/client_impl.h"
#include "memserver/client_rdma.h"

static uint8_t seen_extra[MS_RDMA_OPEN_EXTRA];
static int hook_calls, hook_deletes, hook_result;

static int test_hook(struct ms_client *c, struct ms_io *io, const uint8_t *extra)
{
	(void)c;
	hook_calls++;
	if (io->op == MS_OP_REGION_DELETE) {
		ck_assert_ptr_null(extra);
		hook_deletes++;
		return 0;
	}
	ck_assert_int_eq(io->op, MS_OP_REGION_OPEN);
	ck_assert_uint_eq(io->out_epoch, 7);
	memcpy(seen_extra, extra, sizeof(seen_extra));
	return hook_result;
}

/* Feeds a reply to io with body[0..len) and status. */
static int feed_reply(struct ms_client *c, const struct ms_io *io, uint32_t status,
		      const uint8_t *body, size_t len)
{
	uint8_t frame[MS_HDR_LEN + 256];
	struct ms_hdr h = { .len = (uint32_t)(MS_HDR_LEN + len), .version = MS_PROTO_VERSION,
			    .op = io->op | MS_REPLY, .id = io->id, .status = status };

	ck_assert_uint_le(len, 256);
	ms_hdr_encode(frame, &h);
	if (len)
		memcpy(frame + MS_HDR_LEN, body, len);
	return ms_client_tcp_feed(c, frame, MS_HDR_LEN + len);
}

static struct ms_io *poll_one(struct ms_client *c)
{
	struct ms_io *done[4];

	ck_assert_int_eq(ms_client_poll(c, done, 4, 0), 1);
	return done[0];
}

static void open_body(uint8_t *b, size_t extra)
{
	put_le64(b, 7);
	put_le64(b + 8, 16 * MS_PAGE_SIZE);
	for (size_t i = 0; i < extra; i++)
		b[16 + i] = (uint8_t)(0xa0 + i);
}

START_TEST(encode_decodes)
{
	uint64_t pages[3] = { 5, 6, 9 };
	uint8_t data[3 * MS_PAGE_SIZE], bitmap[1];
	struct ms_stat st;
	struct ms_io ios[] = {
		{ .op = MS_OP_REGION_CREATE, .region = 3, .arg = 8192 },
		{ .op = MS_OP_REGION_OPEN, .region = 3 },
		{ .op = MS_OP_REGION_DELETE, .region = 3 },
		{ .op = MS_OP_READ, .region = 3, .epoch = 2, .npages = 3, .pages = pages,
		  .buf = data },
		{ .op = MS_OP_WRITE, .region = 3, .epoch = 2, .npages = 3, .pages = pages,
		  .buf = data },
		{ .op = MS_OP_STAT, .stat = &st },
		{ .op = MS_OP_PING, .arg = 10 },
		{ .op = MS_OP_WRITTEN, .region = 3, .epoch = 2, .arg = 1, .npages = 8,
		  .buf = bitmap },
		{ .op = MS_OP_DEBUG_CORRUPT, .region = 3, .arg = 1 },
	};
	struct buf tx = { 0 };

	memset(data, 0x5a, sizeof(data));
	for (unsigned i = 0; i < ARRAY_SIZE(ios); i++) {
		struct ms_request rq;

		ios[i].id = 100 + i;
		ck_assert_int_eq(ms_frame_encode(&tx, &ios[i]), 0);
		ck_assert_int_eq(ms_request_decode(buf_head(&tx), buf_len(&tx), &rq), MS_ST_OK);
		ck_assert_uint_eq(rq.hdr.len, buf_len(&tx));
		ck_assert_uint_eq(rq.hdr.op, ios[i].op);
		ck_assert_uint_eq(rq.hdr.id, 100 + i);
		if (ios[i].op == MS_OP_WRITE) {
			ck_assert_uint_eq(rq.hdr.count, 3);
			ck_assert_uint_eq(get_le64(rq.io.descs + 16), 6);
			ck_assert_uint_eq(get_le64(rq.io.descs + 8), ms_page_sum(data));
		}
		buf_consume(&tx, buf_len(&tx));
	}
	ios[0].op = MS_OP_HELLO;
	ck_assert_int_eq(ms_frame_encode(&tx, &ios[0]), -EINVAL);
	buf_free(&tx);
}
END_TEST

/* tcp://: the OPEN reply is epoch and size, nothing more. */
START_TEST(open_reply_plain)
{
	struct ms_io a = { .op = MS_OP_REGION_OPEN }, b = { .op = MS_OP_REGION_OPEN };
	uint8_t body[16 + MS_RDMA_OPEN_EXTRA];
	struct ms_client *c;

	ck_assert_int_eq(ms_client_tcp_detached(&c), 0);
	ck_assert_int_eq(ms_client_submit(c, &a), 0);
	ck_assert_int_eq(ms_client_submit(c, &b), 0);
	open_body(body, MS_RDMA_OPEN_EXTRA);
	ck_assert_int_eq(feed_reply(c, &a, 0, body, 16), 0);
	ck_assert_ptr_eq(poll_one(c), &a);
	ck_assert_int_eq(a.result, 0);
	ck_assert_uint_eq(a.out_epoch, 7);
	ck_assert_uint_eq(a.out_size, 16 * MS_PAGE_SIZE);
	ck_assert_int_eq(feed_reply(c, &b, 0, body, sizeof(body)), -EPROTO);
	ck_assert_ptr_eq(poll_one(c), &b);
	ck_assert_int_eq(b.result, -EPROTO);
	ms_client_close(c);
}
END_TEST

/* rdma://: open_extra more bytes, handed to the hook before completion. */
START_TEST(open_reply_extra)
{
	struct ms_io a = { .op = MS_OP_REGION_OPEN }, b = { .op = MS_OP_REGION_OPEN };
	struct ms_io d = { .op = MS_OP_REGION_DELETE }, e = { .op = MS_OP_REGION_OPEN };
	uint8_t body[16 + MS_RDMA_OPEN_EXTRA];
	struct ms_client *c;

	hook_calls = hook_deletes = hook_result = 0;
	ck_assert_int_eq(ms_client_tcp_detached(&c), 0);
	c->open_extra = MS_RDMA_OPEN_EXTRA;
	c->on_reply = test_hook;
	ck_assert_int_eq(ms_client_submit(c, &a), 0);
	ck_assert_int_eq(ms_client_submit(c, &b), 0);
	ck_assert_int_eq(ms_client_submit(c, &d), 0);
	ck_assert_int_eq(ms_client_submit(c, &e), 0);
	open_body(body, MS_RDMA_OPEN_EXTRA);
	ck_assert_int_eq(feed_reply(c, &a, 0, body, sizeof(body)), 0);
	ck_assert_ptr_eq(poll_one(c), &a);
	ck_assert_int_eq(a.result, 0);
	ck_assert_uint_eq(a.out_size, 16 * MS_PAGE_SIZE);
	ck_assert_mem_eq(seen_extra, body + 16, MS_RDMA_OPEN_EXTRA);
	/* The hook's verdict is the result; a failed OPEN never reaches it. */
	hook_result = -ENOSPC;
	ck_assert_int_eq(feed_reply(c, &b, 0, body, sizeof(body)), 0);
	ck_assert_ptr_eq(poll_one(c), &b);
	ck_assert_int_eq(b.result, -ENOSPC);
	ck_assert_int_eq(feed_reply(c, &e, MS_ST_ACCESS, NULL, 0), 0);
	ck_assert_ptr_eq(poll_one(c), &e);
	ck_assert_int_eq(e.result, -EACCES);
	ck_assert_int_eq(feed_reply(c, &d, 0, NULL, 0), 0);
	ck_assert_ptr_eq(poll_one(c), &d);
	ck_assert_int_eq(d.result, 0);
	ck_assert_int_eq(hook_calls, 3);
	ck_assert_int_eq(hook_deletes, 1);
	ms_client_close(c);
}
END_TEST

/* With open_extra set, a TCP-sized OPEN reply is malformed. */
START_TEST(open_reply_short)
{
	struct ms_io a = { .op = MS_OP_REGION_OPEN };
	uint8_t body[16];
	struct ms_client *c;

	hook_calls = 0;
	ck_assert_int_eq(ms_client_tcp_detached(&c), 0);
	c->open_extra = MS_RDMA_OPEN_EXTRA;
	c->on_reply = test_hook;
	ck_assert_int_eq(ms_client_submit(c, &a), 0);
	open_body(body, 0);
	ck_assert_int_eq(feed_reply(c, &a, 0, body, sizeof(body)), -EPROTO);
	ck_assert_ptr_eq(poll_one(c), &a);
	ck_assert_int_eq(a.result, -EPROTO);
	ck_assert_int_eq(hook_calls, 0);
	ms_client_close(c);
}
END_TEST

/* No listener, no device, no such host: a -errno within the timeout. */
START_TEST(rdma_connect_fails_fast)
{
	static const char *const urls[] = {
		"rdma://127.0.0.1:1", "rdma://[::1]:1", "rdma://no-such-host.invalid:7000",
	};

	for (unsigned i = 0; i < ARRAY_SIZE(urls); i++) {
		struct ms_client *c = NULL;
		uint64_t t0 = now_ns();
		int ret = ms_client_connect(urls[i], NULL, 3000, &c);

		ck_assert_msg(ret < 0, "%s: connect returned %d", urls[i], ret);
		ck_assert_msg(ret != -EINVAL && ret != -EPROTONOSUPPORT, "%s: %s", urls[i],
			      strerror(-ret));
		ck_assert_msg(now_ns() - t0 < 4500000000ull, "%s: took %llu ms", urls[i],
			      (unsigned long long)((now_ns() - t0) / 1000000));
	}
}
END_TEST

/* tcp:// has neither busy polling nor registrations. */
START_TEST(tcp_has_no_rdma_hooks)
{
	struct ms_rdma_remote r;
	struct ms_client *c;

	ck_assert_int_eq(ms_client_tcp_detached(&c), 0);
	ck_assert_int_eq(ms_client_set_busy_poll(c, true), -EOPNOTSUPP);
	ck_assert_int_eq(ms_client_set_busy_poll(c, false), -EOPNOTSUPP);
	ck_assert_int_eq(ms_client_rdma_debug_remote(c, 1, &r, NULL), -EPROTONOSUPPORT);
	ck_assert_int_eq(ms_client_rdma_debug_remote(c, 1, NULL, &r), -EPROTONOSUPPORT);
	ms_client_close(c);
}
END_TEST

/*
 * A client with the rdma:// operations over a transport that was never
 * connected (no device): enough for the hooks, which only touch its state.
 * Freed by hand: ms_client_close would tear down verbs objects it lacks.
 */
static struct ms_client *fake_rdma_client(struct rdma_transport **tp)
{
	struct ms_client *c = calloc(1, sizeof(*c));
	struct rdma_transport *t = calloc(1, sizeof(*t));

	ck_assert(c && t);
	c->ops = &ms_client_rdma_ops;
	c->transport = t;
	t->c = c;
	t->epfd = -1;
	*tp = t;
	return c;
}

START_TEST(rdma_busy_poll_op)
{
	struct rdma_transport *t;
	struct ms_client *c = fake_rdma_client(&t);

	ck_assert_ptr_nonnull(ms_client_rdma_ops.set_busy_poll);
	ck_assert(!t->busy); /* event mode by default */
	ck_assert_int_eq(ms_client_set_busy_poll(c, true), 0);
	ck_assert(t->busy);
	ck_assert_int_eq(ms_client_set_busy_poll(c, true), 0);
	ck_assert(t->busy);
	ck_assert_int_eq(ms_client_set_busy_poll(c, false), 0);
	ck_assert(!t->busy);
	free(t);
	free(c);
}
END_TEST

START_TEST(rdma_debug_remote)
{
	struct rdma_transport *t;
	struct ms_client *c = fake_rdma_client(&t);
	struct ms_rdma_remote r, forged = { .slots_addr = 0x1000, .rkey = 0x11 };

	ck_assert_int_eq(ms_client_rdma_debug_remote(c, 9, &r, NULL), -ENOENT);
	t->regions[5] = (struct rdma_region){ .used = true, .id = 9, .epoch = 3, .npages = 16,
					      .slots_addr = 0xa000, .rkey = 0xaa };
	ck_assert_int_eq(ms_client_rdma_debug_remote(c, 8, &r, NULL), -ENOENT);
	ck_assert_int_eq(ms_client_rdma_debug_remote(c, 9, NULL, NULL), 0);
	ck_assert_int_eq(ms_client_rdma_debug_remote(c, 9, &r, NULL), 0);
	ck_assert_uint_eq(r.slots_addr, 0xa000);
	ck_assert_uint_eq(r.rkey, 0xaa);
	/* get is taken before set. */
	ck_assert_int_eq(ms_client_rdma_debug_remote(c, 9, &r, &forged), 0);
	ck_assert_uint_eq(r.rkey, 0xaa);
	ck_assert_uint_eq(t->regions[5].slots_addr, 0x1000);
	ck_assert_uint_eq(t->regions[5].rkey, 0x11);
	/* Only the registrations change. */
	ck_assert_uint_eq(t->regions[5].epoch, 3);
	ck_assert_uint_eq(t->regions[5].npages, 16);
	t->regions[5].deleted = true;
	ck_assert_int_eq(ms_client_rdma_debug_remote(c, 9, &r, NULL), -ENOENT);
	free(t);
	free(c);
}
END_TEST

/* ---- chains of work requests ---------------------------------------------- */

/*
 * Builds the chain of a request for pages[0..n) over a fake transport and
 * checks it against what the data path needs: chain_len WRs, linked, each of
 * opcode op and wr_id p->id, only the last signalled; at most max_sge slots
 * per WR, each entry a whole bounce slot (page and sum, MS_SLOT_SIZE bytes);
 * every page i moves exactly once, between its bounce slot and
 * slots_addr + pages[i] * MS_SLOT_SIZE. Returns the number of WRs.
 */
static uint32_t check_chain(struct rdma_transport *t, const uint64_t *pages, uint32_t n,
			    enum ibv_wr_opcode op)
{
	static struct rdma_pend p;
	static struct ibv_mr mr = { .lkey = 0x77 };
	int page_wr[MS_MAX_BATCH];
	const uint64_t slots = 1ull << 40;
	uint32_t nwr, k = 0;

	p = (struct rdma_pend){ .id = 5 * MS_CLIENT_MAX_INFLIGHT + 17, .n = n,
				.rg = { .slots_addr = slots, .rkey = 0xd } };
	t->mr = &mr;
	for (uint32_t i = 0; i < n; i++) {
		p.pages[i] = pages[i];
		p.bounce[i] = (uint16_t)((i * 37 + 11) % BOUNCE_PAGES); /* any order */
		page_wr[i] = -1;
	}
	nwr = ms_client_rdma_chain_len(t, &p);
	ck_assert_uint_le(nwr, n);
	ms_client_rdma_chain(t, &p, op);
	for (struct ibv_send_wr *w = t->wr; w; w = w->next, k++) {
		bool last = !w->next;
		uint64_t off = w->wr.rdma.remote_addr - slots;

		ck_assert_uint_lt(k, nwr);
		ck_assert_ptr_eq(w, &t->wr[k]);
		ck_assert_uint_eq(w->wr_id, p.id);
		ck_assert_int_eq(w->opcode, op);
		ck_assert_uint_eq(w->send_flags, last ? IBV_SEND_SIGNALED : 0);
		ck_assert_int_ge(w->num_sge, 1);
		ck_assert_uint_le((unsigned)w->num_sge, t->max_sge);
		ck_assert(w->sg_list >= t->sge && w->sg_list + w->num_sge <= t->sge + MS_MAX_BATCH);
		ck_assert_uint_eq(w->wr.rdma.rkey, 0xd);
		ck_assert_uint_eq(off % MS_SLOT_SIZE, 0);
		for (int q = 0; q < w->num_sge; q++) {
			const struct ibv_sge *s = &w->sg_list[q];
			uint32_t i;

			ck_assert_uint_eq(s->length, MS_SLOT_SIZE);
			ck_assert_uint_eq(s->lkey, 0x77);
			for (i = 0; i < n; i++)
				if (page_wr[i] == -1 && pages[i] == off / MS_SLOT_SIZE + (unsigned)q &&
				    s->addr == (uintptr_t)bounce_page(t, p.bounce[i]))
					break;
			ck_assert_msg(i < n, "WR %u sge %d moves no page of the request", k, q);
			page_wr[i] = (int)k;
		}
	}
	ck_assert_uint_eq(k, nwr);
	for (uint32_t i = 0; i < n; i++)
		ck_assert_msg(page_wr[i] >= 0, "page %u never moves", i);
	return nwr;
}

/* Event mode spins while spinning catches completions, gives up after
 * SPIN_MISSES empty spins in a row, and then looks again every SPIN_PROBE
 * waits; one catch restores it. */
START_TEST(spin_adapts)
{
	struct rdma_transport t = { 0 };
	unsigned spins = 0;

	for (unsigned i = 0; i < 100; i++) {
		ck_assert(ms_client_rdma_spin_worth(&t));
		ms_client_rdma_spin_result(&t, true);
	}
	for (unsigned i = 0; i < SPIN_MISSES; i++) {
		ck_assert(ms_client_rdma_spin_worth(&t));
		ms_client_rdma_spin_result(&t, false);
	}
	for (unsigned i = 0; i < 10 * SPIN_PROBE; i++) {
		if (!ms_client_rdma_spin_worth(&t))
			continue;
		spins++; /* a probe, which catches nothing either */
		ms_client_rdma_spin_result(&t, false);
	}
	ck_assert_uint_eq(spins, 10);
	while (!ms_client_rdma_spin_worth(&t))
		;
	ms_client_rdma_spin_result(&t, true); /* a probe that caught one */
	for (unsigned i = 0; i < 5; i++) {
		ck_assert(ms_client_rdma_spin_worth(&t));
		ms_client_rdma_spin_result(&t, i % 2 == 0);
	}
}
END_TEST

/* A bounce slot holds its page and then the sum, as a slot on the server. */
START_TEST(bounce_slots_mirror_the_server)
{
	struct rdma_transport t = { .arena = (uint8_t *)(uintptr_t)0x100000 };

	ck_assert_uint_ge(BOUNCE_STRIDE, MS_SLOT_SIZE);
	ck_assert_uint_eq(BOUNCE_STRIDE % 64, 0);
	ck_assert_uint_eq(MS_SLOT_SIZE % 8, 0);
	for (unsigned i = 0; i < BOUNCE_PAGES; i += 97) {
		ck_assert_ptr_eq(bounce_sum(&t, i), bounce_page(&t, i) + MS_PAGE_SIZE);
		ck_assert(bounce_page(&t, i + 1) >= bounce_sum(&t, i) + 8);
	}
	ck_assert(recv_buf(&t, 0) >= bounce_sum(&t, BOUNCE_PAGES - 1) + 8);
	ck_assert(send_buf(&t, SEND_BUFS - 1) + MS_RDMA_MSG <= t.arena + ARENA_LEN);
}
END_TEST

START_TEST(chains_coalesce_runs)
{
	struct rdma_transport *t;
	struct ms_client *c = fake_rdma_client(&t);
	uint64_t pages[MS_MAX_BATCH];

	t->arena = malloc(ARENA_LEN);
	ck_assert_ptr_nonnull(t->arena);
	/* One page: one WR, its page and sum together. */
	t->max_sge = MAX_SGE;
	pages[0] = 7;
	ck_assert_uint_eq(check_chain(t, pages, 1, IBV_WR_RDMA_READ), 1);
	/* A full batch of consecutive pages: 64 / 32 WRs. */
	for (unsigned i = 0; i < MS_MAX_BATCH; i++)
		pages[i] = 1000 + i;
	ck_assert_uint_eq(check_chain(t, pages, MS_MAX_BATCH, IBV_WR_RDMA_READ),
			  MS_MAX_BATCH / MAX_SGE);
	ck_assert_uint_eq(check_chain(t, pages, MS_MAX_BATCH, IBV_WR_RDMA_WRITE),
			  MS_MAX_BATCH / MAX_SGE);
	/* Scattered (and descending) pages: one WR each. */
	for (unsigned i = 0; i < MS_MAX_BATCH; i++)
		pages[i] = 3 * (MS_MAX_BATCH - i);
	ck_assert_uint_eq(check_chain(t, pages, MS_MAX_BATCH, IBV_WR_RDMA_WRITE), MS_MAX_BATCH);
	/* Runs 3-5, 9-10, 2, 2-3 (page 2 twice); a device allowing 2 slots per WR. */
	{
		static const uint64_t mixed[] = { 3, 4, 5, 9, 10, 2, 2, 3 };

		t->max_sge = 2;
		/* 3-5: 2; 9-10: 1; 2: 1; 2-3: 1 */
		ck_assert_uint_eq(check_chain(t, mixed, ARRAY_SIZE(mixed), IBV_WR_RDMA_WRITE), 5);
		t->max_sge = 1;
		ck_assert_uint_eq(check_chain(t, mixed, ARRAY_SIZE(mixed), IBV_WR_RDMA_READ), 8);
	}
	/* Random requests: runs of random length at random places. */
	srand(7);
	for (unsigned round = 0; round < 2000; round++) {
		uint32_t n = 1 + (uint32_t)rand() % MS_MAX_BATCH;

		for (uint32_t i = 0; i < n; i++)
			pages[i] = i && rand() % 4 ? pages[i - 1] + 1 : (uint64_t)(rand() % 200);
		t->max_sge = 1 + (unsigned)rand() % MAX_SGE;
		check_chain(t, pages, n, round % 2 ? IBV_WR_RDMA_READ : IBV_WR_RDMA_WRITE);
	}
	free(t->arena);
	free(t);
	free(c);
}
END_TEST

static Suite *client_rdma_suite(void)
{
	Suite *s = suite_create("client_rdma");
	TCase *tc = tcase_create("frame");
	TCase *tcc = tcase_create("connect");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, encode_decodes);
	tcase_add_test(tc, open_reply_plain);
	tcase_add_test(tc, open_reply_extra);
	tcase_add_test(tc, open_reply_short);
	tcase_add_test(tc, tcp_has_no_rdma_hooks);
	tcase_add_test(tc, rdma_busy_poll_op);
	tcase_add_test(tc, rdma_debug_remote);
	tcase_add_test(tc, spin_adapts);
	tcase_add_test(tc, bounce_slots_mirror_the_server);
	tcase_add_test(tc, chains_coalesce_runs);
	suite_add_tcase(s, tc);
	tcase_set_timeout(tcc, 20);
	tcase_add_test(tcc, rdma_connect_fails_fast);
	suite_add_tcase(s, tcc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(client_rdma_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/*
 * Unit tests of the client library's shared framing as the rdma:// transport
 * uses it, on any machine (no RDMA device needed): every request the encoder
 * frames decodes with the server's decoder; a REGION_OPEN reply carries
 * exactly open_extra more bytes and the transport's hook sees them (and a
 * DELETE) before the request completes; and an rdma:// connect that cannot
 * succeed fails within its timeout with a -errno, never hangs.
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

/*
 * Unit tests of memserver/proto.c: the frame header codec, the request decoder
 * for every opcode (good bodies, truncated, trailing bytes, batch counts,
 * unknown opcodes) and the STAT body round trip.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/wire.h"
#include "memserver/proto.h"

static uint8_t frame[MS_MAX_FRAME + 64];

/* Writes a header for a body of body_len bytes (already in frame) and
 * returns the frame length. */
static size_t put_hdr(uint8_t op, uint32_t count, size_t body_len)
{
	struct ms_hdr h = {
		.len = (uint32_t)(MS_HDR_LEN + body_len),
		.version = MS_PROTO_VERSION,
		.op = op,
		.id = 0x1122334455667788ull,
		.count = count,
	};

	ms_hdr_encode(frame, &h);
	return h.len;
}

static uint8_t *body(void)
{
	return frame + MS_HDR_LEN;
}

/* Decodes frame[0..len) after fixing its header's length to len. */
static enum ms_status decode_len(size_t len, struct ms_request *rq)
{
	put_le32(frame, (uint32_t)len);
	return ms_request_decode(frame, len, rq);
}

/* ---- header ----------------------------------------------------------- */

START_TEST(hdr_round_trip)
{
	struct ms_hdr h = { .len = 1000, .version = MS_PROTO_VERSION, .op = MS_OP_WRITE | MS_REPLY,
			    .id = UINT64_MAX - 5, .status = MS_ST_FENCED, .count = 17 };
	struct ms_hdr g;
	uint8_t b[MS_HDR_LEN];

	ms_hdr_encode(b, &h);
	/* The documented layout, byte for byte. */
	ck_assert_uint_eq(get_le32(b), 1000);
	ck_assert_mem_eq(b + 4, "MS", 2);
	ck_assert_uint_eq(b[6], MS_PROTO_VERSION);
	ck_assert_uint_eq(b[7], MS_OP_WRITE | MS_REPLY);
	ck_assert_uint_eq(get_le64(b + 8), UINT64_MAX - 5);
	ck_assert_uint_eq(get_le32(b + 16), MS_ST_FENCED);
	ck_assert_uint_eq(get_le32(b + 20), 17);
	ck_assert_int_eq(ms_hdr_decode(b, sizeof(b), &g), 0);
	ck_assert_mem_eq(&g, &h, sizeof(h));
}
END_TEST

START_TEST(hdr_errors)
{
	struct ms_hdr h = { .len = MS_HDR_LEN, .version = MS_PROTO_VERSION, .op = MS_OP_PING,
			    .id = 42 };
	struct ms_hdr g;
	uint8_t b[MS_HDR_LEN];

	ms_hdr_encode(b, &h);
	for (size_t n = 0; n < MS_HDR_LEN; n++)
		ck_assert_int_eq(ms_hdr_decode(b, n, &g), -EAGAIN);
	ck_assert_int_eq(ms_hdr_decode(b, MS_HDR_LEN, &g), 0);

	b[4] ^= 1; /* magic */
	memset(&g, 0, sizeof(g));
	ck_assert_int_eq(ms_hdr_decode(b, MS_HDR_LEN, &g), -EPROTO);
	ck_assert_uint_eq(g.id, 42); /* filled anyway, for the error reply */
	b[4] ^= 1;

	b[6] = MS_PROTO_VERSION + 1;
	ck_assert_int_eq(ms_hdr_decode(b, MS_HDR_LEN, &g), -EPROTONOSUPPORT);
	b[6] = 0;
	ck_assert_int_eq(ms_hdr_decode(b, MS_HDR_LEN, &g), -EPROTONOSUPPORT);
	b[6] = MS_PROTO_VERSION;

	put_le32(b, MS_HDR_LEN - 1);
	ck_assert_int_eq(ms_hdr_decode(b, MS_HDR_LEN, &g), -EPROTO);
	put_le32(b, 0);
	ck_assert_int_eq(ms_hdr_decode(b, MS_HDR_LEN, &g), -EPROTO);
	put_le32(b, MS_MAX_FRAME);
	ck_assert_int_eq(ms_hdr_decode(b, MS_HDR_LEN, &g), 0);
	put_le32(b, MS_MAX_FRAME + 1);
	ck_assert_int_eq(ms_hdr_decode(b, MS_HDR_LEN, &g), -EMSGSIZE);
	ck_assert_uint_eq(g.id, 42);
	put_le32(b, UINT32_MAX);
	ck_assert_int_eq(ms_hdr_decode(b, MS_HDR_LEN, &g), -EMSGSIZE);
}
END_TEST

/* ---- requests --------------------------------------------------------- */

START_TEST(req_hello_auth)
{
	struct ms_request rq;
	uint8_t *b = body();
	size_t len;

	put_le16(b, 1);
	put_le16(b + 2, 3);
	put_le32(b + 4, 0xabcd);
	for (unsigned i = 0; i < MS_NONCE_LEN; i++)
		b[8 + i] = (uint8_t)i;
	len = put_hdr(MS_OP_HELLO, 0, 40);
	ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_OK);
	ck_assert_uint_eq(rq.hdr.id, 0x1122334455667788ull);
	ck_assert_uint_eq(rq.hello.min_version, 1);
	ck_assert_uint_eq(rq.hello.max_version, 3);
	ck_assert_uint_eq(rq.hello.flags, 0xabcd);
	ck_assert_mem_eq(rq.hello.nonce, b + 8, MS_NONCE_LEN);
	ck_assert_int_eq(decode_len(len - 1, &rq), MS_ST_PROTO);
	ck_assert_int_eq(decode_len(len + 1, &rq), MS_ST_PROTO);
	ck_assert_int_eq(decode_len(MS_HDR_LEN, &rq), MS_ST_PROTO);

	memset(b, 0x5a, MS_MAC_LEN);
	len = put_hdr(MS_OP_AUTH, 0, MS_MAC_LEN);
	ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_OK);
	ck_assert_mem_eq(rq.auth.mac, b, MS_MAC_LEN);
	ck_assert_int_eq(decode_len(len - 1, &rq), MS_ST_PROTO);
	ck_assert_int_eq(decode_len(len + 8, &rq), MS_ST_PROTO);
}
END_TEST

START_TEST(req_region_ops)
{
	static const uint8_t ops[] = { MS_OP_REGION_OPEN, MS_OP_REGION_DELETE };
	struct ms_request rq;
	uint8_t *b = body();
	size_t len;

	put_le64(b, 77);
	put_le64(b + 8, 1ull << 30);
	len = put_hdr(MS_OP_REGION_CREATE, 0, 16);
	ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_OK);
	ck_assert_uint_eq(rq.create.region, 77);
	ck_assert_uint_eq(rq.create.size, 1ull << 30);
	ck_assert_int_eq(decode_len(len - 8, &rq), MS_ST_PROTO);
	ck_assert_int_eq(decode_len(len + 1, &rq), MS_ST_PROTO);

	for (unsigned i = 0; i < ARRAY_SIZE(ops); i++) {
		put_le64(b, 0xfeedull);
		memset(b + 8, 0xc3, MS_TOKEN_LEN);
		len = put_hdr(ops[i], 0, 8 + MS_TOKEN_LEN);
		ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_OK);
		ck_assert_uint_eq(rq.open.region, 0xfeed);
		ck_assert_mem_eq(rq.open.token, b + 8, MS_TOKEN_LEN);
		ck_assert_int_eq(decode_len(len - 1, &rq), MS_ST_PROTO);
		ck_assert_int_eq(decode_len(len + 1, &rq), MS_ST_PROTO);
		ck_assert_int_eq(decode_len(MS_HDR_LEN + 8, &rq), MS_ST_PROTO);
	}

	len = put_hdr(MS_OP_STAT, 0, 0);
	ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_OK);
	ck_assert_int_eq(decode_len(len + 1, &rq), MS_ST_PROTO);

	put_le64(b, 5);
	put_le64(b + 8, 9);
	len = put_hdr(MS_OP_DEBUG_CORRUPT, 0, 16);
	ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_OK);
	ck_assert_uint_eq(rq.corrupt.region, 5);
	ck_assert_uint_eq(rq.corrupt.page, 9);
	ck_assert_int_eq(decode_len(len - 1, &rq), MS_ST_PROTO);
	ck_assert_int_eq(decode_len(len + 1, &rq), MS_ST_PROTO);
}
END_TEST

START_TEST(req_ping)
{
	struct ms_request rq;
	uint8_t *b = body();
	size_t len;

	put_le32(b, 200000);
	put_le32(b + 4, 0);
	len = put_hdr(MS_OP_PING, 0, 8);
	ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_OK);
	ck_assert_uint_eq(rq.ping.delay_us, 200000);
	put_le32(b, MS_MAX_PING_DELAY_US);
	ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_OK);
	put_le32(b, MS_MAX_PING_DELAY_US + 1);
	ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_INVAL);
	put_le32(b, 0);
	ck_assert_int_eq(decode_len(len - 4, &rq), MS_ST_PROTO);
	ck_assert_int_eq(decode_len(MS_HDR_LEN, &rq), MS_ST_PROTO);
	ck_assert_int_eq(decode_len(len + 4, &rq), MS_ST_PROTO);
}
END_TEST

/* Builds a READ (write=false) or WRITE of n pages; returns the frame length. */
static size_t build_io(bool write, uint32_t n)
{
	uint8_t *b = body();
	size_t desc = write ? 16 : 8, len = 16 + (size_t)n * desc;

	put_le64(b, 3);
	put_le64(b + 8, 4);
	for (uint32_t i = 0; i < n; i++) {
		put_le64(b + 16 + desc * i, 1000 + i);
		if (write)
			put_le64(b + 24 + desc * i, 0x5000 + i);
	}
	if (write) {
		for (uint32_t i = 0; i < n; i++)
			memset(b + len + (size_t)i * MS_PAGE_SIZE, (int)i, MS_PAGE_SIZE);
		len += (size_t)n * MS_PAGE_SIZE;
	}
	return put_hdr(write ? MS_OP_WRITE : MS_OP_READ, n, len);
}

START_TEST(req_read_write)
{
	struct ms_request rq;
	static const uint32_t counts[] = { 1, 2, 63, MS_MAX_BATCH };

	for (unsigned w = 0; w < 2; w++) {
		for (unsigned k = 0; k < ARRAY_SIZE(counts); k++) {
			uint32_t n = counts[k];
			size_t len = build_io(w, n);

			ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_OK);
			ck_assert_uint_eq(rq.hdr.count, n);
			ck_assert_uint_eq(rq.io.region, 3);
			ck_assert_uint_eq(rq.io.epoch, 4);
			ck_assert_ptr_eq(rq.io.descs, body() + 16);
			ck_assert_uint_eq(get_le64(rq.io.descs + (n - 1) * (w ? 16 : 8)),
					  1000 + n - 1);
			if (w) {
				ck_assert_ptr_eq(rq.io.data, body() + 16 + n * 16);
				ck_assert_uint_eq(rq.io.data[(size_t)(n - 1) * MS_PAGE_SIZE],
						  (n - 1) & 0xff);
				ck_assert_uint_eq(get_le64(rq.io.descs + 8 + 16 * (n - 1)),
						  0x5000 + n - 1);
			} else {
				ck_assert_ptr_null(rq.io.data);
			}
			/* Truncated by one byte, by a whole page, trailing byte. */
			ck_assert_int_eq(decode_len(len - 1, &rq), MS_ST_PROTO);
			if (w)
				ck_assert_int_eq(decode_len(len - MS_PAGE_SIZE, &rq), MS_ST_PROTO);
			ck_assert_int_eq(decode_len(MS_HDR_LEN + 8, &rq), MS_ST_PROTO);
			ck_assert_int_eq(decode_len(len + 1, &rq), MS_ST_PROTO);
		}
	}
}
END_TEST

START_TEST(req_io_counts)
{
	struct ms_request rq;
	size_t len;

	for (unsigned w = 0; w < 2; w++) {
		uint8_t op = w ? MS_OP_WRITE : MS_OP_READ;

		/* count 0: nothing to do is an invalid argument. */
		len = build_io(w, 1);
		put_le32(frame + 20, 0);
		ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_INVAL);
		len = put_hdr(op, 0, 16);
		ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_INVAL);
		/* count above the batch limit, even with a consistent body. */
		if (!w) {
			len = build_io(false, MS_MAX_BATCH + 1);
			ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_INVAL);
		}
		len = build_io(w, 2);
		put_le32(frame + 20, MS_MAX_BATCH + 1);
		ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_INVAL);
		put_le32(frame + 20, UINT32_MAX);
		ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_INVAL);
		/* count larger than the body holds. */
		put_le32(frame + 20, 3);
		ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_PROTO);
		/* count smaller than the body holds: trailing bytes. */
		put_le32(frame + 20, 1);
		ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_PROTO);
	}
	/* A count on an opcode that takes none. */
	len = put_hdr(MS_OP_STAT, 1, 0);
	ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_PROTO);
	put_le32(body(), 0);
	put_le32(body() + 4, 0);
	len = put_hdr(MS_OP_PING, 2, 8);
	ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_PROTO);
}
END_TEST

START_TEST(req_unknown_and_inconsistent)
{
	static const uint8_t unknown[] = { 0, MS_OP_MAX, 42, 0x7f, MS_REPLY | MS_OP_READ, 0xff };
	struct ms_request rq;
	size_t len;

	for (unsigned i = 0; i < ARRAY_SIZE(unknown); i++) {
		len = put_hdr(unknown[i], 0, 0);
		ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_OPNOTSUPP);
		memset(body(), 0, 16);
		len = put_hdr(unknown[i], 0, 16);
		ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_OPNOTSUPP);
	}
	/* The header's length must be the frame's length. */
	len = put_hdr(MS_OP_STAT, 0, 0);
	ck_assert_int_eq(ms_request_decode(frame, len + 8, &rq), MS_ST_PROTO);
	put_le32(frame, MS_HDR_LEN + 8);
	ck_assert_int_eq(ms_request_decode(frame, MS_HDR_LEN, &rq), MS_ST_PROTO);
	/* A frame shorter than a header, and bad header fields. */
	len = put_hdr(MS_OP_STAT, 0, 0);
	ck_assert_int_eq(ms_request_decode(frame, MS_HDR_LEN - 1, &rq), MS_ST_PROTO);
	frame[5] ^= 0xff;
	ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_PROTO);
	frame[5] ^= 0xff;
	frame[6] = MS_PROTO_VERSION + 1;
	ck_assert_int_eq(ms_request_decode(frame, len, &rq), MS_ST_PROTO);
}
END_TEST

/* ---- STAT body -------------------------------------------------------- */

START_TEST(stat_round_trip)
{
	static struct ms_stat s, d;
	static uint8_t b[MS_STAT_WIRE_LEN + 16];
	size_t n;

	memset(&s, 0, sizeof(s));
	s.capacity = 1ull << 40;
	s.reserved = 123ull << 20;
	s.resident = 4096 * 7;
	s.regions = 3;
	s.connections = 9;
	s.uptime_ns = 987654321;
	for (unsigned op = 0; op < MS_OP_MAX; op++) {
		s.ops[op].count = op * 1000 + 1;
		s.ops[op].errors = op;
		s.ops[op].bytes_in = op * 77;
		s.ops[op].bytes_out = UINT64_MAX - op;
		for (unsigned i = 0; i < HIST_BUCKETS; i++)
			s.ops[op].latency.count[i] = (uint64_t)op * HIST_BUCKETS + i;
	}
	n = ms_stat_encode(&s, b);
	ck_assert_uint_eq(n, MS_STAT_WIRE_LEN);
	memset(&d, 0xee, sizeof(d));
	ck_assert_int_eq(ms_stat_decode(b, n, &d), 0);
	ck_assert_mem_eq(&d, &s, sizeof(s));

	ck_assert_int_eq(ms_stat_decode(b, n - 1, &d), -EPROTO);
	ck_assert_int_eq(ms_stat_decode(b, n + 1, &d), -EPROTO);
	ck_assert_int_eq(ms_stat_decode(b, 0, &d), -EPROTO);
	/* A peer with another opcode or bucket count is refused. */
	put_le32(b, MS_OP_MAX + 1);
	ck_assert_int_eq(ms_stat_decode(b, n, &d), -EPROTO);
	put_le32(b, MS_OP_MAX);
	put_le32(b + 4, HIST_BUCKETS - 1);
	ck_assert_int_eq(ms_stat_decode(b, n, &d), -EPROTO);
}
END_TEST

START_TEST(names_and_errnos)
{
	ck_assert_str_eq(ms_op_name(MS_OP_READ), "read");
	ck_assert_str_eq(ms_op_name(200), "unknown");
	for (unsigned op = 1; op < MS_OP_MAX; op++)
		ck_assert_ptr_nonnull(ms_op_name(op));
	for (unsigned st = 0; st < MS_ST_MAX; st++)
		ck_assert_ptr_nonnull(ms_status_name(st));
	ck_assert_str_eq(ms_status_name(999), "unknown status");
	ck_assert_int_eq(ms_status_to_errno(MS_ST_OK), 0);
	ck_assert_int_eq(ms_status_to_errno(MS_ST_AUTH), -EPERM);
	ck_assert_int_eq(ms_status_to_errno(MS_ST_FENCED), -ESTALE);
	ck_assert_int_eq(ms_status_to_errno(MS_ST_ACCESS), -EACCES);
	ck_assert_int_eq(ms_status_to_errno(MS_ST_NOSPC), -ENOSPC);
	ck_assert_int_eq(ms_status_to_errno(MS_ST_CHECKSUM), -EBADMSG);
	ck_assert_int_eq(ms_status_to_errno(MS_ST_RANGE), -ERANGE);
	ck_assert_int_eq(ms_status_to_errno(MS_ST_OPNOTSUPP), -EOPNOTSUPP);
	ck_assert_int_eq(ms_status_to_errno(MS_ST_MAX), -EPROTO);
	for (unsigned st = 1; st < MS_ST_MAX; st++)
		ck_assert_int_lt(ms_status_to_errno(st), 0);
}
END_TEST

START_TEST(page_sum)
{
	static uint8_t page[MS_PAGE_SIZE];
	uint64_t a, b;

	memset(page, 0, sizeof(page));
	a = ms_page_sum(page);
	ck_assert_uint_eq(a, ms_page_sum(page));
	page[4095] = 1;
	b = ms_page_sum(page);
	ck_assert_uint_ne(a, b);
	page[4095] = 0;
	page[123] ^= 0x10;
	ck_assert_uint_ne(ms_page_sum(page), a);
}
END_TEST

static Suite *proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("codec");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, hdr_round_trip);
	tcase_add_test(tc, hdr_errors);
	tcase_add_test(tc, req_hello_auth);
	tcase_add_test(tc, req_region_ops);
	tcase_add_test(tc, req_ping);
	tcase_add_test(tc, req_read_write);
	tcase_add_test(tc, req_io_counts);
	tcase_add_test(tc, req_unknown_and_inconsistent);
	tcase_add_test(tc, stat_round_trip);
	tcase_add_test(tc, names_and_errnos);
	tcase_add_test(tc, page_sum);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(proto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

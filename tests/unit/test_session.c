/*
 * Unit tests of memserver/session.c, driven with hand-built frames on an
 * in-process store (no sockets): the handshake with and without a cluster
 * key, what is refused before authentication, error replies that keep the
 * connection, region access checks, all-or-nothing write batches, fencing and
 * the test hook.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/auth.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"
#include "memserver/proto.h"
#include "memserver/session.h"
#include "memserver/store.h"

static const char label_client[] = "legato-ms-c";
static const char label_server[] = "legato-ms-s";

static struct ms_store *store;
static struct auth_key key;
static struct ms_service svc;
static struct ms_op_stats stats[MS_OP_MAX];
static struct ms_session sess;
static struct buf out;
static uint8_t frame[MS_MAX_FRAME];
static uint64_t next_id = 100;

/* The last reply: header, body, and what ms_session_handle returned. */
static struct ms_hdr rh;
static uint8_t rbody[MS_MAX_FRAME];
static size_t rlen;
static enum ms_verdict verdict;
static uint32_t defer_us;

static void setup_common(bool with_key, bool hooks)
{
	ck_assert_int_eq(ms_store_create(1ull << 30, &store), 0);
	memset(&key, 0, sizeof(key));
	key.len = 32;
	memcpy(key.bytes, "0123456789abcdef0123456789abcdef", 32);
	svc = (struct ms_service){
		.store = store,
		.key = with_key ? &key : NULL,
		.test_hooks = hooks,
		.start_ns = now_ns(),
	};
	memset(stats, 0, sizeof(stats));
	ms_session_init(&sess, &svc, stats);
	memset(&out, 0, sizeof(out));
}

static void setup_open(void)
{
	setup_common(false, false);
}

static void setup_keyed(void)
{
	setup_common(true, false);
}

static void setup_hooks(void)
{
	setup_common(false, true);
}

static void teardown(void)
{
	ms_session_release(&sess);
	buf_free(&out);
	ms_store_destroy(store);
}

/*
 * Sends one frame of op with body (blen bytes) and count; expects exactly one
 * reply (or none for a deferred PING) and leaves it in rh/rbody/rlen.
 * Returns the reply status (or -1 when nothing was appended).
 */
static int call_on(struct ms_session *s, uint8_t op, uint32_t count, const void *body,
		   size_t blen)
{
	struct ms_hdr h = { .len = (uint32_t)(MS_HDR_LEN + blen), .version = MS_PROTO_VERSION,
			    .op = op, .id = next_id++, .count = count };

	ms_hdr_encode(frame, &h);
	if (blen)
		memmove(frame + MS_HDR_LEN, body, blen);
	defer_us = 0;
	verdict = ms_session_handle(s, frame, h.len, &out, &defer_us);
	if (buf_len(&out) == 0)
		return -1;
	ck_assert_uint_ge(buf_len(&out), MS_HDR_LEN);
	ck_assert_int_eq(ms_hdr_decode(buf_head(&out), buf_len(&out), &rh), 0);
	/* Exactly one whole reply, echoing the request. */
	ck_assert_uint_eq(rh.len, buf_len(&out));
	ck_assert_uint_eq(rh.op, op | MS_REPLY);
	ck_assert_uint_eq(rh.id, h.id);
	rlen = rh.len - MS_HDR_LEN;
	memcpy(rbody, buf_head(&out) + MS_HDR_LEN, rlen);
	buf_consume(&out, rh.len);
	return (int)rh.status;
}

static int call(uint8_t op, uint32_t count, const void *body, size_t blen)
{
	return call_on(&sess, op, count, body, blen);
}

static uint8_t cnonce[MS_NONCE_LEN], snonce[MS_NONCE_LEN];

static int hello_on(struct ms_session *s, uint16_t minv, uint16_t maxv)
{
	uint8_t b[40];
	int st;

	put_le16(b, minv);
	put_le16(b + 2, maxv);
	put_le32(b + 4, 0);
	for (unsigned i = 0; i < MS_NONCE_LEN; i++)
		cnonce[i] = (uint8_t)(i * 3 + 1);
	memcpy(b + 8, cnonce, MS_NONCE_LEN);
	st = call_on(s, MS_OP_HELLO, 0, b, sizeof(b));
	if (st == MS_ST_OK) {
		ck_assert_uint_eq(rlen, 48);
		ck_assert_uint_eq(get_le16(rbody), MS_PROTO_VERSION);
		ck_assert_uint_eq(get_le32(rbody + 4), MS_PAGE_SIZE);
		ck_assert_uint_eq(get_le32(rbody + 8), MS_MAX_BATCH);
		memcpy(snonce, rbody + 16, MS_NONCE_LEN);
	}
	return st;
}

static int hello(void)
{
	return hello_on(&sess, MS_PROTO_VERSION, MS_PROTO_VERSION);
}

static int auth_with(const struct auth_key *k)
{
	uint8_t mac[MS_MAC_LEN];

	auth_hmac(k, label_client, sizeof(label_client), snonce, MS_NONCE_LEN, cnonce,
		  MS_NONCE_LEN, mac);
	return call(MS_OP_AUTH, 0, mac, sizeof(mac));
}

static void authenticate(void)
{
	uint8_t want[MS_MAC_LEN];

	ck_assert_int_eq(hello(), MS_ST_OK);
	ck_assert_uint_eq(get_le16(rbody + 2), MS_AUTH_HMAC_SHA256);
	ck_assert_int_eq(auth_with(&key), MS_ST_OK);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	ck_assert_uint_eq(rlen, MS_MAC_LEN);
	/* The server proves the key too. */
	auth_hmac(&key, label_server, sizeof(label_server), cnonce, MS_NONCE_LEN, snonce,
		  MS_NONCE_LEN, want);
	ck_assert_mem_eq(rbody, want, MS_MAC_LEN);
}

static int create(uint64_t id, uint64_t size, uint8_t token[MS_TOKEN_LEN])
{
	uint8_t b[16];
	int st;

	put_le64(b, id);
	put_le64(b + 8, size);
	st = call(MS_OP_REGION_CREATE, 0, b, sizeof(b));
	if (st == MS_ST_OK) {
		ck_assert_uint_eq(rlen, MS_TOKEN_LEN);
		memcpy(token, rbody, MS_TOKEN_LEN);
	}
	return st;
}

static int open_on(struct ms_session *s, uint64_t id, const uint8_t token[MS_TOKEN_LEN],
		   uint64_t *epoch)
{
	uint8_t b[8 + MS_TOKEN_LEN];
	int st;

	put_le64(b, id);
	memcpy(b + 8, token, MS_TOKEN_LEN);
	st = call_on(s, MS_OP_REGION_OPEN, 0, b, sizeof(b));
	if (st == MS_ST_OK) {
		ck_assert_uint_eq(rlen, 16);
		*epoch = get_le64(rbody);
	}
	return st;
}

static int delete_region(uint64_t id, const uint8_t token[MS_TOKEN_LEN])
{
	uint8_t b[8 + MS_TOKEN_LEN];

	put_le64(b, id);
	memcpy(b + 8, token, MS_TOKEN_LEN);
	return call(MS_OP_REGION_DELETE, 0, b, sizeof(b));
}

static uint8_t iobody[MS_MAX_FRAME];

static void fill(uint8_t *page, unsigned seed)
{
	for (unsigned i = 0; i < MS_PAGE_SIZE; i++)
		page[i] = (uint8_t)(seed + i * 13);
}

/* WRITE of n pages with pattern seed+i; bad_sum >= 0 spoils that page's sum. */
static int write_on(struct ms_session *s, uint64_t id, uint64_t epoch, const uint64_t *pages,
		    uint32_t n, unsigned seed, int bad_sum)
{
	uint8_t *data = iobody + 16 + 16 * n;

	put_le64(iobody, id);
	put_le64(iobody + 8, epoch);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *pg = data + (size_t)i * MS_PAGE_SIZE;

		fill(pg, seed + i);
		put_le64(iobody + 16 + 16 * i, pages[i]);
		put_le64(iobody + 24 + 16 * i, ms_page_sum(pg) + ((int)i == bad_sum));
	}
	return call_on(s, MS_OP_WRITE, n, iobody, 16 + (size_t)n * (16 + MS_PAGE_SIZE));
}

static int read_on(struct ms_session *s, uint64_t id, uint64_t epoch, const uint64_t *pages,
		   uint32_t n)
{
	put_le64(iobody, id);
	put_le64(iobody + 8, epoch);
	for (uint32_t i = 0; i < n; i++)
		put_le64(iobody + 16 + 8 * i, pages[i]);
	return call_on(s, MS_OP_READ, n, iobody, 16 + 8 * (size_t)n);
}

/* Checks the last READ reply: page i holds seed+i, or is zero-flagged when
 * seeds[i] < 0. */
static void check_read(uint32_t n, const int *seeds)
{
	size_t off = 16 * (size_t)n;

	ck_assert_uint_eq(rh.count, n);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t sum = get_le64(rbody + 16 * i);
		uint32_t flags = get_le32(rbody + 16 * i + 8);

		if (seeds[i] < 0) {
			ck_assert_uint_eq(flags, MS_PAGE_ZERO);
			continue;
		}
		{
			uint8_t want[MS_PAGE_SIZE];

			fill(want, (unsigned)seeds[i]);
			ck_assert_uint_eq(flags, 0);
			ck_assert_uint_le(off + MS_PAGE_SIZE, rlen);
			ck_assert_mem_eq(rbody + off, want, MS_PAGE_SIZE);
			ck_assert_uint_eq(sum, ms_page_sum(want));
			off += MS_PAGE_SIZE;
		}
	}
	ck_assert_uint_eq(off, rlen);
}

/* ---- handshake -------------------------------------------------------- */

START_TEST(hello_without_key_authenticates)
{
	uint8_t token[MS_TOKEN_LEN];
	uint8_t ping[8] = { 0 };

	ck_assert_int_eq(hello(), MS_ST_OK);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	ck_assert_uint_eq(get_le16(rbody + 2), MS_AUTH_NONE);
	ck_assert(sess.authenticated);
	ck_assert_int_eq(call(MS_OP_STAT, 0, NULL, 0), MS_ST_OK);
	ck_assert_uint_eq(rlen, MS_STAT_WIRE_LEN);
	ck_assert_int_eq(create(1, 1 << 20, token), MS_ST_OK);
	ck_assert_int_eq(call(MS_OP_PING, 0, ping, 8), MS_ST_OK);
	ck_assert_uint_eq(rlen, 0);
	/* A delayed PING is left to the caller. */
	put_le32(ping, 200000);
	ck_assert_int_eq(call(MS_OP_PING, 0, ping, 8), -1);
	ck_assert_int_eq(verdict, MS_V_DEFER);
	ck_assert_uint_eq(defer_us, 200000);
	put_le32(ping, MS_MAX_PING_DELAY_US + 1);
	ck_assert_int_eq(call(MS_OP_PING, 0, ping, 8), MS_ST_INVAL);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	/* AUTH on a server without a key is a protocol error. */
	ck_assert_int_eq(call(MS_OP_AUTH, 0, token, MS_MAC_LEN), MS_ST_PROTO);
	ck_assert_int_eq(verdict, MS_V_CLOSE);
}
END_TEST

START_TEST(nothing_before_hello)
{
	uint64_t page = 0;

	/* Even an open server wants HELLO first. */
	ck_assert_int_eq(read_on(&sess, 1, 1, &page, 1), MS_ST_AUTH);
	ck_assert_int_eq(verdict, MS_V_CLOSE);
}
END_TEST

START_TEST(version_mismatch_closes)
{
	ck_assert_int_eq(hello_on(&sess, MS_PROTO_VERSION + 1, MS_PROTO_VERSION + 5),
			 MS_ST_VERSION);
	ck_assert_int_eq(verdict, MS_V_CLOSE);
	ck_assert(!sess.authenticated);
}
END_TEST

START_TEST(keyed_refuses_before_auth)
{
	static const uint8_t ops[] = { MS_OP_STAT, MS_OP_REGION_CREATE, MS_OP_PING, MS_OP_READ };
	uint8_t token[MS_TOKEN_LEN] = { 0 }, ping[8] = { 0 };
	uint64_t page = 0;

	for (unsigned i = 0; i < ARRAY_SIZE(ops); i++) {
		struct ms_session s2;

		ms_session_init(&s2, &svc, stats);
		ck_assert_int_eq(hello_on(&s2, 1, 1), MS_ST_OK);
		ck_assert_uint_eq(get_le16(rbody + 2), MS_AUTH_HMAC_SHA256);
		ck_assert(!s2.authenticated);
		switch (ops[i]) {
		case MS_OP_STAT:
			ck_assert_int_eq(call_on(&s2, MS_OP_STAT, 0, NULL, 0), MS_ST_AUTH);
			break;
		case MS_OP_REGION_CREATE:
			put_le64(token, 1);
			put_le64(token + 8, 4096);
			ck_assert_int_eq(call_on(&s2, MS_OP_REGION_CREATE, 0, token, 16),
					 MS_ST_AUTH);
			break;
		case MS_OP_PING:
			ck_assert_int_eq(call_on(&s2, MS_OP_PING, 0, ping, 8), MS_ST_AUTH);
			break;
		default:
			ck_assert_int_eq(read_on(&s2, 1, 1, &page, 1), MS_ST_AUTH);
		}
		ck_assert_int_eq(verdict, MS_V_CLOSE);
		ms_session_release(&s2);
	}
	/* Malformed or unknown requests before authentication close too. */
	ck_assert_int_eq(hello(), MS_ST_OK);
	ck_assert_int_eq(call(MS_OP_STAT, 0, ping, 3), MS_ST_PROTO);
	ck_assert_int_eq(verdict, MS_V_CLOSE);
	ck_assert_int_eq(call(77, 0, NULL, 0), MS_ST_OPNOTSUPP);
	ck_assert_int_eq(verdict, MS_V_CLOSE);
}
END_TEST

START_TEST(bad_mac_closes)
{
	struct auth_key wrong = key;

	ck_assert_int_eq(hello(), MS_ST_OK);
	wrong.bytes[0] ^= 1;
	ck_assert_int_eq(auth_with(&wrong), MS_ST_AUTH);
	ck_assert_int_eq(verdict, MS_V_CLOSE);
	ck_assert(!sess.authenticated);
	ck_assert_uint_eq(rlen, 0);
	ck_assert_uint_eq(stats[MS_OP_AUTH].errors, 1);
}
END_TEST

START_TEST(auth_before_hello_closes)
{
	uint8_t mac[MS_MAC_LEN] = { 0 };

	ck_assert_int_eq(call(MS_OP_AUTH, 0, mac, sizeof(mac)), MS_ST_PROTO);
	ck_assert_int_eq(verdict, MS_V_CLOSE);
	ck_assert(!sess.authenticated);
}
END_TEST

/* A MAC made from another HELLO's nonces (a replay) is refused. */
START_TEST(replayed_mac_refused)
{
	uint8_t mac[MS_MAC_LEN];

	ck_assert_int_eq(hello(), MS_ST_OK);
	auth_hmac(&key, label_client, sizeof(label_client), snonce, MS_NONCE_LEN, cnonce,
		  MS_NONCE_LEN, mac);
	ck_assert_int_eq(hello(), MS_ST_OK); /* new server nonce */
	ck_assert_int_eq(call(MS_OP_AUTH, 0, mac, sizeof(mac)), MS_ST_AUTH);
	ck_assert_int_eq(verdict, MS_V_CLOSE);
}
END_TEST

START_TEST(good_mac_works)
{
	uint8_t token[MS_TOKEN_LEN];
	uint64_t epoch, page = 3;
	int zero[1] = { -1 };

	authenticate();
	ck_assert(sess.authenticated);
	ck_assert_int_eq(create(5, 16 * MS_PAGE_SIZE, token), MS_ST_OK);
	ck_assert_int_eq(open_on(&sess, 5, token, &epoch), MS_ST_OK);
	ck_assert_int_eq(read_on(&sess, 5, epoch, &page, 1), MS_ST_OK);
	check_read(1, zero);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
}
END_TEST

/* ---- errors after authentication keep the connection ------------------ */

START_TEST(malformed_after_auth_continues)
{
	uint8_t junk[64] = { 0 }, ping[8] = { 0 };
	uint64_t page = 0;

	ck_assert_int_eq(hello(), MS_ST_OK);
	/* Truncated CREATE, STAT with a body, READ with count 0. */
	ck_assert_int_eq(call(MS_OP_REGION_CREATE, 0, junk, 9), MS_ST_PROTO);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	ck_assert_uint_eq(rlen, 0);
	ck_assert_int_eq(call(MS_OP_STAT, 0, junk, 1), MS_ST_PROTO);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	ck_assert_int_eq(call(MS_OP_READ, 0, junk, 16), MS_ST_INVAL);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	ck_assert_int_eq(call(MS_OP_READ, 2, junk, 24), MS_ST_PROTO);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	ck_assert_int_eq(call(MS_OP_PING, 0, ping, 8), MS_ST_OK);
	ck_assert_int_eq(read_on(&sess, 1, 1, &page, 1), MS_ST_NOTOPEN);
	ck_assert_uint_ge(stats[MS_OP_REGION_CREATE].errors, 1);
	ck_assert_uint_ge(stats[MS_OP_PING].count, 1);
}
END_TEST

START_TEST(unknown_opcode)
{
	uint8_t ping[8] = { 0 };

	ck_assert_int_eq(hello(), MS_ST_OK);
	ck_assert_int_eq(call(0, 0, NULL, 0), MS_ST_OPNOTSUPP);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	ck_assert_int_eq(call(MS_OP_MAX, 0, ping, 8), MS_ST_OPNOTSUPP);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	ck_assert_int_eq(call(0x7f, 0, NULL, 0), MS_ST_OPNOTSUPP);
	ck_assert_int_eq(call(MS_OP_PING, 0, ping, 8), MS_ST_OK);
	ck_assert_uint_eq(stats[0].count, 3);
	ck_assert_uint_eq(stats[0].errors, 3);
}
END_TEST

START_TEST(region_access_checks)
{
	uint8_t token[MS_TOKEN_LEN], bad[MS_TOKEN_LEN];
	uint64_t epoch, pages[2] = { 0, 16 };

	ck_assert_int_eq(hello(), MS_ST_OK);
	ck_assert_int_eq(create(7, 16 * MS_PAGE_SIZE, token), MS_ST_OK);
	ck_assert_int_eq(create(7, 16 * MS_PAGE_SIZE, bad), MS_ST_EXIST);
	ck_assert_int_eq(create(8, 100, bad), MS_ST_INVAL);
	ck_assert_int_eq(create(8, 2ull << 30, bad), MS_ST_NOSPC);
	/* Not opened on this connection. */
	ck_assert_int_eq(read_on(&sess, 7, 1, pages, 1), MS_ST_NOTOPEN);
	ck_assert_int_eq(write_on(&sess, 7, 1, pages, 1, 0, -1), MS_ST_NOTOPEN);
	memcpy(bad, token, sizeof(bad));
	bad[0] ^= 0x80;
	ck_assert_int_eq(open_on(&sess, 7, bad, &epoch), MS_ST_ACCESS);
	ck_assert_int_eq(open_on(&sess, 99, token, &epoch), MS_ST_NOENT);
	ck_assert_int_eq(delete_region(7, bad), MS_ST_ACCESS);
	ck_assert_int_eq(open_on(&sess, 7, token, &epoch), MS_ST_OK);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	/* Another epoch than the one this connection got. */
	ck_assert_int_eq(read_on(&sess, 7, epoch + 1, pages, 1), MS_ST_FENCED);
	ck_assert_int_eq(read_on(&sess, 7, epoch - 1, pages, 1), MS_ST_FENCED);
	/* Page 16 is one past the end. */
	ck_assert_int_eq(read_on(&sess, 7, epoch, pages, 2), MS_ST_RANGE);
	pages[1] = UINT64_MAX;
	ck_assert_int_eq(read_on(&sess, 7, epoch, pages, 2), MS_ST_RANGE);
	ck_assert_int_eq(write_on(&sess, 7, epoch, pages, 2, 0, -1), MS_ST_RANGE);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	/* The range error wrote nothing. */
	ck_assert_int_eq(read_on(&sess, 7, epoch, pages, 1), MS_ST_OK);
	{
		int want[1] = { -1 };

		check_read(1, want);
	}
}
END_TEST

START_TEST(write_batch_all_or_nothing)
{
	uint8_t token[MS_TOKEN_LEN];
	uint64_t epoch, pages[MS_MAX_BATCH];
	int seeds[MS_MAX_BATCH];

	for (unsigned i = 0; i < MS_MAX_BATCH; i++)
		pages[i] = i * 2;
	ck_assert_int_eq(hello(), MS_ST_OK);
	ck_assert_int_eq(create(1, 256 * MS_PAGE_SIZE, token), MS_ST_OK);
	ck_assert_int_eq(open_on(&sess, 1, token, &epoch), MS_ST_OK);

	/* One bad checksum anywhere in the batch rejects all of it. */
	ck_assert_int_eq(write_on(&sess, 1, epoch, pages, 3, 10, 1), MS_ST_CHECKSUM);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	ck_assert_int_eq(write_on(&sess, 1, epoch, pages, MS_MAX_BATCH, 10, MS_MAX_BATCH - 1),
			 MS_ST_CHECKSUM);
	ck_assert_int_eq(read_on(&sess, 1, epoch, pages, MS_MAX_BATCH), MS_ST_OK);
	for (unsigned i = 0; i < MS_MAX_BATCH; i++)
		seeds[i] = -1;
	check_read(MS_MAX_BATCH, seeds);
	{
		struct ms_stat s;

		memset(&s, 0, sizeof(s));
		ms_store_stat(store, &s);
		ck_assert_uint_eq(s.resident, 0);
	}

	/* A good full batch lands whole. */
	ck_assert_int_eq(write_on(&sess, 1, epoch, pages, MS_MAX_BATCH, 10, -1), MS_ST_OK);
	ck_assert_uint_eq(rh.count, MS_MAX_BATCH);
	ck_assert_uint_eq(rlen, 0);
	ck_assert_int_eq(read_on(&sess, 1, epoch, pages, MS_MAX_BATCH), MS_ST_OK);
	for (unsigned i = 0; i < MS_MAX_BATCH; i++)
		seeds[i] = (int)(10 + i);
	check_read(MS_MAX_BATCH, seeds);

	/* A rejected batch does not touch pages that were already written. */
	ck_assert_int_eq(write_on(&sess, 1, epoch, pages, 4, 50, 3), MS_ST_CHECKSUM);
	ck_assert_int_eq(read_on(&sess, 1, epoch, pages, 4), MS_ST_OK);
	check_read(4, seeds);

	/* Same page twice in one batch: the later copy wins. */
	{
		uint64_t twice[2] = { 100, 100 };
		int want[1] = { 71 };

		ck_assert_int_eq(write_on(&sess, 1, epoch, twice, 2, 70, -1), MS_ST_OK);
		ck_assert_int_eq(read_on(&sess, 1, epoch, twice, 1), MS_ST_OK);
		check_read(1, want);
	}
	/* Mixed written and never-written pages in one READ. */
	{
		uint64_t mix[3] = { 0, 1, 2 };
		int want[3] = { 10, -1, 11 };

		ck_assert_int_eq(read_on(&sess, 1, epoch, mix, 3), MS_ST_OK);
		check_read(3, want);
	}
}
END_TEST

START_TEST(fencing_between_sessions)
{
	struct ms_session other;
	uint8_t token[MS_TOKEN_LEN];
	uint64_t e1, e2, page = 1;

	ms_session_init(&other, &svc, stats);
	ck_assert_int_eq(hello(), MS_ST_OK);
	ck_assert_int_eq(hello_on(&other, 1, 1), MS_ST_OK);
	ck_assert_int_eq(create(3, 8 * MS_PAGE_SIZE, token), MS_ST_OK);
	ck_assert_int_eq(open_on(&sess, 3, token, &e1), MS_ST_OK);
	ck_assert_int_eq(write_on(&sess, 3, e1, &page, 1, 1, -1), MS_ST_OK);
	ck_assert_int_eq(open_on(&other, 3, token, &e2), MS_ST_OK);
	ck_assert_uint_gt(e2, e1);
	/* The first holder can neither write nor read any more. */
	ck_assert_int_eq(write_on(&sess, 3, e1, &page, 1, 2, -1), MS_ST_FENCED);
	ck_assert_int_eq(read_on(&sess, 3, e1, &page, 1), MS_ST_FENCED);
	/* Using the newer epoch it was never given does not help either. */
	ck_assert_int_eq(read_on(&sess, 3, e2, &page, 1), MS_ST_FENCED);
	ck_assert_int_eq(read_on(&other, 3, e2, &page, 1), MS_ST_OK);
	{
		int want[1] = { 1 };

		check_read(1, want);
	}
	/* Reopening takes the region back. */
	ck_assert_int_eq(open_on(&sess, 3, token, &e1), MS_ST_OK);
	ck_assert_int_eq(read_on(&other, 3, e2, &page, 1), MS_ST_FENCED);
	ck_assert_int_eq(read_on(&sess, 3, e1, &page, 1), MS_ST_OK);
	/* Deleted under a holder: no such region. */
	ck_assert_int_eq(delete_region(3, token), MS_ST_OK);
	ck_assert_int_eq(read_on(&sess, 3, e1, &page, 1), MS_ST_NOENT);
	ck_assert_int_eq(write_on(&sess, 3, e1, &page, 1, 2, -1), MS_ST_NOENT);
	ck_assert_int_eq(delete_region(3, token), MS_ST_NOENT);
	ms_session_release(&other);
}
END_TEST

START_TEST(open_slots_bounded)
{
	uint8_t token[MS_TOKEN_LEN], first[MS_TOKEN_LEN];
	uint64_t epoch, e0, page = 0;

	ck_assert_int_eq(hello(), MS_ST_OK);
	for (unsigned i = 0; i < MS_SESSION_MAX_OPENS; i++) {
		ck_assert_int_eq(create(2000 + i, MS_PAGE_SIZE, token), MS_ST_OK);
		ck_assert_int_eq(open_on(&sess, 2000 + i, token, &epoch), MS_ST_OK);
		if (i == 0) {
			memcpy(first, token, MS_TOKEN_LEN);
			e0 = epoch;
		}
	}
	ck_assert_uint_eq(sess.nopens, MS_SESSION_MAX_OPENS);
	ck_assert_int_eq(create(3000, MS_PAGE_SIZE, token), MS_ST_OK);
	ck_assert_int_eq(open_on(&sess, 3000, token, &epoch), MS_ST_INVAL);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	/* Reopening one already held reuses its slot. */
	ck_assert_int_eq(open_on(&sess, 2000, first, &epoch), MS_ST_OK);
	ck_assert_uint_gt(epoch, e0);
	ck_assert_uint_eq(sess.nopens, MS_SESSION_MAX_OPENS);
	ck_assert_int_eq(read_on(&sess, 2000, epoch, &page, 1), MS_ST_OK);
	ck_assert_int_eq(read_on(&sess, 3000, 1, &page, 1), MS_ST_NOTOPEN);
}
END_TEST

START_TEST(corrupt_refused_without_hooks)
{
	uint8_t b[16], token[MS_TOKEN_LEN];
	uint64_t epoch, page = 0;

	ck_assert_int_eq(hello(), MS_ST_OK);
	ck_assert_int_eq(create(1, 4 * MS_PAGE_SIZE, token), MS_ST_OK);
	ck_assert_int_eq(open_on(&sess, 1, token, &epoch), MS_ST_OK);
	ck_assert_int_eq(write_on(&sess, 1, epoch, &page, 1, 5, -1), MS_ST_OK);
	put_le64(b, 1);
	put_le64(b + 8, 0);
	ck_assert_int_eq(call(MS_OP_DEBUG_CORRUPT, 0, b, 16), MS_ST_OPNOTSUPP);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	ck_assert_int_eq(read_on(&sess, 1, epoch, &page, 1), MS_ST_OK);
}
END_TEST

START_TEST(corrupt_with_hooks)
{
	uint8_t b[16], token[MS_TOKEN_LEN];
	uint64_t epoch, pages[2] = { 0, 1 };

	ck_assert_int_eq(hello(), MS_ST_OK);
	ck_assert_int_eq(create(1, 4 * MS_PAGE_SIZE, token), MS_ST_OK);
	ck_assert_int_eq(open_on(&sess, 1, token, &epoch), MS_ST_OK);
	ck_assert_int_eq(write_on(&sess, 1, epoch, pages, 2, 5, -1), MS_ST_OK);
	put_le64(b, 1);
	put_le64(b + 8, 0);
	ck_assert_int_eq(call(MS_OP_DEBUG_CORRUPT, 0, b, 16), MS_ST_OK);
	put_le64(b + 8, 3);
	ck_assert_int_eq(call(MS_OP_DEBUG_CORRUPT, 0, b, 16), MS_ST_INVAL); /* never written */
	put_le64(b + 8, 4);
	ck_assert_int_eq(call(MS_OP_DEBUG_CORRUPT, 0, b, 16), MS_ST_RANGE);
	put_le64(b, 2);
	ck_assert_int_eq(call(MS_OP_DEBUG_CORRUPT, 0, b, 16), MS_ST_NOENT);

	ck_assert_int_eq(read_on(&sess, 1, epoch, pages, 2), MS_ST_CHECKSUM);
	ck_assert_int_eq(verdict, MS_V_CONTINUE);
	ck_assert_uint_eq(rlen, 0);
	ck_assert_int_eq(read_on(&sess, 1, epoch, pages + 1, 1), MS_ST_OK);
	{
		int want[1] = { 6 };

		check_read(1, want);
	}
}
END_TEST

START_TEST(stats_accounted)
{
	uint8_t ping[8] = { 0 };
	uint64_t before;

	ck_assert_int_eq(hello(), MS_ST_OK);
	before = stats[MS_OP_PING].count;
	for (unsigned i = 0; i < 10; i++)
		ck_assert_int_eq(call(MS_OP_PING, 0, ping, 8), MS_ST_OK);
	ck_assert_uint_eq(stats[MS_OP_PING].count, before + 10);
	ck_assert_uint_eq(stats[MS_OP_PING].errors, 0);
	ck_assert_uint_eq(stats[MS_OP_PING].bytes_in, 10 * (MS_HDR_LEN + 8));
	ck_assert_uint_eq(stats[MS_OP_PING].bytes_out, 10 * MS_HDR_LEN);
	ck_assert_uint_eq(hist_total(&stats[MS_OP_PING].latency), 10);
	ck_assert_uint_eq(stats[MS_OP_HELLO].count, 1);
	ck_assert_int_eq(call(MS_OP_PING, 0, ping, 4), MS_ST_PROTO);
	ck_assert_uint_eq(stats[MS_OP_PING].errors, 1);
}
END_TEST

static Suite *session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc;

	tc = tcase_create("open_server");
	tcase_set_timeout(tc, 10);
	tcase_add_checked_fixture(tc, setup_open, teardown);
	tcase_add_test(tc, hello_without_key_authenticates);
	tcase_add_test(tc, nothing_before_hello);
	tcase_add_test(tc, version_mismatch_closes);
	tcase_add_test(tc, malformed_after_auth_continues);
	tcase_add_test(tc, unknown_opcode);
	tcase_add_test(tc, region_access_checks);
	tcase_add_test(tc, write_batch_all_or_nothing);
	tcase_add_test(tc, fencing_between_sessions);
	tcase_add_test(tc, open_slots_bounded);
	tcase_add_test(tc, corrupt_refused_without_hooks);
	tcase_add_test(tc, stats_accounted);
	suite_add_tcase(s, tc);

	tc = tcase_create("keyed_server");
	tcase_set_timeout(tc, 10);
	tcase_add_checked_fixture(tc, setup_keyed, teardown);
	tcase_add_test(tc, keyed_refuses_before_auth);
	tcase_add_test(tc, bad_mac_closes);
	tcase_add_test(tc, auth_before_hello_closes);
	tcase_add_test(tc, replayed_mac_refused);
	tcase_add_test(tc, good_mac_works);
	suite_add_tcase(s, tc);

	tc = tcase_create("test_hooks");
	tcase_set_timeout(tc, 10);
	tcase_add_checked_fixture(tc, setup_hooks, teardown);
	tcase_add_test(tc, corrupt_with_hooks);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	/* The error paths under test log warnings; keep only errors. */
	log_init("test_session", LOG_ERROR);
	sr = srunner_create(session_suite());

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/*
 * Protocol engine for one memory-server connection (see session.h). Every
 * request yields exactly one reply (except a delayed PING, whose reply the
 * caller sends later), and requests run to completion in arrival order, so two
 * requests on one connection that touch the same page take effect in order.
 */
#include "memserver/session.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"

static const char mac_label_client[] = "legato-ms-c";
static const char mac_label_server[] = "legato-ms-s";

void ms_session_init(struct ms_session *s, const struct ms_service *svc,
		     struct ms_op_stats *stats)
{
	memset(s, 0, sizeof(*s));
	s->svc = svc;
	s->stats = stats;
}

/* Lets go of the region at slot i (the slot itself stays). */
static void open_drop(struct ms_session *s, unsigned i)
{
	if (s->xport)
		s->xport->closing(s->xport_ctx, s->opens[i].region);
	ms_region_put(s->opens[i].region);
}

void ms_session_release(struct ms_session *s)
{
	for (unsigned i = 0; i < s->nopens; i++)
		open_drop(s, i);
	s->nopens = 0;
}

/* Starts a reply with room for body bytes; returns a pointer to the body or
 * NULL. The header's length is fixed up by reply_finish. */
static uint8_t *reply_begin(struct buf *out, size_t body)
{
	uint8_t *p = buf_reserve(out, MS_HDR_LEN + body);

	return p ? p + MS_HDR_LEN : NULL;
}

static void reply_finish(struct buf *out, const struct ms_hdr *req, enum ms_status st,
			 uint32_t count, size_t body)
{
	struct ms_hdr h = {
		.len = (uint32_t)(MS_HDR_LEN + body),
		.version = MS_PROTO_VERSION,
		.op = (uint8_t)(req->op | MS_REPLY),
		.id = req->id,
		.status = st,
		.count = count,
	};

	ms_hdr_encode(out->data + out->end, &h);
	buf_commit(out, h.len);
}

int ms_reply_status(struct buf *out, const struct ms_hdr *req, enum ms_status st)
{
	if (!reply_begin(out, 0))
		return -ENOMEM;
	reply_finish(out, req, st, 0, 0);
	return 0;
}

static struct ms_session_open *find_open(struct ms_session *s, uint64_t region)
{
	for (unsigned i = 0; i < s->nopens; i++)
		if (ms_region_id(s->opens[i].region) == region)
			return &s->opens[i];
	return NULL;
}

static enum ms_status errno_to_status(int err)
{
	switch (err) {
	case -ENOENT:
		return MS_ST_NOENT;
	case -EEXIST:
		return MS_ST_EXIST;
	case -ENOSPC:
		return MS_ST_NOSPC;
	case -EACCES:
		return MS_ST_ACCESS;
	case -ESTALE:
		return MS_ST_FENCED;
	case -ERANGE:
		return MS_ST_RANGE;
	case -EBADMSG:
		return MS_ST_CHECKSUM;
	case -EINVAL:
	case -ENODATA:
		return MS_ST_INVAL;
	default:
		return MS_ST_INTERNAL;
	}
}

/* HELLO and AUTH failures close the connection: the peer is not one of ours. */
static enum ms_status do_hello(struct ms_session *s, const struct ms_request *rq,
			       struct buf *out)
{
	const struct ms_service *svc = s->svc;
	uint8_t *p;

	if (rq->hello.min_version > MS_PROTO_VERSION || rq->hello.max_version < MS_PROTO_VERSION)
		return MS_ST_VERSION;
	memcpy(s->client_nonce, rq->hello.nonce, MS_NONCE_LEN);
	if (auth_random(s->server_nonce, MS_NONCE_LEN))
		return MS_ST_INTERNAL;
	p = reply_begin(out, 48);
	if (!p)
		return MS_ST_INTERNAL;
	s->greeted = true;
	s->authenticated = svc->key == NULL;
	put_le16(p, MS_PROTO_VERSION);
	put_le16(p + 2, svc->key ? MS_AUTH_HMAC_SHA256 : MS_AUTH_NONE);
	put_le32(p + 4, MS_PAGE_SIZE);
	put_le32(p + 8, MS_MAX_BATCH);
	put_le32(p + 12, 0);
	memcpy(p + 16, s->server_nonce, MS_NONCE_LEN);
	reply_finish(out, &rq->hdr, MS_ST_OK, 0, 48);
	return MS_ST_OK;
}

static enum ms_status do_auth(struct ms_session *s, const struct ms_request *rq,
			      struct buf *out)
{
	const struct auth_key *key = s->svc->key;
	uint8_t expect[MS_MAC_LEN], *p;

	if (!s->greeted || !key)
		return MS_ST_PROTO;
	auth_hmac(key, mac_label_client, sizeof(mac_label_client), s->server_nonce,
		  MS_NONCE_LEN, s->client_nonce, MS_NONCE_LEN, expect);
	if (!auth_equal(expect, rq->auth.mac, MS_MAC_LEN)) {
		log_warn("client failed authentication");
		return MS_ST_AUTH;
	}
	p = reply_begin(out, MS_MAC_LEN);
	if (!p)
		return MS_ST_INTERNAL;
	s->authenticated = true;
	auth_hmac(key, mac_label_server, sizeof(mac_label_server), s->client_nonce,
		  MS_NONCE_LEN, s->server_nonce, MS_NONCE_LEN, p);
	reply_finish(out, &rq->hdr, MS_ST_OK, 0, MS_MAC_LEN);
	return MS_ST_OK;
}

static enum ms_status do_create(struct ms_session *s, const struct ms_request *rq,
				struct buf *out)
{
	uint8_t *p = reply_begin(out, MS_TOKEN_LEN);
	int ret;

	if (!p)
		return MS_ST_INTERNAL;
	ret = ms_store_region_create(s->svc->store, rq->create.region, rq->create.size, p);
	if (ret)
		return errno_to_status(ret);
	reply_finish(out, &rq->hdr, MS_ST_OK, 0, MS_TOKEN_LEN);
	return MS_ST_OK;
}

static enum ms_status do_open(struct ms_session *s, const struct ms_request *rq,
			      struct buf *out)
{
	struct ms_session_open *slot = find_open(s, rq->open.region);
	size_t extra = s->xport ? s->xport->extra_len : 0;
	struct ms_region *r;
	uint64_t epoch, size;
	uint8_t *p;
	int ret;

	if (!slot && s->nopens == MS_SESSION_MAX_OPENS)
		return MS_ST_INVAL;
	p = reply_begin(out, 16 + extra);
	if (!p)
		return MS_ST_INTERNAL;
	ret = ms_store_region_open(s->svc->store, rq->open.region, rq->open.token, &r, &epoch,
				   &size);
	if (ret)
		return errno_to_status(ret);
	if (slot)
		open_drop(s, (unsigned)(slot - s->opens));
	else
		slot = &s->opens[s->nopens++];
	slot->region = r;
	slot->epoch = epoch;
	if (s->xport) {
		ret = s->xport->opened(s->xport_ctx, r, epoch, p + 16);
		if (ret) {
			/* The open stands (it fenced others) but is unusable
			 * here: forget it, so the slot is not half set up. */
			ms_region_put(r);
			*slot = s->opens[--s->nopens];
			return errno_to_status(ret);
		}
	}
	put_le64(p, epoch);
	put_le64(p + 8, size);
	reply_finish(out, &rq->hdr, MS_ST_OK, 0, 16 + extra);
	return MS_ST_OK;
}

static enum ms_status do_delete(struct ms_session *s, const struct ms_request *rq,
				struct buf *out)
{
	int ret = ms_store_region_delete(s->svc->store, rq->open.region, rq->open.token);

	if (ret)
		return errno_to_status(ret);
	ms_reply_status(out, &rq->hdr, MS_ST_OK);
	return MS_ST_OK;
}

/* Resolves the region of a READ/WRITE and enters it; on success the caller
 * must call ms_region_io_end(*rp). */
static enum ms_status io_enter(struct ms_session *s, const struct ms_request *rq,
			       struct ms_region **rp)
{
	struct ms_session_open *o = find_open(s, rq->io.region);
	int ret;

	if (!o)
		return MS_ST_NOTOPEN;
	/* The epoch in the request must be the one this connection was given:
	 * a client cannot borrow another connection's epoch. */
	if (o->epoch != rq->io.epoch)
		return MS_ST_FENCED;
	ret = ms_region_io_begin(o->region, o->epoch);
	if (ret)
		return errno_to_status(ret);
	*rp = o->region;
	return MS_ST_OK;
}

/* READ reply body: count x {u64 sum, u32 flags, u32 0}, then the data of the
 * pages without MS_PAGE_ZERO, in request order. */
static enum ms_status do_read(struct ms_session *s, const struct ms_request *rq,
			      struct buf *out)
{
	uint32_t n = rq->hdr.count;
	size_t data_off = (size_t)n * 16, body = data_off;
	struct ms_region *r;
	enum ms_status st;
	uint8_t *p;

	p = reply_begin(out, data_off + (size_t)n * MS_PAGE_SIZE);
	if (!p)
		return MS_ST_INTERNAL;
	st = io_enter(s, rq, &r);
	if (st)
		return st;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t page = get_le64(rq->io.descs + 8 * i), sum;
		bool zero;

		if (!ms_region_page_valid(r, page)) {
			st = MS_ST_RANGE;
			break;
		}
		if (ms_region_read_page(r, page, p + body, &sum, &zero)) {
			st = MS_ST_CHECKSUM;
			break;
		}
		put_le64(p + 16 * i, sum);
		put_le32(p + 16 * i + 8, zero ? MS_PAGE_ZERO : 0);
		put_le32(p + 16 * i + 12, 0);
		if (!zero)
			body += MS_PAGE_SIZE;
	}
	ms_region_io_end(r);
	if (st)
		return st;
	reply_finish(out, &rq->hdr, MS_ST_OK, n, body);
	return MS_ST_OK;
}

/* All-or-nothing: every page is range- and checksum-checked before any is
 * stored, so a rejected batch changes nothing. */
static enum ms_status do_write(struct ms_session *s, const struct ms_request *rq,
			       struct buf *out)
{
	uint32_t n = rq->hdr.count;
	struct ms_region *r;
	enum ms_status st;

	if (!buf_reserve(out, MS_HDR_LEN))
		return MS_ST_INTERNAL;
	st = io_enter(s, rq, &r);
	if (st)
		return st;
	for (uint32_t i = 0; i < n && !st; i++) {
		const uint8_t *d = rq->io.descs + 16 * i;

		if (!ms_region_page_valid(r, get_le64(d)))
			st = MS_ST_RANGE;
		else if (ms_page_sum(rq->io.data + (size_t)i * MS_PAGE_SIZE) != get_le64(d + 8))
			st = MS_ST_CHECKSUM;
	}
	for (uint32_t i = 0; i < n && !st; i++) {
		const uint8_t *d = rq->io.descs + 16 * i;

		ms_region_write_page(r, get_le64(d), rq->io.data + (size_t)i * MS_PAGE_SIZE,
				     get_le64(d + 8));
	}
	ms_region_io_end(r);
	if (st)
		return st;
	reply_finish(out, &rq->hdr, MS_ST_OK, n, 0);
	return MS_ST_OK;
}

static enum ms_status do_stat(struct ms_session *s, const struct ms_request *rq,
			      struct buf *out)
{
	static __thread struct ms_stat stat;
	uint8_t *p = reply_begin(out, MS_STAT_WIRE_LEN);

	if (!p)
		return MS_ST_INTERNAL;
	memset(&stat, 0, sizeof(stat));
	ms_store_stat(s->svc->store, &stat);
	stat.uptime_ns = now_ns() - s->svc->start_ns;
	if (s->svc->collect_stat)
		s->svc->collect_stat(s->svc->collect_ctx, &stat);
	reply_finish(out, &rq->hdr, MS_ST_OK, 0, ms_stat_encode(&stat, p));
	return MS_ST_OK;
}

/* WRITTEN reply body: ceil(npages / 8) bytes, bit i (LSB first) set when
 * page first + i holds data. Lets a restarted or migrated client know which
 * pages it must fetch and which read as zeros. */
static enum ms_status do_written(struct ms_session *s, const struct ms_request *rq,
				 struct buf *out)
{
	size_t len = (rq->written.npages + 7) / 8;
	struct ms_request io = { .hdr = rq->hdr };
	struct ms_region *r;
	enum ms_status st;
	uint8_t *p = reply_begin(out, len);

	if (!p)
		return MS_ST_INTERNAL;
	io.io.region = rq->written.region;
	io.io.epoch = rq->written.epoch;
	st = io_enter(s, &io, &r);
	if (st)
		return st;
	if (ms_region_written_map(r, rq->written.first_page, rq->written.npages, p))
		st = MS_ST_RANGE;
	ms_region_io_end(r);
	if (st)
		return st;
	reply_finish(out, &rq->hdr, MS_ST_OK, 0, len);
	return MS_ST_OK;
}

static enum ms_status do_corrupt(struct ms_session *s, const struct ms_request *rq,
				 struct buf *out)
{
	int ret;

	if (!s->svc->test_hooks)
		return MS_ST_OPNOTSUPP;
	ret = ms_store_debug_corrupt(s->svc->store, rq->corrupt.region, rq->corrupt.page);
	if (ret)
		return errno_to_status(ret);
	log_warn("test hook: corrupted region %llu page %llu",
		 (unsigned long long)rq->corrupt.region, (unsigned long long)rq->corrupt.page);
	ms_reply_status(out, &rq->hdr, MS_ST_OK);
	return MS_ST_OK;
}

static enum ms_status dispatch(struct ms_session *s, const struct ms_request *rq,
			       struct buf *out)
{
	switch (rq->hdr.op) {
	case MS_OP_REGION_CREATE:
		return do_create(s, rq, out);
	case MS_OP_REGION_OPEN:
		return do_open(s, rq, out);
	case MS_OP_REGION_DELETE:
		return do_delete(s, rq, out);
	case MS_OP_READ:
		return do_read(s, rq, out);
	case MS_OP_WRITE:
		return do_write(s, rq, out);
	case MS_OP_STAT:
		return do_stat(s, rq, out);
	case MS_OP_DEBUG_CORRUPT:
		return do_corrupt(s, rq, out);
	case MS_OP_WRITTEN:
		return do_written(s, rq, out);
	default:
		return MS_ST_OPNOTSUPP;
	}
}

static void account(struct ms_session *s, unsigned op, bool failed, size_t in, size_t out_bytes,
		    uint64_t t0)
{
	struct ms_op_stats *o;

	if (op >= MS_OP_MAX)
		op = 0;
	o = &s->stats[op];
	/* One writer per counter (the owning worker); readers load relaxed. */
	__atomic_store_n(&o->count, o->count + 1, __ATOMIC_RELAXED);
	if (failed)
		__atomic_store_n(&o->errors, o->errors + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&o->bytes_in, o->bytes_in + in, __ATOMIC_RELAXED);
	__atomic_store_n(&o->bytes_out, o->bytes_out + out_bytes, __ATOMIC_RELAXED);
	hist_add(&o->latency, now_ns() - t0);
}

enum ms_verdict ms_session_handle(struct ms_session *s, const uint8_t *frame, size_t len,
				  struct buf *out, uint32_t *defer_us)
{
	struct ms_request rq;
	enum ms_verdict v = MS_V_CONTINUE;
	enum ms_status st;
	size_t before = buf_len(out);
	uint64_t t0 = now_ns();

	st = ms_request_decode(frame, len, &rq);
	if (st != MS_ST_OK) {
		/* The frame boundary is intact, so the connection survives a bad
		 * body; before authentication nothing is tolerated. */
		v = s->authenticated ? MS_V_CONTINUE : MS_V_CLOSE;
		goto error_reply;
	}
	if (rq.hdr.op == MS_OP_HELLO || rq.hdr.op == MS_OP_AUTH) {
		st = rq.hdr.op == MS_OP_HELLO ? do_hello(s, &rq, out) : do_auth(s, &rq, out);
		if (st == MS_ST_OK)
			goto done;
		v = MS_V_CLOSE;
		goto error_reply;
	}
	if (!s->authenticated) {
		st = MS_ST_AUTH;
		v = MS_V_CLOSE;
		goto error_reply;
	}
	if (rq.hdr.op == MS_OP_PING) {
		if (rq.ping.delay_us) {
			*defer_us = rq.ping.delay_us;
			v = MS_V_DEFER;
		} else {
			ms_reply_status(out, &rq.hdr, MS_ST_OK);
		}
		goto done;
	}
	st = dispatch(s, &rq, out);
	if (st == MS_ST_OK)
		goto done;
error_reply:
	log_debug("%s request %llu: %s", ms_op_name(rq.hdr.op), (unsigned long long)rq.hdr.id,
		  ms_status_name(st));
	if (ms_reply_status(out, &rq.hdr, st))
		v = MS_V_CLOSE;
done:
	account(s, rq.hdr.op, st != MS_ST_OK, len, buf_len(out) - before, t0);
	return v;
}

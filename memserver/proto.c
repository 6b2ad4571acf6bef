/*
 * Decoders and encoders for the memory-server protocol (see proto.h). This is
 * the code that reads untrusted bytes first, so it only ever goes through
 * struct wire_reader, and it is the libFuzzer target's entry point.
 */
#include "memserver/proto.h"

#include <errno.h>
#include <string.h>

#include <xxhash.h>

#include "common/util.h"
#include "common/wire.h"

int ms_hdr_decode(const void *buf, size_t avail, struct ms_hdr *h)
{
	const uint8_t *p = buf;

	if (avail < MS_HDR_LEN)
		return -EAGAIN;
	h->len = get_le32(p);
	h->version = p[6];
	h->op = p[7];
	h->id = get_le64(p + 8);
	h->status = get_le32(p + 16);
	h->count = get_le32(p + 20);
	if (get_le16(p + 4) != MS_MAGIC || h->len < MS_HDR_LEN)
		return -EPROTO;
	if (h->version != MS_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (h->len > MS_MAX_FRAME)
		return -EMSGSIZE;
	return 0;
}

void ms_hdr_encode(void *buf, const struct ms_hdr *h)
{
	uint8_t *p = buf;

	put_le32(p, h->len);
	put_le16(p + 4, MS_MAGIC);
	p[6] = h->version;
	p[7] = h->op;
	put_le64(p + 8, h->id);
	put_le32(p + 16, h->status);
	put_le32(p + 20, h->count);
}

/* READ and WRITE bodies: {u64 region, u64 epoch} then the page descriptors. */
static enum ms_status decode_io(struct wire_reader *r, struct ms_request *req, bool write)
{
	uint32_t n = req->hdr.count;
	size_t desc_len = (size_t)n * (write ? 16u : 8u);

	if (n == 0 || n > MS_MAX_BATCH)
		return MS_ST_INVAL;
	req->io.region = wire_get64(r);
	req->io.epoch = wire_get64(r);
	req->io.descs = wire_take(r, desc_len);
	req->io.data = write ? wire_take(r, (size_t)n * MS_PAGE_SIZE) : NULL;
	return r->ok ? MS_ST_OK : MS_ST_PROTO;
}

enum ms_status ms_request_decode(const uint8_t *frame, size_t len, struct ms_request *req)
{
	struct wire_reader r;
	enum ms_status st = MS_ST_OK;

	memset(req, 0, sizeof(*req));
	if (ms_hdr_decode(frame, len, &req->hdr) || req->hdr.len != len)
		return MS_ST_PROTO;
	wire_reader_init(&r, frame + MS_HDR_LEN, len - MS_HDR_LEN);
	if (req->hdr.op != MS_OP_READ && req->hdr.op != MS_OP_WRITE && req->hdr.count)
		return MS_ST_PROTO;

	switch (req->hdr.op) {
	case MS_OP_HELLO:
		req->hello.min_version = wire_get16(&r);
		req->hello.max_version = wire_get16(&r);
		req->hello.flags = wire_get32(&r);
		wire_get_bytes(&r, req->hello.nonce, MS_NONCE_LEN);
		break;
	case MS_OP_AUTH:
		wire_get_bytes(&r, req->auth.mac, MS_MAC_LEN);
		break;
	case MS_OP_REGION_CREATE:
		req->create.region = wire_get64(&r);
		req->create.size = wire_get64(&r);
		break;
	case MS_OP_REGION_OPEN:
	case MS_OP_REGION_DELETE:
		req->open.region = wire_get64(&r);
		wire_get_bytes(&r, req->open.token, MS_TOKEN_LEN);
		break;
	case MS_OP_READ:
	case MS_OP_WRITE:
		st = decode_io(&r, req, req->hdr.op == MS_OP_WRITE);
		break;
	case MS_OP_STAT:
		break;
	case MS_OP_PING:
		req->ping.delay_us = wire_get32(&r);
		wire_get32(&r);
		if (r.ok && req->ping.delay_us > MS_MAX_PING_DELAY_US)
			st = MS_ST_INVAL;
		break;
	case MS_OP_DEBUG_CORRUPT:
		req->corrupt.region = wire_get64(&r);
		req->corrupt.page = wire_get64(&r);
		break;
	case MS_OP_WRITTEN:
		req->written.region = wire_get64(&r);
		req->written.epoch = wire_get64(&r);
		req->written.first_page = wire_get64(&r);
		req->written.npages = wire_get32(&r);
		wire_get32(&r);
		if (r.ok && (req->written.npages == 0 ||
			     req->written.npages > MS_MAX_WRITTEN_PAGES))
			st = MS_ST_INVAL;
		break;
	default:
		return MS_ST_OPNOTSUPP;
	}
	if (st != MS_ST_OK)
		return st;
	/* Trailing bytes mean the peer and we disagree on the layout. */
	if (!r.ok || r.left)
		return MS_ST_PROTO;
	return MS_ST_OK;
}

size_t ms_stat_encode(const struct ms_stat *s, uint8_t *buf)
{
	uint8_t *p = buf;

	put_le32(p, MS_OP_MAX);
	put_le32(p + 4, HIST_BUCKETS);
	p += 8;
	put_le64(p, s->capacity);
	put_le64(p + 8, s->reserved);
	put_le64(p + 16, s->resident);
	put_le64(p + 24, s->regions);
	put_le64(p + 32, s->connections);
	put_le64(p + 40, s->uptime_ns);
	p += 48;
	for (unsigned i = 0; i < MS_OP_MAX; i++) {
		const struct ms_op_stats *o = &s->ops[i];

		put_le64(p, o->count);
		put_le64(p + 8, o->errors);
		put_le64(p + 16, o->bytes_in);
		put_le64(p + 24, o->bytes_out);
		p += 32;
		for (unsigned b = 0; b < HIST_BUCKETS; b++, p += 8)
			put_le64(p, o->latency.count[b]);
	}
	return (size_t)(p - buf);
}

int ms_stat_decode(const uint8_t *buf, size_t len, struct ms_stat *s)
{
	struct wire_reader r;

	wire_reader_init(&r, buf, len);
	if (wire_get32(&r) != MS_OP_MAX || wire_get32(&r) != HIST_BUCKETS)
		return -EPROTO;
	s->capacity = wire_get64(&r);
	s->reserved = wire_get64(&r);
	s->resident = wire_get64(&r);
	s->regions = wire_get64(&r);
	s->connections = wire_get64(&r);
	s->uptime_ns = wire_get64(&r);
	for (unsigned i = 0; i < MS_OP_MAX; i++) {
		struct ms_op_stats *o = &s->ops[i];

		o->count = wire_get64(&r);
		o->errors = wire_get64(&r);
		o->bytes_in = wire_get64(&r);
		o->bytes_out = wire_get64(&r);
		for (unsigned b = 0; b < HIST_BUCKETS; b++)
			o->latency.count[b] = wire_get64(&r);
	}
	return r.ok && r.left == 0 ? 0 : -EPROTO;
}

static const char *const op_names[MS_OP_MAX] = {
	[0] = "none",
	[MS_OP_HELLO] = "hello",
	[MS_OP_AUTH] = "auth",
	[MS_OP_REGION_CREATE] = "region_create",
	[MS_OP_REGION_OPEN] = "region_open",
	[MS_OP_REGION_DELETE] = "region_delete",
	[MS_OP_READ] = "read",
	[MS_OP_WRITE] = "write",
	[MS_OP_STAT] = "stat",
	[MS_OP_PING] = "ping",
	[MS_OP_DEBUG_CORRUPT] = "debug_corrupt",
	[MS_OP_WRITTEN] = "written",
};

static const struct {
	const char *name;
	int err;
} statuses[MS_ST_MAX] = {
	[MS_ST_OK] = { "ok", 0 },
	[MS_ST_PROTO] = { "malformed request", EPROTO },
	[MS_ST_VERSION] = { "unsupported protocol version", EPROTONOSUPPORT },
	[MS_ST_AUTH] = { "authentication failed", EPERM },
	[MS_ST_NOENT] = { "no such region", ENOENT },
	[MS_ST_EXIST] = { "region exists", EEXIST },
	[MS_ST_NOSPC] = { "capacity exhausted", ENOSPC },
	[MS_ST_ACCESS] = { "wrong token", EACCES },
	[MS_ST_FENCED] = { "fenced by a newer open", ESTALE },
	[MS_ST_RANGE] = { "page out of range", ERANGE },
	[MS_ST_CHECKSUM] = { "checksum mismatch", EBADMSG },
	[MS_ST_INVAL] = { "invalid argument", EINVAL },
	[MS_ST_NOTOPEN] = { "region not open on this connection", EBADF },
	[MS_ST_OPNOTSUPP] = { "unsupported operation", EOPNOTSUPP },
	[MS_ST_TOOBIG] = { "frame too large", EMSGSIZE },
	[MS_ST_INTERNAL] = { "internal server error", EIO },
};

const char *ms_op_name(unsigned op)
{
	return op < MS_OP_MAX ? op_names[op] : "unknown";
}

const char *ms_status_name(unsigned status)
{
	return status < MS_ST_MAX ? statuses[status].name : "unknown status";
}

int ms_status_to_errno(unsigned status)
{
	return status < MS_ST_MAX ? -statuses[status].err : -EPROTO;
}

uint64_t ms_page_sum(const void *page)
{
	return XXH3_64bits(page, MS_PAGE_SIZE) | 1;
}

void ms_rdma_priv_encode(const struct ms_rdma_priv *p, uint8_t *buf)
{
	put_le32(buf, p->magic);
	put_le16(buf + 4, p->version);
	put_le16(buf + 6, p->flags);
	put_le32(buf + 8, p->msg_size);
	put_le32(buf + 12, p->recv_depth);
}

int ms_rdma_priv_decode(const uint8_t *buf, size_t len, struct ms_rdma_priv *p)
{
	/* librdmacm pads private data (56 bytes on a connect request over
	 * IB/RoCE): more bytes than ours are fine, fewer are not. */
	if (!buf || len < MS_RDMA_PRIV_LEN)
		return -EPROTO;
	p->magic = get_le32(buf);
	p->version = get_le16(buf + 4);
	p->flags = get_le16(buf + 6);
	p->msg_size = get_le32(buf + 8);
	p->recv_depth = get_le32(buf + 12);
	if (p->magic != MS_RDMA_MAGIC || p->version != MS_PROTO_VERSION || p->flags ||
	    p->msg_size != MS_RDMA_MSG || p->recv_depth != MS_RDMA_RECV_DEPTH)
		return -EPROTO;
	return 0;
}

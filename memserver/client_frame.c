/*
 * The protocol framing every client transport shares (see client_impl.h):
 * requests encoded into a byte queue, replies parsed from one and matched to
 * their requests by id (in whatever order the server answers), and the
 * HELLO/AUTH handshake run through a transport's blocking exchange. tcp://
 * carries these bytes over its socket; rdma:// in SEND messages (its READ
 * and WRITE go one-sided and never reach this encoder).
 */
#include <errno.h>
#include <string.h>

#include "common/auth.h"
#include "common/log.h"
#include "common/wire.h"
#include "memserver/client_impl.h"

/* Body length of io's request (see proto.h for layouts); 0 for STAT. */
static int body_len(const struct ms_io *io, size_t *body)
{
	switch (io->op) {
	case MS_OP_REGION_CREATE:
	case MS_OP_DEBUG_CORRUPT:
		*body = 16;
		return 0;
	case MS_OP_REGION_OPEN:
	case MS_OP_REGION_DELETE:
		*body = 8 + MS_TOKEN_LEN;
		return 0;
	case MS_OP_READ:
		*body = 16 + (size_t)io->npages * 8;
		return 0;
	case MS_OP_WRITE:
		*body = 16 + (size_t)io->npages * (16 + MS_PAGE_SIZE);
		return 0;
	case MS_OP_PING:
		*body = 8;
		return 0;
	case MS_OP_WRITTEN:
		*body = 32;
		return 0;
	case MS_OP_STAT:
		*body = 0;
		return 0;
	default:
		return -EINVAL;
	}
}

static void encode_write(uint8_t *b, const struct ms_io *io)
{
	uint8_t *data = b + 16 + (size_t)io->npages * 16;

	put_le64(b, io->region);
	put_le64(b + 8, io->epoch);
	for (uint32_t i = 0; i < io->npages; i++) {
		uint8_t *dst = data + (size_t)i * MS_PAGE_SIZE;

		memcpy(dst, ms_io_page(io, i), MS_PAGE_SIZE);
		put_le64(b + 16 + 16 * i, io->pages[i]);
		put_le64(b + 24 + 16 * i, ms_page_sum(dst));
	}
}

static void encode_body(uint8_t *b, const struct ms_io *io)
{
	switch (io->op) {
	case MS_OP_REGION_CREATE:
	case MS_OP_DEBUG_CORRUPT:
		put_le64(b, io->region);
		put_le64(b + 8, io->arg);
		break;
	case MS_OP_REGION_OPEN:
	case MS_OP_REGION_DELETE:
		put_le64(b, io->region);
		memcpy(b + 8, io->token, MS_TOKEN_LEN);
		break;
	case MS_OP_READ:
		put_le64(b, io->region);
		put_le64(b + 8, io->epoch);
		for (uint32_t i = 0; i < io->npages; i++)
			put_le64(b + 16 + 8 * i, io->pages[i]);
		break;
	case MS_OP_WRITE:
		encode_write(b, io);
		break;
	case MS_OP_PING:
		put_le32(b, (uint32_t)io->arg);
		put_le32(b + 4, 0);
		break;
	case MS_OP_WRITTEN:
		put_le64(b, io->region);
		put_le64(b + 8, io->epoch);
		put_le64(b + 16, io->arg);
		put_le32(b + 24, io->npages);
		put_le32(b + 28, 0);
		break;
	}
}

int ms_frame_encode(struct buf *tx, const struct ms_io *io)
{
	struct ms_hdr h = { .version = MS_PROTO_VERSION, .op = io->op, .id = io->id };
	size_t body;
	uint8_t *p;

	if (body_len(io, &body))
		return -EINVAL;
	if (io->op == MS_OP_READ || io->op == MS_OP_WRITE)
		h.count = io->npages;
	p = buf_reserve(tx, MS_HDR_LEN + body);
	if (!p)
		return -ENOMEM;
	h.len = (uint32_t)(MS_HDR_LEN + body);
	ms_hdr_encode(p, &h);
	encode_body(p + MS_HDR_LEN, io);
	buf_commit(tx, h.len);
	return 0;
}

/* Verifies and copies a READ reply body into the request's buffer. */
static int finish_read(struct ms_io *io, const uint8_t *body, size_t len)
{
	size_t need = (size_t)io->npages * 16, off;

	if (len < need)
		return -EPROTO;
	off = need;
	for (uint32_t i = 0; i < io->npages; i++) {
		uint8_t *dst = ms_io_page(io, i);
		uint64_t sum = get_le64(body + 16 * i);
		bool zero = get_le32(body + 16 * i + 8) & MS_PAGE_ZERO;

		if (io->zero)
			io->zero[i] = zero;
		if (zero) {
			if (!io->zero)
				memset(dst, 0, MS_PAGE_SIZE);
			continue;
		}
		if (len - off < MS_PAGE_SIZE)
			return -EPROTO;
		memcpy(dst, body + off, MS_PAGE_SIZE);
		off += MS_PAGE_SIZE;
		/* End to end: what the writer summed is what we got. */
		if (ms_page_sum(dst) != sum)
			return -EBADMSG;
	}
	return off == len ? 0 : -EPROTO;
}

/* The result of a successful reply's body; -EPROTO: malformed. */
static int finish_ok(struct ms_client *c, struct ms_io *io, const uint8_t *body, size_t len)
{
	switch (io->op) {
	case MS_OP_READ:
		return finish_read(io, body, len);
	case MS_OP_REGION_CREATE:
		if (len != MS_TOKEN_LEN)
			return -EPROTO;
		memcpy(io->token, body, MS_TOKEN_LEN);
		return 0;
	case MS_OP_REGION_OPEN:
		if (len != 16 + c->open_extra)
			return -EPROTO;
		io->out_epoch = get_le64(body);
		io->out_size = get_le64(body + 8);
		return c->on_reply ? c->on_reply(c, io, body + 16) : 0;
	case MS_OP_STAT:
		return ms_stat_decode(body, len, io->stat) ? -EPROTO : 0;
	case MS_OP_WRITTEN:
		if (len != (io->npages + 7) / 8)
			return -EPROTO;
		memcpy(io->buf, body, len);
		return 0;
	case MS_OP_REGION_DELETE:
		if (len)
			return -EPROTO;
		return c->on_reply ? c->on_reply(c, io, NULL) : 0;
	default:
		return len ? -EPROTO : 0;
	}
}

/* Completes io from its reply. Returns -EPROTO when the reply is malformed
 * (the stream is then not to be trusted). */
static int finish(struct ms_client *c, struct ms_io *io, const struct ms_hdr *h,
		  const uint8_t *body, size_t len)
{
	int result = ms_status_to_errno(h->status);

	if (h->op != (io->op | MS_REPLY))
		return -EPROTO;
	if (result == 0) {
		result = finish_ok(c, io, body, len);
		if (result == -EPROTO)
			return result;
	}
	ms_client_complete(c, io, result);
	return 0;
}

int ms_frame_parse(struct ms_client *c, struct buf *rx)
{
	while (buf_len(rx) >= MS_HDR_LEN) {
		const uint8_t *p = buf_head(rx);
		struct ms_hdr h;
		struct ms_io *io;

		if (ms_hdr_decode(p, buf_len(rx), &h) || !(h.op & MS_REPLY))
			return -EPROTO;
		if (buf_len(rx) < h.len)
			break;
		io = ms_client_lookup(c, h.id);
		if (!io || finish(c, io, &h, p + MS_HDR_LEN, h.len - MS_HDR_LEN))
			return -EPROTO;
		buf_consume(rx, h.len);
	}
	return 0;
}

/* Sends one handshake frame and receives its reply body (reply_len bytes). */
static int handshake_call(struct ms_client *c, ms_xfer_fn *xfer, uint8_t op, const void *body,
			  size_t len, uint8_t *reply, size_t reply_len)
{
	uint8_t frame[MS_HDR_LEN + 64], hdr[MS_HDR_LEN];
	struct ms_hdr h = { .len = (uint32_t)(MS_HDR_LEN + len), .version = MS_PROTO_VERSION,
			    .op = op, .id = c->next_id++ };
	int ret;

	ms_hdr_encode(frame, &h);
	memcpy(frame + MS_HDR_LEN, body, len);
	ret = xfer(c, frame, MS_HDR_LEN + len, hdr, MS_HDR_LEN);
	if (ret)
		return ret;
	if (ms_hdr_decode(hdr, MS_HDR_LEN, &h) || h.op != (op | MS_REPLY))
		return -EPROTO;
	if (h.status)
		return ms_status_to_errno(h.status);
	if (h.len != MS_HDR_LEN + reply_len)
		return -EPROTO;
	return xfer(c, NULL, 0, reply, reply_len);
}

int ms_client_handshake(struct ms_client *c, const struct auth_key *key, ms_xfer_fn *xfer)
{
	uint8_t hello[40], reply[48], cnonce[MS_NONCE_LEN], snonce[MS_NONCE_LEN];
	uint8_t mac[MS_MAC_LEN], server_mac[MS_MAC_LEN];
	int ret;

	if (auth_random(cnonce, sizeof(cnonce)))
		return -EIO;
	put_le16(hello, MS_PROTO_VERSION);
	put_le16(hello + 2, MS_PROTO_VERSION);
	put_le32(hello + 4, 0);
	memcpy(hello + 8, cnonce, MS_NONCE_LEN);
	ret = handshake_call(c, xfer, MS_OP_HELLO, hello, sizeof(hello), reply, sizeof(reply));
	if (ret)
		return ret;
	if (get_le16(reply) != MS_PROTO_VERSION || get_le32(reply + 4) != MS_PAGE_SIZE)
		return -EPROTO;
	if (get_le16(reply + 2) == MS_AUTH_NONE && key) {
		/* Only a server that holds the key can prove it; one that asks
		 * for nothing may be anyone's, and would be handed the guest's
		 * pages. A key given is a key required. */
		log_err("%s: the server asks for no authentication, but a key was given: "
			"refusing it (start it with --auth-key-file)", c->url);
		return -EPERM;
	}
	if (get_le16(reply + 2) == MS_AUTH_NONE)
		return 0;
	if (get_le16(reply + 2) != MS_AUTH_HMAC_SHA256 || !key)
		return -EPERM;
	memcpy(snonce, reply + 16, MS_NONCE_LEN);
	ms_client_mac(key, false, snonce, cnonce, mac);
	ret = handshake_call(c, xfer, MS_OP_AUTH, mac, sizeof(mac), server_mac,
			     sizeof(server_mac));
	if (ret)
		return ret;
	ms_client_mac(key, true, cnonce, snonce, mac);
	return auth_equal(mac, server_mac, MS_MAC_LEN) ? 0 : -EPERM;
}

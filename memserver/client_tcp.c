/*
 * TCP transport of the client library: frames requests into a send queue,
 * flushes it when polled (so a burst of submits leaves in few segments), and
 * decodes replies from a receive buffer, completing requests by id in whatever
 * order the server answers.
 *
 * While a send would block, replies are read as well: the server stops reading
 * a connection whose replies are not consumed, so a sender that only waited
 * for POLLOUT could deadlock against it.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/net.h"
#include "common/util.h"
#include "common/wire.h"
#include "memserver/client_impl.h"

#define TX_FLUSH_AT (256u * 1024)
#define RX_CHUNK (256u * 1024)

struct tcp_transport {
	int fd;
	struct buf tx, rx;
};

static struct tcp_transport *tp(struct ms_client *c)
{
	return c->transport;
}

static uint8_t *io_page(const struct ms_io *io, uint32_t i)
{
	return io->bufs ? io->bufs[i] : (uint8_t *)io->buf + (size_t)i * MS_PAGE_SIZE;
}

/* Body of each request, after the header (see proto.h for layouts). */
static int encode_request(struct buf *tx, const struct ms_io *io)
{
	size_t body = 0;
	uint8_t *p, *b;
	struct ms_hdr h = { .version = MS_PROTO_VERSION, .op = io->op, .id = io->id };

	switch (io->op) {
	case MS_OP_REGION_CREATE:
	case MS_OP_DEBUG_CORRUPT:
		body = 16;
		break;
	case MS_OP_REGION_OPEN:
	case MS_OP_REGION_DELETE:
		body = 8 + MS_TOKEN_LEN;
		break;
	case MS_OP_READ:
		body = 16 + (size_t)io->npages * 8;
		h.count = io->npages;
		break;
	case MS_OP_WRITE:
		body = 16 + (size_t)io->npages * (16 + MS_PAGE_SIZE);
		h.count = io->npages;
		break;
	case MS_OP_PING:
		body = 8;
		break;
	case MS_OP_WRITTEN:
		body = 32;
		break;
	case MS_OP_STAT:
		break;
	default:
		return -EINVAL;
	}
	p = buf_reserve(tx, MS_HDR_LEN + body);
	if (!p)
		return -ENOMEM;
	h.len = (uint32_t)(MS_HDR_LEN + body);
	ms_hdr_encode(p, &h);
	b = p + MS_HDR_LEN;
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
	case MS_OP_WRITE: {
		uint8_t *data = b + 16 + (size_t)io->npages * 16;

		put_le64(b, io->region);
		put_le64(b + 8, io->epoch);
		for (uint32_t i = 0; i < io->npages; i++) {
			const uint8_t *src = io_page(io, i);

			put_le64(b + 16 + 16 * i, io->pages[i]);
			put_le64(b + 24 + 16 * i, ms_page_sum(src));
			memcpy(data + (size_t)i * MS_PAGE_SIZE, src, MS_PAGE_SIZE);
		}
		break;
	}
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
		uint8_t *dst = io_page(io, i);
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

/* Completes io from its reply. Returns -EPROTO when the reply is malformed
 * (the stream is then not to be trusted). */
static int finish(struct ms_client *c, struct ms_io *io, const struct ms_hdr *h,
		  const uint8_t *body, size_t len)
{
	int result = ms_status_to_errno(h->status);

	if (h->op != (io->op | MS_REPLY))
		return -EPROTO;
	if (result == 0) {
		switch (io->op) {
		case MS_OP_READ:
			result = finish_read(io, body, len);
			if (result == -EPROTO)
				return result;
			break;
		case MS_OP_REGION_CREATE:
			if (len != MS_TOKEN_LEN)
				return -EPROTO;
			memcpy(io->token, body, MS_TOKEN_LEN);
			break;
		case MS_OP_REGION_OPEN:
			if (len != 16)
				return -EPROTO;
			io->out_epoch = get_le64(body);
			io->out_size = get_le64(body + 8);
			break;
		case MS_OP_STAT:
			if (ms_stat_decode(body, len, io->stat))
				return -EPROTO;
			break;
		case MS_OP_WRITTEN:
			if (len != (io->npages + 7) / 8)
				return -EPROTO;
			memcpy(io->buf, body, len);
			break;
		default:
			if (len)
				return -EPROTO;
		}
	}
	ms_client_complete(c, io, result);
	return 0;
}

/* Decodes every whole reply in rx. Returns 0 or -EPROTO. */
static int parse_replies(struct ms_client *c)
{
	struct tcp_transport *t = tp(c);

	while (buf_len(&t->rx) >= MS_HDR_LEN) {
		const uint8_t *p = buf_head(&t->rx);
		struct ms_hdr h;
		struct ms_io *io;

		if (ms_hdr_decode(p, buf_len(&t->rx), &h) || !(h.op & MS_REPLY))
			return -EPROTO;
		if (buf_len(&t->rx) < h.len)
			break;
		io = ms_client_lookup(c, h.id);
		if (!io || finish(c, io, &h, p + MS_HDR_LEN, h.len - MS_HDR_LEN))
			return -EPROTO;
		buf_consume(&t->rx, h.len);
	}
	return 0;
}

/* Reads what is available without blocking. Returns 0 or -errno (dead). */
static int tcp_receive(struct ms_client *c)
{
	struct tcp_transport *t = tp(c);

	for (;;) {
		uint8_t *dst = buf_reserve(&t->rx, RX_CHUNK);
		ssize_t n;

		if (!dst)
			return -ENOMEM;
		n = recv(t->fd, dst, RX_CHUNK, MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		buf_commit(&t->rx, (size_t)n);
		if ((size_t)n < RX_CHUNK)
			break;
	}
	return parse_replies(c);
}

/* Sends queued requests without blocking. Returns 0 or -errno. */
static int tcp_send(struct tcp_transport *t)
{
	while (buf_len(&t->tx)) {
		ssize_t n = send(t->fd, buf_head(&t->tx), buf_len(&t->tx),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		buf_consume(&t->tx, (size_t)n);
	}
	buf_shrink(&t->tx, TX_FLUSH_AT * 2);
	return 0;
}

/*
 * One round of I/O: send what is queued, then wait up to timeout_ms for the
 * socket and receive replies. Returns 0, or -errno after killing the client.
 */
static int tcp_poll(struct ms_client *c, int timeout_ms)
{
	struct tcp_transport *t = tp(c);
	uint64_t deadline = timeout_ms > 0 ? now_ns() + (uint64_t)timeout_ms * 1000000 : 0;
	int ret;

	if (c->dead)
		return c->dead;
	/* Not waiting: send, then take what has arrived, with no poll(2) (one
	 * system call fewer on every turn of an event loop). */
	if (timeout_ms == 0) {
		ret = tcp_send(t);
		if (!ret)
			ret = tcp_receive(c);
		if (ret)
			goto fail;
		return 0;
	}
	for (;;) {
		struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
		int wait = timeout_ms;

		ret = tcp_send(t);
		if (ret)
			goto fail;
		if (buf_len(&t->tx))
			pfd.events |= POLLOUT;
		if (timeout_ms > 0) {
			int64_t left = (int64_t)(deadline - now_ns());

			wait = left > 0 ? (int)((left + 999999) / 1000000) : 0;
		}
		ret = poll(&pfd, 1, wait);
		if (ret < 0 && errno != EINTR) {
			ret = -errno;
			goto fail;
		}
		if (ret > 0 && pfd.revents & (POLLIN | POLLERR | POLLHUP)) {
			ret = tcp_receive(c);
			if (ret)
				goto fail;
		}
		/* Done once something completed, or time is up. */
		if (c->done_head || wait == 0)
			return 0;
		if (timeout_ms > 0 && (int64_t)(deadline - now_ns()) <= 0)
			return 0;
	}
fail:
	ms_client_fail(c, ret);
	return ret;
}

static int tcp_submit(struct ms_client *c, struct ms_io *io)
{
	struct tcp_transport *t = tp(c);
	int ret = encode_request(&t->tx, io);

	if (ret)
		return ret;
	/* Large queues go out now so the send buffer never holds megabytes. */
	if (buf_len(&t->tx) >= TX_FLUSH_AT) {
		ret = tcp_send(t);
		if (ret) {
			ms_client_fail(c, ret);
			return ret;
		}
	}
	return 0;
}

static void tcp_close(struct ms_client *c)
{
	struct tcp_transport *t = tp(c);

	if (!t)
		return;
	if (t->fd >= 0)
		close(t->fd);
	buf_free(&t->tx);
	buf_free(&t->rx);
	free(t);
	c->transport = NULL;
}

static int tcp_flush(struct ms_client *c)
{
	int ret = tcp_send(tp(c));

	if (ret)
		ms_client_fail(c, ret);
	return ret;
}

static int tcp_fd(const struct ms_client *c)
{
	const struct tcp_transport *t = c->transport;

	return t ? t->fd : -1;
}

static const struct ms_client_ops tcp_ops = {
	.scheme = "tcp",
	.submit = tcp_submit,
	.poll = tcp_poll,
	.flush = tcp_flush,
	.fd = tcp_fd,
	.close = tcp_close,
};

/* Sends one handshake frame and reads its reply synchronously. */
static int handshake_call(struct ms_client *c, uint8_t op, const void *body, size_t len,
			  uint8_t *reply, size_t reply_len)
{
	struct tcp_transport *t = tp(c);
	uint8_t frame[MS_HDR_LEN + 64], hdr[MS_HDR_LEN];
	struct ms_hdr h = { .len = (uint32_t)(MS_HDR_LEN + len), .version = MS_PROTO_VERSION,
			    .op = op, .id = c->next_id++ };
	int ret;

	ms_hdr_encode(frame, &h);
	memcpy(frame + MS_HDR_LEN, body, len);
	ret = write_full(t->fd, frame, MS_HDR_LEN + len);
	if (ret)
		return ret;
	ret = read_full(t->fd, hdr, MS_HDR_LEN);
	if (ret)
		return ret == -EPIPE ? -ECONNRESET : ret;
	if (ms_hdr_decode(hdr, MS_HDR_LEN, &h) || h.op != (op | MS_REPLY))
		return -EPROTO;
	if (h.status)
		return ms_status_to_errno(h.status);
	if (h.len != MS_HDR_LEN + reply_len)
		return -EPROTO;
	return read_full(t->fd, reply, reply_len);
}

/* HELLO, then AUTH when the server asks; both sides prove the key. */
static int handshake(struct ms_client *c, const struct auth_key *key)
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
	ret = handshake_call(c, MS_OP_HELLO, hello, sizeof(hello), reply, sizeof(reply));
	if (ret)
		return ret;
	if (get_le16(reply) != MS_PROTO_VERSION || get_le32(reply + 4) != MS_PAGE_SIZE)
		return -EPROTO;
	if (get_le16(reply + 2) == MS_AUTH_NONE)
		return 0;
	if (get_le16(reply + 2) != MS_AUTH_HMAC_SHA256 || !key)
		return -EPERM;
	memcpy(snonce, reply + 16, MS_NONCE_LEN);
	ms_client_mac(key, false, snonce, cnonce, mac);
	ret = handshake_call(c, MS_OP_AUTH, mac, sizeof(mac), server_mac, sizeof(server_mac));
	if (ret)
		return ret;
	ms_client_mac(key, true, cnonce, snonce, mac);
	return auth_equal(mac, server_mac, MS_MAC_LEN) ? 0 : -EPERM;
}

int ms_client_tcp_connect(struct ms_client *c, const char *host, uint16_t port,
			  const struct auth_key *key)
{
	struct tcp_transport *t = calloc(1, sizeof(*t));
	struct timeval tv = { .tv_sec = c->timeout_ms / 1000,
			      .tv_usec = (c->timeout_ms % 1000) * 1000 };
	int ret;

	if (!t)
		return -ENOMEM;
	t->fd = net_tcp_connect(host, port, c->timeout_ms);
	if (t->fd < 0) {
		ret = t->fd;
		goto free_t;
	}
	net_set_buffers(t->fd, 4 << 20);
	c->transport = t;
	c->ops = &tcp_ops;
	/* The handshake is blocking with a bound; then the socket is driven by
	 * poll(2) and MSG_DONTWAIT only. */
	setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(t->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	ret = handshake(c, key);
	if (ret == -EAGAIN)
		ret = -ETIMEDOUT;
	if (ret)
		goto close_fd;
	return 0;

close_fd:
	close(t->fd);
	c->transport = NULL;
	c->ops = NULL;
free_t:
	free(t);
	return ret;
}

int ms_client_tcp_detached(struct ms_client **out)
{
	struct ms_client *c = calloc(1, sizeof(*c));
	struct tcp_transport *t = calloc(1, sizeof(*t));

	if (!c || !t) {
		free(c);
		free(t);
		return -ENOMEM;
	}
	t->fd = -1;
	c->transport = t;
	c->ops = &tcp_ops;
	c->timeout_ms = 1000;
	c->next_id = 1;
	snprintf(c->url, sizeof(c->url), "tcp://detached:0");
	*out = c;
	return 0;
}

int ms_client_tcp_feed(struct ms_client *c, const void *data, size_t len)
{
	struct tcp_transport *t = tp(c);
	int ret;

	if (c->dead)
		return c->dead;
	if (buf_append(&t->rx, data, len))
		return -ENOMEM;
	ret = parse_replies(c);
	if (ret)
		ms_client_fail(c, ret);
	return ret;
}

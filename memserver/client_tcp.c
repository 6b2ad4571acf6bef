/*
 * TCP transport of the client library: the shared framing (client_frame.c)
 * encodes requests into a send queue, flushed when polled (so a burst of
 * submits leaves in few segments), and parses replies from a receive buffer,
 * completing requests by id in whatever order the server answers. This file
 * owns only the socket.
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
	return ms_frame_parse(c, &t->rx);
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
	struct ms_io *tail0 = c->done_tail;
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
		/* Done once something completed in this call (completions
		 * queued before it, a sync waiter's neighbours, do not count),
		 * or time is up. */
		if (c->done_tail != tail0 || wait == 0)
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
	int ret = ms_frame_encode(&t->tx, io);

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

/* The handshake's blocking exchange (ms_xfer_fn), bounded by the socket
 * timeouts set at connect. */
static int tcp_xfer(struct ms_client *c, const void *out, size_t outlen, void *in, size_t inlen)
{
	struct tcp_transport *t = tp(c);
	int ret = 0;

	if (outlen)
		ret = write_full(t->fd, out, outlen);
	if (!ret && inlen) {
		ret = read_full(t->fd, in, inlen);
		if (ret == -EPIPE)
			ret = -ECONNRESET;
	}
	return ret;
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
	ret = ms_client_handshake(c, key, tcp_xfer);
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
	ret = ms_frame_parse(c, &t->rx);
	if (ret)
		ms_client_fail(c, ret);
	return ret;
}

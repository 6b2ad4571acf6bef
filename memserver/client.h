/*
 * Memory-server client library. One struct ms_client is one authenticated
 * connection to one server; it is used by one thread at a time (callers that
 * share one add their own lock). Two interfaces over the same connection:
 *
 *  - asynchronous and pipelined: fill a struct ms_io, ms_client_submit() it,
 *    and collect finished ones with ms_client_poll(); replies may complete in
 *    any order; many may be in flight (MS_CLIENT_MAX_INFLIGHT);
 *  - synchronous calls (ms_client_read() ...), each a submit plus a wait,
 *    which may be mixed with asynchronous I/O on the same client.
 *
 * Transports sit behind struct ms_client_ops, chosen by the URL scheme:
 * tcp:// (client_tcp.c) and rdma:// (client_rdma.c: control frames in SEND
 * messages, READ/WRITE as one-sided RDMA into the region's registration).
 * Both share the framing in client_frame.c. Every call returns 0 or -errno; a
 * transport failure (server gone, malformed reply, timeout of a synchronous
 * call, an RDMA error completion) fails every request in flight and leaves
 * the client dead (-ENOTCONN) until it is closed.
 */
#ifndef LEGATO_MEMSERVER_CLIENT_H
#define LEGATO_MEMSERVER_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/auth.h"
#include "memserver/proto.h"

#define MS_CLIENT_MAX_INFLIGHT 256u

/*
 * One request. The caller owns the struct and keeps it alive until it comes
 * back from ms_client_poll (or the synchronous call returns).
 */
struct ms_io {
	/* set by the caller */
	uint8_t op;		/* MS_OP_READ, MS_OP_WRITE, MS_OP_PING, ... */
	uint32_t npages;	/* READ/WRITE: 1..MS_MAX_BATCH */
	uint64_t region;	/* region id */
	uint64_t epoch;		/* READ/WRITE: from ms_client_open */
	const uint64_t *pages;	/* READ/WRITE: npages page numbers */
	void *buf;		/* READ: npages pages out; WRITE: npages pages in
				 * (copied at submit, may be reused at once) */
	uint8_t *const *bufs;	/* READ/WRITE: npages separate page buffers, used
				 * instead of buf when set */
	uint8_t *zero;		/* READ: optional npages flags out; a page flagged 1
				 * was never written and its buf slot is left
				 * untouched. NULL: such pages are zero-filled. */
	uint64_t arg;		/* CREATE: size; PING: delay in us;
				 * DEBUG_CORRUPT: page; WRITTEN: first page */
	uint8_t token[MS_TOKEN_LEN]; /* CREATE: out; OPEN, DELETE: in */
	struct ms_stat *stat;	/* STAT: out */
	void *cookie;		/* untouched, for the caller */

	/* set on completion */
	int result;		/* 0 or -errno (see ms_status_to_errno) */
	uint64_t out_epoch;	/* OPEN */
	uint64_t out_size;	/* OPEN */

	/* private to the library */
	uint64_t id;
	struct ms_io *next;
};

struct ms_client;

/* Transport operations. The generic layer (client.c) owns ids and waiting;
 * the framing is shared by the transports (client_frame.c). */
struct ms_client_ops {
	const char *scheme;
	int (*submit)(struct ms_client *c, struct ms_io *io);
	/* Makes progress; unless timeout_ms is 0, waits (up to timeout_ms,
	 * < 0: for ever) until a request completes during the call (ones
	 * already on the done list do not end the wait). 0 or -errno. */
	int (*poll)(struct ms_client *c, int timeout_ms);
	int (*flush)(struct ms_client *c); /* send what is queued, do not wait */
	int (*fd)(const struct ms_client *c);
	void (*close)(struct ms_client *c);
	int (*set_busy_poll)(struct ms_client *c, bool on); /* NULL: not supported */
};

/*
 * Connects to url ("tcp://H:P" or "rdma://H:P"), runs HELLO and, when the
 * server asks, the HMAC challenge with key (NULL: none; the server's reply is
 * verified too).
 * timeout_ms bounds the connect and handshake and becomes the default for the
 * synchronous calls (<= 0: 10 s). Returns 0, -EINVAL (bad URL),
 * -EPROTONOSUPPORT (scheme not built in), -EPERM (authentication failed or a
 * key is required), -ETIMEDOUT, or -errno from the network (rdma:// also
 * -ENODEV: no RDMA device reaches the host; -ECONNREFUSED: no listener or a
 * peer that is not a legato memory server).
 */
int ms_client_connect(const char *url, const struct auth_key *key, int timeout_ms,
		      struct ms_client **out);

/* Closes the connection. Requests still in flight are dropped, not completed. */
void ms_client_close(struct ms_client *c);

/* The URL this client is connected to. */
const char *ms_client_url(const struct ms_client *c);

/*
 * Queues io for sending (it leaves at the next poll or when the send queue is
 * large). Returns 0, -EINVAL for a malformed request, -EAGAIN when
 * MS_CLIENT_MAX_INFLIGHT are in flight, -ENOTCONN when the client is dead.
 * Over rdma:// a READ/WRITE is checked here instead of by the server: -EBADF
 * (region not opened on this connection), -ENOENT (deleted on it), -ESTALE
 * (epoch is not the one it was opened with), -ERANGE (page beyond the
 * region); one that finds the transport's buffers full is queued, not
 * refused. A region fenced by another opener or deleted elsewhere is found
 * by an RDMA error: the request completes with -ESTALE and the client dies.
 */
int ms_client_submit(struct ms_client *c, struct ms_io *io);

/*
 * Sends what is queued and returns up to max finished requests in done[],
 * waiting up to timeout_ms (0: do not wait; < 0: forever) for the first one.
 * Returns the number returned, or -ENOTCONN when the client is dead and nothing
 * is left to return.
 */
int ms_client_poll(struct ms_client *c, struct ms_io **done, unsigned max, int timeout_ms);

/* The file descriptor to wait on (readable: replies may be ready) from an
 * event loop; -1 when the transport has none. Call ms_client_poll(.., 0) when
 * it is readable, and after submitting. tcp:// gives its socket, rdma:// an
 * epoll fd over its completion channel and its connection-manager events. */
int ms_client_fd(const struct ms_client *c);

/* Fails every request in flight with err and kills the client (for callers
 * that enforce their own deadlines on asynchronous requests). */
void ms_client_abort(struct ms_client *c, int err);

/* Sends what is queued without waiting; replies that happen to arrive are
 * kept for the next poll. Returns 0 or -ENOTCONN. */
int ms_client_flush(struct ms_client *c);

/*
 * Waiting mode of ms_client_poll: busy-polling the completion queue (lowest
 * latency, a core spent while anything is in flight) or, by default,
 * sleeping on the completion channel after a short spin. Only rdma:// has
 * the choice. Returns 0, or -EOPNOTSUPP for a transport without it.
 */
int ms_client_set_busy_poll(struct ms_client *c, bool on);

/* Requests submitted and not yet returned by poll. */
unsigned ms_client_inflight(const struct ms_client *c);

/* Synchronous calls. */
int ms_client_create(struct ms_client *c, uint64_t region, uint64_t size,
		     uint8_t token[MS_TOKEN_LEN]);
int ms_client_open(struct ms_client *c, uint64_t region, const uint8_t token[MS_TOKEN_LEN],
		   uint64_t *epoch, uint64_t *size);
int ms_client_delete(struct ms_client *c, uint64_t region, const uint8_t token[MS_TOKEN_LEN]);
/* Reads npages (any number; split into batches) into buf; zero as in ms_io. */
int ms_client_read(struct ms_client *c, uint64_t region, uint64_t epoch, const uint64_t *pages,
		   unsigned npages, void *buf, uint8_t *zero);
int ms_client_write(struct ms_client *c, uint64_t region, uint64_t epoch,
		    const uint64_t *pages, unsigned npages, const void *buf);
int ms_client_stat(struct ms_client *c, struct ms_stat *out);
int ms_client_ping(struct ms_client *c, uint32_t delay_us);
/* Which of pages first .. first + npages - 1 (npages <= MS_MAX_WRITTEN_PAGES)
 * hold data: bit i of bitmap (LSB first, (npages + 7) / 8 bytes). */
int ms_client_written(struct ms_client *c, uint64_t region, uint64_t epoch, uint64_t first,
		      uint32_t npages, uint8_t *bitmap);
/* Test hook (server started with --test-hooks): corrupts a stored page. */
int ms_client_debug_corrupt(struct ms_client *c, uint64_t region, uint64_t page);

#endif

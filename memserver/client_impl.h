/*
 * Private to the client library: the state every transport shares (request ids,
 * the in-flight table, the completed list), the helpers transports call, and
 * the protocol framing they share (client_frame.c): the request encoder, the
 * reply parser that completes requests, and the HELLO/AUTH handshake driven
 * through a transport's blocking byte exchange. A transport owns only how
 * bytes (and, for rdma://, pages) move.
 */
#ifndef LEGATO_MEMSERVER_CLIENT_IMPL_H
#define LEGATO_MEMSERVER_CLIENT_IMPL_H

#include "common/buf.h"
#include "memserver/client.h"

struct ms_client {
	const struct ms_client_ops *ops;
	void *transport;
	char url[300];
	int timeout_ms;
	int dead;		/* 0, or the -errno that killed the client */
	unsigned inflight;	/* submitted and not yet returned by poll */
	uint64_t next_id;	/* request ids are next_id * MAX_INFLIGHT + slot */
	unsigned next_slot;
	/* Sent and awaiting a reply, indexed by id % MS_CLIENT_MAX_INFLIGHT. */
	struct ms_io *slots[MS_CLIENT_MAX_INFLIGHT];
	struct ms_io *done_head, *done_tail;
	/*
	 * Transport hooks into reply parsing (zero/NULL for TCP). A REGION_OPEN
	 * reply carries open_extra bytes after epoch and size (rdma://: the
	 * region's registrations, MS_RDMA_OPEN_EXTRA). on_reply, when set, runs
	 * for every successful REGION_OPEN (extra: those bytes; io->out_epoch
	 * and out_size already filled) and REGION_DELETE (extra: NULL) before
	 * the request completes; it returns 0 or the -errno to complete it with.
	 */
	size_t open_extra;
	int (*on_reply)(struct ms_client *c, struct ms_io *io, const uint8_t *extra);
};

/* Finds the in-flight request with this id, or NULL. */
struct ms_io *ms_client_lookup(struct ms_client *c, uint64_t id);

/* Moves io from the in-flight table to the completed list with result. */
void ms_client_complete(struct ms_client *c, struct ms_io *io, int result);

/* Marks the client dead with err and completes everything in flight with it. */
void ms_client_fail(struct ms_client *c, int err);

/* The caller's buffer for page i of a READ or WRITE (io->bufs or io->buf). */
static inline uint8_t *ms_io_page(const struct ms_io *io, uint32_t i)
{
	return io->bufs ? io->bufs[i] : (uint8_t *)io->buf + (size_t)i * MS_PAGE_SIZE;
}

/* ---- client_frame.c: framing shared by every transport ------------------ */

/*
 * Appends io's request frame (header and body, see proto.h) to tx; io->id
 * must be set. WRITE pages are copied and summed here, so the caller may
 * reuse them at once. Returns 0, -EINVAL (opcode not a request), -ENOMEM.
 */
int ms_frame_encode(struct buf *tx, const struct ms_io *io);

/*
 * Completes every request whose whole reply is in rx and consumes those
 * bytes; a partial frame stays for later. Returns 0, or -EPROTO when the
 * stream is malformed (bad header, unknown id, wrong body): the caller must
 * then fail the client, as the stream cannot be trusted any more.
 */
int ms_frame_parse(struct ms_client *c, struct buf *rx);

/*
 * A transport's blocking exchange for the handshake: sends out[0..outlen)
 * (outlen may be 0), then receives exactly inlen bytes into in (inlen may be
 * 0), bounded by the client's timeout. Returns 0 or -errno (-ETIMEDOUT,
 * -ECONNRESET, ...).
 */
typedef int ms_xfer_fn(struct ms_client *c, const void *out, size_t outlen, void *in,
		       size_t inlen);

/*
 * HELLO, then AUTH with key when the server asks for it (the server's MAC is
 * verified too), through xfer. Uses request ids from c->next_id. Returns 0,
 * -EPERM (authentication failed, a key is required and key is NULL, or key
 * is given and the server asks for none: it could not prove it holds it),
 * -EPROTO (unexpected reply), or xfer's -errno.
 */
int ms_client_handshake(struct ms_client *c, const struct auth_key *key, ms_xfer_fn *xfer);

/* ---- transports ---------------------------------------------------------- */

/* Transport constructors: connect, handshake, fill c->ops/c->transport.
 * Each returns 0 or -errno and leaves c untouched on failure. */
int ms_client_tcp_connect(struct ms_client *c, const char *host, uint16_t port,
			  const struct auth_key *key);

/*
 * rdma:// (client_rdma.c): a librdmacm RC connection, the control stream in
 * SEND messages, READ/WRITE as one-sided RDMA into the region's registration
 * (docs/protocol.md, "RDMA"). Beyond the connect errors of tcp://: -ENODEV
 * (no RDMA device for the route), -ECONNREFUSED (rejected: no listener, or
 * the private data did not match), -EHOSTUNREACH/-ENETUNREACH.
 */
int ms_client_rdma_connect(struct ms_client *c, const char *host, uint16_t port,
			   const struct auth_key *key);

/*
 * Test hook: where this rdma:// connection believes region's registrations
 * are (from its last REGION_OPEN reply; the address and rkey its one-sided
 * READ/WRITEs use). With get, copies them out; with set, overwrites them
 * (after get), e.g. with another connection's, to check that the server's
 * protection domains stop such a forgery. Returns 0, -ENOENT (region not
 * opened on this connection, or deleted on it), -EPROTONOSUPPORT (not an
 * rdma:// client).
 */
struct ms_rdma_remote {
	uint64_t slots_addr;
	uint32_t rkey;
};

int ms_client_rdma_debug_remote(struct ms_client *c, uint64_t region, struct ms_rdma_remote *get,
				const struct ms_rdma_remote *set);

/*
 * For the reply fuzzer and tests: a TCP client with no socket (nothing is ever
 * sent), and a way to hand it bytes as if the server had sent them. feed
 * returns 0, or -errno after failing the client (malformed reply).
 */
int ms_client_tcp_detached(struct ms_client **out);
int ms_client_tcp_feed(struct ms_client *c, const void *data, size_t len);

/* The handshake MACs (shared by every transport). */
void ms_client_mac(const struct auth_key *key, bool server, const uint8_t *first,
		   const uint8_t *second, uint8_t out[MS_MAC_LEN]);

#endif

/*
 * The memory server's protocol engine for one connection: authentication
 * state, the regions this connection has open, and the execution of one
 * decoded frame into one reply. It knows nothing of sockets, so the TCP event
 * loop, the unit tests and the fuzzer drive it the same way.
 */
#ifndef LEGATO_MEMSERVER_SESSION_H
#define LEGATO_MEMSERVER_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "common/auth.h"
#include "common/buf.h"
#include "memserver/proto.h"
#include "memserver/store.h"

#define MS_SESSION_MAX_OPENS 64

/* Server-wide state every session reads; immutable while sessions run. */
struct ms_service {
	struct ms_store *store;
	const struct auth_key *key; /* NULL: no authentication (open server) */
	bool test_hooks;	    /* enables MS_OP_DEBUG_CORRUPT */
	uint64_t start_ns;
	/* Fills the per-op and connection figures of a STAT reply. */
	void (*collect_stat)(void *ctx, struct ms_stat *out);
	void *collect_ctx;
};

struct ms_session_open {
	struct ms_region *region;
	uint64_t epoch;
};

/*
 * What a transport that exposes opened regions itself (RDMA) adds to REGION_
 * OPEN. opened() runs after the store granted the open of r at epoch, writes
 * extra_len bytes appended to the reply and returns 0, or -errno to fail the
 * open; closing() runs before the session lets go of a region opened() took
 * (a re-open of it, or release). At most one open per region per session.
 * Both on the connection's thread, with no store lock held.
 */
struct ms_session_xport {
	size_t extra_len;
	int (*opened)(void *ctx, struct ms_region *r, uint64_t epoch, uint8_t *extra);
	void (*closing)(void *ctx, struct ms_region *r);
};

struct ms_session {
	const struct ms_service *svc;
	const struct ms_session_xport *xport;	/* NULL: plain (TCP) */
	void *xport_ctx;
	struct ms_op_stats *stats; /* MS_OP_MAX entries, owned by the worker */
	bool greeted;
	bool authenticated;
	uint8_t server_nonce[MS_NONCE_LEN];
	uint8_t client_nonce[MS_NONCE_LEN];
	unsigned nopens;
	struct ms_session_open opens[MS_SESSION_MAX_OPENS];
};

enum ms_verdict {
	MS_V_CONTINUE,	/* reply appended; keep reading */
	MS_V_CLOSE,	/* reply appended; flush it, then close */
	MS_V_DEFER,	/* PING with a delay: the caller sends the reply later */
};

/* Prepares a session. stats points at MS_OP_MAX counters the caller owns. */
void ms_session_init(struct ms_session *s, const struct ms_service *svc,
		     struct ms_op_stats *stats);

/* Drops every region reference the session holds. */
void ms_session_release(struct ms_session *s);

/*
 * Executes one whole frame (len bytes, header already validated by
 * ms_hdr_decode) and appends its reply to out. For MS_V_DEFER, *defer_us gets
 * the delay and nothing is appended: the caller later appends
 * ms_reply_status(out, &hdr, MS_ST_OK). Runs on the connection's thread.
 */
enum ms_verdict ms_session_handle(struct ms_session *s, const uint8_t *frame, size_t len,
				  struct buf *out, uint32_t *defer_us);

/* Appends a body-less reply to request hdr with the given status.
 * Returns 0 or -ENOMEM. */
int ms_reply_status(struct buf *out, const struct ms_hdr *req, enum ms_status st);

#endif

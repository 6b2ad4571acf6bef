/*
 * The memory server: a pool (store.h) served over TCP and/or RDMA by a few
 * worker threads.
 * Each worker owns an epoll loop and the connections it accepted, and runs each
 * request to completion on that thread (no hand-off on the fast path: on the
 * machines this runs on, every thread wake-up costs tens of microseconds).
 * The memserver daemon is a thin main.c over this; tests start it in-process.
 */
#ifndef LEGATO_MEMSERVER_SERVER_H
#define LEGATO_MEMSERVER_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/auth.h"
#include "memserver/proto.h"

struct ms_server_config {
	const char *listen;	    /* "tcp://ADDR:PORT" or "rdma://ADDR:PORT"; port 0
				     * picks a free one */
	const char *listen2;	    /* NULL, or a second URL of the other scheme */
	uint64_t capacity;	    /* bytes of regions the server may reserve */
	const struct auth_key *key; /* NULL: no authentication (logged loudly) */
	unsigned threads;	    /* worker threads, >= 1 */
	bool test_hooks;	    /* allow MS_OP_DEBUG_CORRUPT */
};

struct ms_server;

/*
 * Creates a server and binds its listeners (nothing runs yet). The key, if
 * any, is copied. Returns 0, -EINVAL for a bad URL or argument (two URLs of
 * one scheme), -ENODEV for rdma:// where no RDMA device serves the address,
 * or -errno from bind.
 */
int ms_server_create(const struct ms_server_config *cfg, struct ms_server **out);

/* Starts the worker threads. Returns 0 or -errno (nothing left running). */
int ms_server_start(struct ms_server *srv);

/* The URL actually bound, with the real port ("tcp://127.0.0.1:40123"). */
const char *ms_server_url(const struct ms_server *srv);
/* The second one (listen2) as bound, or NULL. */
const char *ms_server_url2(const struct ms_server *srv);

/* Stops and joins the workers and closes every connection. Idempotent; call
 * from any thread except a worker. */
void ms_server_stop(struct ms_server *srv);

/* Stops (if needed) and frees everything. */
void ms_server_destroy(struct ms_server *srv);

/* A snapshot of the figures STAT returns. */
void ms_server_stat(struct ms_server *srv, struct ms_stat *out);

#endif

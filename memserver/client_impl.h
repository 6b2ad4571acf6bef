/*
 * Private to the client library: the state every transport shares (request ids,
 * the in-flight table, the completed list) and the helpers transports call.
 */
#ifndef LEGATO_MEMSERVER_CLIENT_IMPL_H
#define LEGATO_MEMSERVER_CLIENT_IMPL_H

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
};

/* Finds the in-flight request with this id, or NULL. */
struct ms_io *ms_client_lookup(struct ms_client *c, uint64_t id);

/* Moves io from the in-flight table to the completed list with result. */
void ms_client_complete(struct ms_client *c, struct ms_io *io, int result);

/* Marks the client dead with err and completes everything in flight with it. */
void ms_client_fail(struct ms_client *c, int err);

/* Transport constructors: connect, handshake, fill c->ops/c->transport. */
int ms_client_tcp_connect(struct ms_client *c, const char *host, uint16_t port,
			  const struct auth_key *key);

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

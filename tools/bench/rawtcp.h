/*
 * The raw TCP reference of the memory-server benchmark: a server thread per
 * connection that answers every request of a fixed size with a response of a
 * fixed size, so the benchmark can time the bare transport next to the memory
 * server, in the same process and run. A connection opens with {u32 request,
 * u32 response} lengths.
 */
#ifndef LEGATO_TOOLS_BENCH_RAWTCP_H
#define LEGATO_TOOLS_BENCH_RAWTCP_H

#include <pthread.h>
#include <stdint.h>

#define RAW_RX (256u * 1024)
/* Requests a client may pipeline to the raw server. */
#define RAW_MAX_DEPTH 32u

struct raw_server {
	int lfd;
	uint16_t port;
	int stop[2];
	pthread_t acceptor;
	pthread_t conns[16];
	unsigned nconns;
};

/* Listens on a free loopback port and starts the acceptor (dies on error). */
void raw_server_start(struct raw_server *rs);
/* Stops and joins everything; call after every client connection closed. */
void raw_server_stop(struct raw_server *rs);
/* Connects a client that will send req_len-byte requests and expect
 * resp_len-byte responses; returns the socket (dies on error). */
int raw_connect(struct raw_server *rs, uint32_t req_len, uint32_t resp_len);

#endif

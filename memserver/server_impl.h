/*
 * Private to the memory server: the connection, worker and server structs
 * that the TCP front end (server.c) and the RDMA one (server_rdma.c) share.
 * A connection is either a TCP socket or an RDMA queue pair; both feed the
 * same input buffer, run the same session, and drain the same output buffer,
 * only the byte transport differs.
 */
#ifndef LEGATO_MEMSERVER_SERVER_IMPL_H
#define LEGATO_MEMSERVER_SERVER_IMPL_H

#include <pthread.h>
#include <stdbool.h>

#include "common/buf.h"
#include "memserver/server.h"
#include "memserver/session.h"

struct ms_rdma_listener;
struct ms_rdma_conn;

#define IN_KEEP (128u * 1024)
#define OUT_HIGH_WATER (4u * 1024 * 1024)
#define MAX_CONNS 4096u
#define MAX_DEFERRED_PER_CONN 16u

struct ms_conn {
	int fd;			/* the socket, or the RDMA completion channel's */
	struct ms_rdma_conn *rdma;	/* NULL: TCP */
	struct ms_worker *w;
	struct ms_session session;
	struct buf in, out;
	bool closing;		/* flush out, then close */
	bool paused;		/* not reading: output above high water */
	bool want_out;		/* EPOLLOUT registered */
	unsigned deferred;
	bool dead;		/* closed; freed after the current epoll batch */
	struct ms_conn *prev, *next;	/* the worker's list, or its graveyard */
};

struct ms_timer {
	struct ms_conn *conn;
	struct ms_hdr hdr;
	uint64_t due_ns;
};

struct ms_worker {
	struct ms_server *srv;
	pthread_t thread;
	bool started;
	int epfd;
	int stopfd;
	struct ms_conn *conns;
	/* Closed connections whose memory must outlive the epoll batch that
	 * closed them: a later event of the same batch may still name them
	 * (an RDMA connection is closed from the listener's event). */
	struct ms_conn *graveyard;
	struct ms_timer *timers;
	unsigned ntimers, timers_cap;
	struct ms_op_stats stats[MS_OP_MAX];
};

struct ms_server {
	struct ms_service svc;
	struct auth_key key;
	struct ms_store *store;
	int listen_fd;		/* -1: no tcp:// listener */
	struct ms_rdma_listener *rdma;	/* NULL: no rdma:// listener */
	char url[300];		/* the first --listen, as bound */
	char url2[300];		/* the second, or "" */
	unsigned nworkers;
	struct ms_worker *workers;
	unsigned nconns; /* atomic */
	bool running;
};

/* Executes every whole frame in c->in and flushes the replies. Returns 0 or
 * -errno when the connection must be closed now. Worker thread only. */
int ms_conn_process(struct ms_conn *c);

/* Closes c (either kind); its memory goes when the worker's current epoll
 * batch is done. Worker thread only. */
void ms_conn_close(struct ms_conn *c);

/* Sets c up on worker w (session, list, count); the caller has added its fd
 * to w's epoll with data.ptr = c. */
void ms_conn_attach(struct ms_worker *w, struct ms_conn *c);

/* The RDMA front end (server_rdma.c). */

/* Binds an rdma:// listener on host:port (0: any free one), *bound_port the
 * port in use. Returns 0, -ENODEV (no RDMA device for that address), or
 * -errno. The listener's event fd is added to worker 0's epoll by the server
 * with data.ptr = the listener. */
int ms_rdma_listen(struct ms_server *srv, const char *host, uint16_t port,
		   struct ms_rdma_listener **out, uint16_t *bound_port);
int ms_rdma_listener_fd(const struct ms_rdma_listener *l);
/* Handles the connection manager's events (worker 0). */
void ms_rdma_listener_event(struct ms_rdma_listener *l, struct ms_worker *w);
void ms_rdma_listener_destroy(struct ms_rdma_listener *l);

/* For the shared connection code: what TCP does with a socket. */
int ms_rdma_conn_flush(struct ms_conn *c);
void ms_rdma_conn_event(struct ms_conn *c);
void ms_rdma_conn_destroy(struct ms_conn *c);

#endif

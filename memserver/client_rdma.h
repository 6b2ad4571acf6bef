/*
 * Private to the rdma:// client transport (client_rdma.c: the data path;
 * client_rdma_conn.c: connection set-up and teardown): its limits, its
 * state, and the registered arena's layout.
 */
#ifndef LEGATO_MEMSERVER_CLIENT_RDMA_H
#define LEGATO_MEMSERVER_CLIENT_RDMA_H

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "common/util.h"
#include "memserver/client_impl.h"

/*
 * Registered bounce slots (4 MiB, pinned, per connection), each a page and
 * its sum laid out as on the server (MS_SLOT_SIZE), so that one scatter
 * entry moves both: every page of a posted READ/WRITE holds one until its
 * chain completes. 16 full batches, and four times ept's write-back window;
 * more waits in the transport's queue.
 */
#define BOUNCE_PAGES 1024u
#define BOUNCE_STRIDE ((MS_SLOT_SIZE + 63u) & ~63u)	/* cache-line aligned slots */
#define SEND_BUFS 8u		/* control SEND messages in flight */
#define MAX_REGIONS 64u		/* MS_SESSION_MAX_OPENS: the server's limit */
#define RD_DEPTH_MAX 128u	/* RDMA READs in flight asked for (device caps it) */
#define SPIN_NS 20000		/* event mode: a waiting poll spins this long first */
#define SPIN_MISSES 4		/* ... unless this many spins in a row caught nothing */
#define SPIN_PROBE 16		/* ... and then every this many waits, to look again */
#define CM_CHECK_NS 1000000	/* busy mode: how often a spin reads the CM channel */
#define MAX_SGE 32u		/* slots per RDMA READ/WRITE (the device may allow fewer) */
#define WC_BATCH 16		/* completions taken per ibv_poll_cq */
/* wr_id: a READ/WRITE chain's is its request id (< 2^62); these tag the rest. */
#define WRID_SEND (1ull << 63)
#define WRID_RECV (1ull << 62)
#define WRID_INDEX 0xffffu
/* epoll data of the two fds behind ms_client_fd. */
#define EV_CQ 1u
#define EV_CM 2u

struct rdma_region {		/* a region opened on this connection */
	bool used;
	bool deleted;		/* by a REGION_DELETE on this connection */
	uint64_t id, epoch, npages;
	uint64_t slots_addr;	/* page p's slot at slots_addr + p * MS_SLOT_SIZE */
	uint32_t rkey;
};

struct rdma_pend {		/* a one-sided READ/WRITE, indexed like c->slots */
	uint64_t id;		/* io->id; 0: free */
	struct ms_io *io;
	struct rdma_region rg;	/* where it goes, as of submit */
	uint32_t n;
	uint32_t nwr;		/* work requests of its chain (ms_client_rdma_chain_len) */
	uint8_t *stage;		/* queued WRITE: a copy of the caller's pages */
	struct rdma_pend *next;	/* queued: the next one in submission order */
	uint64_t pages[MS_MAX_BATCH];
	uint16_t bounce[MS_MAX_BATCH];
};

struct rdma_transport {
	struct ms_client *c;
	struct rdma_event_channel *ec;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	uint8_t *arena;		/* bounce slots | receives | sends */
	size_t arena_len;
	int epfd;
	bool connected, armed, handshaking;
	bool event_pending;	/* epoll saw the completion channel readable */
	uint8_t spin_misses;	/* spins in a row that ended in a sleep (<= SPIN_MISSES) */
	uint8_t spin_probe;	/* waits since spinning was given up, mod SPIN_PROBE */
	bool busy;		/* ms_client_set_busy_poll */
	int lost;		/* 0, or the -errno that ended the connection */
	uint64_t cm_checked;	/* busy mode: when the CM channel was last read */
	unsigned sq_depth, sq_used, cqe, io_cap, ios_posted;
	unsigned max_sge;	/* slots per RDMA READ/WRITE: 1..MAX_SGE */
	uint8_t init_depth, resp_res;
	unsigned nfree, nsend_free, rg_next;
	uint16_t free_bounce[BOUNCE_PAGES];
	uint8_t send_free[SEND_BUFS];
	struct buf tx, rx;
	struct rdma_pend *qhead, *qtail;
	struct rdma_region regions[MAX_REGIONS];
	struct rdma_pend pend[MS_CLIENT_MAX_INFLIGHT];
	struct ibv_send_wr wr[MS_MAX_BATCH];
	struct ibv_sge sge[MS_MAX_BATCH];
};

/* Milliseconds until deadline (now_ns clock), rounded up; 0 when past. */
static inline int ms_left(uint64_t deadline)
{
	int64_t left = (int64_t)(deadline - now_ns());

	return left > 0 ? (int)((left + 999999) / 1000000) : 0;
}

/*
 * The arena: bounce slots | receive buffers | send buffers. A bounce slot
 * holds a page and, right after it, its le64 sum (bounce_sum), the layout of
 * a slot on the server: one scatter/gather entry of MS_SLOT_SIZE bytes moves
 * both, and a run of consecutive pages is one contiguous range there.
 */
static inline uint8_t *bounce_page(const struct rdma_transport *t, unsigned i)
{
	return t->arena + (size_t)i * BOUNCE_STRIDE;
}

static inline uint8_t *bounce_sum(const struct rdma_transport *t, unsigned i)
{
	return bounce_page(t, i) + MS_PAGE_SIZE;
}

static inline uint8_t *recv_buf(const struct rdma_transport *t, unsigned i)
{
	return t->arena + (size_t)BOUNCE_PAGES * BOUNCE_STRIDE + (size_t)i * MS_RDMA_MSG;
}

static inline uint8_t *send_buf(const struct rdma_transport *t, unsigned i)
{
	return recv_buf(t, MS_RDMA_RECV_DEPTH + i);
}

#define ARENA_LEN ((size_t)BOUNCE_PAGES * BOUNCE_STRIDE + \
		   (size_t)(MS_RDMA_RECV_DEPTH + SEND_BUFS) * MS_RDMA_MSG)

static inline int post_recv(struct rdma_transport *t, unsigned i)
{
	struct ibv_sge sge = { .addr = (uintptr_t)recv_buf(t, i), .length = MS_RDMA_MSG,
			       .lkey = t->mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = WRID_RECV | i, .sg_list = &sge, .num_sge = 1 }, *bad;

	return -ibv_post_recv(t->id->qp, &wr, &bad);
}

/*
 * Resolves host:port, creates the event channel and id, the PD, completion
 * channel, CQ and RC QP, registers the arena, posts the receives, connects
 * with our private data (checking the accept's) and makes the epoll fd, all
 * before deadline. t->c, t->epfd (-1) set by the caller. Returns 0 or -errno
 * with nothing left to undo.
 */
int ms_client_rdma_setup(struct rdma_transport *t, const char *host, uint16_t port,
			 uint64_t deadline);

/*
 * Event mode's spin budget adapts (client_rdma.c, rdma_poll): spinning pays
 * when completions come within SPIN_NS (an RNIC: a few microseconds), and
 * only burns a CPU the peer may need when they do not (Soft-RoCE, a busy
 * server, a long run of pages). spin_worth says whether a wait about to
 * start should spin first: yes until SPIN_MISSES spins in a row ended in a
 * sleep, then once every SPIN_PROBE waits; spin_result records whether a
 * spin caught its completion. Exposed for the unit tests.
 */
bool ms_client_rdma_spin_worth(struct rdma_transport *t);
void ms_client_rdma_spin_result(struct rdma_transport *t, bool caught);

/* Disconnects and frees everything setup made (not t itself). */
void ms_client_rdma_teardown(struct rdma_transport *t);

/* The transport's operations (client_rdma.c); for the unit tests. */
extern const struct ms_client_ops ms_client_rdma_ops;

/*
 * A READ/WRITE's chain of work requests (client_rdma.c; exposed for the unit
 * tests). For each run of consecutive page numbers of p (one range of slots
 * on the server), WRs of up to t->max_sge bounce slots each, a slot's page
 * and sum in one entry: a page and its sum always travel in the same WR, in
 * that order. Only the last WR is signalled; all carry wr_id p->id.
 * chain_len is the number of WRs (p->n at most: scattered pages); chain
 * builds them in t->wr and t->sge, p->bounce[] already taken.
 */
uint32_t ms_client_rdma_chain_len(const struct rdma_transport *t, const struct rdma_pend *p);
void ms_client_rdma_chain(struct rdma_transport *t, const struct rdma_pend *p,
			  enum ibv_wr_opcode op);

#endif

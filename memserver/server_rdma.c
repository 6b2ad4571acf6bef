/*
 * RDMA front end of the memory server (rdma://ADDR:PORT; docs/protocol.md,
 * "RDMA"). The connection manager's channel and every RDMA connection live
 * on worker 0: the server's CPU only sees control messages here, pages move
 * by the clients' one-sided READs and WRITEs.
 *
 *   client                                  worker 0
 *     | CONNECT_REQUEST + ms_rdma_priv  -->   |  PD, CQ + channel, RC QP,
 *     |                                       |  receives posted
 *     |   <-- accept + ms_rdma_priv           |
 *     | SEND chunks of the request stream --> |  -> conn->in -> session
 *     |   <-- SEND chunks of the replies      |  <- conn->out
 *     | REGION_OPEN -->                       |  lease: region registered in
 *     |   <-- epoch, size, addrs, rkeys       |  this PD, revoked by a fence
 *     | RDMA READ / WRITE (no server CPU)     |
 *     | DISCONNECT -->                        |  session released (leases
 *     |                                       |  dropped), QP and PD freed
 *
 * Flow control: a receive is reposted only while the input buffer holds at
 * most one frame's worth, so a client that sends faster than the session
 * runs meets RNR NAKs (retried for ever by its QP) instead of growing the
 * server; output past OUT_HIGH_WATER pauses input as over TCP.
 *
 * Each connection has its own protection domain, so an rkey handed to one
 * client means nothing on another's queue pair. Registration pins: the
 * server needs CAP_IPC_LOCK or a memlock limit above its regions' size.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <netdb.h>
#include <rdma/rdma_cma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"
#include "memserver/server_impl.h"

#define SEND_DEPTH 16u
#define CQ_DEPTH (MS_RDMA_RECV_DEPTH + SEND_DEPTH)
#define IN_LIMIT MS_MAX_FRAME	/* receives are reposted below this much input */
#define LISTEN_BACKLOG 64

struct rdma_lease {
	struct ms_region_lease l;	/* first: the store hands it back */
	struct ms_rdma_conn *rc;
	struct ms_region *r;		/* NULL: slot free */
	struct ibv_mr *mr;		/* the region's slots; NULL once revoked */
	uint64_t addr;			/* mr's address and rkey, copied under the */
	uint32_t rkey;			/* region lock: a fence may free mr at once */
};

struct ms_rdma_conn {
	struct ms_conn *conn;
	struct rdma_cm_id *id;
	bool own_id;			/* destroy id with the connection */
	bool qp;			/* a QP was created on id */
	bool connected;			/* accepted, not yet disconnected */
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	uint8_t *recv_buf, *send_buf;
	struct ibv_mr *recv_mr, *send_mr;
	unsigned send_free[SEND_DEPTH], nsend_free;
	unsigned unposted[MS_RDMA_RECV_DEPTH], nunposted;
	struct rdma_lease leases[MS_SESSION_MAX_OPENS];
};

struct ms_rdma_listener {
	struct ms_server *srv;
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
};

/* ------------------------------------------------------------ leases */

static int lease_expose(struct ms_region_lease *l, void *slots, size_t len)
{
	struct rdma_lease *e = (struct rdma_lease *)l;
	int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;

	e->mr = ibv_reg_mr(e->rc->pd, slots, len, access);
	if (!e->mr)
		return -(errno ? errno : ENOMEM);
	e->addr = (uintptr_t)e->mr->addr;
	e->rkey = e->mr->rkey;
	return 0;
}

/* Any thread, region lock held: after this the rkeys are dead. */
static void lease_revoke(struct ms_region_lease *l)
{
	struct rdma_lease *e = (struct rdma_lease *)l;

	if (e->mr && ibv_dereg_mr(e->mr))
		log_err("rdma: deregistering a region: %s", strerror(errno));
	e->mr = NULL;
}

static int xport_opened(void *ctx, struct ms_region *r, uint64_t epoch, uint8_t *extra)
{
	struct ms_rdma_conn *rc = ctx;
	struct rdma_lease *e = NULL;
	int ret;

	for (unsigned i = 0; i < MS_SESSION_MAX_OPENS && !e; i++)
		if (!rc->leases[i].r)
			e = &rc->leases[i];
	if (!e)
		return -EINVAL;		/* the session allows no more opens */
	ret = ms_region_lease_add(r, epoch, &e->l);
	if (ret) {
		if (ret != -ESTALE && ret != -ENOENT)
			log_warn("rdma: cannot register region %llu (%llu MiB) for a client: %s%s",
				 (unsigned long long)ms_region_id(r),
				 (unsigned long long)(ms_region_size(r) >> 20), strerror(-ret),
				 ret == -ENOMEM || ret == -EPERM ?
					 " (memlock limit? rdma:// needs CAP_IPC_LOCK)" : "");
		return ret;
	}
	e->r = r;
	/* Not e->mr: the lock is released, and a TCP client on another
	 * worker may already have fenced the region and freed it. A fenced
	 * rkey is merely dead: the client's first access says ESTALE. */
	put_le64(extra, e->addr);
	put_le32(extra + 8, e->rkey);
	put_le32(extra + 12, MS_SLOT_SIZE);
	return 0;
}

static void xport_closing(void *ctx, struct ms_region *r)
{
	struct ms_rdma_conn *rc = ctx;

	for (unsigned i = 0; i < MS_SESSION_MAX_OPENS; i++) {
		struct rdma_lease *e = &rc->leases[i];

		if (e->r == r) {
			ms_region_lease_drop(r, &e->l);
			e->r = NULL;
			return;
		}
	}
}

static const struct ms_session_xport rdma_xport = {
	.extra_len = MS_RDMA_OPEN_EXTRA,
	.opened = xport_opened,
	.closing = xport_closing,
};

/* ----------------------------------------------------- byte transport */

static int post_recv(struct ms_rdma_conn *rc, unsigned slot)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(rc->recv_buf + (size_t)slot * MS_RDMA_MSG),
		.length = MS_RDMA_MSG,
		.lkey = rc->recv_mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = slot, .sg_list = &sge, .num_sge = 1 }, *bad;
	int ret = ibv_post_recv(rc->id->qp, &wr, &bad);

	return ret ? -ret : 0;
}

int ms_rdma_conn_flush(struct ms_conn *c)
{
	struct ms_rdma_conn *rc = c->rdma;

	while (buf_len(&c->out) && rc->nsend_free) {
		unsigned slot = rc->send_free[--rc->nsend_free];
		size_t n = MIN(buf_len(&c->out), (size_t)MS_RDMA_MSG);
		uint8_t *dst = rc->send_buf + (size_t)slot * MS_RDMA_MSG;
		struct ibv_sge sge = { .addr = (uintptr_t)dst, .length = (uint32_t)n,
				       .lkey = rc->send_mr->lkey };
		struct ibv_send_wr wr = { .wr_id = slot, .sg_list = &sge, .num_sge = 1,
					  .opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED };
		struct ibv_send_wr *bad;
		int ret;

		memcpy(dst, buf_head(&c->out), n);
		ret = ibv_post_send(rc->id->qp, &wr, &bad);
		if (ret) {
			rc->send_free[rc->nsend_free++] = slot;
			return -ret;
		}
		buf_consume(&c->out, n);
	}
	if (!buf_len(&c->out)) {
		buf_shrink(&c->out, IN_KEEP);
		if (c->closing && rc->nsend_free == SEND_DEPTH)
			return -ECONNRESET;	/* the last reply has been delivered */
	}
	c->paused = buf_len(&c->out) >= OUT_HIGH_WATER;
	return 0;
}

/* Takes every completion. Returns 0 or -errno (the connection is dead). */
static int drain_cq(struct ms_conn *c, bool *input, bool *sent)
{
	struct ms_rdma_conn *rc = c->rdma;
	struct ibv_wc wc[16];
	int n;

	while ((n = ibv_poll_cq(rc->cq, (int)ARRAY_SIZE(wc), wc)) > 0) {
		for (int i = 0; i < n; i++) {
			if (wc[i].status != IBV_WC_SUCCESS) {
				if (wc[i].status != IBV_WC_WR_FLUSH_ERR)
					log_info("rdma: connection lost: %s",
						 ibv_wc_status_str(wc[i].status));
				return -ECONNRESET;
			}
			if (wc[i].opcode == IBV_WC_RECV) {
				unsigned slot = (unsigned)wc[i].wr_id;

				if (buf_append(&c->in, rc->recv_buf + (size_t)slot * MS_RDMA_MSG,
					       wc[i].byte_len))
					return -ENOMEM;
				rc->unposted[rc->nunposted++] = slot;
				*input = true;
			} else if (wc[i].opcode == IBV_WC_SEND) {
				rc->send_free[rc->nsend_free++] = (unsigned)wc[i].wr_id;
				*sent = true;
			}
		}
	}
	return n < 0 ? -EIO : 0;
}

void ms_rdma_conn_event(struct ms_conn *c)
{
	struct ms_rdma_conn *rc = c->rdma;
	bool input = false, sent = false, was_paused = c->paused;
	struct ibv_cq *cq;
	void *ctx;
	int ret;

	while (ibv_get_cq_event(rc->ch, &cq, &ctx) == 0)
		ibv_ack_cq_events(cq, 1);
	/* Re-arm before draining: a completion after the drain still wakes us. */
	ret = ibv_req_notify_cq(rc->cq, 0) ? -EIO : drain_cq(c, &input, &sent);
	if (!ret && sent)
		ret = ms_rdma_conn_flush(c);
	if (!ret && (input || (was_paused && !c->paused)))
		ret = ms_conn_process(c);
	while (!ret && rc->nunposted && buf_len(&c->in) <= IN_LIMIT)
		ret = post_recv(rc, rc->unposted[--rc->nunposted]);
	if (ret)
		ms_conn_close(c);
}

/* ------------------------------------------------- connection set-up */

void ms_rdma_conn_destroy(struct ms_conn *c)
{
	struct ms_rdma_conn *rc = c->rdma;

	if (rc->connected)
		rdma_disconnect(rc->id);
	if (rc->qp)
		rdma_destroy_qp(rc->id);
	if (rc->recv_mr)
		ibv_dereg_mr(rc->recv_mr);
	if (rc->send_mr)
		ibv_dereg_mr(rc->send_mr);
	if (rc->cq)
		ibv_destroy_cq(rc->cq);
	if (rc->ch)
		ibv_destroy_comp_channel(rc->ch);
	if (rc->pd && ibv_dealloc_pd(rc->pd))
		log_err("rdma: freeing a protection domain: %s", strerror(errno));
	if (rc->own_id)
		rdma_destroy_id(rc->id);
	else if (rc->id)
		rc->id->context = NULL;
	free(rc->recv_buf);
	free(rc->send_buf);
	free(rc);
	c->rdma = NULL;
}

/* Verbs resources of a new connection: PD, completion channel and CQ, QP,
 * message buffers, receives posted. Returns 0 or -errno (the caller unwinds
 * through ms_rdma_conn_destroy). */
static int conn_verbs(struct ms_rdma_conn *rc)
{
	struct ibv_qp_init_attr qa = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = SEND_DEPTH, .max_recv_wr = MS_RDMA_RECV_DEPTH,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct rdma_cm_id *id = rc->id;
	int ret;

	rc->pd = ibv_alloc_pd(id->verbs);
	rc->ch = rc->pd ? ibv_create_comp_channel(id->verbs) : NULL;
	if (!rc->ch || fcntl(rc->ch->fd, F_SETFL, O_NONBLOCK) < 0)
		return -(errno ? errno : ENOMEM);
	rc->cq = ibv_create_cq(id->verbs, CQ_DEPTH, rc, rc->ch, 0);
	if (!rc->cq || ibv_req_notify_cq(rc->cq, 0))
		return -(errno ? errno : ENOMEM);
	qa.send_cq = qa.recv_cq = rc->cq;
	if (rdma_create_qp(id, rc->pd, &qa))
		return -errno;
	rc->qp = true;
	rc->recv_buf = aligned_alloc(4096, (size_t)MS_RDMA_RECV_DEPTH * MS_RDMA_MSG);
	rc->send_buf = aligned_alloc(4096, (size_t)SEND_DEPTH * MS_RDMA_MSG);
	if (!rc->recv_buf || !rc->send_buf)
		return -ENOMEM;
	rc->recv_mr = ibv_reg_mr(rc->pd, rc->recv_buf, (size_t)MS_RDMA_RECV_DEPTH * MS_RDMA_MSG,
				 IBV_ACCESS_LOCAL_WRITE);
	rc->send_mr = ibv_reg_mr(rc->pd, rc->send_buf, (size_t)SEND_DEPTH * MS_RDMA_MSG, 0);
	if (!rc->recv_mr || !rc->send_mr)
		return -(errno ? errno : ENOMEM);
	for (unsigned i = 0; i < SEND_DEPTH; i++)
		rc->send_free[rc->nsend_free++] = i;
	for (unsigned i = 0; i < MS_RDMA_RECV_DEPTH; i++) {
		ret = post_recv(rc, i);
		if (ret)
			return ret;
	}
	return 0;
}

static int conn_accept(struct ms_rdma_conn *rc, const struct rdma_conn_param *req)
{
	struct ibv_device_attr da;
	uint8_t priv[MS_RDMA_PRIV_LEN];
	struct ms_rdma_priv p = {
		.magic = MS_RDMA_MAGIC, .version = MS_PROTO_VERSION,
		.msg_size = MS_RDMA_MSG, .recv_depth = MS_RDMA_RECV_DEPTH,
	};
	struct rdma_conn_param cp = {
		.private_data = priv, .private_data_len = sizeof(priv),
		.retry_count = 7, .rnr_retry_count = 7,
	};

	if (ibv_query_device(rc->id->verbs, &da))
		return -errno;
	/* As many incoming RDMA READs in flight as the client asked for, up to
	 * what the device takes. */
	cp.responder_resources = (uint8_t)MIN((int)req->initiator_depth, da.max_qp_rd_atom);
	ms_rdma_priv_encode(&p, priv);
	return rdma_accept(rc->id, &cp) ? -errno : 0;
}

/* A CONNECT_REQUEST on id (its event not yet acked). Returns 0, or -errno
 * after which the caller rejects and destroys id. */
static int conn_request(struct ms_rdma_listener *l, struct ms_worker *w,
			struct rdma_cm_id *id, const struct rdma_conn_param *req)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct ms_rdma_priv priv;
	struct ms_rdma_conn *rc;
	struct ms_conn *c;
	int ret;

	if (ms_rdma_priv_decode(req->private_data, req->private_data_len, &priv)) {
		log_warn("rdma: refusing a connection that is not a legato client's");
		return -EPROTO;
	}
	if (__atomic_load_n(&l->srv->nconns, __ATOMIC_RELAXED) >= MAX_CONNS) {
		log_warn("rdma: refusing connection: %u connections open", MAX_CONNS);
		return -EBUSY;
	}
	c = calloc(1, sizeof(*c));
	rc = calloc(1, sizeof(*rc));
	if (!c || !rc) {
		free(c);
		free(rc);
		return -ENOMEM;
	}
	c->fd = -1;
	c->rdma = rc;
	rc->conn = c;
	rc->id = id;
	id->context = c;
	for (unsigned i = 0; i < MS_SESSION_MAX_OPENS; i++) {
		rc->leases[i].rc = rc;
		rc->leases[i].l.expose = lease_expose;
		rc->leases[i].l.revoke = lease_revoke;
	}
	ms_conn_attach(w, c);
	c->session.xport = &rdma_xport;
	c->session.xport_ctx = rc;
	ret = conn_verbs(rc);
	if (!ret) {
		c->fd = rc->ch->fd;
		ev.data.ptr = c;
		ret = epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) ? -errno : 0;
	}
	if (!ret)
		ret = conn_accept(rc, req);
	if (ret) {
		log_warn("rdma: cannot set up a connection: %s", strerror(-ret));
		ms_conn_close(c);	/* leaves id to the caller: own_id unset */
		return ret;
	}
	rc->own_id = true;
	rc->connected = true;
	return 0;
}

void ms_rdma_listener_event(struct ms_rdma_listener *l, struct ms_worker *w)
{
	struct rdma_cm_event *ev;

	while (rdma_get_cm_event(l->ch, &ev) == 0) {
		enum rdma_cm_event_type type = ev->event;
		struct rdma_cm_id *id = ev->id;
		/* A connection's id carries its ms_conn; the listener's, us. */
		struct ms_conn *c = id == l->id ? NULL : id->context;
		bool reject = false;

		if (type == RDMA_CM_EVENT_CONNECT_REQUEST)
			reject = conn_request(l, w, id, &ev->param.conn) != 0;
		if (reject)
			rdma_reject(id, NULL, 0);
		/* Ack before any destroy: rdma_destroy_id waits for it. */
		rdma_ack_cm_event(ev);
		if (reject) {
			rdma_destroy_id(id);
			continue;
		}
		switch (type) {
		case RDMA_CM_EVENT_DISCONNECTED:
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
		case RDMA_CM_EVENT_CONNECT_ERROR:
		case RDMA_CM_EVENT_UNREACHABLE:
		case RDMA_CM_EVENT_REJECTED:
			if (c && c->rdma) {
				c->rdma->connected = false;
				ms_conn_close(c);
			}
			break;
		default:
			break;
		}
	}
}

/* ---------------------------------------------------------- listener */

int ms_rdma_listen(struct ms_server *srv, const char *host, uint16_t port,
		   struct ms_rdma_listener **out, uint16_t *bound_port)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct ms_rdma_listener *l;
	struct ibv_device **devs;
	struct addrinfo *ai;
	char portstr[8];
	int ndev = 0, ret;

	devs = ibv_get_device_list(&ndev);
	if (devs)
		ibv_free_device_list(devs);
	if (ndev <= 0)
		return -ENODEV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	ret = getaddrinfo(host, portstr, &hints, &ai);
	if (ret)
		return ret == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
	l = calloc(1, sizeof(*l));
	if (!l) {
		ret = -ENOMEM;
		goto free_ai;
	}
	l->srv = srv;
	l->ch = rdma_create_event_channel();
	if (!l->ch || fcntl(l->ch->fd, F_SETFL, O_NONBLOCK) < 0) {
		ret = -(errno ? errno : ENODEV);
		goto free_l;
	}
	if (rdma_create_id(l->ch, &l->id, l, RDMA_PS_TCP)) {
		ret = -errno;
		goto destroy_ch;
	}
	if (rdma_bind_addr(l->id, ai->ai_addr) || rdma_listen(l->id, LISTEN_BACKLOG)) {
		ret = -errno;
		goto destroy_id;
	}
	*bound_port = ntohs(rdma_get_src_port(l->id));
	*out = l;
	freeaddrinfo(ai);
	return 0;

destroy_id:
	rdma_destroy_id(l->id);
destroy_ch:
	if (l->ch)
		rdma_destroy_event_channel(l->ch);
free_l:
	free(l);
free_ai:
	freeaddrinfo(ai);
	return ret;
}

int ms_rdma_listener_fd(const struct ms_rdma_listener *l)
{
	return l->ch->fd;
}

void ms_rdma_listener_destroy(struct ms_rdma_listener *l)
{
	rdma_destroy_id(l->id);
	rdma_destroy_event_channel(l->ch);
	free(l);
}

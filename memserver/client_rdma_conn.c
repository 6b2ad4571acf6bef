/*
 * Connection set-up and teardown of the rdma:// client transport (see
 * client_rdma.c for the exchange and the data path): librdmacm resolves the
 * address and route within the client's timeout, the verbs objects are sized
 * from the device's limits, and rdma_connect carries struct ms_rdma_priv both
 * ways. Every failure is a -errno with the step undone.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"
#include "common/net.h"
#include "memserver/client_rdma.h"

/* Allocates and registers the arena, fills the free lists, posts receives. */
static int arena_setup(struct rdma_transport *t)
{
	int ret;

	t->arena_len = ARENA_LEN;
	t->arena = aligned_alloc(MS_PAGE_SIZE, t->arena_len);
	if (!t->arena)
		return -ENOMEM;
	t->mr = ibv_reg_mr(t->pd, t->arena, t->arena_len, IBV_ACCESS_LOCAL_WRITE);
	if (!t->mr) {
		ret = errno ? -errno : -ENOMEM;
		log_err("%s: registering %zu bytes of buffers: %s (RLIMIT_MEMLOCK?)", t->c->url,
			t->arena_len, strerror(-ret));
		goto free_arena;
	}
	for (unsigned i = 0; i < BOUNCE_PAGES; i++)
		t->free_bounce[i] = (uint16_t)i;
	t->nfree = BOUNCE_PAGES;
	for (unsigned i = 0; i < SEND_BUFS; i++)
		t->send_free[i] = (uint8_t)i;
	t->nsend_free = SEND_BUFS;
	for (unsigned i = 0; i < MS_RDMA_RECV_DEPTH; i++) {
		ret = post_recv(t, i);
		if (ret)
			goto dereg_mr;
	}
	return 0;

dereg_mr:
	ibv_dereg_mr(t->mr);
	t->mr = NULL;
free_arena:
	free(t->arena);
	t->arena = NULL;
	return ret;
}

/* ---- connection set-up --------------------------------------------------- */

/* The next CM event (the channel is non-blocking), waiting until deadline. */
static int cm_next(struct rdma_transport *t, uint64_t deadline, struct rdma_cm_event **ev)
{
	for (;;) {
		struct pollfd pfd = { .fd = t->ec->fd, .events = POLLIN };
		int left;

		if (rdma_get_cm_event(t->ec, ev) == 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		left = ms_left(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			return -errno;
	}
}

/* The -errno for a CM event that ends a connection attempt; acks it. */
static int cm_error(struct rdma_transport *t, struct rdma_cm_event *ev)
{
	int status = ev->status, ret;

	switch (ev->event) {
	case RDMA_CM_EVENT_REJECTED:
		ret = -ECONNREFUSED;
		break;
	case RDMA_CM_EVENT_UNREACHABLE:
		ret = status < 0 ? status : -EHOSTUNREACH;
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
		ret = status < 0 ? status : -EHOSTUNREACH;
		break;
	case RDMA_CM_EVENT_ROUTE_ERROR:
		ret = status < 0 ? status : -ENETUNREACH;
		break;
	case RDMA_CM_EVENT_CONNECT_ERROR:
		ret = status < 0 ? status : -ECONNREFUSED;
		break;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		ret = -ENODEV;
		break;
	default:
		ret = -EPROTO;
	}
	log_info("%s: %s (status %d): %s", t->c->url, rdma_event_str(ev->event), status,
		 strerror(-ret));
	rdma_ack_cm_event(ev);
	return ret;
}

/* Waits for CM event want; anything else is an error. */
static int cm_expect(struct rdma_transport *t, uint64_t deadline, enum rdma_cm_event_type want)
{
	struct rdma_cm_event *ev;
	int ret = cm_next(t, deadline, &ev);

	if (ret)
		return ret;
	if (ev->event != want)
		return cm_error(t, ev);
	rdma_ack_cm_event(ev);
	return 0;
}

static int resolve_host(const char *host, uint16_t port, struct addrinfo **ai)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	char service[8];
	int rc;

	snprintf(service, sizeof(service), "%u", port);
	rc = getaddrinfo(host, service, &hints, ai);
	if (rc == 0)
		return 0;
	if (rc == EAI_SYSTEM)
		return -errno;
	return rc == EAI_MEMORY ? -ENOMEM : -EHOSTUNREACH;
}

/* Event channel and id; resolves host:port to an RDMA device and a route. */
static int cm_open(struct rdma_transport *t, const char *host, uint16_t port, uint64_t deadline)
{
	struct addrinfo *ai;
	int ret = resolve_host(host, port, &ai);

	if (ret)
		return ret;
	t->ec = rdma_create_event_channel();
	if (!t->ec) {
		ret = errno == ENOENT ? -ENODEV : -errno;
		goto free_ai;
	}
	ret = net_set_nonblock(t->ec->fd, 1);
	if (ret)
		goto destroy_ec;
	if (rdma_create_id(t->ec, &t->id, t, RDMA_PS_TCP)) {
		ret = -errno;
		goto destroy_ec;
	}
	ret = rdma_resolve_addr(t->id, NULL, ai->ai_addr, ms_left(deadline)) ? -errno : 0;
	if (!ret)
		ret = cm_expect(t, deadline, RDMA_CM_EVENT_ADDR_RESOLVED);
	if (!ret && rdma_resolve_route(t->id, ms_left(deadline)))
		ret = -errno;
	if (!ret)
		ret = cm_expect(t, deadline, RDMA_CM_EVENT_ROUTE_RESOLVED);
	if (ret)
		goto destroy_id;
	freeaddrinfo(ai);
	return 0;

destroy_id:
	rdma_destroy_id(t->id);
	t->id = NULL;
destroy_ec:
	rdma_destroy_event_channel(t->ec);
	t->ec = NULL;
free_ai:
	freeaddrinfo(ai);
	if (ret == -ENODEV)
		log_err("%s: no RDMA device reaches %s (rdma_ucm loaded? an RNIC or rxe link "
			"on the route?)", t->c->url, host);
	return ret;
}

/*
 * Queue sizes. Pages in flight are bounded by the bounce arena, so the send
 * queue needs at most a WR per bounce slot (scattered pages) plus the SENDs
 * (not MS_CLIENT_MAX_INFLIGHT full batches: 32768 WRs, more than many devices
 * allow); the CQ holds one completion per WR even when a dead QP flushes
 * unsignalled ones. A READ/WRITE WR scatters or gathers up to max_sge bounce
 * slots (the lesser of MAX_SGE and what the device allows for RDMA READ).
 */
static int size_queues(struct rdma_transport *t, const struct ibv_device_attr *da)
{
	unsigned max_wr = da->max_qp_wr > 0 ? (unsigned)da->max_qp_wr : 0;
	unsigned max_cqe = da->max_cqe > 0 ? (unsigned)da->max_cqe : 0;

	t->sq_depth = MIN(BOUNCE_PAGES + SEND_BUFS, max_wr);
	t->cqe = MIN(t->sq_depth + MS_RDMA_RECV_DEPTH, max_cqe);
	t->init_depth = (uint8_t)MIN((unsigned)MAX(da->max_qp_init_rd_atom, 0), RD_DEPTH_MAX);
	t->resp_res = (uint8_t)MIN((unsigned)MAX(da->max_qp_rd_atom, 0), RD_DEPTH_MAX);
	t->max_sge = MIN((unsigned)MAX(da->max_sge, 1), MAX_SGE);
	if (da->max_sge_rd > 0)
		t->max_sge = MIN(t->max_sge, (unsigned)da->max_sge_rd);
	if (t->sq_depth < MS_MAX_BATCH + SEND_BUFS || max_wr < MS_RDMA_RECV_DEPTH ||
	    t->cqe < SEND_BUFS + MS_RDMA_RECV_DEPTH + 1 || !t->init_depth) {
		log_err("%s: RDMA device %s is too small (max_qp_wr %d, max_cqe %d, "
			"max_qp_init_rd_atom %d)", t->c->url, ibv_get_device_name(t->id->verbs->device),
			da->max_qp_wr, da->max_cqe, da->max_qp_init_rd_atom);
		return -EOPNOTSUPP;
	}
	t->io_cap = MIN(MS_CLIENT_MAX_INFLIGHT, t->cqe - SEND_BUFS - MS_RDMA_RECV_DEPTH);
	return 0;
}

/* PD, completion channel (non-blocking) and CQ, RC QP, the arena. */
static int verbs_setup(struct rdma_transport *t)
{
	struct ibv_qp_init_attr qa = { .qp_type = IBV_QPT_RC };
	struct ibv_device_attr da;
	int ret = -ibv_query_device(t->id->verbs, &da);

	if (!ret)
		ret = size_queues(t, &da);
	if (ret)
		return ret;
	t->pd = ibv_alloc_pd(t->id->verbs);
	if (!t->pd)
		return errno ? -errno : -ENOMEM;
	t->ch = ibv_create_comp_channel(t->id->verbs);
	if (!t->ch) {
		ret = -errno;
		goto dealloc_pd;
	}
	ret = net_set_nonblock(t->ch->fd, 1);
	if (ret)
		goto destroy_ch;
	t->cq = ibv_create_cq(t->id->verbs, (int)t->cqe, t, t->ch, 0);
	if (!t->cq) {
		ret = errno ? -errno : -ENOMEM;
		goto destroy_ch;
	}
	ret = -ibv_req_notify_cq(t->cq, 0);
	if (ret)
		goto destroy_cq;
	t->armed = true;
	qa.send_cq = qa.recv_cq = t->cq;
	qa.cap = (struct ibv_qp_cap){ .max_send_wr = t->sq_depth,
				      .max_recv_wr = MS_RDMA_RECV_DEPTH,
				      .max_send_sge = t->max_sge, .max_recv_sge = 1 };
	ret = rdma_create_qp(t->id, t->pd, &qa) ? -errno : 0;
	if (ret && t->max_sge > 1) { /* a device may take fewer at this depth */
		t->max_sge = qa.cap.max_send_sge = 1;
		ret = rdma_create_qp(t->id, t->pd, &qa) ? -errno : 0;
	}
	if (ret)
		goto destroy_cq;
	ret = arena_setup(t);
	if (ret)
		goto destroy_qp;
	return 0;

destroy_qp:
	rdma_destroy_qp(t->id);
destroy_cq:
	ibv_destroy_cq(t->cq);
	t->cq = NULL;
destroy_ch:
	ibv_destroy_comp_channel(t->ch);
	t->ch = NULL;
dealloc_pd:
	ibv_dealloc_pd(t->pd);
	t->pd = NULL;
	return ret;
}

static void verbs_teardown(struct rdma_transport *t)
{
	rdma_destroy_qp(t->id);
	ibv_dereg_mr(t->mr);
	free(t->arena);
	ibv_destroy_cq(t->cq);
	ibv_destroy_comp_channel(t->ch);
	ibv_dealloc_pd(t->pd);
}

/* rdma_connect with our private data; checks the accept's. */
static int cm_connect(struct rdma_transport *t, uint64_t deadline)
{
	struct ms_rdma_priv mine = { .magic = MS_RDMA_MAGIC, .version = MS_PROTO_VERSION,
				     .msg_size = MS_RDMA_MSG, .recv_depth = MS_RDMA_RECV_DEPTH };
	struct ms_rdma_priv peer;
	uint8_t priv[MS_RDMA_PRIV_LEN];
	struct rdma_conn_param cp = {
		.private_data = priv, .private_data_len = sizeof(priv),
		.initiator_depth = t->init_depth, .responder_resources = t->resp_res,
		.retry_count = 7, .rnr_retry_count = 7, /* 7: retry RNR NAKs for ever */
	};
	struct rdma_cm_event *ev;
	int ret;

	ms_rdma_priv_encode(&mine, priv);
	if (rdma_connect(t->id, &cp))
		return -errno;
	ret = cm_next(t, deadline, &ev);
	if (ret)
		return ret;
	if (ev->event != RDMA_CM_EVENT_ESTABLISHED)
		return cm_error(t, ev);
	t->connected = true;
	ret = ms_rdma_priv_decode(ev->param.conn.private_data, ev->param.conn.private_data_len,
				  &peer);
	rdma_ack_cm_event(ev);
	if (ret)
		log_err("%s: the server accepted without legato's private data", t->c->url);
	return ret;
}

static int epoll_setup(struct rdma_transport *t)
{
	struct epoll_event cq = { .events = EPOLLIN, .data.u32 = EV_CQ };
	struct epoll_event cm = { .events = EPOLLIN, .data.u32 = EV_CM };

	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (t->epfd < 0)
		return -errno;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->ch->fd, &cq) ||
	    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->ec->fd, &cm))
		return -errno; /* the caller closes epfd */
	return 0;
}


int ms_client_rdma_setup(struct rdma_transport *t, const char *host, uint16_t port,
			 uint64_t deadline)
{
	int ret = cm_open(t, host, port, deadline);

	if (ret)
		return ret;
	ret = verbs_setup(t);
	if (ret)
		goto destroy_id;
	ret = cm_connect(t, deadline);
	if (ret)
		goto disconnect;
	ret = epoll_setup(t);
	if (ret)
		goto close_epfd;
	return 0;

close_epfd:
	if (t->epfd >= 0)
		close(t->epfd);
	t->epfd = -1;
disconnect:
	if (t->connected)
		rdma_disconnect(t->id);
	t->connected = false;
	verbs_teardown(t);
destroy_id:
	rdma_destroy_id(t->id);
	rdma_destroy_event_channel(t->ec);
	return ret;
}

void ms_client_rdma_teardown(struct rdma_transport *t)
{
	if (t->connected)
		rdma_disconnect(t->id);
	if (t->epfd >= 0)
		close(t->epfd);
	verbs_teardown(t);
	rdma_destroy_id(t->id);
	rdma_destroy_event_channel(t->ec);
}

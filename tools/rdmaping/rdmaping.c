/*
 * rdmaping: an RDMA READ/WRITE round trip between two machines with librdmacm
 * and libibverbs, to prove a verbs path (Soft-RoCE in the test hosts, or a
 * real RNIC) works end to end before anything larger relies on it.
 *
 *   rdmaping -s [-a ADDR] [-p PORT] [-n CONNS] [-t SECS]
 *   rdmaping -c ADDR [-p PORT] [-b BYTES] [-i ITERS] [-w SECS] [-t SECS]
 *
 * The server registers a buffer of the size the client asks for and returns
 * its address and rkey in the accept's private data. The client, for each
 * iteration, RDMA WRITEs a pattern into that buffer, RDMA READs it back into a
 * zeroed buffer and compares. After the client disconnects the server checks
 * its buffer holds the last pattern. Either side exits non-zero with a message
 * naming the failed step; every wait has a deadline (-t), and the client keeps
 * retrying the connection for -w seconds so it may start before the server.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <infiniband/verbs.h>
#include <netdb.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RPING_MAGIC	0x72706e67u	/* "rpng" */
#define DEFAULT_PORT	"18515"

struct rping_req {		/* client -> server, connect private data */
	uint32_t magic;
	uint32_t len;
	uint32_t seed;
	uint32_t iters;
};

struct rping_rep {		/* server -> client, accept private data */
	uint32_t magic;
	uint32_t rkey;
	uint64_t addr;
	uint32_t len;
	uint32_t pad;
};

struct rping_conn {
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	char *buf;
	size_t len;
};

struct rping_opts {
	int server;
	const char *addr;
	const char *port;
	size_t len;
	unsigned int iters;
	unsigned int conns;
	int wait_s;
	int timeout_s;
};

static int fail(const char *step, int err)
{
	fprintf(stderr, "rdmaping: FAILED at %s: %s\n", step, strerror(err > 0 ? err : -err));
	return err > 0 ? -err : err;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill_pattern(char *buf, size_t len, uint32_t seed, unsigned int iter)
{
	uint32_t x = seed * 2654435761u + iter * 40503u + 1;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (char)x;
	}
}

/* Waits for the next CM event; expects type want (or any when want < 0). */
static int get_event(struct rdma_event_channel *ec, int timeout_s,
		     struct rdma_cm_event **ev, int want, const char *step)
{
	struct pollfd pfd = { .fd = ec->fd, .events = POLLIN };
	int n;

	n = poll(&pfd, 1, timeout_s * 1000);
	if (n == 0) {
		fprintf(stderr, "rdmaping: FAILED at %s: no CM event within %d s\n",
			step, timeout_s);
		return -ETIMEDOUT;
	}
	if (n < 0 || rdma_get_cm_event(ec, ev))
		return fail(step, errno);
	if (want >= 0 && (*ev)->event != (enum rdma_cm_event_type)want) {
		fprintf(stderr, "rdmaping: %s: got CM event %s (status %d), want %s\n",
			step, rdma_event_str((*ev)->event), (*ev)->status,
			rdma_event_str((enum rdma_cm_event_type)want));
		rdma_ack_cm_event(*ev);
		return -ECONNREFUSED;
	}
	return 0;
}

/* Waits for one work completion on the connection's CQ. */
static int wait_wc(struct rping_conn *c, int timeout_s, const char *step)
{
	double deadline = now_s() + timeout_s;
	struct ibv_wc wc;
	void *ctx;
	int n;

	for (;;) {
		n = ibv_poll_cq(c->cq, 1, &wc);
		if (n < 0)
			return fail(step, EIO);
		if (n == 1)
			break;
		if (ibv_req_notify_cq(c->cq, 0))
			return fail(step, errno);
		n = ibv_poll_cq(c->cq, 1, &wc);	/* close the notify race */
		if (n == 1)
			break;
		{
			struct pollfd pfd = { .fd = c->ch->fd, .events = POLLIN };
			int left = (int)((deadline - now_s()) * 1000);

			if (left <= 0 || poll(&pfd, 1, left) <= 0) {
				fprintf(stderr, "rdmaping: FAILED at %s: no completion within %d s\n",
					step, timeout_s);
				return -ETIMEDOUT;
			}
		}
		if (ibv_get_cq_event(c->ch, &c->cq, &ctx))
			return fail(step, errno);
		ibv_ack_cq_events(c->cq, 1);
	}
	if (wc.status != IBV_WC_SUCCESS) {
		fprintf(stderr, "rdmaping: FAILED at %s: completion status %s\n",
			step, ibv_wc_status_str(wc.status));
		return -EIO;
	}
	return 0;
}

/* PD, CQ with completion channel, RC QP and one registered buffer on c->id. */
static int conn_setup(struct rping_conn *c, size_t len, int access)
{
	struct ibv_qp_init_attr qa = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1, .max_recv_sge = 1 },
		.sq_sig_all = 1,
	};
	int err;

	c->pd = ibv_alloc_pd(c->id->verbs);
	if (!c->pd)
		return fail("ibv_alloc_pd", errno ? errno : ENOMEM);
	c->ch = ibv_create_comp_channel(c->id->verbs);
	if (!c->ch) {
		err = fail("ibv_create_comp_channel", errno);
		goto dealloc_pd;
	}
	c->cq = ibv_create_cq(c->id->verbs, 8, NULL, c->ch, 0);
	if (!c->cq) {
		err = fail("ibv_create_cq", errno);
		goto destroy_ch;
	}
	qa.send_cq = qa.recv_cq = c->cq;
	if (rdma_create_qp(c->id, c->pd, &qa)) {
		err = fail("rdma_create_qp", errno);
		goto destroy_cq;
	}
	c->len = len;
	c->buf = aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
	if (!c->buf) {
		err = fail("allocating the buffer", ENOMEM);
		goto destroy_qp;
	}
	memset(c->buf, 0, len);
	c->mr = ibv_reg_mr(c->pd, c->buf, len, access);
	if (!c->mr) {
		err = fail("ibv_reg_mr", errno);
		goto free_buf;
	}
	return 0;

free_buf:
	free(c->buf);
destroy_qp:
	rdma_destroy_qp(c->id);
destroy_cq:
	ibv_destroy_cq(c->cq);
destroy_ch:
	ibv_destroy_comp_channel(c->ch);
dealloc_pd:
	ibv_dealloc_pd(c->pd);
	return err;
}

static void conn_teardown(struct rping_conn *c)
{
	ibv_dereg_mr(c->mr);
	free(c->buf);
	rdma_destroy_qp(c->id);
	ibv_destroy_cq(c->cq);
	ibv_destroy_comp_channel(c->ch);
	ibv_dealloc_pd(c->pd);
}

static int resolve(const char *addr, const char *port, int passive, struct addrinfo **res)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
	int err;

	if (passive)
		hints.ai_flags = AI_PASSIVE;
	err = getaddrinfo(addr, port, &hints, res);
	if (err) {
		fprintf(stderr, "rdmaping: FAILED at resolving %s:%s: %s\n",
			addr ? addr : "*", port, gai_strerror(err));
		return -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------------- server */

static int serve_one(struct rdma_event_channel *ec, const struct rping_opts *o)
{
	struct rping_conn c = { 0 };
	struct rdma_conn_param param = { .responder_resources = 1, .initiator_depth = 1 };
	struct rdma_cm_event *ev;
	struct rping_req req;
	struct rping_rep rep;
	char *want;
	int err;

	err = get_event(ec, o->timeout_s, &ev, RDMA_CM_EVENT_CONNECT_REQUEST,
			"waiting for a connection");
	if (err)
		return err;
	c.id = ev->id;
	if (ev->param.conn.private_data_len < sizeof(req)) {
		rdma_ack_cm_event(ev);
		rdma_reject(c.id, NULL, 0);
		rdma_destroy_id(c.id);
		return fail("connect request without rdmaping parameters", EPROTO);
	}
	memcpy(&req, ev->param.conn.private_data, sizeof(req));
	rdma_ack_cm_event(ev);
	req.len = le32toh(req.len);
	req.seed = le32toh(req.seed);
	req.iters = le32toh(req.iters);
	if (le32toh(req.magic) != RPING_MAGIC || !req.len || req.len > (1u << 30) || !req.iters) {
		rdma_reject(c.id, NULL, 0);
		rdma_destroy_id(c.id);
		return fail("connect request with bad rdmaping parameters", EPROTO);
	}
	err = conn_setup(&c, req.len, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ |
			 IBV_ACCESS_REMOTE_WRITE);
	if (err) {
		rdma_reject(c.id, NULL, 0);
		goto destroy_id;
	}
	rep = (struct rping_rep){
		.magic = htole32(RPING_MAGIC),
		.rkey = htole32(c.mr->rkey),
		.addr = htole64((uint64_t)(uintptr_t)c.buf),
		.len = htole32(req.len),
	};
	param.private_data = &rep;
	param.private_data_len = sizeof(rep);
	if (rdma_accept(c.id, &param)) {
		err = fail("rdma_accept", errno);
		goto teardown;
	}
	err = get_event(ec, o->timeout_s, &ev, RDMA_CM_EVENT_ESTABLISHED, "establishing");
	if (err)
		goto teardown;
	rdma_ack_cm_event(ev);
	printf("rdmaping: connected, %u bytes registered (rkey 0x%x)\n", req.len, c.mr->rkey);
	fflush(stdout);
	err = get_event(ec, o->timeout_s, &ev, RDMA_CM_EVENT_DISCONNECTED,
			"waiting for the client to finish");
	if (err)
		goto teardown;
	rdma_ack_cm_event(ev);

	want = malloc(req.len);
	if (!want) {
		err = fail("allocating", ENOMEM);
		goto teardown;
	}
	fill_pattern(want, req.len, req.seed, req.iters - 1);
	if (memcmp(want, c.buf, req.len)) {
		fprintf(stderr, "rdmaping: FAILED at checking the server buffer: it does not"
			" hold the client's last pattern\n");
		err = -EIO;
	} else {
		printf("rdmaping: server buffer holds the client's pattern\n");
	}
	free(want);
teardown:
	conn_teardown(&c);
destroy_id:
	rdma_destroy_id(c.id);
	return err;
}

static int run_server(const struct rping_opts *o)
{
	struct rdma_event_channel *ec;
	struct rdma_cm_id *listen_id;
	struct addrinfo *ai;
	unsigned int i;
	int err;

	err = resolve(o->addr, o->port, 1, &ai);
	if (err)
		return err;
	ec = rdma_create_event_channel();
	if (!ec) {
		err = fail("rdma_create_event_channel (is rdma_ucm loaded?)", errno);
		goto free_ai;
	}
	if (rdma_create_id(ec, &listen_id, NULL, RDMA_PS_TCP)) {
		err = fail("rdma_create_id", errno);
		goto destroy_ec;
	}
	if (rdma_bind_addr(listen_id, ai->ai_addr)) {
		err = fail("rdma_bind_addr", errno);
		goto destroy_id;
	}
	if (rdma_listen(listen_id, 4)) {
		err = fail("rdma_listen", errno);
		goto destroy_id;
	}
	printf("rdmaping: listening on port %s\n", o->port);
	fflush(stdout);
	for (i = 0; i < o->conns && !err; i++)
		err = serve_one(ec, o);
destroy_id:
	rdma_destroy_id(listen_id);
destroy_ec:
	rdma_destroy_event_channel(ec);
free_ai:
	freeaddrinfo(ai);
	return err;
}

/* ------------------------------------------------------------- client */

/* One connection attempt; -EAGAIN when the server is not there (yet). */
static int client_connect(struct rdma_event_channel *ec, struct addrinfo *ai,
			  const struct rping_opts *o, uint32_t seed,
			  struct rping_conn *c, struct rping_rep *rep)
{
	struct rping_req req = {
		.magic = htole32(RPING_MAGIC),
		.len = htole32((uint32_t)o->len),
		.seed = htole32(seed),
		.iters = htole32(o->iters),
	};
	struct rdma_conn_param param = {
		.responder_resources = 1, .initiator_depth = 1,
		.retry_count = 7, .rnr_retry_count = 7,
		.private_data = &req, .private_data_len = sizeof(req),
	};
	struct rdma_cm_event *ev;
	int err;

	if (rdma_create_id(ec, &c->id, NULL, RDMA_PS_TCP))
		return fail("rdma_create_id", errno);
	if (rdma_resolve_addr(c->id, NULL, ai->ai_addr, 2000)) {
		err = fail("rdma_resolve_addr", errno);
		goto destroy_id;
	}
	err = get_event(ec, o->timeout_s, &ev, RDMA_CM_EVENT_ADDR_RESOLVED, "resolving the address");
	if (err) {
		err = err == -ECONNREFUSED ? -EAGAIN : err;
		goto destroy_id;
	}
	rdma_ack_cm_event(ev);
	if (rdma_resolve_route(c->id, 2000)) {
		err = fail("rdma_resolve_route", errno);
		goto destroy_id;
	}
	err = get_event(ec, o->timeout_s, &ev, RDMA_CM_EVENT_ROUTE_RESOLVED, "resolving the route");
	if (err) {
		err = err == -ECONNREFUSED ? -EAGAIN : err;
		goto destroy_id;
	}
	rdma_ack_cm_event(ev);
	err = conn_setup(c, o->len, IBV_ACCESS_LOCAL_WRITE);
	if (err)
		goto destroy_id;
	if (rdma_connect(c->id, &param)) {
		err = fail("rdma_connect", errno);
		goto teardown;
	}
	err = get_event(ec, o->timeout_s, &ev, -1, "connecting");
	if (err)
		goto teardown;
	if (ev->event != RDMA_CM_EVENT_ESTABLISHED) {
		err = ev->event == RDMA_CM_EVENT_REJECTED ||
		      ev->event == RDMA_CM_EVENT_UNREACHABLE ||
		      ev->event == RDMA_CM_EVENT_CONNECT_ERROR ? -EAGAIN : -ECONNREFUSED;
		if (err != -EAGAIN)
			fprintf(stderr, "rdmaping: FAILED at connecting: CM event %s (status %d)\n",
				rdma_event_str(ev->event), ev->status);
		rdma_ack_cm_event(ev);
		goto teardown;
	}
	if (ev->param.conn.private_data_len < sizeof(*rep)) {
		rdma_ack_cm_event(ev);
		err = fail("reading the server's buffer description", EPROTO);
		goto disconnect;
	}
	memcpy(rep, ev->param.conn.private_data, sizeof(*rep));
	rdma_ack_cm_event(ev);
	rep->rkey = le32toh(rep->rkey);
	rep->addr = le64toh(rep->addr);
	rep->len = le32toh(rep->len);
	if (le32toh(rep->magic) != RPING_MAGIC || rep->len < o->len) {
		err = fail("reading the server's buffer description", EPROTO);
		goto disconnect;
	}
	return 0;

disconnect:
	rdma_disconnect(c->id);
teardown:
	conn_teardown(c);
destroy_id:
	rdma_destroy_id(c->id);
	return err;
}

static int post_rdma(struct rping_conn *c, enum ibv_wr_opcode op, const struct rping_rep *rep)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)c->buf, .length = (uint32_t)c->len, .lkey = c->mr->lkey,
	};
	struct ibv_send_wr wr = {
		.opcode = op, .sg_list = &sge, .num_sge = 1, .send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = rep->addr, .rkey = rep->rkey },
	};
	struct ibv_send_wr *bad;
	int err;

	err = ibv_post_send(c->id->qp, &wr, &bad);
	if (err)
		return fail(op == IBV_WR_RDMA_WRITE ? "posting RDMA WRITE" : "posting RDMA READ", err);
	return 0;
}

static int run_client(const struct rping_opts *o)
{
	struct rdma_event_channel *ec;
	struct rping_conn c = { 0 };
	struct rping_rep rep;
	struct addrinfo *ai;
	double deadline, t, wr_total = 0, rd_total = 0;
	uint32_t seed = (uint32_t)getpid() ^ (uint32_t)time(NULL);
	char *want;
	unsigned int i, tries = 0;
	int err;

	err = resolve(o->addr, o->port, 0, &ai);
	if (err)
		return err;
	want = malloc(o->len);
	if (!want) {
		err = fail("allocating", ENOMEM);
		goto free_ai;
	}
	ec = rdma_create_event_channel();
	if (!ec) {
		err = fail("rdma_create_event_channel (is rdma_ucm loaded?)", errno);
		goto free_want;
	}
	deadline = now_s() + o->wait_s;
	for (;;) {
		tries++;
		err = client_connect(ec, ai, o, seed, &c, &rep);
		if (err != -EAGAIN)
			break;
		if (now_s() >= deadline) {
			fprintf(stderr, "rdmaping: FAILED at connecting to %s:%s: no server after"
				" %u attempts in %d s\n", o->addr, o->port, tries, o->wait_s);
			err = -ECONNREFUSED;
			break;
		}
		usleep(250 * 1000);
	}
	if (err)
		goto destroy_ec;
	printf("rdmaping: connected to %s:%s (server buffer 0x%llx rkey 0x%x)\n",
	       o->addr, o->port, (unsigned long long)rep.addr, rep.rkey);

	for (i = 0; i < o->iters; i++) {
		fill_pattern(c.buf, c.len, seed, i);
		memcpy(want, c.buf, c.len);
		t = now_s();
		err = post_rdma(&c, IBV_WR_RDMA_WRITE, &rep);
		if (!err)
			err = wait_wc(&c, o->timeout_s, "RDMA WRITE completion");
		if (err)
			goto disconnect;
		wr_total += now_s() - t;
		memset(c.buf, 0, c.len);
		t = now_s();
		err = post_rdma(&c, IBV_WR_RDMA_READ, &rep);
		if (!err)
			err = wait_wc(&c, o->timeout_s, "RDMA READ completion");
		if (err)
			goto disconnect;
		rd_total += now_s() - t;
		if (memcmp(want, c.buf, c.len)) {
			fprintf(stderr, "rdmaping: FAILED at iteration %u: RDMA READ returned"
				" different bytes than RDMA WRITE stored\n", i);
			err = -EIO;
			goto disconnect;
		}
	}
	printf("rdmaping: ok: %u x (RDMA WRITE + RDMA READ) of %zu bytes, mean write %.1f us,"
	       " mean read %.1f us\n", o->iters, o->len, wr_total / o->iters * 1e6,
	       rd_total / o->iters * 1e6);
disconnect:
	rdma_disconnect(c.id);
	conn_teardown(&c);
	rdma_destroy_id(c.id);
destroy_ec:
	rdma_destroy_event_channel(ec);
free_want:
	free(want);
free_ai:
	freeaddrinfo(ai);
	return err;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: rdmaping -s [-a ADDR] [-p PORT] [-n CONNS] [-t SECS]\n"
		"       rdmaping -c ADDR [-p PORT] [-b BYTES] [-i ITERS] [-w SECS] [-t SECS]\n"
		"  -s        serve CONNS connections (default 1), then exit\n"
		"  -c ADDR   RDMA WRITE a pattern into the server's buffer, RDMA READ it back\n"
		"  -b BYTES  buffer size (default 65536)     -i ITERS  iterations (default 100)\n"
		"  -w SECS   keep retrying to connect (default 30)\n"
		"  -t SECS   deadline for any single wait (default 30)\n");
}

int main(int argc, char **argv)
{
	struct rping_opts o = {
		.port = DEFAULT_PORT, .len = 65536, .iters = 100, .conns = 1,
		.wait_s = 30, .timeout_s = 30, .server = -1,
	};
	int opt;

	while ((opt = getopt(argc, argv, "sc:a:p:b:i:n:w:t:h")) != -1) {
		switch (opt) {
		case 's': o.server = 1; break;
		case 'c': o.server = 0; o.addr = optarg; break;
		case 'a': o.addr = optarg; break;
		case 'p': o.port = optarg; break;
		case 'b': o.len = strtoul(optarg, NULL, 0); break;
		case 'i': o.iters = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'n': o.conns = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'w': o.wait_s = atoi(optarg); break;
		case 't': o.timeout_s = atoi(optarg); break;
		default:
			usage();
			return 2;
		}
	}
	if (o.server < 0 || optind != argc || !o.len || o.len > (1u << 30) || !o.iters ||
	    o.timeout_s <= 0) {
		usage();
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (o.server)
		return run_server(&o) ? 1 : 0;
	return run_client(&o) ? 1 : 0;
}

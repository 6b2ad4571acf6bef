/*
 * rdma:// transport of the client library (docs/protocol.md, "RDMA"). One RC
 * queue pair made with librdmacm, in a protection domain of its own, carries:
 *
 *  - the control stream: the frames of tcp://, encoded and parsed by the
 *    shared framing (client_frame.c), sent in SEND messages of at most
 *    MS_RDMA_MSG bytes from registered send buffers and received into
 *    MS_RDMA_RECV_DEPTH registered receive buffers, whose bytes are appended
 *    to one parse buffer and which are reposted at once;
 *  - page READ and WRITE, one-sided, between a registered bounce arena and the
 *    region's registration on the server, whose addresses and rkeys arrive in
 *    the REGION_OPEN reply (MS_RDMA_OPEN_EXTRA more bytes; see rdma_on_reply).
 *
 *   client                                                    server
 *     | rdma_resolve_addr, rdma_resolve_route                     |
 *     | rdma_connect {ms_rdma_priv}  ------------------------->   |
 *     |   <--------------------------  ESTABLISHED {ms_rdma_priv} |
 *     | SEND HELLO [, AUTH] ---->          <---- SEND replies      |
 *     | SEND REGION_OPEN {id, token} ---->                         |
 *     |   <---- SEND {epoch, size, slots_addr, rkey, slot_size}   |
 *     | READ io:  per run of consecutive pages, RDMA READ of     |
 *     |           their slots (page + sum) -> bounce slots,        |
 *     |           max_sge a WR; one chain, one post, last WR       |
 *     |           signalled.  CQE: sum 0 = zeros, else check       |
 *     |           ms_page_sum, copy out                            |
 *     | WRITE io: copy + sum into bounce slots when posted; per    |
 *     |           run, RDMA WRITE of the slots; one chain, last WR |
 *     |           signalled.  CQE: done                            |
 *     | error CQE: REM_ACCESS_ERR -> ESTALE (region fenced or      |
 *     |            deleted), anything else -> ECONNRESET; dead     |
 *
 * Every chain ends with a signalled WR and every SEND is signalled, so the
 * send queue is always reclaimed. A READ/WRITE that finds the bounce arena,
 * the send queue or the completion queue full is queued, in order, and posted
 * as completions free room: submit does not fail for want of transport
 * resources (ept/remote.c would take that for a dead server). ms_client_fd is
 * an epoll fd holding the completion channel and the CM event channel, so an
 * event loop also wakes when the server disconnects an idle client. A waiting
 * ms_client_poll spins briefly and then sleeps on that fd, or, in busy mode
 * (ms_client_set_busy_poll), spins on the CQ while anything is in flight.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"
#include "common/wire.h"
#include "memserver/client_rdma.h"

static struct rdma_transport *tp(struct ms_client *c)
{
	return c->transport;
}

/* ---- the control stream --------------------------------------------------- */

/* Moves queued control bytes into free send buffers and posts them. */
static int ctl_send(struct rdma_transport *t)
{
	while (buf_len(&t->tx) && t->nsend_free && t->sq_used < t->sq_depth) {
		unsigned b = t->send_free[t->nsend_free - 1];
		size_t n = MIN(buf_len(&t->tx), (size_t)MS_RDMA_MSG);
		struct ibv_sge sge = { .addr = (uintptr_t)send_buf(t, b), .length = (uint32_t)n,
				       .lkey = t->mr->lkey };
		struct ibv_send_wr wr = { .wr_id = WRID_SEND | b, .sg_list = &sge, .num_sge = 1,
					  .opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED };
		struct ibv_send_wr *bad;
		int ret;

		memcpy(send_buf(t, b), buf_head(&t->tx), n);
		ret = ibv_post_send(t->id->qp, &wr, &bad);
		if (ret)
			return -ret;
		t->nsend_free--;
		t->sq_used++;
		buf_consume(&t->tx, n);
	}
	buf_shrink(&t->tx, 4 * MS_RDMA_MSG);
	return 0;
}

/* A message arrived: its bytes join the stream, the buffer is reposted. */
static int on_recv(struct rdma_transport *t, const struct ibv_wc *wc)
{
	unsigned i = (unsigned)(wc->wr_id & WRID_INDEX);

	if (i >= MS_RDMA_RECV_DEPTH || wc->byte_len > MS_RDMA_MSG)
		return -EPROTO;
	if (buf_append(&t->rx, recv_buf(t, i), wc->byte_len))
		return -ENOMEM;
	return post_recv(t, i);
}

static int on_send(struct rdma_transport *t, const struct ibv_wc *wc)
{
	unsigned b = (unsigned)(wc->wr_id & WRID_INDEX);

	if (b >= SEND_BUFS || t->nsend_free >= SEND_BUFS)
		return -EPROTO;
	t->send_free[t->nsend_free++] = (uint8_t)b;
	t->sq_used--;
	return 0;
}

/* ---- regions --------------------------------------------------------------- */

static struct rdma_region *region_find(struct rdma_transport *t, uint64_t id)
{
	for (unsigned i = 0; i < MAX_REGIONS; i++)
		if (t->regions[i].used && t->regions[i].id == id)
			return &t->regions[i];
	return NULL;
}

/*
 * The reply hook (client_impl.h): a REGION_OPEN reply's extra bytes are the
 * region's registrations, kept by region id (a newer open replaces them); a
 * REGION_DELETE marks them deleted. With more than MAX_REGIONS regions (the
 * server's limit of opens per connection) a deleted entry, else the oldest,
 * gives way.
 */
static int rdma_on_reply(struct ms_client *c, struct ms_io *io, const uint8_t *extra)
{
	struct rdma_transport *t = tp(c);
	struct rdma_region *rg = region_find(t, io->region);

	if (io->op == MS_OP_REGION_DELETE) {
		if (rg)
			rg->deleted = true; /* READ/WRITE: -ENOENT, as over TCP */
		return 0;
	}
	if (io->out_size == 0 || io->out_size % MS_PAGE_SIZE || !extra ||
	    get_le32(extra + 12) != MS_SLOT_SIZE)
		return -EPROTO; /* a server with another layout */
	for (unsigned i = 0; !rg && i < MAX_REGIONS; i++)
		if (!t->regions[i].used || t->regions[i].deleted)
			rg = &t->regions[i];
	if (!rg) {
		rg = &t->regions[t->rg_next];
		t->rg_next = (t->rg_next + 1) % MAX_REGIONS;
	}
	*rg = (struct rdma_region){
		.used = true, .id = io->region, .epoch = io->out_epoch,
		.npages = io->out_size / MS_PAGE_SIZE,
		.slots_addr = get_le64(extra), .rkey = get_le32(extra + 8),
	};
	return 0;
}

/* ---- one-sided READ and WRITE ---------------------------------------------- */

static bool io_fits(const struct rdma_transport *t, const struct rdma_pend *p)
{
	return t->nfree >= p->n && t->sq_used + p->nwr <= t->sq_depth &&
	       t->ios_posted < t->io_cap;
}

/* The end of the run of consecutive page numbers of p that starts at i. */
static uint32_t run_end(const struct rdma_pend *p, uint32_t i)
{
	uint32_t j = i + 1;

	while (j < p->n && p->pages[j] == p->pages[j - 1] + 1)
		j++;
	return j;
}

/* The chain of a READ/WRITE: see client_rdma.h. */
uint32_t ms_client_rdma_chain_len(const struct rdma_transport *t, const struct rdma_pend *p)
{
	uint32_t nwr = 0;

	for (uint32_t i = 0, j; i < p->n; i = j) {
		j = run_end(p, i);
		nwr += (j - i + t->max_sge - 1) / t->max_sge;
	}
	return nwr;
}

void ms_client_rdma_chain(struct rdma_transport *t, const struct rdma_pend *p,
			  enum ibv_wr_opcode op)
{
	struct ibv_send_wr *w = t->wr;
	struct ibv_sge *s = t->sge;

	for (uint32_t i = 0, j; i < p->n; i = j) {
		j = run_end(p, i);
		for (uint32_t k = i; k < j; k += t->max_sge) {
			uint32_t m = MIN(j - k, t->max_sge);

			*w = (struct ibv_send_wr){ .wr_id = p->id, .next = w + 1, .sg_list = s,
						   .num_sge = (int)m, .opcode = op };
			w->wr.rdma.remote_addr = p->rg.slots_addr + p->pages[k] * MS_SLOT_SIZE;
			w->wr.rdma.rkey = p->rg.rkey;
			w++;
			for (uint32_t q = k; q < k + m; q++)
				*s++ = (struct ibv_sge){ .addr = (uintptr_t)bounce_page(t, p->bounce[q]),
							 .length = MS_SLOT_SIZE, .lkey = t->mr->lkey };
		}
	}
	w[-1].next = NULL;
	w[-1].send_flags = IBV_SEND_SIGNALED;
}

/* Takes bounce slots, fills them (page, sum) for a WRITE, posts the chain. */
static int io_post(struct rdma_transport *t, struct rdma_pend *p)
{
	enum ibv_wr_opcode op = p->io->op == MS_OP_READ ? IBV_WR_RDMA_READ : IBV_WR_RDMA_WRITE;
	struct ibv_send_wr *bad;
	int ret;

	for (uint32_t i = 0; i < p->n; i++) {
		p->bounce[i] = t->free_bounce[--t->nfree];
		if (op == IBV_WR_RDMA_WRITE) {
			uint8_t *dst = bounce_page(t, p->bounce[i]);

			memcpy(dst, p->stage ? p->stage + (size_t)i * MS_PAGE_SIZE :
			       ms_io_page(p->io, i), MS_PAGE_SIZE);
			put_le64(bounce_sum(t, p->bounce[i]), ms_page_sum(dst));
		}
	}
	free(p->stage);
	p->stage = NULL;
	ms_client_rdma_chain(t, p, op);
	ret = ibv_post_send(t->id->qp, t->wr, &bad);
	if (ret)
		return -ret; /* the caller kills the client: bounce pages stay taken */
	t->sq_used += p->nwr;
	t->ios_posted++;
	return 0;
}

/* Queues p behind the others; a WRITE keeps a copy of its pages. */
static int io_queue(struct rdma_transport *t, struct rdma_pend *p)
{
	if (p->io->op == MS_OP_WRITE) {
		p->stage = malloc((size_t)p->n * MS_PAGE_SIZE);
		if (!p->stage)
			return -ENOMEM;
		for (uint32_t i = 0; i < p->n; i++)
			memcpy(p->stage + (size_t)i * MS_PAGE_SIZE, ms_io_page(p->io, i),
			       MS_PAGE_SIZE);
	}
	p->next = NULL;
	if (t->qtail)
		t->qtail->next = p;
	else
		t->qhead = p;
	t->qtail = p;
	return 0;
}

/* A queued READ/WRITE whose region was reopened or deleted on this
 * connection since its submit fails here, as it would have at submit,
 * rather than on the wire (a dead rkey kills the queue pair). */
static bool io_stale(struct rdma_transport *t, struct rdma_pend *p)
{
	const struct rdma_region *rg = region_find(t, p->rg.id);

	if (rg && !rg->deleted && rg->epoch == p->rg.epoch)
		return false;
	free(p->stage);
	p->stage = NULL;
	p->id = 0;
	ms_client_complete(t->c, p->io, rg && rg->deleted ? -ENOENT : -ESTALE);
	return true;
}

/* Posts queued READ/WRITEs, in order, while they fit. */
static int pump(struct rdma_transport *t)
{
	while (t->qhead && io_fits(t, t->qhead)) {
		struct rdma_pend *p = t->qhead;
		int ret;

		t->qhead = p->next;
		if (!t->qhead)
			t->qtail = NULL;
		if (io_stale(t, p))
			continue;
		ret = io_post(t, p);
		if (ret)
			return ret;
	}
	return 0;
}

static int io_submit(struct ms_client *c, struct ms_io *io)
{
	struct rdma_transport *t = tp(c);
	const struct rdma_region *rg = region_find(t, io->region);
	struct rdma_pend *p = &t->pend[io->id % MS_CLIENT_MAX_INFLIGHT];
	int ret;

	if (!rg)
		return -EBADF;
	if (rg->deleted)
		return -ENOENT;
	if (rg->epoch != io->epoch)
		return -ESTALE;
	for (uint32_t i = 0; i < io->npages; i++)
		if (io->pages[i] >= rg->npages)
			return -ERANGE; /* out of the registration: it would kill the QP */
	p->id = io->id;
	p->io = io;
	p->rg = *rg;
	p->n = io->npages;
	p->stage = NULL;
	memcpy(p->pages, io->pages, (size_t)io->npages * sizeof(*io->pages));
	p->nwr = ms_client_rdma_chain_len(t, p);
	if (!t->qhead && io_fits(t, p)) {
		ret = io_post(t, p);
		if (ret)
			ms_client_fail(c, ret); /* part of a chain may be posted */
	} else {
		ret = io_queue(t, p);
	}
	if (ret)
		p->id = 0;
	return ret;
}

/* A READ's pages arrived: check each against its stored sum, copy it out. */
static int read_done(struct rdma_transport *t, const struct rdma_pend *p)
{
	struct ms_io *io = p->io;

	for (uint32_t i = 0; i < p->n; i++) {
		const uint8_t *src = bounce_page(t, p->bounce[i]);
		uint64_t sum = get_le64(bounce_sum(t, p->bounce[i]));
		uint8_t *dst = ms_io_page(io, i);

		if (io->zero)
			io->zero[i] = sum == 0;
		if (sum == 0) { /* never written */
			if (!io->zero)
				memset(dst, 0, MS_PAGE_SIZE);
			continue;
		}
		if (ms_page_sum(src) != sum)
			return -EBADMSG;
		memcpy(dst, src, MS_PAGE_SIZE);
	}
	return 0;
}

/* The last WR of an io's chain completed, so all of it did (RC order). */
static int on_io(struct ms_client *c, const struct ibv_wc *wc)
{
	struct rdma_transport *t = tp(c);
	struct rdma_pend *p = &t->pend[wc->wr_id % MS_CLIENT_MAX_INFLIGHT];
	int result = 0;

	if (p->id != wc->wr_id || !ms_client_lookup(c, p->id))
		return -EPROTO;
	if (p->io->op == MS_OP_READ)
		result = read_done(t, p);
	for (uint32_t i = 0; i < p->n; i++)
		t->free_bounce[t->nfree++] = p->bounce[i];
	t->sq_used -= p->nwr;
	t->ios_posted--;
	p->id = 0;
	ms_client_complete(c, p->io, result);
	return 0;
}

/* ---- completions and waiting ------------------------------------------------ */

static int wc_error(struct rdma_transport *t, const struct ibv_wc *wc)
{
	const struct rdma_pend *p = &t->pend[wc->wr_id % MS_CLIENT_MAX_INFLIGHT];
	bool io = !(wc->wr_id & (WRID_SEND | WRID_RECV)) && p->id == wc->wr_id;

	if (wc->status == IBV_WC_REM_ACCESS_ERR) {
		log_err("%s: region %llu: its registration is gone (fenced or deleted); "
			"the connection is dead", t->c->url,
			io ? (unsigned long long)p->rg.id : 0ull);
		return -ESTALE;
	}
	log_err("%s: %s failed: %s", t->c->url,
		wc->wr_id & WRID_RECV ? "receive" : wc->wr_id & WRID_SEND ? "send" :
		io && p->io->op == MS_OP_READ ? "RDMA READ" : "RDMA WRITE",
		ibv_wc_status_str(wc->status));
	return -ECONNRESET;
}

static int on_wc(struct ms_client *c, const struct ibv_wc *wc)
{
	struct rdma_transport *t = tp(c);

	if (wc->status != IBV_WC_SUCCESS)
		return wc_error(t, wc);
	if (wc->wr_id & WRID_RECV)
		return on_recv(t, wc);
	if (wc->wr_id & WRID_SEND)
		return on_send(t, wc);
	return on_io(c, wc);
}

/* drain's or rearm's count, for callers that only care about errors: 0 or
 * -errno. (Not MIN(): a macro would make the call twice.) */
static int errors_of(int n)
{
	return n < 0 ? n : 0;
}

/* Takes every completion in the CQ. Returns how many, or -errno. */
static int drain(struct ms_client *c)
{
	struct rdma_transport *t = tp(c);
	struct ibv_wc wc[WC_BATCH];
	int n, total = 0;

	do {
		n = ibv_poll_cq(t->cq, WC_BATCH, wc);
		if (n < 0)
			return -EIO;
		for (int i = 0; i < n; i++) {
			int ret = on_wc(c, &wc[i]);

			if (ret)
				return ret; /* the rest are flushed: ignored */
		}
		total += n;
	} while (n == WC_BATCH);
	return total;
}

/*
 * Readies the CQ for a sleep (here or in the caller's event loop), then
 * takes what completed meanwhile: consumes the completion event if the
 * channel holds one (t->event_pending: epoll said so), arms the CQ unless an
 * arm is still outstanding, and polls once more, since a completion that
 * arrived before the arm raises no event. Returns completions taken, or
 * -errno; when it took some, the caller must act on them (progress: parse
 * what was received, send what freed buffers allow) before it sleeps.
 *
 * This is the only place that reads the channel or arms: a wake-up goes
 * straight to the CQ and returns its completions; the read and the arm (two
 * system calls with rxe) wait until the client is about to sleep again,
 * which for one request at a time is while the next is on the wire. An
 * event left unread keeps the channel readable, so a sleep that should not
 * happen ends at once and comes back here: nothing is lost by waiting. At
 * most one event is ever pending, as the CQ is re-armed only after its event
 * was read.
 */
static int rearm(struct ms_client *c)
{
	struct rdma_transport *t = tp(c);
	struct ibv_cq *cq;
	void *ctx;

	if (t->event_pending) {
		t->event_pending = false;
		if (ibv_get_cq_event(t->ch, &cq, &ctx) == 0) {
			ibv_ack_cq_events(cq, 1);
			t->armed = false;
		}
	}
	if (!t->armed) {
		int n = ibv_req_notify_cq(t->cq, 0);

		if (n)
			return -n;
		t->armed = true;
	}
	return drain(c);
}

/* A disconnect (or a lost device) kills the client. */
static int cm_events(struct rdma_transport *t)
{
	struct rdma_cm_event *ev;

	while (rdma_get_cm_event(t->ec, &ev) == 0) {
		enum rdma_cm_event_type type = ev->event;

		rdma_ack_cm_event(ev);
		if (type == RDMA_CM_EVENT_DISCONNECTED || type == RDMA_CM_EVENT_DEVICE_REMOVAL) {
			log_info("%s: %s", t->c->url, rdma_event_str(type));
			return -ECONNRESET;
		}
	}
	return errno == EAGAIN || errno == EINTR ? 0 : -errno;
}

/*
 * Everything that needs no waiting: completions, replies, connection events,
 * posts. Completions come first: what arrived before a disconnect (a reply,
 * the remote access error that made the server drop us) decides the outcome,
 * not the disconnect it caused, even when both are ready together. The first
 * error sticks (t->lost): the connection is unusable from then on.
 */
static int progress(struct ms_client *c, unsigned ready)
{
	struct rdma_transport *t = tp(c);
	int ret = t->lost;

	if (ready & EV_CQ)
		t->event_pending = true;
	if (!ret)
		ret = errors_of(drain(c));
	if (!ret && !t->handshaking)
		ret = ms_frame_parse(c, &t->rx);
	if (!ret && (ready & EV_CM)) {
		ret = cm_events(t);
		if (ret) { /* what completed just before it says more */
			int why = errors_of(drain(c));

			if (!why && !t->handshaking)
				why = ms_frame_parse(c, &t->rx);
			ret = why ? why : ret;
		}
	}
	if (!ret)
		ret = ctl_send(t);
	if (!ret)
		ret = pump(t);
	if (ret)
		t->lost = ret;
	return ret;
}

/* Waits up to ms (< 0: for ever) for the epoll fd; *ready gets EV_*. */
static int wait_ready(struct rdma_transport *t, int ms, unsigned *ready)
{
	struct epoll_event ev[2];
	int n = epoll_wait(t->epfd, ev, 2, ms);

	*ready = 0;
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++)
		*ready |= ev[i].data.u32;
	return 0;
}

/*
 * One round: take what is ready, and unless timeout_ms is 0 wait for
 * something to complete. Event mode (the default) spins SPIN_NS while RDMA is
 * in flight (while that pays: ms_client_rdma_spin_worth), then sleeps on the
 * epoll fd. Busy mode spins on the CQ for as
 * long as any request is in flight (up to timeout_ms), with no system call
 * but a look at the CM channel every CM_CHECK_NS, so a disconnect still ends
 * the wait; with nothing in flight there is nothing to spin for and it
 * sleeps as event mode does. A poll with timeout 0 (an event loop woken by
 * ms_client_fd, or one looking in passing) first asks the epoll fd what is
 * ready; a waiting one goes straight to the CQ. Whoever is about to sleep,
 * this loop or (after a timeout-0 poll that found nothing) the caller on
 * ms_client_fd, has the CQ re-armed first (rearm). Returns 0, or -errno
 * after killing the client.
 */
static int poll_fail(struct ms_client *c, int ret)
{
	ms_client_fail(c, ret);
	return ret;
}

bool ms_client_rdma_spin_worth(struct rdma_transport *t)
{
	if (t->spin_misses < SPIN_MISSES)
		return true;
	t->spin_probe = (uint8_t)((t->spin_probe + 1) % SPIN_PROBE);
	return t->spin_probe == 0;
}

void ms_client_rdma_spin_result(struct rdma_transport *t, bool caught)
{
	if (caught)
		t->spin_misses = 0;
	else if (t->spin_misses < SPIN_MISSES)
		t->spin_misses++;
}

static int rdma_poll(struct ms_client *c, int timeout_ms)
{
	struct rdma_transport *t = tp(c);
	uint64_t start = now_ns(), deadline = start + (uint64_t)MAX(timeout_ms, 0) * 1000000;
	struct ms_io *tail0 = c->done_tail;
	unsigned ready = 0;
	bool spin;
	int ret = 0;

	if (c->dead)
		return c->dead;
	if (timeout_ms == 0)
		ret = wait_ready(t, 0, &ready);
	spin = timeout_ms != 0 && !t->busy && t->ios_posted && ms_client_rdma_spin_worth(t);
	for (;;) {
		uint64_t now;

		if (!ret)
			ret = progress(c, ready);
		if (!ret && c->done_tail == tail0 && timeout_ms == 0) {
			ret = rearm(c); /* the caller sleeps next */
			if (ret > 0) /* the last look took some: act on them */
				ret = progress(c, 0);
			ret = errors_of(ret);
		}
		if (ret)
			return poll_fail(c, ret);
		/* Done once something completed in this call: completions
		 * queued before it (a sync waiter's neighbours) do not count. */
		if (c->done_tail != tail0 || timeout_ms == 0) {
			if (spin) /* still spinning: caught */
				ms_client_rdma_spin_result(t, true);
			return 0;
		}
		now = now_ns();
		if (timeout_ms > 0 && now >= deadline)
			return 0;
		ready = 0;
		if (t->busy && c->inflight) {
			if (now - t->cm_checked >= CM_CHECK_NS) {
				t->cm_checked = now;
				ready = EV_CM;
			}
			continue;
		}
		if (spin && now - start < SPIN_NS)
			continue;
		if (spin) { /* the spin is over, empty-handed */
			ms_client_rdma_spin_result(t, false);
			spin = false;
		}
		ret = rearm(c);
		if (ret < 0)
			return poll_fail(c, ret);
		if (ret > 0) { /* the last look took some: round again, not to sleep */
			ret = 0;
			continue;
		}
		ret = wait_ready(t, timeout_ms < 0 ? -1 : ms_left(deadline), &ready);
	}
}

/* The handshake's blocking exchange (ms_xfer_fn). */
static int rdma_xfer(struct ms_client *c, const void *out, size_t outlen, void *in, size_t inlen)
{
	struct rdma_transport *t = tp(c);
	uint64_t deadline = now_ns() + (uint64_t)c->timeout_ms * 1000000;
	unsigned ready = 0;
	int ret;

	if (outlen && buf_append(&t->tx, out, outlen))
		return -ENOMEM;
	for (;;) {
		ret = progress(c, ready);
		if (buf_len(&t->rx) >= inlen)
			break; /* a reply that arrived before the end still counts */
		if (ret)
			return ret;
		if (ms_left(deadline) == 0)
			return -ETIMEDOUT;
		ready = 0;
		ret = rearm(c);
		if (ret < 0)
			return ret;
		if (ret == 0)
			ret = wait_ready(t, ms_left(deadline), &ready);
		if (ret < 0)
			return ret;
	}
	memcpy(in, buf_head(&t->rx), inlen);
	buf_consume(&t->rx, inlen);
	return 0;
}

/* ---- the ops table ---------------------------------------------------------- */

static int rdma_submit(struct ms_client *c, struct ms_io *io)
{
	struct rdma_transport *t = tp(c);
	int ret;

	if (io->op == MS_OP_READ || io->op == MS_OP_WRITE)
		return io_submit(c, io);
	ret = ms_frame_encode(&t->tx, io);
	if (ret || buf_len(&t->tx) < (size_t)SEND_BUFS * MS_RDMA_MSG)
		return ret;
	ret = ctl_send(t); /* a large backlog leaves now */
	if (ret)
		ms_client_fail(c, ret);
	return ret;
}

static int rdma_flush(struct ms_client *c)
{
	struct rdma_transport *t = tp(c);
	int ret = ctl_send(t);

	if (!ret)
		ret = pump(t);
	if (ret)
		ms_client_fail(c, ret);
	return ret;
}

static int rdma_fd(const struct ms_client *c)
{
	const struct rdma_transport *t = c->transport;

	return t ? t->epfd : -1;
}

/* What only the data path holds: queued WRITE copies, the byte queues. */
static void free_queues(struct rdma_transport *t)
{
	for (unsigned i = 0; i < MS_CLIENT_MAX_INFLIGHT; i++)
		free(t->pend[i].stage);
	buf_free(&t->tx);
	buf_free(&t->rx);
}

static void rdma_close(struct ms_client *c)
{
	struct rdma_transport *t = tp(c);

	if (!t)
		return;
	ms_client_rdma_teardown(t);
	free_queues(t);
	free(t);
	c->transport = NULL;
}

/* Busy mode is only a way of waiting (rdma_poll): switching is immediate. */
static int rdma_set_busy_poll(struct ms_client *c, bool on)
{
	tp(c)->busy = on;
	return 0;
}

const struct ms_client_ops ms_client_rdma_ops = {
	.scheme = "rdma",
	.submit = rdma_submit,
	.poll = rdma_poll,
	.flush = rdma_flush,
	.fd = rdma_fd,
	.close = rdma_close,
	.set_busy_poll = rdma_set_busy_poll,
};

int ms_client_rdma_debug_remote(struct ms_client *c, uint64_t region, struct ms_rdma_remote *get,
				const struct ms_rdma_remote *set)
{
	struct rdma_region *rg;

	if (c->ops != &ms_client_rdma_ops || !c->transport)
		return -EPROTONOSUPPORT;
	rg = region_find(tp(c), region);
	if (!rg || rg->deleted)
		return -ENOENT;
	if (get)
		*get = (struct ms_rdma_remote){ .slots_addr = rg->slots_addr, .rkey = rg->rkey };
	if (set) {
		rg->slots_addr = set->slots_addr;
		rg->rkey = set->rkey;
	}
	return 0;
}

/*
 * librdmacm opens each device once per process and keeps it: a child forked
 * after its parent used rdma:// inherits those contexts, and the kernel
 * refuses it their use (EACCES, at the first send). Remembered, to say so
 * rather than leave a bare "Permission denied".
 */
static pid_t first_pid;

static int fork_check(struct ms_client *c, int ret)
{
	pid_t pid = getpid(), first = 0;

	if (!ret) {
		__atomic_compare_exchange_n(&first_pid, &first, pid, false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
		return 0;
	}
	first = __atomic_load_n(&first_pid, __ATOMIC_RELAXED);
	if (ret == -EACCES && first && first != pid)
		log_err("%s: rdma:// is not usable in a process forked after its parent (%d) "
			"used it: start such processes with posix_spawn", c->url, (int)first);
	return ret;
}

int ms_client_rdma_connect(struct ms_client *c, const char *host, uint16_t port,
			   const struct auth_key *key)
{
	uint64_t deadline = now_ns() + (uint64_t)c->timeout_ms * 1000000;
	struct rdma_transport *t = calloc(1, sizeof(*t));
	int ret;

	if (!t)
		return -ENOMEM;
	t->c = c;
	t->epfd = -1;
	ret = ms_client_rdma_setup(t, host, port, deadline);
	if (ret)
		goto free_t;
	c->transport = t;
	c->ops = &ms_client_rdma_ops;
	t->handshaking = true;
	ret = ms_client_handshake(c, key, rdma_xfer);
	t->handshaking = false;
	if (ret)
		goto detach;
	c->open_extra = MS_RDMA_OPEN_EXTRA;
	c->on_reply = rdma_on_reply;
	return fork_check(c, 0);

detach:
	c->transport = NULL;
	c->ops = NULL;
	ms_client_rdma_teardown(t);
	free_queues(t);
free_t:
	free(t);
	return fork_check(c, ret);
}

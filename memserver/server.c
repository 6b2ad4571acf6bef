/*
 * TCP front end of the memory server (see server.h). All workers wait on the
 * one listening socket with EPOLLEXCLUSIVE, so connections spread over them
 * without an acceptor thread; from then on a connection never leaves its
 * worker. Reads are batched: every whole frame in the input buffer is
 * executed, the replies are queued, and one send flushes them.
 *
 * Memory per connection is bounded: input holds at most one frame beyond what
 * is being parsed (frames are at most MS_MAX_FRAME), and when queued output
 * passes OUT_HIGH_WATER the connection stops being read until the peer drains
 * it, so a client that never reads cannot make the server grow.
 */
#include "memserver/server.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/net.h"
#include "common/url.h"
#include "common/util.h"
#include "memserver/server_impl.h"
#include "memserver/session.h"
#include "memserver/store.h"

#define READ_CHUNK (64u * 1024)


static void worker_collect(void *ctx, struct ms_stat *out)
{
	struct ms_server *srv = ctx;

	out->connections = __atomic_load_n(&srv->nconns, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < srv->nworkers; i++) {
		for (unsigned op = 0; op < MS_OP_MAX; op++) {
			const struct ms_op_stats *s = &srv->workers[i].stats[op];
			struct ms_op_stats *d = &out->ops[op];

			d->count += __atomic_load_n(&s->count, __ATOMIC_RELAXED);
			d->errors += __atomic_load_n(&s->errors, __ATOMIC_RELAXED);
			d->bytes_in += __atomic_load_n(&s->bytes_in, __ATOMIC_RELAXED);
			d->bytes_out += __atomic_load_n(&s->bytes_out, __ATOMIC_RELAXED);
			hist_merge(&d->latency, &s->latency);
		}
	}
}

void ms_server_stat(struct ms_server *srv, struct ms_stat *out)
{
	memset(out, 0, sizeof(*out));
	ms_store_stat(srv->store, out);
	out->uptime_ns = now_ns() - srv->svc.start_ns;
	worker_collect(srv, out);
}

static int conn_update_events(struct ms_conn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	ev.events = (c->paused || c->closing ? 0 : EPOLLIN) | (c->want_out ? EPOLLOUT : 0);
	return epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0 ? -errno : 0;
}

/* Sends queued output. Returns 0 (possibly with output left, EPOLLOUT armed)
 * or -errno when the connection is dead. */
static int conn_flush(struct ms_conn *c)
{
	bool want_out, paused;

	if (c->rdma)
		return ms_rdma_conn_flush(c);
	while (buf_len(&c->out)) {
		ssize_t n = send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		buf_consume(&c->out, (size_t)n);
	}
	if (!buf_len(&c->out)) {
		buf_shrink(&c->out, IN_KEEP);
		if (c->closing)
			return -ECONNRESET;
	}
	want_out = buf_len(&c->out) != 0;
	paused = buf_len(&c->out) >= OUT_HIGH_WATER;
	if (want_out != c->want_out || paused != c->paused) {
		c->want_out = want_out;
		c->paused = paused;
		return conn_update_events(c);
	}
	return 0;
}

static int timer_add(struct ms_worker *w, struct ms_conn *c, const struct ms_hdr *hdr,
		     uint32_t delay_us)
{
	if (c->deferred >= MAX_DEFERRED_PER_CONN)
		return -EBUSY;
	if (w->ntimers == w->timers_cap) {
		unsigned cap = w->timers_cap ? w->timers_cap * 2 : 16;
		struct ms_timer *t = realloc(w->timers, cap * sizeof(*t));

		if (!t)
			return -ENOMEM;
		w->timers = t;
		w->timers_cap = cap;
	}
	w->timers[w->ntimers++] = (struct ms_timer){
		.conn = c, .hdr = *hdr, .due_ns = now_ns() + (uint64_t)delay_us * 1000,
	};
	c->deferred++;
	return 0;
}

/* Executes every whole frame in c->in. Returns 0 or -errno to close now. */
int ms_conn_process(struct ms_conn *c)
{
	while (!c->closing && !c->paused && buf_len(&c->in) >= MS_HDR_LEN) {
		struct ms_hdr hdr;
		uint32_t delay = 0;
		int ret = ms_hdr_decode(buf_head(&c->in), buf_len(&c->in), &hdr);

		if (ret) {
			/* The stream cannot be re-synchronised: answer and close. */
			ms_reply_status(&c->out, &hdr,
					ret == -EMSGSIZE	 ? MS_ST_TOOBIG :
					ret == -EPROTONOSUPPORT ? MS_ST_VERSION :
								  MS_ST_PROTO);
			log_debug("closing connection: bad frame header (%s)", strerror(-ret));
			c->closing = true;
			buf_consume(&c->in, buf_len(&c->in));
			break;
		}
		if (buf_len(&c->in) < hdr.len)
			break;
		switch (ms_session_handle(&c->session, buf_head(&c->in), hdr.len, &c->out,
					  &delay)) {
		case MS_V_CONTINUE:
			break;
		case MS_V_CLOSE:
			c->closing = true;
			break;
		case MS_V_DEFER:
			if (timer_add(c->w, c, &hdr, delay))
				ms_reply_status(&c->out, &hdr, MS_ST_INVAL);
			break;
		}
		buf_consume(&c->in, hdr.len);
		if (buf_len(&c->out) >= OUT_HIGH_WATER)
			c->paused = true;
	}
	if (c->closing)
		buf_consume(&c->in, buf_len(&c->in));
	buf_shrink(&c->in, IN_KEEP);
	return conn_flush(c);
}

/* How many bytes to ask for: the rest of a known frame, else a chunk. */
static size_t read_want(struct ms_conn *c)
{
	struct ms_hdr hdr;

	if (ms_hdr_decode(buf_head(&c->in), buf_len(&c->in), &hdr) == 0 &&
	    hdr.len > buf_len(&c->in))
		return MAX(hdr.len - buf_len(&c->in), READ_CHUNK);
	return READ_CHUNK;
}

static int conn_readable(struct ms_conn *c)
{
	for (;;) {
		size_t want = read_want(c);
		uint8_t *dst = buf_reserve(&c->in, want);
		ssize_t n;
		int ret;

		if (!dst)
			return -ENOMEM;
		n = recv(c->fd, dst, want, 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		buf_commit(&c->in, (size_t)n);
		ret = ms_conn_process(c);
		if (ret || c->paused || c->closing || (size_t)n < want)
			return ret;
	}
}

static void conn_event(struct ms_conn *c, uint32_t events)
{
	bool was_paused = c->paused;
	int ret = 0;

	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		ms_conn_close(c);
		return;
	}
	if (events & EPOLLOUT) {
		ret = conn_flush(c);
		/* Draining below high water resumes parsing of buffered input. */
		if (!ret && was_paused && !c->paused)
			ret = ms_conn_process(c);
	}
	if (!ret && events & EPOLLIN && !c->paused && !c->closing)
		ret = conn_readable(c);
	if (ret)
		ms_conn_close(c);
}

void ms_conn_close(struct ms_conn *c)
{
	struct ms_worker *w = c->w;

	for (unsigned i = 0; i < w->ntimers;) {
		if (w->timers[i].conn == c)
			w->timers[i] = w->timers[--w->ntimers];
		else
			i++;
	}
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	/* The session first: it deregisters the regions a queue pair exposes. */
	ms_session_release(&c->session);
	if (c->rdma)
		ms_rdma_conn_destroy(c);
	else
		close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	__atomic_fetch_sub(&w->srv->nconns, 1, __ATOMIC_RELAXED);
	c->dead = true;
	c->prev = NULL;
	c->next = w->graveyard;
	w->graveyard = c;
}

static void worker_bury(struct ms_worker *w)
{
	while (w->graveyard) {
		struct ms_conn *c = w->graveyard;

		w->graveyard = c->next;
		free(c);
	}
}

static void worker_accept(struct ms_worker *w)
{
	struct ms_server *srv = w->srv;

	for (unsigned i = 0; i < 16; i++) {
		struct epoll_event ev = { .events = EPOLLIN };
		struct ms_conn *c;
		int fd = net_tcp_accept(srv->listen_fd);

		if (fd < 0) {
			if (fd != -EAGAIN && fd != -ECONNABORTED)
				log_warn("accept: %s", strerror(-fd));
			return;
		}
		if (__atomic_load_n(&srv->nconns, __ATOMIC_RELAXED) >= MAX_CONNS) {
			log_warn("refusing connection: %u connections open", MAX_CONNS);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		ev.data.ptr = c;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		ms_conn_attach(w, c);
	}
}

void ms_conn_attach(struct ms_worker *w, struct ms_conn *c)
{
	c->w = w;
	ms_session_init(&c->session, &w->srv->svc, w->stats);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	__atomic_fetch_add(&w->srv->nconns, 1, __ATOMIC_RELAXED);
}

/* Sends the replies of delayed PINGs that are due; returns the epoll timeout
 * until the next one (-1: none pending). */
static int worker_timers(struct ms_worker *w)
{
	uint64_t now = now_ns(), next = UINT64_MAX;

	for (unsigned i = 0; i < w->ntimers;) {
		struct ms_timer t = w->timers[i];

		if (t.due_ns > now) {
			next = MIN(next, t.due_ns);
			i++;
			continue;
		}
		w->timers[i] = w->timers[--w->ntimers];
		t.conn->deferred--;
		if (ms_reply_status(&t.conn->out, &t.hdr, MS_ST_OK) || conn_flush(t.conn)) {
			ms_conn_close(t.conn);
			i = 0; /* the close may have removed other timers */
		}
	}
	if (next == UINT64_MAX)
		return -1;
	return (int)((next - now + 999999) / 1000000);
}

static void *worker_main(void *arg)
{
	struct ms_worker *w = arg;
	struct epoll_event events[64];
	sigset_t all;

	/* Signals go to the main thread only. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		int timeout = worker_timers(w);
		int n = epoll_wait(w->epfd, events, ARRAY_SIZE(events), timeout);

		if (n < 0 && errno != EINTR) {
			log_err("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			void *p = events[i].data.ptr;

			if (p == &w->stopfd)
				goto out;
			if (p == &w->srv->listen_fd)
				worker_accept(w);
			else if (w->srv->rdma && p == w->srv->rdma)
				ms_rdma_listener_event(w->srv->rdma, w);
			else if (((struct ms_conn *)p)->dead)
				continue;	/* closed earlier in this batch */
			else if (((struct ms_conn *)p)->rdma)
				ms_rdma_conn_event(p);
			else
				conn_event(p, events[i].events);
		}
		worker_bury(w);
	}
out:
	while (w->conns)
		ms_conn_close(w->conns);
	worker_bury(w);
	return NULL;
}

static int worker_init(struct ms_server *srv, struct ms_worker *w)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ret;

	w->srv = srv;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0)
		return -errno;
	w->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->stopfd < 0) {
		ret = -errno;
		goto close_epoll;
	}
	ev.data.ptr = &w->stopfd;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->stopfd, &ev) < 0)
		goto close_stop;
	/* RDMA connections all live on worker 0, which owns the connection
	 * manager's channel: only their control messages reach the server's
	 * CPU (pages move by one-sided verbs), so one thread is plenty. */
	if (srv->rdma && w == &srv->workers[0]) {
		ev.data.ptr = srv->rdma;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, ms_rdma_listener_fd(srv->rdma), &ev) < 0)
			goto close_stop;
	}
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.ptr = &srv->listen_fd;
	if (srv->listen_fd >= 0 && epoll_ctl(w->epfd, EPOLL_CTL_ADD, srv->listen_fd, &ev) < 0)
		goto close_stop;
	return 0;

close_stop:
	ret = -errno;
	close(w->stopfd);
close_epoll:
	close(w->epfd);
	w->epfd = w->stopfd = -1;
	return ret;
}

/* Binds one listener (tcp:// or rdma://, at most one of each) and writes the
 * URL as bound into bound. */
static int server_bind(struct ms_server *srv, const char *url, char *bound, size_t len)
{
	struct url u;
	uint16_t port = 0;
	int ret;

	if (url_parse(url, &u))
		return -EINVAL;
	if (u.scheme == URL_TCP) {
		if (srv->listen_fd >= 0)
			return -EINVAL;
		srv->listen_fd = net_tcp_listen(u.host, u.port, 512, &port);
		if (srv->listen_fd < 0)
			return srv->listen_fd;
	} else {
		if (srv->rdma)
			return -EINVAL;
		ret = ms_rdma_listen(srv, u.host, u.port, &srv->rdma, &port);
		if (ret)
			return ret;
	}
	u.port = port;
	url_format(&u, bound, len);
	return 0;
}

int ms_server_create(const struct ms_server_config *cfg, struct ms_server **out)
{
	struct ms_server *srv;
	int ret;

	if (!cfg->listen || cfg->threads == 0 || cfg->threads > 256)
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->listen_fd = -1;
	ret = ms_store_create(cfg->capacity, &srv->store);
	if (ret)
		goto free_srv;
	ret = server_bind(srv, cfg->listen, srv->url, sizeof(srv->url));
	if (!ret && cfg->listen2)
		ret = server_bind(srv, cfg->listen2, srv->url2, sizeof(srv->url2));
	if (ret)
		goto close_listen;
	if (cfg->key)
		srv->key = *cfg->key;
	srv->svc = (struct ms_service){
		.store = srv->store,
		.key = cfg->key ? &srv->key : NULL,
		.test_hooks = cfg->test_hooks,
		.start_ns = now_ns(),
		.collect_stat = worker_collect,
		.collect_ctx = srv,
	};
	srv->nworkers = cfg->threads;
	srv->workers = calloc(cfg->threads, sizeof(*srv->workers));
	if (!srv->workers) {
		ret = -ENOMEM;
		goto close_listen;
	}
	for (unsigned i = 0; i < srv->nworkers; i++) {
		ret = worker_init(srv, &srv->workers[i]);
		if (ret) {
			srv->nworkers = i;
			goto free_workers;
		}
	}
	*out = srv;
	return 0;

free_workers:
	for (unsigned i = 0; i < srv->nworkers; i++) {
		close(srv->workers[i].epfd);
		close(srv->workers[i].stopfd);
	}
	free(srv->workers);
close_listen:
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->rdma)
		ms_rdma_listener_destroy(srv->rdma);
	ms_store_destroy(srv->store);
free_srv:
	free(srv);
	return ret;
}

int ms_server_start(struct ms_server *srv)
{
	for (unsigned i = 0; i < srv->nworkers; i++) {
		struct ms_worker *w = &srv->workers[i];
		int ret = pthread_create(&w->thread, NULL, worker_main, w);

		if (ret) {
			ms_server_stop(srv);
			return -ret;
		}
		pthread_setname_np(w->thread, "ms-worker");
		w->started = true;
	}
	srv->running = true;
	return 0;
}

const char *ms_server_url(const struct ms_server *srv)
{
	return srv->url;
}

const char *ms_server_url2(const struct ms_server *srv)
{
	return srv->url2[0] ? srv->url2 : NULL;
}

void ms_server_stop(struct ms_server *srv)
{
	uint64_t one = 1;

	for (unsigned i = 0; i < srv->nworkers; i++) {
		struct ms_worker *w = &srv->workers[i];

		if (!w->started)
			continue;
		if (write(w->stopfd, &one, sizeof(one)) < 0)
			log_err("cannot signal worker %u: %s", i, strerror(errno));
		pthread_join(w->thread, NULL);
		w->started = false;
	}
	srv->running = false;
}

void ms_server_destroy(struct ms_server *srv)
{
	if (!srv)
		return;
	ms_server_stop(srv);
	for (unsigned i = 0; i < srv->nworkers; i++) {
		close(srv->workers[i].epfd);
		close(srv->workers[i].stopfd);
		free(srv->workers[i].timers);
	}
	free(srv->workers);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->rdma)
		ms_rdma_listener_destroy(srv->rdma);
	ms_store_destroy(srv->store);
	free(srv);
}

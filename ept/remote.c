/*
 * The memory-server side of the engine: the extent map (which server and
 * region hold which pages, with replicas), one client connection per server,
 * and batching. Reads and writes queued during one turn of the handler loop
 * are grouped per (extent, replica) into requests of up to MS_MAX_BATCH pages
 * and sent together at the end of the turn, so a burst of faults or evictions
 * costs one round trip, not one per page, and a lone fault is never delayed.
 *
 * Replication is client-driven: a write completes when every replica has
 * acknowledged it; a read that fails on one replica is retried on the next.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "common/log.h"
#include "common/url.h"
#include "common/util.h"
#include "ept/engine.h"

static struct ept_server *server_get(struct ept *e, const char *url, const struct auth_key *key,
				     int timeout_ms, int *err)
{
	struct ept_server *s;
	struct url u;
	char canon[300];
	int ret;

	if (url_parse(url, &u)) {
		log_err("invalid memory server URL '%s'", url);
		*err = -EINVAL;
		return NULL;
	}
	url_format(&u, canon, sizeof(canon));
	for (unsigned i = 0; i < e->nservers; i++)
		if (strcmp(e->servers[i].url, canon) == 0)
			return &e->servers[i];
	s = &e->servers[e->nservers];
	snprintf(s->url, sizeof(s->url), "%s", canon);
	ret = ms_client_connect(canon, key, timeout_ms, &s->client);
	if (ret) {
		log_err("cannot connect to memory server %s: %s", canon, strerror(-ret));
		*err = ret;
		return NULL;
	}
	e->nservers++;
	return s;
}

static int cmp_extent(const void *a, const void *b)
{
	const struct ept_extent *x = a, *y = b;

	return x->first_page < y->first_page ? -1 : x->first_page > y->first_page;
}

/* Sorts a copy of the extents and checks they tile [0, npages) exactly. */
static int check_extents(struct ept *e, const struct ept_config *cfg, struct ept_extent **sorted)
{
	struct ept_extent *x;
	uint64_t next = 0;

	if (!cfg->nextents || !cfg->extents)
		return -EINVAL;
	x = malloc(cfg->nextents * sizeof(*x));
	if (!x)
		return -ENOMEM;
	memcpy(x, cfg->extents, cfg->nextents * sizeof(*x));
	qsort(x, cfg->nextents, sizeof(*x), cmp_extent);
	for (unsigned i = 0; i < cfg->nextents; i++) {
		if (x[i].first_page != next || x[i].npages == 0 || x[i].nreplicas == 0 ||
		    x[i].nreplicas > EPT_MAX_REPLICAS) {
			log_err("extent %u (pages %llu+%llu, %u replicas) does not tile the region",
				i, (unsigned long long)x[i].first_page,
				(unsigned long long)x[i].npages, x[i].nreplicas);
			free(x);
			return -EINVAL;
		}
		next += x[i].npages;
	}
	if (next != e->npages) {
		log_err("extents cover %llu pages, the region has %llu", (unsigned long long)next,
			(unsigned long long)e->npages);
		free(x);
		return -EINVAL;
	}
	*sorted = x;
	return 0;
}

static int open_replica(struct ept *e, struct ept_ext *ext, const struct ept_extent *src,
			unsigned r, const struct ept_config *cfg)
{
	const struct ept_replica *rep = &src->replicas[r];
	uint64_t epoch, size;
	int ret = 0;

	ext->rep[r].srv = server_get(e, rep->url, cfg->key, cfg->timeout_ms, &ret);
	if (!ext->rep[r].srv)
		return ret;
	ret = ms_client_open(ext->rep[r].srv->client, rep->region, rep->token, &epoch, &size);
	if (ret) {
		log_err("cannot open region %llu on %s: %s", (unsigned long long)rep->region,
			ext->rep[r].srv->url, strerror(-ret));
		return ret;
	}
	if (rep->region_page + src->npages > size / MS_PAGE_SIZE) {
		log_err("region %llu on %s holds %llu pages, the extent needs %llu from page %llu",
			(unsigned long long)rep->region, ext->rep[r].srv->url,
			(unsigned long long)(size / MS_PAGE_SIZE), (unsigned long long)src->npages,
			(unsigned long long)rep->region_page);
		return -EINVAL;
	}
	ext->rep[r].region = rep->region;
	ext->rep[r].epoch = epoch;
	ext->rep[r].region_page = rep->region_page;
	return 0;
}

/*
 * Learns which pages the servers already hold (a restarted or migrated VMM
 * opens regions full of data): those are fetched on first touch, the rest are
 * served as local zero pages. The union over replicas: a page any replica
 * holds is fetched (a replica without it answers "zero").
 */
static int load_remote_map(struct ept *e, struct ept_ext *ext)
{
	uint8_t *map = malloc(MS_MAX_WRITTEN_PAGES / 8);
	int ret = 0;

	if (!map)
		return -ENOMEM;
	for (unsigned r = 0; r < ext->nreplicas && !ret; r++) {
		for (uint64_t done = 0; done < ext->npages && !ret;) {
			uint32_t n = (uint32_t)MIN(ext->npages - done, MS_MAX_WRITTEN_PAGES);

			ret = ms_client_written(ext->rep[r].srv->client, ext->rep[r].region,
						ext->rep[r].epoch, ext->rep[r].region_page + done,
						n, map);
			for (uint32_t i = 0; i < n && !ret; i++)
				if (map[i / 8] >> (i % 8) & 1)
					ept_remote_set(&e->ft, ext->first_page + done + i, true);
			done += n;
		}
		if (ret)
			log_err("cannot learn which pages region %llu on %s holds: %s",
				(unsigned long long)ext->rep[r].region, ext->rep[r].srv->url,
				strerror(-ret));
	}
	free(map);
	return ret;
}

int ept_remote_open(struct ept *e, const struct ept_config *cfg)
{
	struct ept_extent *sorted;
	unsigned maxsrv = cfg->nextents * EPT_MAX_REPLICAS;
	int ret;

	e->timeout_ns = (uint64_t)cfg->timeout_ms * 1000000;
	ret = check_extents(e, cfg, &sorted);
	if (ret)
		return ret;
	e->servers = calloc(maxsrv, sizeof(*e->servers));
	e->exts = calloc(cfg->nextents, sizeof(*e->exts));
	e->open_reads = calloc(maxsrv, sizeof(*e->open_reads));
	e->open_writes = calloc(maxsrv, sizeof(*e->open_writes));
	if (!e->servers || !e->exts || !e->open_reads || !e->open_writes) {
		ret = -ENOMEM;
		goto free_sorted;
	}
	e->nexts = cfg->nextents;
	for (unsigned i = 0; i < cfg->nextents; i++) {
		struct ept_ext *ext = &e->exts[i];

		ext->first_page = sorted[i].first_page;
		ext->npages = sorted[i].npages;
		ext->nreplicas = sorted[i].nreplicas;
		for (unsigned r = 0; r < ext->nreplicas; r++) {
			ret = open_replica(e, ext, &sorted[i], r, cfg);
			if (ret)
				goto free_sorted;
		}
		ret = load_remote_map(e, ext);
		if (ret)
			goto free_sorted;
	}
	for (unsigned i = 0; i < e->nservers; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &e->servers[i] };

		if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, ms_client_fd(e->servers[i].client), &ev)) {
			ret = -errno;
			goto free_sorted;
		}
	}
	free(sorted);
	return 0;

free_sorted:
	free(sorted);
	return ret; /* ept_remote_close frees the rest */
}

void ept_remote_close(struct ept *e)
{
	for (unsigned i = 0; i < e->nservers; i++)
		ms_client_close(e->servers[i].client);
	for (unsigned i = 0; e->open_reads && i < e->nexts * EPT_MAX_REPLICAS; i++) {
		free(e->open_reads[i]);
		free(e->open_writes[i]);
	}
	while (e->delayed) {
		struct ept_batch *b = e->delayed;

		e->delayed = b->next;
		free(b);
	}
	free(e->servers);
	free(e->exts);
	free(e->open_reads);
	free(e->open_writes);
	e->servers = NULL;
	e->exts = NULL;
	e->open_reads = e->open_writes = NULL;
	e->nservers = 0;
}

struct ept_ext *ept_remote_ext(struct ept *e, uint64_t page)
{
	unsigned lo = 0, hi = e->nexts;

	while (hi - lo > 1) {
		unsigned mid = (lo + hi) / 2;

		if (e->exts[mid].first_page <= page)
			lo = mid;
		else
			hi = mid;
	}
	return &e->exts[lo];
}

/* Sends batch b; on a dead server completes it at once with the error. */
static void batch_send(struct ept *e, struct ept_batch *b)
{
	struct ms_io *io = &b->io;
	int ret;

	*io = (struct ms_io){
		.op = b->kind == BATCH_READ ? MS_OP_READ : MS_OP_WRITE,
		.npages = b->n,
		.region = b->ext->rep[b->replica].region,
		.epoch = b->ext->rep[b->replica].epoch,
		.pages = b->region_pages,
		.bufs = b->bufs,
		.zero = b->kind == BATCH_READ ? b->zero : NULL,
		.cookie = b,
	};
	if (!b->srv->failed && ms_client_inflight(b->srv->client) == 0)
		b->srv->progress_ns = now_ns();
	ret = b->srv->failed ? -ENOTCONN : ms_client_submit(b->srv->client, io);
	if (ret) {
		/* Complete through the same path as a failed reply. */
		io->result = ret;
		b->next = e->delayed;
		b->delay_until = 0;
		e->delayed = b;
	}
}

static struct ept_batch **open_slot(struct ept *e, struct ept_ext *ext, unsigned r, int kind)
{
	unsigned i = (unsigned)(ext - e->exts) * EPT_MAX_REPLICAS + r;

	return kind == BATCH_READ ? &e->open_reads[i] : &e->open_writes[i];
}

static int batch_add(struct ept *e, struct ept_ext *ext, unsigned r, int kind, uint64_t page,
		     uint8_t *buf, void *item)
{
	struct ept_batch **slot = open_slot(e, ext, r, kind), *b = *slot;

	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return -ENOMEM;
		b->srv = ext->rep[r].srv;
		b->ext = ext;
		b->replica = r;
		b->kind = (uint8_t)kind;
		*slot = b;
	}
	b->region_pages[b->n] = ext->rep[r].region_page + (page - ext->first_page);
	b->bufs[b->n] = buf;
	b->items[b->n] = item;
	if (++b->n == MS_MAX_BATCH) {
		*slot = NULL;
		batch_send(e, b);
	}
	return 0;
}

void ept_remote_describe(struct ept *e, uint64_t page, char *buf, size_t len)
{
	struct ept_ext *ext = ept_remote_ext(e, page);
	size_t at = 0;

	buf[0] = '\0';
	for (unsigned r = 0; r < ext->nreplicas && at < len; r++) {
		int n = snprintf(buf + at, len - at, "%s%s (region %llu%s)", r ? ", " : "",
				 ext->rep[r].srv->url, (unsigned long long)ext->rep[r].region,
				 ext->rep[r].srv->failed ? ", failed" : "");

		if (n < 0)
			break;
		at += (size_t)n;
	}
}

int ept_remote_read(struct ept *e, struct ept_read *rd, uint8_t *buf)
{
	struct ept_ext *ext = ept_remote_ext(e, rd->page);

	while (rd->replica < ext->nreplicas && ext->rep[rd->replica].srv->failed)
		rd->replica++;
	if (rd->replica >= ext->nreplicas)
		return -EIO;
	return batch_add(e, ext, rd->replica, BATCH_READ, rd->page, buf, rd);
}

int ept_remote_write(struct ept *e, struct ept_write *wr)
{
	struct ept_ext *ext = ept_remote_ext(e, wr->page);
	unsigned live = 0;
	int ret;

	/* A failed replica is left behind (degraded): it is never read again,
	 * and the write completes when every live replica has it. */
	for (unsigned r = 0; r < ext->nreplicas; r++)
		live += !ext->rep[r].srv->failed;
	if (!live)
		return -EIO;
	wr->remaining = (uint8_t)live;
	wr->acked = 0;
	wr->error = 0;
	for (unsigned r = 0; r < ext->nreplicas; r++) {
		if (ext->rep[r].srv->failed)
			continue;
		ret = batch_add(e, ext, r, BATCH_WRITE, wr->page, wr->buf, wr);
		if (ret)
			return ret;
	}
	return 0;
}

void ept_remote_submit(struct ept *e)
{
	for (unsigned i = 0; i < e->nexts * EPT_MAX_REPLICAS; i++) {
		if (e->open_reads[i]) {
			batch_send(e, e->open_reads[i]);
			e->open_reads[i] = NULL;
		}
		if (e->open_writes[i]) {
			batch_send(e, e->open_writes[i]);
			e->open_writes[i] = NULL;
		}
	}
	for (unsigned i = 0; i < e->nservers; i++)
		if (!e->servers[i].failed && ms_client_inflight(e->servers[i].client))
			ms_client_flush(e->servers[i].client);
}

/* Stops using server s: its replicas are skipped from now on. */
static void server_failed(struct ept *e, struct ept_server *s)
{
	int fd = ms_client_fd(s->client);

	e->st.servers_failed++;
	s->failed = true;
	if (fd >= 0)
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void complete_read(struct ept *e, struct ept_batch *b)
{
	for (unsigned i = 0; i < b->n; i++) {
		struct ept_read *rd = b->items[i];

		if (b->io.result == 0) {
			ept_on_read_done(e, rd, b->bufs[i], b->zero[i], 0);
			continue;
		}
		/* Another replica may still serve it. */
		rd->replica++;
		if (ept_remote_read(e, rd, b->bufs[i]) == 0)
			continue;
		ept_on_read_done(e, rd, b->bufs[i], false, b->io.result);
	}
}

static void complete_batch(struct ept *e, struct ept_batch *b)
{
	if (b->io.result) {
		/* Once per server: after it is marked failed, the batches still
		 * in flight all come back with the same error. */
		if (!b->srv->failed)
			log_err("%s of %u pages from region %llu on %s failed: %s",
				b->kind == BATCH_READ ? "read" : "write", b->n,
				(unsigned long long)b->io.region, b->srv->url,
				strerror(-b->io.result));
		if (b->io.result != -EBADMSG && b->io.result != -ESTALE && !b->srv->failed) {
			log_err("memory server %s failed: its replicas are no longer used",
				b->srv->url);
			server_failed(e, b->srv);
		}
	}
	if (b->kind == BATCH_READ) {
		complete_read(e, b);
	} else {
		for (unsigned i = 0; i < b->n; i++) {
			struct ept_write *wr = b->items[i];

			if (b->io.result)
				wr->error = b->io.result;
			else
				wr->acked++;
			if (--wr->remaining == 0) {
				/* Done once some replica has it; fenced or corrupt
				 * writes are errors whatever the others said. */
				if (wr->acked && wr->error != -ESTALE && wr->error != -EBADMSG)
					wr->error = 0;
				ept_on_write_done(e, wr);
			}
		}
	}
	free(b);
}

/* The test delay's random numbers (xorshift64), from the engine's state:
 * only the handler thread draws them. */
static uint64_t rng_next(struct ept *e)
{
	uint64_t x = e->test_delay_rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	e->test_delay_rng = x;
	return x;
}

unsigned ept_remote_poll(struct ept *e)
{
	unsigned total = 0;

	for (unsigned i = 0; i < e->nservers; i++) {
		struct ept_server *s = &e->servers[i];
		struct ms_io *done[64];
		int n;

		/* A server that answers nothing within the timeout is as good as
		 * dead: fail what is in flight (replicas or a fatal error follow). */
		if (!s->failed && ms_client_inflight(s->client) &&
		    now_ns() - s->progress_ns > e->timeout_ns) {
			log_err("memory server %s: no reply for %llu ms", s->url,
				(unsigned long long)(e->timeout_ns / 1000000));
			ms_client_abort(s->client, -ETIMEDOUT);
		}
		if (s->failed)
			continue;
		do {
			n = ms_client_poll(s->client, done, ARRAY_SIZE(done), 0);
			if (n == -ENOTCONN) {
				/* Gone while idle: its closed socket would wake the
				 * loop forever. Nothing was in flight to fail. */
				log_err("memory server %s closed the connection: its replicas "
					"are no longer used", s->url);
				server_failed(e, s);
				break;
			}
			if (n > 0) {
				s->progress_ns = now_ns();
				total += (unsigned)n;
			}
			for (int k = 0; k < n; k++) {
				struct ept_batch *b = done[k]->cookie;

				if (e->test_delay_us) {
					b->delay_until = now_ns() +
							 rng_next(e) % (e->test_delay_us + 1) * 1000;
					b->next = e->delayed;
					e->delayed = b;
				} else {
					complete_batch(e, b);
				}
			}
		} while (n == (int)ARRAY_SIZE(done));
	}
	return total;
}

int ept_remote_delayed(struct ept *e)
{
	uint64_t now = now_ns(), next = UINT64_MAX;
	struct ept_batch **pp = &e->delayed, *due = NULL;

	/* Unlink the due batches first: completing one may queue more. */
	while (*pp) {
		struct ept_batch *b = *pp;

		if (b->delay_until <= now) {
			*pp = b->next;
			b->next = due;
			due = b;
		} else {
			next = MIN(next, b->delay_until);
			pp = &b->next;
		}
	}
	while (due) {
		struct ept_batch *b = due;

		due = b->next;
		complete_batch(e, b);
	}
	if (e->delayed && next == UINT64_MAX)
		return 0;
	if (next == UINT64_MAX)
		return -1;
	return (int)((next - now + 999999) / 1000000);
}

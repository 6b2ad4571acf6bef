/*
 * Transport-independent half of the client library (see client.h): request
 * ids and the in-flight table, the completed list poll hands back, and the
 * synchronous calls built on submit + wait.
 */
#include "memserver/client_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/url.h"
#include "common/util.h"

#define DEFAULT_TIMEOUT_MS 10000

void ms_client_mac(const struct auth_key *key, bool server, const uint8_t *first,
		   const uint8_t *second, uint8_t out[MS_MAC_LEN])
{
	static const char client_label[] = "legato-ms-c", server_label[] = "legato-ms-s";
	const char *label = server ? server_label : client_label;

	auth_hmac(key, label, sizeof(client_label), first, MS_NONCE_LEN, second, MS_NONCE_LEN,
		  out);
}

int ms_client_connect(const char *url, const struct auth_key *key, int timeout_ms,
		      struct ms_client **out)
{
	struct ms_client *c;
	struct url u;
	int ret;

	if (url_parse(url, &u))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
	c->next_id = 1;
	url_format(&u, c->url, sizeof(c->url));
	switch (u.scheme) {
	case URL_TCP:
		ret = ms_client_tcp_connect(c, u.host, u.port, key);
		break;
	case URL_RDMA:
		ret = ms_client_rdma_connect(c, u.host, u.port, key);
		break;
	default:
		ret = -EPROTONOSUPPORT;
		break;
	}
	if (ret) {
		free(c);
		return ret;
	}
	*out = c;
	return 0;
}

void ms_client_close(struct ms_client *c)
{
	if (!c)
		return;
	if (c->ops)
		c->ops->close(c);
	free(c);
}

const char *ms_client_url(const struct ms_client *c)
{
	return c->url;
}

int ms_client_fd(const struct ms_client *c)
{
	return c->ops && c->ops->fd ? c->ops->fd(c) : -1;
}

unsigned ms_client_inflight(const struct ms_client *c)
{
	return c->inflight;
}

struct ms_io *ms_client_lookup(struct ms_client *c, uint64_t id)
{
	struct ms_io *io = c->slots[id % MS_CLIENT_MAX_INFLIGHT];

	return io && io->id == id ? io : NULL;
}

void ms_client_complete(struct ms_client *c, struct ms_io *io, int result)
{
	c->slots[io->id % MS_CLIENT_MAX_INFLIGHT] = NULL;
	io->result = result;
	io->next = NULL;
	if (c->done_tail)
		c->done_tail->next = io;
	else
		c->done_head = io;
	c->done_tail = io;
}

void ms_client_fail(struct ms_client *c, int err)
{
	if (!c->dead)
		c->dead = err;
	for (unsigned i = 0; i < MS_CLIENT_MAX_INFLIGHT; i++)
		if (c->slots[i])
			ms_client_complete(c, c->slots[i], err);
}

int ms_client_set_busy_poll(struct ms_client *c, bool on)
{
	return c->ops->set_busy_poll ? c->ops->set_busy_poll(c, on) : -EOPNOTSUPP;
}

int ms_client_flush(struct ms_client *c)
{
	if (c->dead)
		return -ENOTCONN;
	return c->ops->flush(c) < 0 ? -ENOTCONN : 0;
}

void ms_client_abort(struct ms_client *c, int err)
{
	ms_client_fail(c, err);
}

static int io_validate(const struct ms_io *io)
{
	switch (io->op) {
	case MS_OP_READ:
	case MS_OP_WRITE:
		if (io->npages == 0 || io->npages > MS_MAX_BATCH || !io->pages ||
		    (!io->buf && !io->bufs))
			return -EINVAL;
		return 0;
	case MS_OP_STAT:
		return io->stat ? 0 : -EINVAL;
	case MS_OP_PING:
		return io->arg <= MS_MAX_PING_DELAY_US ? 0 : -EINVAL;
	case MS_OP_WRITTEN:
		return io->npages && io->npages <= MS_MAX_WRITTEN_PAGES && io->buf ? 0 : -EINVAL;
	case MS_OP_REGION_CREATE:
	case MS_OP_REGION_OPEN:
	case MS_OP_REGION_DELETE:
	case MS_OP_DEBUG_CORRUPT:
		return 0;
	default:
		return -EINVAL;
	}
}

int ms_client_submit(struct ms_client *c, struct ms_io *io)
{
	unsigned slot;
	int ret;

	if (c->dead)
		return -ENOTCONN;
	ret = io_validate(io);
	if (ret)
		return ret;
	if (c->inflight >= MS_CLIENT_MAX_INFLIGHT)
		return -EAGAIN;
	/* Any free slot will do; the id encodes it, and the rest of the id
	 * keeps growing so a late or forged reply never matches a newer
	 * request. */
	for (slot = c->next_slot; c->slots[slot];)
		slot = (slot + 1) % MS_CLIENT_MAX_INFLIGHT;
	io->id = c->next_id++ * MS_CLIENT_MAX_INFLIGHT + slot;
	io->result = 0;
	io->next = NULL;
	ret = c->ops->submit(c, io);
	if (ret)
		return ret;
	c->slots[slot] = io;
	c->next_slot = (slot + 1) % MS_CLIENT_MAX_INFLIGHT;
	c->inflight++;
	return 0;
}

static unsigned take_done(struct ms_client *c, struct ms_io **done, unsigned max)
{
	unsigned n = 0;

	while (n < max && c->done_head) {
		struct ms_io *io = c->done_head;

		c->done_head = io->next;
		if (!c->done_head)
			c->done_tail = NULL;
		io->next = NULL;
		done[n++] = io;
		c->inflight--;
	}
	return n;
}

int ms_client_poll(struct ms_client *c, struct ms_io **done, unsigned max, int timeout_ms)
{
	unsigned n = take_done(c, done, max);
	int ret;

	if (n || max == 0)
		return (int)n;
	if (c->dead)
		return c->inflight ? 0 : -ENOTCONN;
	ret = c->ops->poll(c, timeout_ms);
	n = take_done(c, done, max);
	if (n)
		return (int)n;
	return ret < 0 && c->dead ? -ENOTCONN : 0;
}

/* Drives the connection until io completes; other completions stay queued
 * for the next poll. On timeout the client is killed: the reply could still
 * arrive and would land in memory the caller is about to reuse. */
static int wait_for(struct ms_client *c, struct ms_io *io)
{
	uint64_t deadline = now_ns() + (uint64_t)c->timeout_ms * 1000000;

	for (;;) {
		struct ms_io **pp;
		int left_ms;

		for (pp = &c->done_head; *pp; pp = &(*pp)->next) {
			if (*pp != io)
				continue;
			*pp = io->next;
			if (c->done_tail == io) {
				c->done_tail = NULL;
				for (struct ms_io *t = c->done_head; t; t = t->next)
					c->done_tail = t;
			}
			c->inflight--;
			return io->result;
		}
		left_ms = (int)(((int64_t)(deadline - now_ns())) / 1000000);
		if (left_ms <= 0 || (int64_t)(deadline - now_ns()) <= 0) {
			ms_client_fail(c, -ETIMEDOUT);
			continue;
		}
		c->ops->poll(c, left_ms);
	}
}

static int run_sync(struct ms_client *c, struct ms_io *io)
{
	int ret = ms_client_submit(c, io);

	return ret ? ret : wait_for(c, io);
}

int ms_client_create(struct ms_client *c, uint64_t region, uint64_t size,
		     uint8_t token[MS_TOKEN_LEN])
{
	struct ms_io io = { .op = MS_OP_REGION_CREATE, .region = region, .arg = size };
	int ret = run_sync(c, &io);

	if (!ret)
		memcpy(token, io.token, MS_TOKEN_LEN);
	return ret;
}

int ms_client_open(struct ms_client *c, uint64_t region, const uint8_t token[MS_TOKEN_LEN],
		   uint64_t *epoch, uint64_t *size)
{
	struct ms_io io = { .op = MS_OP_REGION_OPEN, .region = region };
	int ret;

	memcpy(io.token, token, MS_TOKEN_LEN);
	ret = run_sync(c, &io);
	if (!ret) {
		*epoch = io.out_epoch;
		if (size)
			*size = io.out_size;
	}
	return ret;
}

int ms_client_delete(struct ms_client *c, uint64_t region, const uint8_t token[MS_TOKEN_LEN])
{
	struct ms_io io = { .op = MS_OP_REGION_DELETE, .region = region };

	memcpy(io.token, token, MS_TOKEN_LEN);
	return run_sync(c, &io);
}

/* Splits a large synchronous transfer into pipelined batches. */
static int transfer(struct ms_client *c, uint8_t op, uint64_t region, uint64_t epoch,
		    const uint64_t *pages, unsigned npages, void *buf, uint8_t *zero)
{
	unsigned nios = (npages + MS_MAX_BATCH - 1) / MS_MAX_BATCH, submitted = 0;
	struct ms_io *ios;
	int ret = 0, first_err = 0;

	if (npages == 0)
		return 0;
	ios = calloc(nios, sizeof(*ios));
	if (!ios)
		return -ENOMEM;
	for (unsigned i = 0; i < nios; i++) {
		unsigned off = i * MS_MAX_BATCH;

		ios[i] = (struct ms_io){
			.op = op,
			.region = region,
			.epoch = epoch,
			.npages = MIN(MS_MAX_BATCH, npages - off),
			.pages = pages + off,
			.buf = (uint8_t *)buf + (size_t)off * MS_PAGE_SIZE,
			.zero = zero ? zero + off : NULL,
		};
	}
	/* Keep a bounded window in flight; wait in submission order. */
	for (unsigned i = 0; i < nios; i++) {
		while (submitted < nios && submitted - i < 32) {
			ret = ms_client_submit(c, &ios[submitted]);
			if (ret)
				break;
			submitted++;
		}
		if (i >= submitted) {
			first_err = first_err ? first_err : ret;
			break;
		}
		ret = wait_for(c, &ios[i]);
		if (ret && !first_err)
			first_err = ret;
	}
	free(ios);
	return first_err;
}

int ms_client_read(struct ms_client *c, uint64_t region, uint64_t epoch, const uint64_t *pages,
		   unsigned npages, void *buf, uint8_t *zero)
{
	return transfer(c, MS_OP_READ, region, epoch, pages, npages, buf, zero);
}

int ms_client_write(struct ms_client *c, uint64_t region, uint64_t epoch,
		    const uint64_t *pages, unsigned npages, const void *buf)
{
	return transfer(c, MS_OP_WRITE, region, epoch, pages, npages, (void *)buf, NULL);
}

int ms_client_stat(struct ms_client *c, struct ms_stat *out)
{
	struct ms_io io = { .op = MS_OP_STAT, .stat = out };

	return run_sync(c, &io);
}

int ms_client_ping(struct ms_client *c, uint32_t delay_us)
{
	struct ms_io io = { .op = MS_OP_PING, .arg = delay_us };

	return run_sync(c, &io);
}

int ms_client_written(struct ms_client *c, uint64_t region, uint64_t epoch, uint64_t first,
		      uint32_t npages, uint8_t *bitmap)
{
	struct ms_io io = { .op = MS_OP_WRITTEN, .region = region, .epoch = epoch,
			    .arg = first, .npages = npages, .buf = bitmap };

	return run_sync(c, &io);
}

int ms_client_debug_corrupt(struct ms_client *c, uint64_t region, uint64_t page)
{
	struct ms_io io = { .op = MS_OP_DEBUG_CORRUPT, .region = region, .arg = page };

	return run_sync(c, &io);
}

/*
 * bench-rdma: the client side of one measurement of tools/bench/rdma.sh, run
 * on a test host against a memory server on another one.
 *
 *   bench-rdma --url URL [--busy] [--lat N] [--tput MS] [--depth D] [--pages P]
 *              [--warmup N] [--samples FILE]
 *   bench-rdma --local [--lat N]
 *
 * With --url it connects (tcp:// or rdma://), creates a region of P pages
 * (default 256, 1 MiB), writes every page once with distinct contents (so each
 * READ carries a real checksum to verify), opens it and measures:
 *
 *   --lat N    N synchronous 1-page READs (ms_client_read), one outstanding,
 *              after --warmup untimed ones: p50/p90/p99/mean/min in us;
 *   --tput MS  MS milliseconds of 1-page READs kept D deep (default 32) with
 *              ms_client_submit / ms_client_poll: pages per second.
 *
 * --busy switches the client to busy-polling first (ms_client_set_busy_poll);
 * a transport without the choice is reported as {"busy_poll": "unavailable"}
 * with no measurement, and the exit status is still 0. Pages are read in
 * turn, so consecutive READs touch different pages.
 *
 * Two more modes take the rdma:// client apart, to say where its latency
 * beyond perftest's goes:
 *
 *   bench-rdma --verbs-serve PORT [--pages P]
 *   bench-rdma --verbs HOST:PORT [--lat N] [--warmup N] [--pages P]
 *
 * The server registers P slots of MS_SLOT_SIZE laid out as the memory
 * server's store (page p at slot p, its ms_page_sum right after it) and hands
 * address and rkey over in the accept's private data, one connection after
 * another until killed. The client times, with bare verbs on one RC queue
 * pair, one outstanding
 *   read1      RDMA READ of slot p's 4 KiB page (what ib_read_lat times),
 *   read2      RDMA READ of the page + an 8-byte RDMA READ of its sum, one
 *              chain, last WR signalled (the client's wire work per page in
 *              the former layout, page and sum in separate arrays: kept to
 *              show what the slot layout saved),
 *   slot       one RDMA READ of the 4104-byte slot into a contiguous local
 *              page + sum, one SGE (the rdma:// client's wire work per page),
 *   slot_sum   slot, then ms_page_sum of the page checked against the sum
 *              and a 4 KiB copy out (the client's whole work per page),
 * each waited for by busy-polling the CQ and by sleeping on the completion
 * channel as ib_read_lat -e does (arm, post, ibv_get_cq_event, poll), in
 * rounds of alternating order: N samples each, p50/p99.
 *
 * --local measures, on this machine and with no server, the CPU work the
 * rdma:// client does per page read besides the RDMA itself: ms_page_sum of
 * 4 KiB (XXH3, the checksum check) and a 4 KiB memcpy (bounce page -> caller),
 * and one read of the monotonic clock (now_ns; the clocksource is reported);
 * and the TSC rate against CLOCK_MONOTONIC next to the "cpu MHz" perftest
 * converts its cycle counts with.
 *
 * Prints one JSON object on stdout; the region is deleted at the end.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <jansson.h>
#include <rdma/rdma_cma.h>

#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"
#include "memserver/client.h"
#include "memserver/proto.h"
#include "tools/bench/benchutil.h"

#define DEFAULT_PAGES 256u
#define DEFAULT_DEPTH 32u
#define MAX_DEPTH 256u

struct options {
	const char *url;
	const char *samples;
	const char *verbs, *verbs_serve;
	bool busy, local;
	unsigned lat, warmup, tput_ms, depth, pages;
};

struct bench {
	struct options *o;
	struct ms_client *c;
	uint64_t region, epoch;
	uint8_t token[MS_TOKEN_LEN];
	uint8_t *buf;		/* MAX_DEPTH pages */
	uint64_t cursor;
};

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: bench-rdma --url URL [--busy] [--lat N] [--tput MS] [--depth D]\n"
		"                  [--pages P] [--warmup N] [--samples FILE]\n"
		"       bench-rdma --verbs-serve PORT [--pages P]\n"
		"       bench-rdma --verbs HOST:PORT [--lat N] [--warmup N] [--pages P]\n"
		"       bench-rdma --local [--lat N]\n");
	exit(status);
}

static unsigned parse_uint(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v > 1000000000ul)
		die("bad %s: %s", what, s);
	return (unsigned)v;
}

static uint64_t next_page(struct bench *b)
{
	return b->cursor++ % b->o->pages;
}

/* ---- setup: a fresh region, every page written once -------------------- */

static void setup(struct bench *b)
{
	uint64_t size = (uint64_t)b->o->pages * MS_PAGE_SIZE, got = 0;
	unsigned chunk = MS_MAX_BATCH;
	uint64_t pages[MS_MAX_BATCH];
	uint8_t *data;
	int ret;

	/* Region ids need only be unique on this server for this run. */
	b->region = ((uint64_t)getpid() << 20) ^ (now_ns() & 0xfffff);
	ret = ms_client_create(b->c, b->region, size, b->token);
	if (ret)
		die("REGION_CREATE: %s", strerror(-ret));
	ret = ms_client_open(b->c, b->region, b->token, &b->epoch, &got);
	if (ret)
		die("REGION_OPEN: %s", strerror(-ret));
	if (got != size)
		die("REGION_OPEN: size %llu, asked for %llu", (unsigned long long)got,
		    (unsigned long long)size);
	data = malloc((size_t)chunk * MS_PAGE_SIZE);
	if (!data)
		die("out of memory");
	for (unsigned p = 0; p < b->o->pages; p += chunk) {
		unsigned n = MIN(chunk, b->o->pages - p);

		for (unsigned i = 0; i < n; i++) {
			pages[i] = p + i;
			for (unsigned w = 0; w < MS_PAGE_SIZE / 8; w++) {
				uint64_t v = (p + i + 1) * 0x9e3779b97f4a7c15ull ^
					     w * 0xff51afd7ed558ccdull;

				memcpy(data + (size_t)i * MS_PAGE_SIZE + w * 8, &v, 8);
			}
		}
		ret = ms_client_write(b->c, b->region, b->epoch, pages, n, data);
		if (ret)
			die("WRITE: %s", strerror(-ret));
	}
	free(data);
}

/* ---- latency: one outstanding 1-page READ --------------------------------- */

static uint64_t read_once(struct bench *b)
{
	uint64_t page = next_page(b), t0 = now_ns();
	uint8_t zero = 1;
	int ret = ms_client_read(b->c, b->region, b->epoch, &page, 1, b->buf, &zero);

	if (ret)
		die("READ: %s", strerror(-ret));
	if (zero)
		die("READ of page %llu: never written?", (unsigned long long)page);
	return now_ns() - t0;
}

static json_t *run_latency(struct bench *b)
{
	struct bench_samples s = { 0 };
	json_t *j;

	for (unsigned i = 0; i < b->o->warmup; i++)
		read_once(b);
	for (unsigned i = 0; i < b->o->lat; i++)
		bench_samples_add(&s, read_once(b));
	j = bench_samples_json(&s);
	json_object_set_new(j, "min_us", json_real(bench_round3(bench_quantile_us(&s, 0))));
	if (b->o->samples) {
		FILE *f = fopen(b->o->samples, "w");

		if (!f)
			die("%s: %s", b->o->samples, strerror(errno));
		for (size_t i = 0; i < s.n; i++)
			fprintf(f, "%.3f\n", (double)s.v[i] / 1000.0);
		if (fclose(f))
			die("%s: %s", b->o->samples, strerror(errno));
	}
	bench_samples_free(&s);
	return j;
}

/* ---- pages/s: depth 1-page READs outstanding ------------------------------ */

static json_t *run_tput(struct bench *b)
{
	unsigned depth = b->o->depth, inflight = 0;
	struct ms_io ios[MAX_DEPTH], *done[MAX_DEPTH];
	uint64_t pg[MAX_DEPTH], count = 0, t0, end, ns;
	uint8_t zero[MAX_DEPTH];
	int ret;

	t0 = now_ns();
	end = t0 + (uint64_t)b->o->tput_ms * 1000000;
	for (unsigned i = 0; i < depth; i++) {
		pg[i] = next_page(b);
		ios[i] = (struct ms_io){ .op = MS_OP_READ, .npages = 1, .region = b->region,
					 .epoch = b->epoch, .pages = &pg[i], .zero = &zero[i],
					 .buf = b->buf + (size_t)i * MS_PAGE_SIZE };
		ret = ms_client_submit(b->c, &ios[i]);
		if (ret)
			die("submit: %s", strerror(-ret));
		inflight++;
	}
	while (inflight) {
		int n = ms_client_poll(b->c, done, depth, -1);
		bool more = now_ns() < end;

		if (n < 0)
			die("poll: %s", strerror(-n));
		for (int i = 0; i < n; i++) {
			struct ms_io *io = done[i];
			unsigned k = (unsigned)(io - ios);

			if (io->result)
				die("READ: %s", strerror(-io->result));
			if (zero[k])
				die("READ of page %llu: never written?", (unsigned long long)pg[k]);
			count++;
			inflight--;
			if (!more)
				continue;
			pg[k] = next_page(b);
			ret = ms_client_submit(b->c, io);
			if (ret)
				die("submit: %s", strerror(-ret));
			inflight++;
		}
	}
	ns = now_ns() - t0;
	return json_pack("{s:i,s:I,s:f,s:f}", "depth", (int)depth, "pages", (json_int_t)count,
			 "seconds", bench_round3((double)ns / 1e9), "pages_per_s",
			 bench_round3((double)count * 1e9 / (double)ns));
}

/* ---- --local: the per-page CPU work of the rdma:// client ------------------ */

static inline uint64_t rdtsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
#else
	return 0;
#endif
}

static double cpuinfo_mhz(void)
{
	char line[256];
	double mhz = 0;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "cpu MHz", 7) && sscanf(strchr(line, ':') + 1, "%lf", &mhz) == 1)
			break;
	if (f)
		fclose(f);
	return mhz;
}

static const char *clocksource(void)
{
	static char name[64] = "unknown";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");

	if (f) {
		if (fgets(name, sizeof(name), f))
			name[strcspn(name, "\n")] = 0;
		fclose(f);
	}
	return name;
}

static json_t *run_local(struct options *o)
{
	unsigned n = o->lat ? o->lat : 2000;
	uint8_t *src = aligned_alloc(4096, 16 * MS_PAGE_SIZE), *dst = aligned_alloc(4096,
										   MS_PAGE_SIZE);
	struct bench_samples sum = { 0 }, cpy = { 0 }, clk = { 0 };
	volatile uint64_t sink = 0;
	uint64_t t0, c0, t1, c1;
	struct timespec nap = { 0, 200 * 1000 * 1000 };
	json_t *j;

	if (!src || !dst)
		die("out of memory");
	for (size_t i = 0; i < 16 * MS_PAGE_SIZE; i++)
		src[i] = (uint8_t)(i * 131 + 7);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *p = src + (size_t)(i % 16) * MS_PAGE_SIZE;
		uint64_t a = now_ns(), z;

		sink += ms_page_sum(p);
		z = now_ns();
		bench_samples_add(&sum, z - a);
		memcpy(dst, p, MS_PAGE_SIZE);
		__asm__ volatile("" ::"r"(dst) : "memory");
		bench_samples_add(&cpy, now_ns() - z);
	}
	/* One clock read (now_ns: the library reads the clock several times
	 * per request; on a guest whose clocksource is not TSC it is a system
	 * call and an emulated device read). */
	for (unsigned r = 0; r < 50; r++) {
		t0 = now_ns();
		for (unsigned i = 0; i < 100; i++)
			sink += now_ns();
		bench_samples_add(&clk, (now_ns() - t0) / 101);
	}
	/* The TSC against the monotonic clock, while sleeping (as perftest's
	 * cycle counts are mostly taken while a CPU waits). */
	t0 = now_ns();
	c0 = rdtsc();
	nanosleep(&nap, NULL);
	t1 = now_ns();
	c1 = rdtsc();
	j = json_pack("{s:o,s:o,s:o,s:s,s:f,s:f}", "xxh3_4k", bench_samples_json(&sum),
		      "memcpy_4k", bench_samples_json(&cpy), "clock_read", bench_samples_json(&clk),
		      "clocksource", clocksource(), "tsc_mhz_measured",
		      bench_round3((double)(c1 - c0) * 1e3 / (double)(t1 - t0)), "cpuinfo_mhz",
		      bench_round3(cpuinfo_mhz()));
	(void)sink;
	bench_samples_free(&sum);
	bench_samples_free(&cpy);
	bench_samples_free(&clk);
	free(src);
	free(dst);
	return j;
}

/* ---- --verbs, --verbs-serve: the client's work with bare verbs ------------- */

#define VERBS_MAGIC 0x4c475642u /* "LGVB" */

struct verbs_priv {		/* accept private data, host order (same build) */
	uint32_t magic, rkey;
	uint64_t addr, pages;
};

struct verbs_conn {
	struct rdma_event_channel *ec;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	uint8_t *mem;
	size_t len;
};

static struct rdma_cm_event *verbs_event(struct rdma_event_channel *ec, int want, int timeout_ms)
{
	struct pollfd pfd = { .fd = ec->fd, .events = POLLIN };
	struct rdma_cm_event *ev;

	if (poll(&pfd, 1, timeout_ms) != 1 || rdma_get_cm_event(ec, &ev))
		die("verbs: no CM event (waiting for %s)", rdma_event_str(want));
	if (want >= 0 && ev->event != (enum rdma_cm_event_type)want)
		die("verbs: CM event %s (status %d), want %s", rdma_event_str(ev->event),
		    ev->status, rdma_event_str(want));
	return ev;
}

/* PD, completion channel, CQ, RC QP and len bytes registered on c->id. */
static void verbs_setup(struct verbs_conn *c, size_t len, int access)
{
	struct ibv_qp_init_attr qa = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 16, .max_recv_wr = 1, .max_send_sge = 1,
			 .max_recv_sge = 1 },
	};

	c->pd = ibv_alloc_pd(c->id->verbs);
	c->ch = c->pd ? ibv_create_comp_channel(c->id->verbs) : NULL;
	c->cq = c->ch ? ibv_create_cq(c->id->verbs, 32, NULL, c->ch, 0) : NULL;
	if (!c->cq)
		die("verbs: PD/channel/CQ: %s", strerror(errno));
	qa.send_cq = qa.recv_cq = c->cq;
	if (rdma_create_qp(c->id, c->pd, &qa))
		die("verbs: rdma_create_qp: %s", strerror(errno));
	c->len = len;
	c->mem = aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
	if (!c->mem)
		die("out of memory");
	memset(c->mem, 0, len);
	c->mr = ibv_reg_mr(c->pd, c->mem, len, access);
	if (!c->mr)
		die("verbs: ibv_reg_mr: %s", strerror(errno));
}

static void verbs_teardown(struct verbs_conn *c)
{
	rdma_destroy_qp(c->id);
	ibv_dereg_mr(c->mr);
	ibv_destroy_cq(c->cq);
	ibv_destroy_comp_channel(c->ch);
	ibv_dealloc_pd(c->pd);
	free(c->mem);
}

static struct rdma_conn_param verbs_param(struct ibv_context *verbs)
{
	struct ibv_device_attr da;

	if (ibv_query_device(verbs, &da))
		die("verbs: ibv_query_device: %s", strerror(errno));
	return (struct rdma_conn_param){
		.initiator_depth = (uint8_t)MIN(da.max_qp_init_rd_atom, 16),
		.responder_resources = (uint8_t)MIN(da.max_qp_rd_atom, 16),
		.retry_count = 7, .rnr_retry_count = 7,
	};
}

/* Serves connections one after another until killed. */
static void verbs_serve(struct options *o)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE, .ai_family = AF_INET }, *ai;
	struct rdma_event_channel *ec = rdma_create_event_channel();
	struct rdma_cm_id *listen_id;
	size_t len = (size_t)o->pages * MS_SLOT_SIZE;

	if (!ec || rdma_create_id(ec, &listen_id, NULL, RDMA_PS_TCP))
		die("verbs: rdma_create_id: %s", strerror(errno));
	if (getaddrinfo(NULL, o->verbs_serve, &hints, &ai))
		die("verbs: bad port %s", o->verbs_serve);
	if (rdma_bind_addr(listen_id, ai->ai_addr) || rdma_listen(listen_id, 4))
		die("verbs: listen on %s: %s", o->verbs_serve, strerror(errno));
	freeaddrinfo(ai);
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		struct rdma_cm_event *ev = verbs_event(ec, RDMA_CM_EVENT_CONNECT_REQUEST, -1);
		struct verbs_conn c = { .ec = ec, .id = ev->id };
		struct rdma_conn_param param;
		struct verbs_priv priv;

		rdma_ack_cm_event(ev);
		verbs_setup(&c, len, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ);
		/* The store's layout: page p, then its sum, at slot p. */
		for (unsigned p = 0; p < o->pages; p++) {
			uint8_t *slot = c.mem + (size_t)p * MS_SLOT_SIZE;

			for (unsigned i = 0; i < MS_PAGE_SIZE; i++)
				slot[i] = (uint8_t)((p + 1) * 131 + i * 7);
			put_le64(slot + MS_PAGE_SIZE, ms_page_sum(slot));
		}
		priv = (struct verbs_priv){ .magic = VERBS_MAGIC, .rkey = c.mr->rkey,
					    .addr = (uintptr_t)c.mem, .pages = o->pages };
		param = verbs_param(c.id->verbs);
		param.private_data = &priv;
		param.private_data_len = sizeof(priv);
		if (rdma_accept(c.id, &param))
			die("verbs: rdma_accept: %s", strerror(errno));
		rdma_ack_cm_event(verbs_event(ec, RDMA_CM_EVENT_ESTABLISHED, 30000));
		rdma_ack_cm_event(verbs_event(ec, RDMA_CM_EVENT_DISCONNECTED, -1));
		verbs_teardown(&c);
		rdma_destroy_id(c.id);
	}
}

enum verbs_kind { VK_READ1, VK_READ2, VK_SLOT, VK_SLOT_SUM, VK_COUNT };
static const char *const verbs_kind_name[VK_COUNT] = { "read1", "read2", "slot", "slot_sum" };

struct verbs_client {
	struct verbs_conn c;	/* c.mem: one local slot, page then sum */
	struct verbs_priv remote;
	uint8_t *out;		/* the caller's page, for slot_sum */
	uint64_t cursor;
};

/* One outstanding READ (chain) of kind k, waited for busy or by event;
 * returns nanoseconds from post to the completion (and the check). */
static uint64_t verbs_once(struct verbs_client *v, enum verbs_kind k, bool busy)
{
	uint64_t p = v->cursor++ % v->remote.pages, t0;
	uint64_t slot = v->remote.addr + p * MS_SLOT_SIZE;
	uint8_t *page = v->c.mem, *sumb = v->c.mem + MS_PAGE_SIZE;
	bool whole = k == VK_SLOT || k == VK_SLOT_SUM;
	struct ibv_sge sge[2] = {
		/* slot kinds: page and sum land contiguously, as in the
		 * client's bounce slot, so one SGE takes both */
		{ .addr = (uintptr_t)page, .length = whole ? MS_SLOT_SIZE : MS_PAGE_SIZE,
		  .lkey = v->c.mr->lkey },
		{ .addr = (uintptr_t)sumb, .length = 8, .lkey = v->c.mr->lkey },
	};
	struct ibv_send_wr wr[2], *bad;
	struct ibv_wc wc;
	struct ibv_cq *cq;
	void *ctx;
	int n;

	wr[0] = (struct ibv_send_wr){ .wr_id = 1, .sg_list = &sge[0], .num_sge = 1,
				      .opcode = IBV_WR_RDMA_READ };
	wr[0].wr.rdma.remote_addr = slot;
	wr[0].wr.rdma.rkey = v->remote.rkey;
	if (k == VK_READ2) {
		/* The former layout's pair: the sum is a READ of its own (its
		 * address is now right after the page, but it is still a
		 * second READ on the wire, which is what this measures). */
		wr[1] = (struct ibv_send_wr){ .wr_id = 2, .sg_list = &sge[1], .num_sge = 1,
					      .opcode = IBV_WR_RDMA_READ,
					      .send_flags = IBV_SEND_SIGNALED };
		wr[1].wr.rdma.remote_addr = slot + MS_PAGE_SIZE;
		wr[1].wr.rdma.rkey = v->remote.rkey;
		wr[0].next = &wr[1];
	} else {
		wr[0].send_flags = IBV_SEND_SIGNALED;
	}
	/* As ib_read_lat -e: the CQ is armed before the post. */
	if (!busy && ibv_req_notify_cq(v->c.cq, 0))
		die("verbs: ibv_req_notify_cq: %s", strerror(errno));
	t0 = now_ns();
	if (ibv_post_send(v->c.id->qp, wr, &bad))
		die("verbs: ibv_post_send: %s", strerror(errno));
	for (;;) {
		n = ibv_poll_cq(v->c.cq, 1, &wc);
		if (n < 0)
			die("verbs: ibv_poll_cq failed");
		if (n == 1)
			break;
		if (busy)
			continue;
		if (ibv_get_cq_event(v->c.ch, &cq, &ctx))
			die("verbs: ibv_get_cq_event: %s", strerror(errno));
		ibv_ack_cq_events(cq, 1);
	}
	if (wc.status != IBV_WC_SUCCESS)
		die("verbs: READ failed: %s", ibv_wc_status_str(wc.status));
	if (k == VK_SLOT_SUM) {
		if (ms_page_sum(page) != get_le64(sumb))
			die("verbs: page %llu: checksum mismatch", (unsigned long long)p);
		memcpy(v->out, page, MS_PAGE_SIZE);
	}
	return now_ns() - t0;
}

static json_t *run_verbs(struct options *o)
{
	struct addrinfo hints = { .ai_family = AF_INET }, *ai;
	struct verbs_client v = { 0 };
	struct bench_samples s[2][VK_COUNT] = { 0 };
	struct rdma_cm_event *ev;
	struct rdma_conn_param param;
	struct ibv_qp_attr qa;
	struct ibv_qp_init_attr qi;
	char host[256], *colon;
	unsigned rounds = 10, per = (o->lat ? o->lat : 1000) / 10;
	json_t *j = json_object();

	snprintf(host, sizeof(host), "%s", o->verbs);
	colon = strrchr(host, ':');
	if (!colon)
		die("--verbs wants HOST:PORT");
	*colon = 0;
	if (getaddrinfo(host, colon + 1, &hints, &ai))
		die("verbs: cannot resolve %s", o->verbs);
	v.c.ec = rdma_create_event_channel();
	if (!v.c.ec || rdma_create_id(v.c.ec, &v.c.id, NULL, RDMA_PS_TCP))
		die("verbs: rdma_create_id: %s", strerror(errno));
	if (rdma_resolve_addr(v.c.id, NULL, ai->ai_addr, 10000))
		die("verbs: rdma_resolve_addr: %s", strerror(errno));
	freeaddrinfo(ai);
	rdma_ack_cm_event(verbs_event(v.c.ec, RDMA_CM_EVENT_ADDR_RESOLVED, 10000));
	if (rdma_resolve_route(v.c.id, 10000))
		die("verbs: rdma_resolve_route: %s", strerror(errno));
	rdma_ack_cm_event(verbs_event(v.c.ec, RDMA_CM_EVENT_ROUTE_RESOLVED, 10000));
	verbs_setup(&v.c, MS_SLOT_SIZE, IBV_ACCESS_LOCAL_WRITE);
	param = verbs_param(v.c.id->verbs);
	if (rdma_connect(v.c.id, &param))
		die("verbs: rdma_connect: %s", strerror(errno));
	ev = verbs_event(v.c.ec, RDMA_CM_EVENT_ESTABLISHED, 30000);
	if (ev->param.conn.private_data_len < sizeof(v.remote))
		die("verbs: no private data from the server");
	memcpy(&v.remote, ev->param.conn.private_data, sizeof(v.remote));
	rdma_ack_cm_event(ev);
	if (v.remote.magic != VERBS_MAGIC || !v.remote.pages)
		die("verbs: the server is not a bench-rdma --verbs-serve");
	/* READs in flight the QP allows: 1 would serialize the READ pair. */
	if (ibv_query_qp(v.c.id->qp, &qa, IBV_QP_MAX_QP_RD_ATOMIC, &qi))
		die("verbs: ibv_query_qp: %s", strerror(errno));
	json_object_set_new(j, "max_rd_atomic", json_integer(qa.max_rd_atomic));
	v.out = aligned_alloc(4096, MS_PAGE_SIZE);
	if (!v.out)
		die("out of memory");
	for (unsigned i = 0; i < o->warmup; i++)
		for (unsigned k = 0; k < VK_COUNT; k++)
			for (unsigned b = 0; b < 2; b++)
				verbs_once(&v, k, b == 0);
	for (unsigned r = 0; r < rounds; r++)
		for (unsigned x = 0; x < 2 * VK_COUNT; x++) {
			/* busy read1, read2, ..., event read1, ...; reversed
			 * every other round */
			unsigned y = r % 2 ? 2 * VK_COUNT - 1 - x : x, b = y / VK_COUNT;
			enum verbs_kind k = y % VK_COUNT;

			for (unsigned i = 0; i < per; i++)
				bench_samples_add(&s[b][k], verbs_once(&v, k, b == 0));
		}
	for (unsigned b = 0; b < 2; b++) {
		json_t *w = json_object();

		for (unsigned k = 0; k < VK_COUNT; k++) {
			json_t *x = bench_samples_json(&s[b][k]);

			double min = bench_quantile_us(&s[b][k], 0);

			json_object_set_new(x, "min_us", json_real(bench_round3(min)));
			json_object_set_new(w, verbs_kind_name[k], x);
			bench_samples_free(&s[b][k]);
		}
		json_object_set_new(j, b == 0 ? "busy" : "event", w);
	}
	rdma_disconnect(v.c.id);
	verbs_teardown(&v.c);
	rdma_destroy_id(v.c.id);
	rdma_destroy_event_channel(v.c.ec);
	free(v.out);
	return json_pack("{s:o}", "verbs", j);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "busy", no_argument, NULL, 'b' },
		{ "lat", required_argument, NULL, 'l' },
		{ "tput", required_argument, NULL, 't' },
		{ "depth", required_argument, NULL, 'd' },
		{ "pages", required_argument, NULL, 'p' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "samples", required_argument, NULL, 's' },
		{ "local", no_argument, NULL, 'L' },
		{ "verbs", required_argument, NULL, 'V' },
		{ "verbs-serve", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct options o = { .warmup = 200, .depth = DEFAULT_DEPTH, .pages = DEFAULT_PAGES };
	struct bench b = { .o = &o };
	json_t *out;
	int opt, ret;

	log_init("bench-rdma", LOG_WARN);
	while ((opt = getopt_long(argc, argv, "u:bl:t:d:p:w:s:LV:S:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'u': o.url = optarg; break;
		case 'b': o.busy = true; break;
		case 'l': o.lat = parse_uint(optarg, "--lat"); break;
		case 't': o.tput_ms = parse_uint(optarg, "--tput"); break;
		case 'd': o.depth = parse_uint(optarg, "--depth"); break;
		case 'p': o.pages = parse_uint(optarg, "--pages"); break;
		case 'w': o.warmup = parse_uint(optarg, "--warmup"); break;
		case 's': o.samples = optarg; break;
		case 'L': o.local = true; break;
		case 'V': o.verbs = optarg; break;
		case 'S': o.verbs_serve = optarg; break;
		case 'h': usage(0); break;
		default: usage(1);
		}
	}
	if (optind != argc || !!o.url + o.local + !!o.verbs + !!o.verbs_serve != 1)
		usage(1);
	if (o.verbs_serve)
		verbs_serve(&o); /* never returns */
	if (o.local || o.verbs) {
		out = o.local ? run_local(&o) : run_verbs(&o);
		goto print;
	}
	if (!o.depth || o.depth > MAX_DEPTH || o.pages < o.depth)
		die("--depth must be 1..%u and at most --pages", MAX_DEPTH);
	b.buf = aligned_alloc(4096, (size_t)MAX_DEPTH * MS_PAGE_SIZE);
	if (!b.buf)
		die("out of memory");
	ret = ms_client_connect(o.url, NULL, 30000, &b.c);
	if (ret)
		die("%s: connect: %s", o.url, strerror(-ret));
	out = json_pack("{s:s,s:s}", "url", o.url, "wait", o.busy ? "busy" : "default");
	if (o.busy) {
		ret = ms_client_set_busy_poll(b.c, true);
		if (ret) {
			json_object_set_new(out, "busy_poll", json_string("unavailable"));
			json_object_set_new(out, "error", json_string(strerror(-ret)));
			ms_client_close(b.c);
			goto print;
		}
	}
	setup(&b);
	if (o.lat)
		json_object_set_new(out, "latency", run_latency(&b));
	if (o.tput_ms)
		json_object_set_new(out, "throughput", run_tput(&b));
	ret = ms_client_delete(b.c, b.region, b.token);
	if (ret)
		die("REGION_DELETE: %s", strerror(-ret));
	ms_client_close(b.c);
	free(b.buf);
print:
	if (json_dumpf(out, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) ||
	    puts("") == EOF)
		die("cannot print the result");
	json_decref(out);
	return 0;
}

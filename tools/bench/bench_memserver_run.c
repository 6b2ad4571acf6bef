/*
 * bench-memserver, parts 1 and 2 (see bench_memserver.c): the thread placement
 * every comparison runs with, the timed operations on both sides (a raw
 * request/response on the raw server, a memserver READ, WRITE or PING), and
 * the interleaved rounds of the latency and throughput measurements.
 */
#include "tools/bench/bench_memserver.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "memserver/client.h"

/* ------------------------------------------------------------------ */
/* Thread placement. With two CPUs a round trip costs ~12 us when client
 * and server thread share a CPU (the wake-up is a direct switch) and ~50 us
 * when they do not (an IPI to an idle vCPU); left alone, the scheduler
 * flips between the two every few hundred milliseconds, which swamps every
 * other difference. So each comparison runs with a fixed placement, applied
 * to both sides alike: the client is this (main) thread, the servers are
 * every other thread of the process.                                   */

const char *const placement_name[PL_COUNT] = { "cross_cpu", "same_cpu", "unpinned" };
const char *const placement_text[PL_COUNT] = {
	"client and server threads pinned to different CPUs",
	"client and server threads pinned to the same CPU",
	"threads left to the scheduler",
};

static cpu_set_t all_cpus;
static int cpu_client = -1, cpu_server = -1;

void placement_init(void)
{
	if (sched_getaffinity(0, sizeof(all_cpus), &all_cpus))
		die("sched_getaffinity: %s", strerror(errno));
	for (int i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &all_cpus))
			continue;
		if (cpu_client < 0)
			cpu_client = i;
		else if (cpu_server < 0)
			cpu_server = i;
	}
}

bool placement_possible(enum placement p)
{
	return p != PL_CROSS || cpu_server >= 0;
}

/* The placement the headline figures use: one CPU per side, as between two
 * machines, when there are two CPUs. */
enum placement headline_placement(void)
{
	return placement_possible(PL_CROSS) ? PL_CROSS : PL_SAME;
}

void place(enum placement p)
{
	cpu_set_t client = all_cpus, server = all_cpus;
	pid_t self = gettid();
	struct dirent *e;
	DIR *d;

	if (p != PL_FREE) {
		CPU_ZERO(&client);
		CPU_SET(cpu_client, &client);
		CPU_ZERO(&server);
		CPU_SET(p == PL_CROSS ? cpu_server : cpu_client, &server);
	}
	d = opendir("/proc/self/task");
	if (!d)
		die("/proc/self/task: %s", strerror(errno));
	while ((e = readdir(d))) {
		pid_t tid = (pid_t)atoi(e->d_name);

		if (tid <= 0)
			continue;
		if (sched_setaffinity(tid, sizeof(cpu_set_t), tid == self ? &client : &server) &&
		    errno != ESRCH)
			die("sched_setaffinity: %s", strerror(errno));
	}
	closedir(d);
}

/* ------------------------------------------------------------------ */
/* The measured operations                                              */

static uint64_t next_page(struct ctx *c)
{
	return c->cursor++ % BENCH_PAGES;
}

/* One raw request/response; returns the round trip in ns. */
static uint64_t raw_once(struct ctx *c, int fd, uint32_t req_len, uint32_t resp_len)
{
	uint64_t t0 = now_ns();

	if (write_full(fd, c->raw_req, req_len) || read_full(fd, c->raw_rx, resp_len))
		die("raw ping-pong failed");
	return now_ns() - t0;
}

static uint64_t ms_read_once(struct ctx *c)
{
	uint64_t page = next_page(c), t0 = now_ns();
	int ret = ms_client_read(c->cl, c->region, c->epoch, &page, 1, c->pages, NULL);

	if (ret)
		die("READ failed: %s", strerror(-ret));
	return now_ns() - t0;
}

static uint64_t ms_ping_once(struct ctx *c)
{
	uint64_t t0 = now_ns();
	int ret = ms_client_ping(c->cl, 0);

	if (ret)
		die("PING failed: %s", strerror(-ret));
	return now_ns() - t0;
}

/* Pipelined raw requests at depth for dur_ns; returns responses, *ns the
 * time until the last one arrived. */
static uint64_t raw_tput(struct ctx *c, int fd, unsigned depth, uint32_t req_len,
			 uint32_t resp_len, uint64_t dur_ns, uint64_t *ns)
{
	uint64_t t0 = now_ns(), end = t0 + dur_ns, done = 0;
	unsigned inflight = 0;
	size_t partial = 0;
	bool stop = false;

	for (;;) {
		ssize_t n;
		size_t k;

		if (!stop && now_ns() >= end)
			stop = true;
		if (!stop && inflight < depth) {
			if (write_full(fd, c->raw_req, (size_t)(depth - inflight) * req_len))
				die("raw send failed");
			inflight = depth;
		}
		if (!inflight)
			break;
		n = recv(fd, c->raw_rx, RAW_RX, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("raw receive failed");
		partial += (size_t)n;
		k = partial / resp_len;
		partial %= resp_len;
		inflight -= (unsigned)k;
		done += k;
	}
	*ns = now_ns() - t0;
	return done;
}

/* The same with memserver READs or WRITEs of one page each. */
static uint64_t ms_tput(struct ctx *c, uint8_t op, unsigned depth, uint64_t dur_ns, uint64_t *ns)
{
	struct ms_io ios[MAX_DEPTH], *done[MAX_DEPTH];
	uint64_t pg[MAX_DEPTH], t0 = now_ns(), end = t0 + dur_ns, count = 0;
	unsigned inflight = 0;
	int ret;

	for (unsigned i = 0; i < depth; i++) {
		pg[i] = next_page(c);
		ios[i] = (struct ms_io){ .op = op, .npages = 1, .region = c->region,
					 .epoch = c->epoch, .pages = &pg[i],
					 .buf = c->pages + (size_t)i * MS_PAGE_SIZE };
		ret = ms_client_submit(c->cl, &ios[i]);
		if (ret)
			die("submit failed: %s", strerror(-ret));
		inflight++;
	}
	while (inflight) {
		int n = ms_client_poll(c->cl, done, depth, -1);
		bool more = now_ns() < end;

		if (n < 0)
			die("poll failed: %s", strerror(-n));
		for (int i = 0; i < n; i++) {
			struct ms_io *io = done[i];

			if (io->result)
				die("%s failed: %s", ms_op_name(op), strerror(-io->result));
			count++;
			inflight--;
			if (!more)
				continue;
			pg[io - ios] = next_page(c);
			ret = ms_client_submit(c->cl, io);
			if (ret)
				die("submit failed: %s", strerror(-ret));
			inflight++;
		}
	}
	*ns = now_ns() - t0;
	return count;
}

/* ------------------------------------------------------------------ */
/* Part 1: latency                                                      */

const char *const lat_mode_name[LAT_MODES] = { "raw_tcp_4k", "memserver_read",
						      "raw_tcp_small", "memserver_ping" };

static uint64_t lat_once(struct ctx *c, int fds[2], enum lat_mode m)
{
	switch (m) {
	case LAT_RAW_READ:
		return raw_once(c, fds[0], READ_REQ_LEN, READ_RESP_LEN);
	case LAT_MS_READ:
		return ms_read_once(c);
	case LAT_RAW_PING:
		return raw_once(c, fds[1], PING_REQ_LEN, PING_RESP_LEN);
	default:
		return ms_ping_once(c);
	}
}

void run_latency(struct ctx *c, struct lat_result *lr, enum placement pl)
{
	/* Pairs that are compared run back to back, order alternating. */
	static const enum lat_mode order[2][LAT_MODES] = {
		{ LAT_RAW_READ, LAT_MS_READ, LAT_RAW_PING, LAT_MS_PING },
		{ LAT_MS_READ, LAT_RAW_READ, LAT_MS_PING, LAT_RAW_PING },
	};
	int fds[2] = { raw_connect(&c->raw, READ_REQ_LEN, READ_RESP_LEN),
		       raw_connect(&c->raw, PING_REQ_LEN, PING_RESP_LEN) };
	unsigned warm = c->o->quick ? 20 : 500;

	/* The first warm-up also makes sure the raw server threads exist. */
	for (unsigned m = 0; m < LAT_MODES; m++)
		for (unsigned i = 0; i < warm; i++)
			lat_once(c, fds, m);
	place(pl);
	for (unsigned m = 0; m < LAT_MODES; m++)
		for (unsigned i = 0; i < warm; i++)
			lat_once(c, fds, m);
	for (unsigned r = 0; r < c->o->rounds; r++) {
		for (unsigned k = 0; k < LAT_MODES; k++) {
			enum lat_mode m = order[r % 2][k];
			struct bench_samples round = { 0 };

			for (unsigned i = 0; i < c->o->lat_iters; i++) {
				uint64_t ns = lat_once(c, fds, m);

				bench_samples_add(&round, ns);
				bench_samples_add(&lr->all[m], ns);
			}
			bench_samples_sort(&round);
			lr->round_p50[m][r] = bench_quantile_us(&round, 0.50);
			lr->round_p99[m][r] = bench_quantile_us(&round, 0.99);
			free(round.v);
		}
	}
	for (unsigned m = 0; m < LAT_MODES; m++)
		bench_samples_sort(&lr->all[m]);
	close(fds[0]);
	close(fds[1]);
}

/* ------------------------------------------------------------------ */
/* Part 2: throughput                                                   */

void run_tput(struct ctx *c, struct tput_case *tc)
{
	int fd = raw_connect(&c->raw, tc->req_len, tc->resp_len);
	uint64_t dur = (uint64_t)c->o->tput_ms * 1000000, ns, n;

	/* Warm-up: a short phase of each (the first creates the raw server
	 * thread, which is then placed). */
	raw_tput(c, fd, tc->depth, tc->req_len, tc->resp_len, dur / 8, &ns);
	place(headline_placement());
	raw_tput(c, fd, tc->depth, tc->req_len, tc->resp_len, dur / 8, &ns);
	ms_tput(c, tc->op, tc->depth, dur / 4, &ns);
	for (unsigned r = 0; r < c->o->rounds; r++) {
		for (unsigned k = 0; k < 2; k++) {
			bool raw = (k == 0) == (r % 2 == 0);

			if (raw) {
				n = raw_tput(c, fd, tc->depth, tc->req_len, tc->resp_len, dur,
					     &ns);
				tc->raw_pages += n;
				tc->raw_ns += ns;
				tc->raw_pps[r] = (double)n * 1e9 / (double)ns;
			} else {
				n = ms_tput(c, tc->op, tc->depth, dur, &ns);
				tc->ms_pages += n;
				tc->ms_ns += ns;
				tc->ms_pps[r] = (double)n * 1e9 / (double)ns;
			}
		}
	}
	close(fd);
}

/*
 * bench-ept (faults): how long a thread waits on a fault of the virtual cache,
 * judged against floors measured in the same run:
 *
 *   transport   one 4 KiB READ round trip to the memory server (the client
 *               library, one page, one outstanding)
 *   local       a fault the same handler serves without the network: a page
 *               never written, installed as a zero page
 *   remote      a fault that fetches the page from the memory server
 *   wb hit      a fault on a page whose write-back is still in flight, served
 *               from the write-back buffer
 *
 * Goal: remote p50 <= 1.3 x (local p50 + transport p50). Each sample is one
 * access timed by the touching thread, in random page order with prefetch off.
 * Two placements alternate by round: every hop across CPUs (touching thread
 * and memory server on CPU 0, the handler and the round-trip client on CPU 1),
 * the headline; and every thread on CPU 0. Rounds alternate the measurements.
 *
 * Writes DIR/ept.json plus DIR/ept-faults.dat for tools/bench/ept-faults.gp.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "ept/ept.h"
#include "memserver/client.h"
#include "memserver/server.h"
#include "tools/bench/benchutil.h"

#define GOAL 1.3
#define PAGES 4096u		/* pages per measurement round (16 MiB) */

enum kind { K_RTT, K_LOCAL, K_REMOTE, K_WB, K_COUNT };
static const char *const kind_name[K_COUNT] = { "transport_rtt", "local_fault",
						"remote_fetch", "wb_buffer_hit" };

struct bench {
	struct ms_server *srv;
	const char *url;
	struct ms_client *client;	/* for the transport round trips */
	uint64_t rtt_region, rtt_epoch;
	struct bench_samples all[2][K_COUNT]; /* per placement */
	struct bench_samples *s;	/* the current placement's */
	unsigned rounds, per_round;
	int cpu_a, cpu_b;		/* current placement */
	int ncpus;
};

enum { PL_CROSS, PL_ONE };
static const char *const placement_name[2] = { "cross_cpu", "one_cpu" };

/* Pins the thread named comm (all of them) to cpu. */
static void pin_named(const char *comm, int cpu)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;

	if (!d || cpu < 0) {
		if (d)
			closedir(d);
		return;
	}
	while ((de = readdir(d))) {
		char path[300], name[64] = "";
		FILE *f;
		cpu_set_t set;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f))
			name[strcspn(name, "\n")] = '\0';
		fclose(f);
		if (strcmp(name, comm))
			continue;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		sched_setaffinity(atoi(de->d_name), sizeof(set), &set);
	}
	closedir(d);
}

static void pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void shuffle(uint64_t *v, unsigned n)
{
	for (unsigned i = n - 1; i > 0; i--) {
		unsigned j = (unsigned)(rnd() % (i + 1));
		uint64_t t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
}

static uint64_t touch(volatile uint8_t *p)
{
	uint64_t t0 = now_ns();

	(void)*p;
	return now_ns() - t0;
}

struct cache {
	struct ept *e;
	uint8_t *base;
	uint64_t region;
	uint8_t token[MS_TOKEN_LEN];
};

static void die_errno(const char *what, int err)
{
	die("%s: %s", what, strerror(-err));
}

static void cache_open(struct bench *b, struct cache *c, uint64_t pages, uint64_t cache_pages,
		       unsigned delay_us)
{
	struct ept_extent ext = { .first_page = 0, .npages = pages, .nreplicas = 1 };
	struct ept_config cfg = {
		.mem_size = pages * EPT_PAGE_SIZE,
		.cache_size = cache_pages * EPT_PAGE_SIZE,
		.extents = &ext,
		.nextents = 1,
		.policy = "clock",
		.prefetch = false,
		.test_delay_us = delay_us,
	};
	int ret;

	c->region = rnd() | 1;
	ret = ms_client_create(b->client, c->region, pages * EPT_PAGE_SIZE, c->token);
	if (ret)
		die_errno("create region", ret);
	ext.replicas[0].url = b->url;
	ext.replicas[0].region = c->region;
	memcpy(ext.replicas[0].token, c->token, MS_TOKEN_LEN);
	ret = ept_create(&cfg, &c->e);
	if (!ret)
		ret = ept_start(c->e);
	if (ret)
		die_errno("ept_create", ret);
	c->base = ept_base(c->e);
	pin_named("ept-handler", b->cpu_b);
}

static void cache_close(struct bench *b, struct cache *c)
{
	ept_stop(c->e);
	ept_destroy(c->e);
	ms_client_delete(b->client, c->region, c->token);
}

/* Zero-fill faults on fresh pages, then remote faults on the same pages once
 * written and dropped. */
static void round_local_remote(struct bench *b, unsigned n)
{
	uint64_t *order = malloc(n * sizeof(*order));
	struct cache c;
	int ret;

	cache_open(b, &c, n, n, 0);
	for (unsigned i = 0; i < n; i++)
		order[i] = i;
	shuffle(order, n);
	for (unsigned i = 0; i < n; i++)
		bench_samples_add(&b->s[K_LOCAL], touch(c.base + order[i] * EPT_PAGE_SIZE));
	for (unsigned i = 0; i < n; i++)
		memset(c.base + i * EPT_PAGE_SIZE, (int)(i | 1), EPT_PAGE_SIZE);
	ret = ept_drop(c.e);
	if (ret)
		die_errno("ept_drop", ret);
	shuffle(order, n);
	for (unsigned i = 0; i < n; i++)
		bench_samples_add(&b->s[K_REMOTE], touch(c.base + order[i] * EPT_PAGE_SIZE));
	cache_close(b, &c);
	free(order);
}

/*
 * Write-back buffer hits: with write-back completions held back (test hook),
 * dirty a page, push it out by touching a cache's worth of fresh pages, and
 * touch it again while its write-back is in flight.
 */
static void round_wb(struct bench *b, unsigned n)
{
	const uint64_t cache_pages = 64;
	uint64_t pages = (n + 1) * (cache_pages + 1), next = 0;
	struct cache c;

	cache_open(b, &c, pages, cache_pages, 200000);
	for (unsigned i = 0; i < n; i++) {
		uint64_t victim = next++;
		struct ept_stats before, after;
		uint64_t t;

		c.base[victim * EPT_PAGE_SIZE] = 1;
		for (uint64_t k = 0; k < cache_pages; k++)
			(void)*(volatile uint8_t *)(c.base + next++ * EPT_PAGE_SIZE);
		ept_get_stats(c.e, &before);
		t = touch(c.base + victim * EPT_PAGE_SIZE);
		ept_get_stats(c.e, &after);
		if (after.faults_wb_hit == before.faults_wb_hit + 1)
			bench_samples_add(&b->s[K_WB], t);
	}
	cache_close(b, &c);
}

static void *rtt_main(void *arg)
{
	struct bench *b = arg;
	uint8_t page[EPT_PAGE_SIZE];

	pin_self(b->cpu_b);
	for (unsigned i = 0; i < b->per_round; i++) {
		uint64_t p = rnd() % 256, t0 = now_ns();
		int ret = ms_client_read(b->client, b->rtt_region, b->rtt_epoch, &p, 1, page, NULL);

		if (ret)
			die_errno("read", ret);
		bench_samples_add(&b->s[K_RTT], now_ns() - t0);
	}
	return NULL;
}

static void round_rtt(struct bench *b)
{
	pthread_t t;

	pthread_create(&t, NULL, rtt_main, b);
	pthread_join(t, NULL);
}

static void setup(struct bench *b)
{
	struct ms_server_config cfg = { .listen = "tcp://127.0.0.1:0", .capacity = 8ull << 30,
					.threads = 1 };
	uint8_t token[MS_TOKEN_LEN], page[EPT_PAGE_SIZE];
	int ret;

	ret = ms_server_create(&cfg, &b->srv);
	if (!ret)
		ret = ms_server_start(b->srv);
	if (ret)
		die_errno("memory server", ret);
	b->url = ms_server_url(b->srv);
	ret = ms_client_connect(b->url, NULL, 10000, &b->client);
	if (ret)
		die_errno("connect", ret);
	b->rtt_region = 42;
	ret = ms_client_create(b->client, b->rtt_region, 256 * EPT_PAGE_SIZE, token);
	if (!ret)
		ret = ms_client_open(b->client, b->rtt_region, token, &b->rtt_epoch, NULL);
	memset(page, 7, sizeof(page));
	for (uint64_t p = 0; p < 256 && !ret; p++)
		ret = ms_client_write(b->client, b->rtt_region, b->rtt_epoch, &p, 1, page);
	if (ret)
		die_errno("rtt region", ret);
	b->ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
}

/* Every hop crosses CPUs (cross_cpu) or everything shares CPU 0 (one_cpu). */
static void place(struct bench *b, int pl)
{
	b->cpu_a = 0;
	b->cpu_b = pl == PL_CROSS && b->ncpus >= 2 ? 1 : 0;
	b->s = b->all[pl];
	pin_named("ms-worker", b->cpu_a);
	pin_self(b->cpu_a);
}

static void placement_json(struct bench *b, int pl, json_t *res, json_t *ratios, double *ratio)
{
	struct bench_samples *s = b->all[pl];
	const char *name = placement_name[pl];
	json_t *r = json_object();
	char key[128];
	double p50[K_COUNT];

	for (unsigned k = 0; k < K_COUNT; k++) {
		p50[k] = bench_quantile_us(&s[k], 0.5);
		json_object_set_new(r, kind_name[k], bench_samples_json(&s[k]));
	}
	json_object_set_new(res, name, r);
	*ratio = p50[K_REMOTE] / (p50[K_LOCAL] + p50[K_RTT]);
	snprintf(key, sizeof(key), "%sremote_fetch_p50_ratio", pl == PL_CROSS ? "" : "one_cpu_");
	json_object_set_new(ratios, key,
			    bench_ratio_json(*ratio, "<= 1.3", *ratio <= GOAL,
					     pl == PL_CROSS
						     ? "remote-fetch fault p50 / (local fault p50 + "
						       "transport round trip p50), every hop across CPUs"
						     : "the same with every thread on one CPU"));
	snprintf(key, sizeof(key), "%swb_hit_vs_local_ratio", pl == PL_CROSS ? "" : "one_cpu_");
	json_object_set_new(ratios, key,
			    bench_ratio_json(p50[K_WB] / p50[K_LOCAL], NULL, -1,
					     "write-back-buffer hit p50 / local fault p50"));
}

static json_t *result_json(struct bench *b, double *ratio)
{
	json_t *res = json_object(), *ratios = json_object();
	double one;

	placement_json(b, PL_CROSS, res, ratios, ratio);
	placement_json(b, PL_ONE, res, ratios, &one);
	return json_pack("{s:s,s:s,s:s,s:o,s:{s:i,s:i},s:o,s:o,s:[{s:s,s:s,s:s}]}",
			 "benchmark", "ept", "title", "Virtual cache: fault service time",
			 "description",
			 "Time a thread waits on a fault, against the floors of the same run",
			 "machine", bench_machine_json(), "config", "rounds", b->rounds,
			 "pages_per_round", b->per_round, "ratios", ratios, "results", res,
			 "plots", "file", "ept-faults.png", "title",
			 "Fault service time by kind", "script", "tools/bench/ept-faults.gp");
}

static void write_dat(struct bench *b, const char *dir)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/ept-faults.dat", dir);
	f = fopen(path, "w");
	if (!f)
		die("cannot write %s: %s", path, strerror(errno));
	fprintf(f, "# kind p10 p50 p90 p99 (us), every hop across CPUs\n");
	for (unsigned k = 0; k < K_COUNT; k++) {
		struct bench_samples *s = &b->all[PL_CROSS][k];

		fprintf(f, "%s %.2f %.2f %.2f %.2f\n", kind_name[k], bench_quantile_us(s, 0.1),
			bench_quantile_us(s, 0.5), bench_quantile_us(s, 0.9),
			bench_quantile_us(s, 0.99));
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	struct bench b = { .rounds = 6, .per_round = 1000 };
	const char *dir = "docs/bench";
	double ratio;
	json_t *out;
	int c;

	log_init("bench-ept", LOG_WARN);
	while ((c = getopt(argc, argv, "o:q")) != -1) {
		if (c == 'o')
			dir = optarg;
		else if (c == 'q')
			b.rounds = 1, b.per_round = 200;
		else
			die("usage: bench-ept [-o DIR] [-q]");
	}
	setup(&b);
	for (unsigned r = 0; r < 2 * b.rounds; r++) {
		place(&b, r % 2 ? PL_ONE : PL_CROSS);
		round_rtt(&b);
		round_local_remote(&b, b.per_round);
		if (r % 4 < 2)
			round_wb(&b, b.per_round / 10);
	}
	out = result_json(&b, &ratio);
	bench_write_json(out, dir, "ept.json");
	write_dat(&b, dir);
	for (int pl = 0; pl < 2; pl++) {
		struct bench_samples *s = b.all[pl];

		printf("%-9s p50 us: transport %6.1f  local fault %6.1f  remote fetch %6.1f  "
		       "wb hit %6.1f\n", placement_name[pl], bench_quantile_us(&s[K_RTT], 0.5),
		       bench_quantile_us(&s[K_LOCAL], 0.5), bench_quantile_us(&s[K_REMOTE], 0.5),
		       bench_quantile_us(&s[K_WB], 0.5));
	}
	printf("remote / (local + transport), across CPUs = %.2f (goal <= %.1f)\n", ratio, GOAL);
	json_decref(out);
	ms_client_close(b.client);
	ms_server_destroy(b.srv);
	for (int pl = 0; pl < 2; pl++)
		for (unsigned k = 0; k < K_COUNT; k++)
			bench_samples_free(&b.all[pl][k]);
	return 0;
}

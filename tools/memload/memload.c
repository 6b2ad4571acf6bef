/*
 * memload: drives the virtual cache (ept) natively, without a VM, and checks
 * that it never loses or corrupts a byte. See tools/memload/README.md.
 *
 * Life of a run: create one region per extent replica on the memory servers
 * (random ids, so concurrent runs never collide) -> ept_create/ept_start ->
 * build the pattern's state -> N worker threads run the workload on the region
 * -> statistics -> with --verify: re-read every page through the cache,
 * ept_flush, then (after ept_stop and ept_destroy have closed the engine's
 * connections, since opening a region fences its holder) read every page
 * straight from every replica and compare it with the shadow -> delete the
 * regions. --local runs the same workload on plain anonymous memory.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/util.h"
#include "ept/ept.h"
#include "memserver/client.h"
#include "tools/memload/memload.h"

#define CONNECT_TIMEOUT_MS 10000
/* The server check reads every page up to this many, else the written ones. */
#define SERVER_CHECK_ALL_PAGES (1ull << 22)
#define SERVER_CHECK_CHUNK 256u

static const char usage[] =
	"usage: memload (--memserver tcp://H:P ... | --local) --mem SIZE --cache SIZE [options]\n"
	"\n"
	"Runs a memory workload on the virtual cache (ept) backed by memory servers,\n"
	"or on plain local memory (--local), and reports throughput and cache stats.\n"
	"\n"
	"  -s, --memserver URL     a memory server (repeat for several; the region is\n"
	"                          split into one contiguous extent per server)\n"
	"  -m, --mem SIZE          region size (K/M/G suffixes), multiple of 4 KiB\n"
	"  -c, --cache SIZE        local cache size (at least 256K)\n"
	"  -t, --threads N         worker threads (default 1)\n"
	"  -p, --pattern P         seq | uniform (default) | zipf[:THETA] (default 0.99) |\n"
	"                          graph | trace:FILE\n"
	"  -n, --ops N             accesses in total over all threads (default 1000000;\n"
	"                          trace: its length; graph: edge visits, default 3 iterations)\n"
	"  -w, --write-ratio R     fraction of accesses that write a whole page (default 0)\n"
	"      --zero-ratio R      fraction of those writes that store an all-zero page\n"
	"  -P, --policy NAME       replacement policy (default: the engine's)\n"
	"      --prefetch on|off   stream prefetch (default on)\n"
	"  -v, --verify            check every read page, then the whole region through the\n"
	"                          cache and straight from the servers; exit 1 on a mismatch\n"
	"  -l, --local             plain anonymous memory (MADV_NOHUGEPAGE): the baseline\n"
	"  -j, --json              one JSON object on stdout\n"
	"  -k, --key-file F        cluster key for the memory servers\n"
	"  -r, --replicas R        copies of each extent on distinct servers (default 1)\n"
	"  -S, --seed S            workload seed (default 1)\n"
	"      --test-delay-us N   engine test hook: delay each completion by 0..N us\n"
	"      --timeout SEC       give up (exit 2, progress on stderr) after SEC seconds\n"
	"  -h, --help              this text\n"
	"\n"
	"example: memload --memserver tcp://127.0.0.1:7000 --mem 64M --cache 8M --threads 4 \\\n"
	"             --pattern uniform --write-ratio 0.5 --verify --ops 200000\n";

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("memload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see memload --help)\n", stderr);
	exit(2);
}

static double parse_ratio(const char *opt, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.0 && v <= 1.0))
		usage_error("invalid %s '%s' (expected a number from 0 to 1)", opt, s);
	return v;
}

static uint64_t parse_count(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	uint64_t v;

	if (parse_u64(s, &v) || v < min || v > max)
		usage_error("invalid %s '%s' (expected an integer from %" PRIu64 " to %" PRIu64 ")",
			    opt, s, min, max);
	return v;
}

static void parse_pattern(struct ml_opts *o, const char *s)
{
	o->pattern_text = s;
	if (strcmp(s, "seq") == 0) {
		o->pattern = PAT_SEQ;
	} else if (strcmp(s, "uniform") == 0) {
		o->pattern = PAT_UNIFORM;
	} else if (strcmp(s, "graph") == 0) {
		o->pattern = PAT_GRAPH;
	} else if (strncmp(s, "zipf", 4) == 0 && (s[4] == '\0' || s[4] == ':')) {
		o->pattern = PAT_ZIPF;
		o->theta = 0.99;
		if (s[4] == ':') {
			char *end;

			errno = 0;
			o->theta = strtod(s + 5, &end);
			if (errno || end == s + 5 || *end || !(o->theta > 0.0 && o->theta <= 10.0))
				usage_error("invalid zipf exponent in '%s' (expected 0 < THETA <= 10)", s);
		}
	} else if (strncmp(s, "trace:", 6) == 0 && s[6]) {
		o->pattern = PAT_TRACE;
		o->trace_file = s + 6;
	} else {
		usage_error("unknown pattern '%s' (seq, uniform, zipf[:THETA], graph, trace:FILE)", s);
	}
}

static void parse_args(int argc, char **argv, struct ml_opts *o)
{
	enum { OPT_PREFETCH = 256, OPT_TEST_DELAY, OPT_ZERO_RATIO, OPT_TIMEOUT };
	static const struct option longopts[] = {
		{ "memserver", required_argument, NULL, 's' },
		{ "mem", required_argument, NULL, 'm' },
		{ "cache", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "ops", required_argument, NULL, 'n' },
		{ "write-ratio", required_argument, NULL, 'w' },
		{ "zero-ratio", required_argument, NULL, OPT_ZERO_RATIO },
		{ "policy", required_argument, NULL, 'P' },
		{ "prefetch", required_argument, NULL, OPT_PREFETCH },
		{ "verify", no_argument, NULL, 'v' },
		{ "local", no_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "replicas", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 'S' },
		{ "test-delay-us", required_argument, NULL, OPT_TEST_DELAY },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool have_mem = false, have_cache = false;
	int c;

	*o = (struct ml_opts){ .threads = 1, .pattern = PAT_UNIFORM, .pattern_text = "uniform",
			       .prefetch = true, .replicas = 1, .seed = 1 };
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:m:c:t:p:n:w:P:vljk:r:S:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (o->nservers == ARRAY_SIZE(o->servers))
				usage_error("too many --memserver (at most %zu)", ARRAY_SIZE(o->servers));
			if (strncmp(optarg, "tcp://", 6) && strncmp(optarg, "rdma://", 7))
				usage_error("invalid --memserver '%s' (expected tcp://HOST:PORT)", optarg);
			for (unsigned i = 0; i < o->nservers; i++)
				if (strcmp(o->servers[i], optarg) == 0)
					usage_error("--memserver '%s' given twice", optarg);
			o->servers[o->nservers++] = optarg;
			break;
		case 'm':
			if (parse_size(optarg, &o->mem) || o->mem == 0 || o->mem % ML_PAGE)
				usage_error("invalid --mem '%s' (expected a non-zero multiple of 4K, "
					    "e.g. 64M)", optarg);
			have_mem = true;
			break;
		case 'c':
			if (parse_size(optarg, &o->cache) || o->cache % ML_PAGE)
				usage_error("invalid --cache '%s' (expected a multiple of 4K, e.g. 8M)",
					    optarg);
			have_cache = true;
			break;
		case 't':
			o->threads = (unsigned)parse_count("--threads", optarg, 1, 1024);
			break;
		case 'p':
			parse_pattern(o, optarg);
			break;
		case 'n':
			o->ops = parse_count("--ops", optarg, 1, UINT64_MAX / 4);
			break;
		case 'w':
			o->write_ratio = parse_ratio("--write-ratio", optarg);
			break;
		case OPT_ZERO_RATIO:
			o->zero_ratio = parse_ratio("--zero-ratio", optarg);
			break;
		case 'P':
			o->policy = optarg;
			break;
		case OPT_PREFETCH:
			if (strcmp(optarg, "on") == 0)
				o->prefetch = true;
			else if (strcmp(optarg, "off") == 0)
				o->prefetch = false;
			else
				usage_error("invalid --prefetch '%s' (on or off)", optarg);
			break;
		case 'v':
			o->verify = true;
			break;
		case 'l':
			o->local = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'k':
			o->key_file = optarg;
			break;
		case 'r':
			o->replicas = (unsigned)parse_count("--replicas", optarg, 1, EPT_MAX_REPLICAS);
			break;
		case 'S':
			o->seed = parse_count("--seed", optarg, 0, UINT64_MAX);
			break;
		case OPT_TEST_DELAY:
			o->test_delay_us = (unsigned)parse_count("--test-delay-us", optarg, 0, 10000000);
			break;
		case OPT_TIMEOUT:
			o->timeout_s = (unsigned)parse_count("--timeout", optarg, 1, 1000000);
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		case ':':
			usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!have_mem)
		usage_error("--mem is required");
	if (o->local) {
		if (o->nservers)
			usage_error("--local runs without memory servers: drop --memserver");
	} else {
		if (!o->nservers)
			usage_error("--memserver is required (or --local for plain memory)");
		if (!have_cache)
			usage_error("--cache is required");
		if (o->cache < 64 * ML_PAGE)
			usage_error("--cache must be at least 256K (64 pages)");
		if (o->replicas > o->nservers)
			usage_error("--replicas %u needs at least %u distinct --memserver", o->replicas,
				    o->replicas);
		if (o->policy) {
			bool known = false;

			for (unsigned i = 0; ept_policy_names[i]; i++)
				known |= strcmp(ept_policy_names[i], o->policy) == 0;
			if (!known) {
				char names[256] = "";

				for (unsigned i = 0; ept_policy_names[i]; i++)
					snprintf(names + strlen(names), sizeof(names) - strlen(names),
						 "%s%s", i ? ", " : "", ept_policy_names[i]);
				usage_error("unknown policy '%s' (known: %s)", o->policy, names);
			}
		}
		if (o->mem / ML_PAGE < o->nservers)
			usage_error("--mem is smaller than one page per server");
	}
	if (o->mem / ML_PAGE < o->threads)
		usage_error("--mem is smaller than one page per thread");
}

/* ---- regions on the memory servers ------------------------------------ */

struct ml_region {
	unsigned server;
	uint64_t id;
	uint8_t token[MS_TOKEN_LEN];
	uint64_t first_page, npages; /* the extent it holds */
	bool created;
};

struct ml_cluster {
	const struct ml_opts *o;
	struct auth_key key;
	bool have_key;
	struct ms_client *clients[16];
	struct ml_region *regions; /* nservers extents x replicas */
	unsigned nregions;
	struct ept_extent *extents;
};

static struct ms_client *cluster_client(struct ml_cluster *cl, unsigned s)
{
	if (!cl->clients[s]) {
		int ret = ms_client_connect(cl->o->servers[s], cl->have_key ? &cl->key : NULL,
					    CONNECT_TIMEOUT_MS, &cl->clients[s]);

		if (ret) {
			fprintf(stderr, "memload: cannot connect to %s: %s\n", cl->o->servers[s],
				strerror(-ret));
			cl->clients[s] = NULL;
		}
	}
	return cl->clients[s];
}

static void cluster_disconnect(struct ml_cluster *cl)
{
	for (unsigned s = 0; s < cl->o->nservers; s++)
		if (cl->clients[s]) {
			ms_client_close(cl->clients[s]);
			cl->clients[s] = NULL;
		}
}

static void cluster_delete(struct ml_cluster *cl)
{
	for (unsigned i = 0; i < cl->nregions; i++) {
		struct ml_region *rg = &cl->regions[i];
		struct ms_client *c;
		int ret;

		if (!rg->created)
			continue;
		c = cluster_client(cl, rg->server);
		ret = c ? ms_client_delete(c, rg->id, rg->token) : -ENOTCONN;
		if (ret)
			fprintf(stderr, "memload: warning: cannot delete region %016" PRIx64 " on %s: %s\n",
				rg->id, cl->o->servers[rg->server], strerror(-ret));
		rg->created = false;
	}
	cluster_disconnect(cl);
}

/* Creates the regions and the extent map. Returns 0 or -1 (reported). */
static int cluster_create(struct ml_cluster *cl)
{
	const struct ml_opts *o = cl->o;
	uint64_t npages = o->mem / ML_PAGE;
	unsigned ns = o->nservers, nr = o->replicas;

	if (o->key_file) {
		int ret = auth_key_load(o->key_file, &cl->key);

		if (ret) {
			fprintf(stderr, "memload: cannot load key file '%s': %s\n", o->key_file,
				strerror(-ret));
			return -1;
		}
		cl->have_key = true;
	}
	cl->nregions = ns * nr;
	cl->regions = calloc(cl->nregions, sizeof(*cl->regions));
	cl->extents = calloc(ns, sizeof(*cl->extents));
	if (!cl->regions || !cl->extents)
		return -1;
	for (unsigned x = 0; x < ns; x++) {
		struct ept_extent *ext = &cl->extents[x];

		ext->first_page = npages * x / ns;
		ext->npages = npages * (x + 1) / ns - ext->first_page;
		ext->nreplicas = nr;
		for (unsigned k = 0; k < nr; k++) {
			struct ml_region *rg = &cl->regions[x * nr + k];
			struct ms_client *c;
			int ret;

			rg->server = (x + k) % ns;
			rg->first_page = ext->first_page;
			rg->npages = ext->npages;
			c = cluster_client(cl, rg->server);
			if (!c)
				return -1;
			for (int attempt = 0;; attempt++) {
				if (auth_random(&rg->id, sizeof(rg->id))) {
					fprintf(stderr, "memload: no randomness for region ids\n");
					return -1;
				}
				ret = ms_client_create(c, rg->id, rg->npages * ML_PAGE, rg->token);
				if (ret != -EEXIST || attempt == 8)
					break;
			}
			if (ret) {
				fprintf(stderr,
					"memload: cannot create a region of %" PRIu64 " bytes on %s: %s\n",
					rg->npages * ML_PAGE, o->servers[rg->server], strerror(-ret));
				return -1;
			}
			rg->created = true;
			ext->replicas[k] = (struct ept_replica){ .url = o->servers[rg->server],
								 .region = rg->id,
								 .region_page = 0 };
			memcpy(ext->replicas[k].token, rg->token, MS_TOKEN_LEN);
		}
	}
	/* The engine makes its own connections; ours would sit idle. */
	cluster_disconnect(cl);
	return 0;
}

/* Reads every page of every replica straight from the servers and compares it
 * with the expected contents. Returns the mismatching pages, or UINT64_MAX
 * when the servers could not be read. */
static uint64_t cluster_check(struct ml_cluster *cl, struct ml_run *r)
{
	uint64_t bad = 0, pages[SERVER_CHECK_CHUNK], gpages[SERVER_CHECK_CHUNK];
	uint8_t zero[SERVER_CHECK_CHUNK];
	uint64_t *buf = malloc((size_t)SERVER_CHECK_CHUNK * ML_PAGE);
	uint64_t exp_buf[ML_WORDS];
	bool sparse = r->shadow && r->npages > SERVER_CHECK_ALL_PAGES;

	if (!buf)
		return UINT64_MAX;
	for (unsigned i = 0; i < cl->nregions; i++) {
		struct ml_region *rg = &cl->regions[i];
		const char *url = cl->o->servers[rg->server];
		struct ms_client *c = cluster_client(cl, rg->server);
		uint64_t epoch, size, p = 0;
		char where[320];
		int ret;

		if (!c)
			goto fail;
		ret = ms_client_open(c, rg->id, rg->token, &epoch, &size);
		if (ret) {
			fprintf(stderr, "memload: cannot open region %016" PRIx64 " on %s: %s\n", rg->id,
				url, strerror(-ret));
			goto fail;
		}
		snprintf(where, sizeof(where), "server %s", url);
		while (p < rg->npages) {
			unsigned n = 0;

			for (; p < rg->npages && n < SERVER_CHECK_CHUNK; p++) {
				uint64_t g = rg->first_page + p;

				if (sparse && r->shadow[g] == 0)
					continue;
				pages[n] = p;
				gpages[n++] = g;
			}
			if (!n)
				break;
			ret = ms_client_read(c, rg->id, epoch, pages, n, buf, zero);
			if (ret) {
				fprintf(stderr, "memload: cannot read region %016" PRIx64 " on %s: %s\n",
					rg->id, url, strerror(-ret));
				goto fail;
			}
			for (unsigned k = 0; k < n; k++) {
				uint64_t *got = buf + (size_t)k * ML_WORDS;

				if (zero[k])
					memset(got, 0, ML_PAGE);
				ml_expected(r, gpages[k], exp_buf);
				if (memcmp(got, exp_buf, ML_PAGE)) {
					bad++;
					ml_report_mismatch(r, where, gpages[k], got);
				}
			}
		}
	}
	free(buf);
	return bad;
fail:
	free(buf);
	return UINT64_MAX;
}

/* ---- engine failure, sampler, watchdog -------------------------------- */

static void on_fatal(void *ctx, const char *message)
{
	(void)ctx;
	fprintf(stderr, "memload: fatal: %s\n", message);
	fflush(stderr);
	_exit(1);
}

struct sampler {
	pthread_t thread;
	_Atomic bool stop;
	uintptr_t base;
	uint64_t peak_kb;
	uint64_t deadline_ns;
	struct ml_run *run;
	bool running;
};

/* Rss of the mapping that starts at base, in kB; 0 when not found. */
static uint64_t smaps_rss_kb(uintptr_t base)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;
	uint64_t rss = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		unsigned long long kb;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3) {
			/* A mapping header (its first token is lo-hi). */
			if (in)
				break;
			in = lo == base;
			continue;
		}
		if (in && sscanf(line, "Rss: %llu kB", &kb) == 1) {
			rss = kb;
			break;
		}
	}
	fclose(f);
	return rss;
}

static void *sampler_main(void *arg)
{
	struct sampler *s = arg;

	while (!atomic_load(&s->stop)) {
		uint64_t kb = smaps_rss_kb(s->base);
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (kb > s->peak_kb)
			s->peak_kb = kb;
		if (s->deadline_ns && now_ns() > s->deadline_ns) {
			struct ml_run *r = s->run;
			uint64_t done = 0;

			for (unsigned t = 0; t < r->o->threads; t++)
				done += atomic_load_explicit(&r->th[t].done, memory_order_relaxed);
			fprintf(stderr, "memload: timeout after %u s: %" PRIu64 " of %" PRIu64
				" accesses done;", r->o->timeout_s, done, r->ops_total);
			for (unsigned t = 0; t < r->o->threads; t++)
				fprintf(stderr, " t%u %" PRIu64 "/%" PRIu64, t,
					atomic_load_explicit(&r->th[t].done, memory_order_relaxed),
					r->th[t].ops_target);
			fputc('\n', stderr);
			fflush(stderr);
			_exit(2);
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* ---- the run ---------------------------------------------------------- */

struct worker_arg {
	struct ml_run *run;
	unsigned t;
	pthread_barrier_t *start;
};

static void *worker_main(void *arg)
{
	struct worker_arg *w = arg;

	pthread_barrier_wait(w->start);
	ml_worker(w->run, w->t);
	return NULL;
}

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

static const char *pattern_name(const struct ml_opts *o)
{
	static const char *const names[] = { "seq", "uniform", "zipf", "graph", "trace" };

	return names[o->pattern];
}

static void print_hist(const char *name, const struct hist *h)
{
	if (!hist_total(h))
		return;
	printf("  %-13s n=%" PRIu64 " p50=%.1fus p90=%.1fus p99=%.1fus\n", name, hist_total(h),
	       hist_quantile(h, 0.5) / 1e3, hist_quantile(h, 0.9) / 1e3,
	       hist_quantile(h, 0.99) / 1e3);
}

struct report {
	double setup_s, elapsed_s;
	uint64_t ops, reads, writes;
	bool have_stats;
	struct ept_stats st;	/* at the end of the workload */
	uint64_t resident_peak;	/* at the very end, before stopping */
	uint64_t capacity_pages;
	uint64_t read_mismatches, sweep_mismatches, server_mismatches;
	bool server_checked, server_failed;
	int flush_result;
	uint64_t smaps_peak_kb;
};

static void print_json(const struct ml_opts *o, const struct ml_run *r, const struct report *rp)
{
	json_t *root = json_object(), *cfg = json_object(), *servers = json_array(), *stats;
	uint64_t gv, ge, gi;
	char *text;

	for (unsigned i = 0; i < o->nservers; i++)
		json_array_append_new(servers, json_string(o->servers[i]));
	json_object_set_new(cfg, "mem_bytes", json_integer((json_int_t)o->mem));
	json_object_set_new(cfg, "cache_bytes", json_integer((json_int_t)o->cache));
	json_object_set_new(cfg, "threads", json_integer(o->threads));
	json_object_set_new(cfg, "pattern", json_string(pattern_name(o)));
	if (o->pattern == PAT_ZIPF)
		json_object_set_new(cfg, "theta", json_real(o->theta));
	if (o->trace_file)
		json_object_set_new(cfg, "trace", json_string(o->trace_file));
	json_object_set_new(cfg, "ops", json_integer((json_int_t)(o->ops ? o->ops : r->ops_total)));
	json_object_set_new(cfg, "write_ratio", json_real(o->write_ratio));
	json_object_set_new(cfg, "zero_ratio", json_real(o->zero_ratio));
	json_object_set_new(cfg, "policy", o->local ? json_null()
						      : json_string(o->policy ? o->policy : "default"));
	json_object_set_new(cfg, "prefetch", json_boolean(o->prefetch));
	json_object_set_new(cfg, "verify", json_boolean(o->verify));
	json_object_set_new(cfg, "local", json_boolean(o->local));
	json_object_set_new(cfg, "replicas", json_integer(o->replicas));
	json_object_set_new(cfg, "memservers", servers);
	json_object_set_new(cfg, "seed", json_integer((json_int_t)o->seed));
	json_object_set_new(cfg, "test_delay_us", json_integer(o->test_delay_us));
	json_object_set_new(root, "config", cfg);
	if (ml_graph_info(r, &gv, &ge, &gi))
		json_object_set_new(root, "graph",
				    json_pack("{s:I,s:I,s:I}", "vertices", (json_int_t)gv, "edges",
					      (json_int_t)ge, "iterations", (json_int_t)gi));
	json_object_set_new(root, "setup_seconds", json_real(rp->setup_s));
	json_object_set_new(root, "elapsed_seconds", json_real(rp->elapsed_s));
	json_object_set_new(root, "ops", json_integer((json_int_t)rp->ops));
	json_object_set_new(root, "ops_per_second",
			    json_real(rp->elapsed_s > 0 ? (double)rp->ops / rp->elapsed_s : 0));
	json_object_set_new(root, "reads", json_integer((json_int_t)rp->reads));
	json_object_set_new(root, "writes", json_integer((json_int_t)rp->writes));
	stats = json_null();
	if (rp->have_stats) {
		char *s = ept_stats_json(&rp->st);

		if (s) {
			json_t *parsed = json_loads(s, 0, NULL);

			if (parsed) {
				json_decref(stats);
				stats = parsed;
			}
			free(s);
		}
	}
	json_object_set_new(root, "ept", stats);
	json_object_set_new(root, "resident_peak_pages",
			    rp->have_stats ? json_integer((json_int_t)rp->resident_peak) : json_null());
	json_object_set_new(root, "capacity_pages",
			    rp->have_stats ? json_integer((json_int_t)rp->capacity_pages) : json_null());
	json_object_set_new(root, "smaps_rss_peak_kb", json_integer((json_int_t)rp->smaps_peak_kb));
	json_object_set_new(root, "verify_mismatches",
			    o->verify ? json_integer((json_int_t)(rp->read_mismatches +
								  rp->sweep_mismatches))
				      : json_null());
	json_object_set_new(root, "verify_read_mismatches",
			    o->verify ? json_integer((json_int_t)rp->read_mismatches) : json_null());
	json_object_set_new(root, "verify_sweep_mismatches",
			    o->verify ? json_integer((json_int_t)rp->sweep_mismatches) : json_null());
	json_object_set_new(root, "server_mismatches",
			    rp->server_checked && !rp->server_failed
				    ? json_integer((json_int_t)rp->server_mismatches)
				    : json_null());
	json_object_set_new(root, "server_check_failed", json_boolean(rp->server_failed));
	json_object_set_new(root, "flush_result", json_integer(rp->flush_result));
	text = json_dumps(root, JSON_COMPACT);
	if (text)
		puts(text);
	free(text);
	json_decref(root);
}

static void print_text(const struct ml_opts *o, const struct ml_run *r, const struct report *rp)
{
	uint64_t gv, ge, gi;

	printf("memload: %s, %u thread%s, mem %" PRIu64 " KiB, %s\n", o->pattern_text, o->threads,
	       o->threads == 1 ? "" : "s", o->mem >> 10,
	       o->local ? "local memory" : "virtual cache");
	if (!o->local)
		printf("  cache %" PRIu64 " KiB, %u server%s x %u replica%s, policy %s, prefetch %s\n",
		       o->cache >> 10, o->nservers, o->nservers == 1 ? "" : "s", o->replicas,
		       o->replicas == 1 ? "" : "s", o->policy ? o->policy : "default",
		       o->prefetch ? "on" : "off");
	if (ml_graph_info(r, &gv, &ge, &gi))
		printf("  graph: %" PRIu64 " vertices, %" PRIu64 " edges, %" PRIu64 " iterations\n", gv,
		       ge, gi);
	printf("  setup %.3f s; %" PRIu64 " accesses in %.3f s: %.0f ops/s (reads %" PRIu64
	       ", writes %" PRIu64 ")\n",
	       rp->setup_s, rp->ops, rp->elapsed_s,
	       rp->elapsed_s > 0 ? (double)rp->ops / rp->elapsed_s : 0.0, rp->reads, rp->writes);
	if (rp->have_stats) {
		const struct ept_stats *s = &rp->st;

		printf("  faults: missing %" PRIu64 ", wp %" PRIu64 ", zero-fill %" PRIu64
		       ", remote %" PRIu64 ", wb-hit %" PRIu64 ", inactive-hit %" PRIu64
		       ", in-flight %" PRIu64 "\n",
		       s->faults_missing, s->faults_wp, s->faults_zero_fill, s->faults_remote,
		       s->faults_wb_hit, s->faults_inactive_hit, s->faults_in_flight);
		printf("  pages: fetched %" PRIu64 ", written back %" PRIu64 ", skipped clean %" PRIu64
		       ", skipped zero %" PRIu64 ", prefetched %" PRIu64 " (hits %" PRIu64
		       "), evictions %" PRIu64 "\n",
		       s->pages_fetched, s->pages_written_back, s->skipped_clean, s->skipped_zero,
		       s->prefetched, s->prefetch_hits, s->evictions);
		print_hist("zero-fill", &s->lat_zero_fill);
		print_hist("remote", &s->lat_remote);
		print_hist("wb-hit", &s->lat_wb_hit);
		print_hist("inactive-hit", &s->lat_inactive_hit);
		printf("  resident peak %" PRIu64 " of %" PRIu64 " pages\n", rp->resident_peak,
		       rp->capacity_pages);
	}
	printf("  smaps Rss peak %" PRIu64 " kB\n", rp->smaps_peak_kb);
	if (o->verify) {
		printf("  verify: read mismatches %" PRIu64 ", sweep mismatches %" PRIu64, rp->read_mismatches,
		       rp->sweep_mismatches);
		if (rp->server_checked && !rp->server_failed)
			printf(", server mismatches %" PRIu64, rp->server_mismatches);
		else if (rp->server_failed)
			printf(", server check FAILED");
		if (rp->flush_result)
			printf(", flush FAILED (%s)", strerror(-rp->flush_result));
		putchar('\n');
	}
}

int main(int argc, char **argv)
{
	struct ml_opts o;
	struct ml_cluster cl = { 0 };
	struct ml_run run = { 0 };
	struct report rp = { 0 };
	struct sampler smp = { 0 };
	struct ept *e = NULL;
	struct worker_arg *args;
	pthread_t *threads;
	pthread_barrier_t start;
	uint64_t t0, t1;
	int status = 0;

	parse_args(argc, argv, &o);
	run.o = &o;
	run.npages = o.mem / ML_PAGE;
	if (o.pattern == PAT_TRACE && ml_trace_load(o.trace_file, &run.trace, &run.trace_len))
		return 1;
	run.th = calloc(o.threads, sizeof(*run.th));
	threads = calloc(o.threads, sizeof(*threads));
	args = calloc(o.threads, sizeof(*args));
	if (!run.th || !threads || !args) {
		fprintf(stderr, "memload: out of memory\n");
		return 1;
	}
	if (o.local) {
		run.base = mmap(NULL, o.mem, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (run.base == MAP_FAILED) {
			fprintf(stderr, "memload: cannot map %" PRIu64 " bytes: %s\n", o.mem,
				strerror(errno));
			return 1;
		}
		madvise(run.base, o.mem, MADV_NOHUGEPAGE);
	} else {
		struct ept_config cfg;
		int ret;

		cl.o = &o;
		if (cluster_create(&cl)) {
			cluster_delete(&cl);
			return 1;
		}
		cfg = (struct ept_config){
			.mem_size = o.mem,
			.cache_size = o.cache,
			.extents = cl.extents,
			.nextents = o.nservers,
			.key = cl.have_key ? &cl.key : NULL,
			.policy = o.policy,
			.prefetch = o.prefetch,
			.on_fatal = on_fatal,
			.test_delay_us = o.test_delay_us,
		};
		ret = ept_create(&cfg, &e);
		if (!ret) {
			ret = ept_start(e);
			if (ret)
				fprintf(stderr, "memload: cannot start the cache: %s\n", strerror(-ret));
		} else {
			fprintf(stderr, "memload: cannot create the cache: %s\n", strerror(-ret));
			e = NULL;
		}
		if (ret) {
			ept_destroy(e);
			cluster_delete(&cl);
			return 1;
		}
		run.base = ept_base(e);
	}

	smp.base = (uintptr_t)run.base;
	smp.run = &run;
	if (o.timeout_s)
		smp.deadline_ns = now_ns() + (uint64_t)o.timeout_s * 1000000000ull;
	if (pthread_create(&smp.thread, NULL, sampler_main, &smp) == 0)
		smp.running = true;

	t0 = now_ns();
	if (ml_prepare(&run)) {
		status = 1;
		goto stop;
	}
	rp.setup_s = secs(now_ns() - t0);

	pthread_barrier_init(&start, NULL, o.threads + 1);
	for (unsigned t = 0; t < o.threads; t++) {
		args[t] = (struct worker_arg){ .run = &run, .t = t, .start = &start };
		if (pthread_create(&threads[t], NULL, worker_main, &args[t])) {
			fprintf(stderr, "memload: cannot start thread %u\n", t);
			_exit(1); /* earlier threads wait on the barrier */
		}
	}
	pthread_barrier_wait(&start);
	t0 = now_ns();
	for (unsigned t = 0; t < o.threads; t++)
		pthread_join(threads[t], NULL);
	t1 = now_ns();
	pthread_barrier_destroy(&start);
	rp.elapsed_s = secs(t1 - t0);
	for (unsigned t = 0; t < o.threads; t++) {
		rp.ops += run.th[t].done;
		rp.reads += run.th[t].reads;
		rp.writes += run.th[t].writes;
		rp.read_mismatches += run.th[t].mismatches;
	}
	if (e) {
		ept_get_stats(e, &rp.st);
		rp.have_stats = true;
	}

	if (o.verify) {
		rp.sweep_mismatches = ml_verify_region(&run);
		if (e) {
			rp.flush_result = ept_flush(e);
			if (rp.flush_result)
				fprintf(stderr, "memload: ept_flush failed: %s\n",
					strerror(-rp.flush_result));
		}
	}
	if (e) {
		struct ept_stats end;

		ept_get_stats(e, &end);
		rp.resident_peak = MAX(end.resident_peak, rp.st.resident_peak);
		rp.capacity_pages = end.capacity_pages;
	}

stop:
	if (smp.running) {
		atomic_store(&smp.stop, true);
		pthread_join(smp.thread, NULL);
		rp.smaps_peak_kb = smp.peak_kb;
	}
	if (e) {
		ept_stop(e);
		ept_destroy(e);
		if (status == 0 && o.verify && rp.flush_result == 0) {
			rp.server_checked = true;
			rp.server_mismatches = cluster_check(&cl, &run);
			if (rp.server_mismatches == UINT64_MAX) {
				rp.server_failed = true;
				rp.server_mismatches = 0;
			}
		}
		cluster_delete(&cl);
	} else if (run.base) {
		munmap(run.base, o.mem);
	}
	if (status == 0) {
		if (o.json)
			print_json(&o, &run, &rp);
		else
			print_text(&o, &run, &rp);
		if (rp.read_mismatches || rp.sweep_mismatches || rp.server_mismatches ||
		    rp.server_failed || rp.flush_result)
			status = 1;
	}
	ml_cleanup(&run);
	free(cl.regions);
	free(cl.extents);
	free(run.th);
	free(threads);
	free(args);
	return status;
}

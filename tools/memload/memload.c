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
#include <inttypes.h>
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
#include "tools/memload/report.h"

#define CONNECT_TIMEOUT_MS 10000
/* The server check reads every page up to this many, else the written ones. */
#define SERVER_CHECK_ALL_PAGES (1ull << 22)
#define SERVER_CHECK_CHUNK 256u

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

int main(int argc, char **argv)
{
	struct ml_opts o;
	struct ml_cluster cl = { 0 };
	struct ml_run run = { 0 };
	struct ml_report rp = { 0 };
	struct sampler smp = { 0 };
	struct ept *e = NULL;
	struct worker_arg *args;
	pthread_t *threads;
	pthread_barrier_t start;
	uint64_t t0, t1;
	int status = 0;

	ml_parse_args(argc, argv, &o);
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
			ml_print_json(&o, &run, &rp);
		else
			ml_print_text(&o, &run, &rp);
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

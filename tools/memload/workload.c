/*
 * memload's workloads, the shadow of every page and verification.
 *
 * Ownership: with N threads, thread t alone writes and reads the pages p with
 * p % N == t (its stripe). A pattern draws an index i in [0, stripe size) and
 * touches page i * N + t, so the shadow (one version per page) is exact with no
 * locking. A write fills the whole page with words derived from (page,
 * version); version 0 means never written (all zeros), and a write chosen by
 * --zero-ratio stores an all-zero page (flagged in the shadow), which is what
 * guest kernels do to freed pages and what the cache must not lose.
 *
 * Traces are dispatched by the same rule: thread t replays, in trace order,
 * the accesses whose page % N == t. Every page's accesses therefore keep their
 * trace order; the order across pages is what the threads make of it.
 *
 * The graph pattern lays a synthetic power-law graph out in the region (CSR of
 * in-edges, out-degrees, two rank arrays) and runs pull-style PageRank over it:
 * each thread owns a contiguous range of vertices with about E/N edges, with a
 * barrier between iterations. With --verify the same graph is built in private
 * memory and the same code computes the same ranks there; floating point is
 * evaluated in the same order, so the two must agree bit for bit.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/memload/memload.h"
#include "tools/memload/rand.h"

#define MAX_MISMATCH_REPORTS 10
/* Full sweeps (every page, not just the written ones) up to this size. */
#define SWEEP_ALL_PAGES (1ull << 18)

/* ---- page contents ---------------------------------------------------- */

static inline uint64_t page_seed(uint64_t page, uint32_t ver)
{
	return mix64(page * 0x9e3779b97f4a7c15ull ^ ((uint64_t)ver << 40) ^ 0x6c656761746f2121ull);
}

static inline bool version_is_zero(uint32_t ver)
{
	return (ver & ML_VERSION_MASK) == 0 || (ver & ML_ZERO_FLAG);
}

static void fill_page(uint64_t *dst, uint64_t page, uint32_t ver)
{
	uint64_t s;

	if (version_is_zero(ver)) {
		memset(dst, 0, ML_PAGE);
		return;
	}
	s = page_seed(page, ver);
	for (unsigned j = 0; j < ML_WORDS; j++)
		dst[j] = s + j * 0xd1b54a32d192ed03ull;
}

/* Words of buf that differ from version ver of page. */
static unsigned page_diff(const uint64_t *buf, uint64_t page, uint32_t ver)
{
	unsigned bad = 0;
	uint64_t s;

	if (version_is_zero(ver)) {
		for (unsigned j = 0; j < ML_WORDS; j++)
			bad += buf[j] != 0;
		return bad;
	}
	s = page_seed(page, ver);
	for (unsigned j = 0; j < ML_WORDS; j++)
		bad += buf[j] != s + j * 0xd1b54a32d192ed03ull;
	return bad;
}

/* ---- graph ------------------------------------------------------------ */

#define GRAPH_AVG_DEGREE 16
#define GRAPH_DAMPING 0.85
#define GRAPH_SOURCE_THETA 0.8

struct ml_graph {
	uint64_t v, e;
	size_t off_at, adj_at, deg_at, r0_at, r1_at, end;
	uint64_t full_iters;	/* complete iterations */
	uint64_t vlimit;	/* then a partial one over [0, vlimit) */
	uint64_t *bounds;	/* threads + 1 vertex boundaries */
	uint64_t *edges_of;	/* edges per thread, per full iteration */
	uint64_t *edges_partial;/* edges per thread in the partial iteration */
	pthread_barrier_t barrier;
	bool barrier_ready;
};

static size_t align8(size_t x)
{
	return (x + 7) & ~(size_t)7;
}

static int graph_layout(struct ml_graph *g, uint64_t mem)
{
	uint64_t per_vertex = 8 + 4 + 8 + 8 + 4 * GRAPH_AVG_DEGREE;
	uint64_t fixed, emax;

	g->v = (mem - 64) / per_vertex;
	if (g->v > UINT32_MAX)
		g->v = UINT32_MAX;
	if (g->v < 64)
		return -1;
	g->off_at = 0;
	g->deg_at = align8(g->off_at + 8 * (g->v + 1));
	g->r0_at = align8(g->deg_at + 4 * g->v);
	g->r1_at = g->r0_at + 8 * g->v;
	g->adj_at = g->r1_at + 8 * g->v;
	fixed = g->adj_at;
	emax = (mem - fixed) / 4;
	g->e = emax; /* upper bound until generated */
	return 0;
}

/*
 * Writes the graph into dst (the region or the private copy, zero-filled) and,
 * when fill_plan is set, plans the threads' work for ops edge visits.
 * Deterministic in seed. Returns 0 or -ENOMEM.
 */
static int graph_generate(struct ml_graph *g, uint8_t *dst, uint64_t seed, bool fill_plan,
			  uint64_t ops, unsigned nthreads)
{
	uint64_t emax = g->e, sum = 0, *off = (uint64_t *)(dst + g->off_at);
	uint32_t *tmp = calloc(g->v, sizeof(*tmp));
	uint32_t *adj = (uint32_t *)(dst + g->adj_at);
	double *r0 = (double *)(dst + g->r0_at);
	double dmin = GRAPH_AVG_DEGREE / 3.0;
	uint64_t mult, add;
	struct zipf z;
	struct rng rng;

	if (!tmp)
		return -ENOMEM;
	rng_seed(&rng, seed ^ 0x6772617068ull);
	/* In-degrees: Pareto with alpha 2.5 (mean 3 * dmin). */
	for (uint64_t v = 0; v < g->v; v++) {
		double d = dmin * pow(1.0 - rng_double(&rng), -1.0 / 1.5);
		uint64_t cap = MIN_U64(g->v - 1, 1u << 20);

		tmp[v] = (uint32_t)(d > (double)cap ? cap : d);
		sum += tmp[v];
	}
	if (sum > emax) {
		uint64_t s2 = 0;

		for (uint64_t v = 0; v < g->v; v++) {
			tmp[v] = (uint32_t)((unsigned __int128)tmp[v] * emax / sum);
			s2 += tmp[v];
		}
		sum = s2;
	}
	g->e = sum;
	off[0] = 0;
	for (uint64_t v = 0; v < g->v; v++)
		off[v + 1] = off[v] + tmp[v];
	if (fill_plan) {
		/* --ops edge visits; by default three iterations. */
		uint64_t want = ops ? ops : 3 * g->e;
		uint64_t rem = g->e ? want % g->e : 0;

		g->full_iters = g->e ? want / g->e : 0;
		g->vlimit = 0;
		if (rem) {
			uint64_t lo = 0, hi = g->v;

			while (lo < hi) { /* first v with off[v] >= rem */
				uint64_t mid = (lo + hi) / 2;

				if (off[mid] >= rem)
					hi = mid;
				else
					lo = mid + 1;
			}
			g->vlimit = lo;
		}
		for (unsigned t = 0; t <= nthreads; t++) {
			uint64_t target = g->e * t / nthreads, lo = 0, hi = g->v;

			while (lo < hi) {
				uint64_t mid = (lo + hi) / 2;

				if (off[mid] >= target)
					hi = mid;
				else
					lo = mid + 1;
			}
			g->bounds[t] = t == nthreads ? g->v : lo;
		}
		for (unsigned t = 0; t < nthreads; t++) {
			uint64_t a = g->bounds[t], b = g->bounds[t + 1];
			uint64_t pb = MIN_U64(b, g->vlimit);

			g->edges_of[t] = off[b] - off[a];
			g->edges_partial[t] = pb > a ? off[pb] - off[a] : 0;
		}
	}
	/* Sources: Zipf-popular ranks scattered over the vertices by an affine
	 * bijection, so hot ranks do not share pages. */
	zipf_init(&z, g->v, GRAPH_SOURCE_THETA);
	mult = 0x9e3779b97f4a7c15ull % g->v;
	for (;;) {
		uint64_t a = mult, b = g->v;

		while (b) { /* gcd */
			uint64_t t = a % b;

			a = b;
			b = t;
		}
		if (a == 1 && mult > 1)
			break;
		mult++;
		if (mult >= g->v)
			mult = 1;
	}
	add = rng_below(&rng, g->v);
	memset(tmp, 0, g->v * sizeof(*tmp));
	for (uint64_t e = 0; e < g->e; e++) {
		uint64_t u = (uint64_t)(((unsigned __int128)zipf_next(&z, &rng) * mult + add) % g->v);

		adj[e] = (uint32_t)u;
		tmp[u]++;
	}
	memcpy(dst + g->deg_at, tmp, g->v * sizeof(*tmp));
	for (uint64_t v = 0; v < g->v; v++)
		r0[v] = 1.0 / (double)g->v;
	free(tmp);
	return 0;
}

/* One PageRank step for vertices [lo, hi): reads ranks of iteration it, writes
 * those of it + 1. Returns the edges visited. */
static uint64_t graph_step(const struct ml_graph *g, uint8_t *base, uint64_t it, uint64_t lo,
			   uint64_t hi)
{
	const uint64_t *off = (const uint64_t *)(base + g->off_at);
	const uint32_t *adj = (const uint32_t *)(base + g->adj_at);
	const uint32_t *deg = (const uint32_t *)(base + g->deg_at);
	const double *cur = (const double *)(base + (it % 2 ? g->r1_at : g->r0_at));
	double *next = (double *)(base + (it % 2 ? g->r0_at : g->r1_at));
	double teleport = (1.0 - GRAPH_DAMPING) / (double)g->v;
	uint64_t visited = 0;

	for (uint64_t v = lo; v < hi; v++) {
		uint64_t a = off[v], b = off[v + 1];
		double s = 0.0;

		for (uint64_t e = a; e < b; e++) {
			uint32_t u = adj[e];

			s += cur[u] / (double)deg[u];
		}
		next[v] = teleport + GRAPH_DAMPING * s;
		visited += b - a;
	}
	return visited;
}

static void graph_worker(struct ml_run *r, unsigned t)
{
	struct ml_graph *g = r->graph;
	struct ml_thread *th = &r->th[t];
	uint64_t lo = g->bounds[t], hi = g->bounds[t + 1], done = 0;

	for (uint64_t it = 0; it < g->full_iters; it++) {
		done += graph_step(g, r->base, it, lo, hi);
		atomic_store_explicit(&th->done, done, memory_order_relaxed);
		pthread_barrier_wait(&g->barrier);
	}
	if (g->vlimit) {
		done += graph_step(g, r->base, g->full_iters, lo, MIN_U64(hi, g->vlimit));
		atomic_store_explicit(&th->done, done, memory_order_relaxed);
	}
	th->reads = done;
}

/* ---- traces ----------------------------------------------------------- */

int ml_trace_load(const char *path, struct ml_access **out, uint64_t *len)
{
	FILE *f = fopen(path, "r");
	struct ml_access *a = NULL;
	uint64_t n = 0, cap = 0, lineno = 0;
	char *line = NULL;
	size_t lcap = 0;

	if (!f) {
		fprintf(stderr, "memload: cannot open trace '%s': %s\n", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &lcap, f) > 0) {
		char *p = line, *end;
		unsigned long long page;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == '\0')
			continue;
		errno = 0;
		page = strtoull(p, &end, 10);
		if (end == p || errno)
			goto bad;
		p = end;
		while (*p == ' ' || *p == '\t')
			p++;
		if ((*p != 'R' && *p != 'W') ||
		    (p[1] != '\n' && p[1] != '\0' && p[1] != ' ' && p[1] != '\r'))
			goto bad;
		if (n == cap) {
			struct ml_access *na;

			cap = cap ? cap * 2 : 1 << 16;
			na = realloc(a, cap * sizeof(*a));
			if (!na) {
				fprintf(stderr, "memload: out of memory loading the trace\n");
				goto fail;
			}
			a = na;
		}
		a[n].page = page;
		a[n].write = *p == 'W';
		n++;
	}
	if (ferror(f)) {
		fprintf(stderr, "memload: reading trace '%s': %s\n", path, strerror(errno));
		goto fail;
	}
	if (n == 0) {
		fprintf(stderr, "memload: trace '%s' has no accesses\n", path);
		goto fail;
	}
	free(line);
	fclose(f);
	*out = a;
	*len = n;
	return 0;
bad:
	fprintf(stderr, "memload: %s:%" PRIu64 ": expected \"PAGE R|W\"\n", path, lineno);
fail:
	free(line);
	free(a);
	fclose(f);
	return -1;
}

/* ---- the workers ------------------------------------------------------ */

void ml_report_mismatch(struct ml_run *r, const char *where, uint64_t page, const uint64_t *got)
{
	uint64_t n = atomic_fetch_add(&r->mismatch_reports, 1);
	char seen[96] = "unrecognised contents";
	uint64_t exp_buf[ML_WORDS];
	unsigned bad;

	if (n >= MAX_MISMATCH_REPORTS) {
		if (n == MAX_MISMATCH_REPORTS)
			fprintf(stderr, "memload: (further mismatches not shown)\n");
		return;
	}
	if (r->shadow) {
		uint32_t ver = r->shadow[page];

		bad = page_diff(got, page, ver);
		/* Which version is it? Zeros, or an older or newer write. */
		if (page_diff(got, page, 0) == 0)
			snprintf(seen, sizeof(seen), "all zeros");
		else
			for (uint32_t v = 1; v <= (ver & ML_VERSION_MASK) + 4; v++)
				if (page_diff(got, page, v) == 0) {
					snprintf(seen, sizeof(seen), "version %u", v);
					break;
				}
		fprintf(stderr,
			"memload: mismatch (%s) page %" PRIu64 " (offset 0x%" PRIx64
			"): expected version %u%s, found %s (%u of %u words differ)\n",
			where, page, page * ML_PAGE, ver & ML_VERSION_MASK,
			(ver & ML_ZERO_FLAG) ? " (zeros)" : "", seen, bad, ML_WORDS);
		return;
	}
	ml_expected(r, page, exp_buf);
	bad = 0;
	for (unsigned j = 0; j < ML_WORDS; j++)
		bad += exp_buf[j] != got[j];
	fprintf(stderr,
		"memload: mismatch (%s) page %" PRIu64 " (offset 0x%" PRIx64
		"): %u of %u words differ from the reference%s\n",
		where, page, page * ML_PAGE, bad, ML_WORDS,
		page_diff(got, page, 0) == 0 ? " (found all zeros)" : "");
}

static inline void do_access(struct ml_run *r, struct ml_thread *th, struct rng *rng,
			     uint64_t p, bool write, uint64_t i)
{
	uint64_t *pg = (uint64_t *)(r->base + p * ML_PAGE);

	if (write) {
		uint32_t v = (r->shadow[p] & ML_VERSION_MASK) + 1;
		bool zero = r->o->zero_ratio > 0 && rng_double(rng) < r->o->zero_ratio;

		if (v > ML_VERSION_MASK)
			v = 1;
		v |= zero ? ML_ZERO_FLAG : 0;
		fill_page(pg, p, v);
		r->shadow[p] = v;
		th->writes++;
	} else if (r->o->verify) {
		uint64_t buf[ML_WORDS];

		memcpy(buf, pg, ML_PAGE);
		if (page_diff(buf, p, r->shadow[p])) {
			th->mismatches++;
			ml_report_mismatch(r, "read", p, buf);
		}
		th->reads++;
	} else {
		(void)*(volatile uint64_t *)&pg[i % ML_WORDS];
		th->reads++;
	}
}

static void synthetic_worker(struct ml_run *r, unsigned t)
{
	const struct ml_opts *o = r->o;
	struct ml_thread *th = &r->th[t];
	unsigned n = o->threads;
	uint64_t stripe = (r->npages - t + n - 1) / n;
	struct rng rng;
	struct zipf z;

	rng_seed(&rng, o->seed * 0x100000001b3ull + t + 1);
	if (o->pattern == PAT_ZIPF)
		zipf_init(&z, stripe, o->theta);
	for (uint64_t i = 0; i < th->ops_target; i++) {
		uint64_t idx;
		bool write;

		switch (o->pattern) {
		case PAT_SEQ:
			idx = i % stripe;
			break;
		case PAT_ZIPF:
			idx = zipf_next(&z, &rng);
			break;
		default:
			idx = rng_below(&rng, stripe);
			break;
		}
		write = o->write_ratio > 0 && rng_double(&rng) < o->write_ratio;
		do_access(r, th, &rng, idx * n + t, write, i);
		atomic_store_explicit(&th->done, i + 1, memory_order_relaxed);
	}
}

static void trace_worker(struct ml_run *r, unsigned t)
{
	struct ml_thread *th = &r->th[t];
	unsigned n = r->o->threads;
	uint64_t done = 0;
	struct rng rng;

	rng_seed(&rng, r->o->seed * 0x100000001b3ull + t + 1);
	for (uint64_t k = 0, j = 0; k < r->ops_total; k++, j++) {
		const struct ml_access *a;

		if (j == r->trace_len)
			j = 0;
		a = &r->trace[j];
		if (a->page % n != t)
			continue;
		do_access(r, th, &rng, a->page, a->write, k);
		atomic_store_explicit(&th->done, ++done, memory_order_relaxed);
	}
}

void ml_worker(struct ml_run *r, unsigned t)
{
	switch (r->o->pattern) {
	case PAT_GRAPH:
		graph_worker(r, t);
		break;
	case PAT_TRACE:
		trace_worker(r, t);
		break;
	default:
		synthetic_worker(r, t);
		break;
	}
}

/* ---- preparation, verification ---------------------------------------- */

int ml_prepare(struct ml_run *r)
{
	const struct ml_opts *o = r->o;
	unsigned n = o->threads;

	if (o->pattern != PAT_GRAPH) {
		r->shadow = calloc(r->npages, sizeof(*r->shadow));
		if (!r->shadow) {
			fprintf(stderr, "memload: out of memory for the shadow\n");
			return -1;
		}
	}
	if (o->pattern == PAT_TRACE) {
		uint64_t *own = calloc(n, sizeof(*own)), *own_part = calloc(n, sizeof(*own_part));
		uint64_t passes, rest;

		if (!own || !own_part) {
			free(own);
			free(own_part);
			return -1;
		}
		r->ops_total = o->ops ? o->ops : r->trace_len;
		passes = r->ops_total / r->trace_len;
		rest = r->ops_total % r->trace_len;
		for (uint64_t j = 0; j < r->trace_len; j++) {
			if (r->trace[j].page >= r->npages) {
				fprintf(stderr,
					"memload: trace page %" PRIu64 " is outside the region (%" PRIu64
					" pages): use a larger --mem, or lackey2trace --compact\n",
					r->trace[j].page, r->npages);
				free(own);
				free(own_part);
				return -1;
			}
			own[r->trace[j].page % n]++;
			if (j < rest)
				own_part[r->trace[j].page % n]++;
		}
		for (unsigned t = 0; t < n; t++)
			r->th[t].ops_target = passes * own[t] + own_part[t];
		free(own);
		free(own_part);
		return 0;
	}
	if (o->pattern == PAT_GRAPH) {
		struct ml_graph *g = calloc(1, sizeof(*g));

		if (!g)
			return -1;
		r->graph = g;
		if (graph_layout(g, o->mem)) {
			fprintf(stderr, "memload: --mem is too small for a graph (at least 64 KiB)\n");
			return -1;
		}
		g->bounds = calloc(n + 1, sizeof(*g->bounds));
		g->edges_of = calloc(n, sizeof(*g->edges_of));
		g->edges_partial = calloc(n, sizeof(*g->edges_partial));
		if (!g->bounds || !g->edges_of || !g->edges_partial)
			return -1;
		if (o->verify) {
			uint64_t emax = g->e;

			r->graph_private = calloc(1, o->mem);
			if (!r->graph_private) {
				fprintf(stderr, "memload: out of memory for the graph's reference copy\n");
				return -1;
			}
			if (graph_generate(g, r->graph_private, o->seed, false, 0, n))
				return -1;
			g->e = emax;
		}
		if (graph_generate(g, r->base, o->seed, true, o->ops, n))
			return -1;
		if (g->e == 0 || g->v < n) {
			fprintf(stderr, "memload: the graph is too small for %u threads\n", n);
			return -1;
		}
		r->ops_total = 0;
		for (unsigned t = 0; t < n; t++) {
			r->th[t].ops_target = g->full_iters * g->edges_of[t] + g->edges_partial[t];
			r->ops_total += r->th[t].ops_target;
		}
		pthread_barrier_init(&g->barrier, NULL, n);
		g->barrier_ready = true;
		return 0;
	}
	r->ops_total = o->ops ? o->ops : 1000000;
	for (unsigned t = 0; t < n; t++)
		r->th[t].ops_target = r->ops_total / n + (t < r->ops_total % n);
	return 0;
}

void ml_expected(const struct ml_run *r, uint64_t p, uint64_t *buf)
{
	if (r->graph_private)
		memcpy(buf, r->graph_private + p * ML_PAGE, ML_PAGE);
	else if (r->shadow)
		fill_page(buf, p, r->shadow[p]);
	else
		memset(buf, 0, ML_PAGE);
}

uint64_t ml_verify_region(struct ml_run *r)
{
	uint64_t bad = 0, buf[ML_WORDS], exp_buf[ML_WORDS];

	if (r->graph) {
		struct ml_graph *g = r->graph;

		for (uint64_t it = 0; it < g->full_iters; it++)
			graph_step(g, r->graph_private, it, 0, g->v);
		if (g->vlimit)
			graph_step(g, r->graph_private, g->full_iters, 0, g->vlimit);
		for (uint64_t p = 0; p < r->npages; p++) {
			memcpy(buf, r->base + p * ML_PAGE, ML_PAGE);
			ml_expected(r, p, exp_buf);
			if (memcmp(buf, exp_buf, ML_PAGE)) {
				bad++;
				ml_report_mismatch(r, "graph", p, buf);
			}
		}
		return bad;
	}
	for (uint64_t p = 0; p < r->npages; p++) {
		if (r->shadow[p] == 0 && r->npages > SWEEP_ALL_PAGES)
			continue;
		memcpy(buf, r->base + p * ML_PAGE, ML_PAGE);
		if (page_diff(buf, p, r->shadow[p])) {
			bad++;
			ml_report_mismatch(r, "sweep", p, buf);
		}
	}
	return bad;
}

bool ml_graph_info(const struct ml_run *r, uint64_t *vertices, uint64_t *edges,
		   uint64_t *iterations)
{
	if (!r->graph)
		return false;
	*vertices = r->graph->v;
	*edges = r->graph->e;
	*iterations = r->graph->full_iters + (r->graph->vlimit ? 1 : 0);
	return true;
}

void ml_cleanup(struct ml_run *r)
{
	if (r->graph) {
		if (r->graph->barrier_ready)
			pthread_barrier_destroy(&r->graph->barrier);
		free(r->graph->bounds);
		free(r->graph->edges_of);
		free(r->graph->edges_partial);
		free(r->graph);
	}
	free(r->graph_private);
	free(r->shadow);
	free(r->trace);
}

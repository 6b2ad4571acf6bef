/*
 * cachesim: replays a page trace ("PAGE R|W" per line, as memload and
 * lackey2trace use) against caches of given sizes and prints the miss ratio of
 * FIFO, exact LRU, Belady's OPT, and every replacement policy the engine has
 * (ept_policies[]), driving the very policy code the engine runs. See
 * tools/cachesim/README.md.
 *
 * How an ept policy is driven, as the engine does it: a page not resident is a
 * miss: when the cache is full the policy's victim() is evicted (remove()),
 * then the page gets a frame (insert()). A resident page whose frame the policy
 * had deactivated (returned by deactivate(), which the engine unmaps to sample
 * references) is a sampling fault: a minor fault served locally, counted apart
 * from misses, after which the policy hears reference(). After every access
 * the policy may deactivate up to 64 frames, as the engine asks it each turn,
 * but no more than two per eviction so far (the engine's sampling credit).
 * Accesses to mapped frames are invisible to the policy, as in the engine.
 * Reads and writes are treated alike (the trace's R/W is ignored).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "ept/policy.h"
#include "tools/cachesim/pagemap.h"

#define NONE UINT32_MAX
#define SAMPLE_MAX 64
#define MAX_SIZES 64
#define MAX_RESULTS 16

static const char usage[] =
	"usage: cachesim --trace FILE --cache PAGES[,PAGES...] [--json]\n"
	"\n"
	"Miss ratios of FIFO, exact LRU, Belady's OPT and the engine's replacement\n"
	"policies (ept:NAME) on a page trace (\"PAGE R|W\" lines; '-' reads stdin).\n"
	"\n"
	"  -t, --trace FILE     the trace\n"
	"  -c, --cache LIST     cache sizes in pages, comma-separated\n"
	"  -j, --json           one JSON object on stdout\n"
	"  -h, --help           this text\n";

struct trace {
	uint32_t *acc;		/* dense page ids */
	uint64_t n;
	uint32_t npages;	/* distinct pages */
};

struct result {
	char name[64];
	uint64_t misses;
	uint64_t sampling;	/* ept policies: faults on deactivated frames */
	bool is_ept;
};

static int load_trace(const char *path, struct trace *t)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	struct pagemap m = { 0 };
	uint64_t cap = 1 << 20, lineno = 0;
	char line[256];

	if (!f) {
		fprintf(stderr, "cachesim: cannot open trace '%s': %s\n", path, strerror(errno));
		return -1;
	}
	t->acc = malloc(cap * sizeof(*t->acc));
	t->n = 0;
	if (!t->acc || pagemap_init(&m, 1 << 16)) {
		fprintf(stderr, "cachesim: out of memory\n");
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *end;
		unsigned long long page;
		uint32_t id;
		int fresh;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == '\0')
			continue;
		errno = 0;
		page = strtoull(p, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (end == p || errno || (*end != 'R' && *end != 'W')) {
			fprintf(stderr, "cachesim: %s:%" PRIu64 ": expected \"PAGE R|W\"\n", path,
				lineno);
			goto fail;
		}
		id = pagemap_get(&m, page, &fresh);
		if (id == NONE) {
			fprintf(stderr, "cachesim: out of memory\n");
			goto fail;
		}
		if (t->n == cap) {
			uint32_t *na = realloc(t->acc, 2 * cap * sizeof(*na));

			if (!na) {
				fprintf(stderr, "cachesim: out of memory\n");
				goto fail;
			}
			t->acc = na;
			cap *= 2;
		}
		t->acc[t->n++] = id;
	}
	if (ferror(f)) {
		fprintf(stderr, "cachesim: reading '%s': %s\n", path, strerror(errno));
		goto fail;
	}
	t->npages = m.n;
	pagemap_free(&m);
	if (f != stdin)
		fclose(f);
	if (t->n == 0) {
		fprintf(stderr, "cachesim: trace '%s' has no accesses\n", path);
		return -1;
	}
	return 0;
fail:
	pagemap_free(&m);
	if (f != stdin)
		fclose(f);
	return -1;
}

/* ---- FIFO and exact LRU ---------------------------------------------- */

static uint64_t sim_fifo(const struct trace *t, uint32_t cap)
{
	uint8_t *in = calloc(t->npages, 1);
	uint32_t *ring = malloc((size_t)cap * sizeof(*ring));
	uint64_t misses = 0;
	uint32_t head = 0, len = 0;

	if (!in || !ring)
		abort();
	for (uint64_t i = 0; i < t->n; i++) {
		uint32_t p = t->acc[i];

		if (in[p])
			continue;
		misses++;
		if (len == cap) {
			in[ring[head]] = 0;
			ring[head] = p;
			head = (head + 1) % cap;
		} else {
			ring[(head + len++) % cap] = p;
		}
		in[p] = 1;
	}
	free(in);
	free(ring);
	return misses;
}

static uint64_t sim_lru(const struct trace *t, uint32_t cap)
{
	/* A doubly linked list over page ids: head most recent. */
	uint32_t *prev = malloc(t->npages * sizeof(*prev)), *next = malloc(t->npages * sizeof(*next));
	uint8_t *in = calloc(t->npages, 1);
	uint32_t head = NONE, tail = NONE, len = 0;
	uint64_t misses = 0;

	if (!prev || !next || !in)
		abort();
	for (uint64_t i = 0; i < t->n; i++) {
		uint32_t p = t->acc[i];

		if (in[p]) {
			if (head == p)
				continue;
			/* unlink */
			next[prev[p]] = next[p];
			if (next[p] != NONE)
				prev[next[p]] = prev[p];
			else
				tail = prev[p];
		} else {
			misses++;
			if (len == cap) {
				uint32_t v = tail;

				tail = prev[v];
				if (tail != NONE)
					next[tail] = NONE;
				else
					head = NONE;
				in[v] = 0;
				len--;
			}
			in[p] = 1;
			len++;
		}
		prev[p] = NONE;
		next[p] = head;
		if (head != NONE)
			prev[head] = p;
		head = p;
		if (tail == NONE)
			tail = p;
	}
	free(prev);
	free(next);
	free(in);
	return misses;
}

/* ---- Belady's OPT ----------------------------------------------------- */

struct heap_ent {
	uint64_t key;	/* next use (index), or n + page when never again */
	uint32_t page;
};

static void heap_push(struct heap_ent *h, uint64_t *n, struct heap_ent x)
{
	uint64_t i = (*n)++;

	while (i > 0) {
		uint64_t parent = (i - 1) / 2;

		if (h[parent].key >= x.key)
			break;
		h[i] = h[parent];
		i = parent;
	}
	h[i] = x;
}

static struct heap_ent heap_pop(struct heap_ent *h, uint64_t *n)
{
	struct heap_ent top = h[0], x = h[--(*n)];
	uint64_t i = 0;

	for (;;) {
		uint64_t c = 2 * i + 1;

		if (c >= *n)
			break;
		if (c + 1 < *n && h[c + 1].key > h[c].key)
			c++;
		if (h[c].key <= x.key)
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n)
		h[i] = x;
	return top;
}

/* next_use[i]: the index of the next access to acc[i]'s page after i, or
 * n + page when there is none (distinct "infinities"). */
static uint64_t *next_uses(const struct trace *t)
{
	uint64_t *nu = malloc(t->n * sizeof(*nu)), *last = malloc(t->npages * sizeof(*last));

	if (!nu || !last)
		abort();
	for (uint32_t p = 0; p < t->npages; p++)
		last[p] = t->n + p;
	for (uint64_t i = t->n; i-- > 0;) {
		nu[i] = last[t->acc[i]];
		last[t->acc[i]] = i;
	}
	free(last);
	return nu;
}

static uint64_t sim_opt(const struct trace *t, const uint64_t *nu, uint32_t cap)
{
	/* Max-heap on next use with lazy deletion: an entry is live when its
	 * key is the page's current next use. */
	uint64_t hcap = MIN((uint64_t)t->n + 1, 4 * (uint64_t)cap + 1024);
	struct heap_ent *h = malloc(hcap * sizeof(*h));
	uint64_t *cur = malloc(t->npages * sizeof(*cur));
	uint8_t *in = calloc(t->npages, 1);
	uint64_t hn = 0, misses = 0;
	uint32_t len = 0;

	if (!h || !cur || !in)
		abort();
	for (uint64_t i = 0; i < t->n; i++) {
		uint32_t p = t->acc[i];

		if (!in[p]) {
			misses++;
			if (len == cap) {
				for (;;) {
					struct heap_ent v = heap_pop(h, &hn);

					if (in[v.page] && cur[v.page] == v.key) {
						in[v.page] = 0;
						break;
					}
				}
				len--;
			}
			in[p] = 1;
			len++;
		}
		cur[p] = nu[i];
		heap_push(h, &hn, (struct heap_ent){ .key = nu[i], .page = p });
		if (hn == hcap) {
			/* Compact: keep only live entries, at most cap of them, so
			 * the heap stays O(cap) at amortized O(1) cost. */
			uint64_t k = 0;

			for (uint64_t j = 0; j < hn; j++)
				if (in[h[j].page] && cur[h[j].page] == h[j].key)
					h[k++] = h[j];
			hn = 0;
			for (uint64_t j = 0; j < k; j++)
				heap_push(h, &hn, h[j]);
		}
	}
	free(h);
	free(cur);
	free(in);
	return misses;
}

/* ---- the engine's policies -------------------------------------------- */

static int sim_ept(const struct trace *t, const struct ept_policy_ops *ops, uint32_t cap,
		   uint64_t *misses_out, uint64_t *sampling_out)
{
	uint32_t *frame_of = malloc(t->npages * sizeof(*frame_of));
	uint32_t *page_of = malloc((size_t)cap * sizeof(*page_of));
	uint8_t *inactive = calloc(cap, 1);
	uint32_t *free_frames = malloc((size_t)cap * sizeof(*free_frames));
	unsigned out[SAMPLE_MAX];
	uint64_t misses = 0, sampling = 0;
	uint32_t nfree = cap, credit = 0;
	struct ept_policy *pol;
	int ret;

	if (!frame_of || !page_of || !inactive || !free_frames)
		abort();
	ret = ops->create(cap, &pol);
	if (ret) {
		fprintf(stderr, "cachesim: policy %s: cannot create (%s)\n", ops->name, strerror(-ret));
		return -1;
	}
	for (uint32_t p = 0; p < t->npages; p++)
		frame_of[p] = NONE;
	for (uint32_t f = 0; f < cap; f++)
		free_frames[f] = cap - 1 - f;
	for (uint64_t i = 0; i < t->n; i++) {
		uint32_t p = t->acc[i], f = frame_of[p];

		if (f != NONE) {
			if (inactive[f]) {
				inactive[f] = 0;
				ops->reference(pol, f);
				sampling++;
			}
		} else {
			misses++;
			if (!nfree) {
				unsigned v;
				bool cold;

				if (!ops->victim(pol, &v, &cold) || v >= cap || page_of[v] == NONE) {
					fprintf(stderr, "cachesim: policy %s returned no valid victim "
						"with a full cache (access %" PRIu64 ")\n", ops->name, i);
					ops->destroy(pol);
					return -1;
				}
				ops->remove(pol, v);
				/* As the engine: two samples per eviction (ept/evict.c). */
				credit = credit + 2 < cap ? credit + 2 : cap;
				frame_of[page_of[v]] = NONE;
				page_of[v] = NONE;
				inactive[v] = 0;
				free_frames[nfree++] = v;
			}
			f = free_frames[--nfree];
			frame_of[p] = f;
			page_of[f] = p;
			if (ops->set_page)
				ops->set_page(pol, f, p);
			ops->insert(pol, f, false);
		}
		if (ops->deactivate && credit) {
			unsigned n = ops->deactivate(pol, out, credit < SAMPLE_MAX ? credit : SAMPLE_MAX);

			credit -= n;
			for (unsigned k = 0; k < n; k++) {
				if (out[k] >= cap || inactive[out[k]]) {
					fprintf(stderr, "cachesim: policy %s deactivated frame %u, which "
						"is not an active frame\n", ops->name, out[k]);
					ops->destroy(pol);
					return -1;
				}
				inactive[out[k]] = 1;
			}
		}
	}
	ops->destroy(pol);
	free(frame_of);
	free(page_of);
	free(inactive);
	free(free_frames);
	*misses_out = misses;
	*sampling_out = sampling;
	return 0;
}

/* ---- main ------------------------------------------------------------- */

static int parse_sizes(const char *s, uint32_t *sizes, unsigned *n)
{
	char *copy = strdup(s), *save = NULL, *tok;

	*n = 0;
	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (parse_u64(tok, &v) || v == 0 || v > (1u << 30) || *n == MAX_SIZES) {
			free(copy);
			return -1;
		}
		sizes[(*n)++] = (uint32_t)v;
	}
	free(copy);
	return *n ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "trace", required_argument, NULL, 't' },
		{ "cache", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *trace_path = NULL, *cache_arg = NULL;
	uint32_t sizes[MAX_SIZES];
	unsigned nsizes = 0;
	bool json = false;
	struct trace t;
	uint64_t *nu;
	json_t *root = NULL, *jresults = NULL;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:c:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			trace_path = optarg;
			break;
		case 'c':
			cache_arg = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case ':':
			fprintf(stderr, "cachesim: option '%s' needs an argument\n", argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "cachesim: unknown option '%s' (see cachesim --help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cachesim: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!trace_path || !cache_arg) {
		fprintf(stderr, "cachesim: --trace and --cache are required (see cachesim --help)\n");
		return 2;
	}
	if (parse_sizes(cache_arg, sizes, &nsizes)) {
		fprintf(stderr, "cachesim: invalid --cache '%s' (expected page counts such as "
			"1024,4096)\n", cache_arg);
		return 2;
	}
	if (load_trace(trace_path, &t))
		return 1;
	nu = next_uses(&t);
	if (json) {
		root = json_pack("{s:s,s:I,s:I}", "trace", trace_path, "accesses", (json_int_t)t.n,
				 "distinct_pages", (json_int_t)t.npages);
		jresults = json_array();
	} else {
		printf("trace %s: %" PRIu64 " accesses, %u distinct pages\n", trace_path, t.n,
		       t.npages);
	}
	for (unsigned s = 0; s < nsizes; s++) {
		uint32_t cap = sizes[s];
		struct result res[MAX_RESULTS];
		unsigned nres = 0, best = NONE;
		uint64_t lru, opt;

		snprintf(res[nres].name, sizeof(res[0].name), "FIFO");
		res[nres].misses = sim_fifo(&t, cap);
		res[nres].sampling = 0;
		res[nres++].is_ept = false;
		snprintf(res[nres].name, sizeof(res[0].name), "LRU");
		lru = res[nres].misses = sim_lru(&t, cap);
		res[nres].sampling = 0;
		res[nres++].is_ept = false;
		snprintf(res[nres].name, sizeof(res[0].name), "OPT");
		opt = res[nres].misses = sim_opt(&t, nu, cap);
		res[nres].sampling = 0;
		res[nres++].is_ept = false;
		for (unsigned k = 0; ept_policies[k] && nres < MAX_RESULTS; k++) {
			struct result *r = &res[nres];

			snprintf(r->name, sizeof(r->name), "ept:%s", ept_policies[k]->name);
			r->is_ept = true;
			if (sim_ept(&t, ept_policies[k], cap, &r->misses, &r->sampling))
				return 1;
			if (best == NONE || r->misses < res[best].misses)
				best = nres;
			nres++;
		}
		if (json) {
			json_t *jp = json_object(), *jr;

			for (unsigned k = 0; k < nres; k++) {
				json_t *o = json_pack("{s:I,s:f}", "misses", (json_int_t)res[k].misses,
						      "miss_ratio", (double)res[k].misses / (double)t.n);

				if (res[k].is_ept)
					json_object_set_new(o, "sampling_faults",
							    json_integer((json_int_t)res[k].sampling));
				json_object_set_new(jp, res[k].name, o);
			}
			jr = json_pack("{s:I,s:o}", "cache_pages", (json_int_t)cap, "policies", jp);
			json_object_set_new(jr, "best_ept", best != NONE ? json_string(res[best].name)
									: json_null());
			json_object_set_new(jr, "lru_opt_gap_closed",
					    best != NONE && lru > opt
						    ? json_real((double)((int64_t)lru -
									 (int64_t)res[best].misses) /
								(double)(lru - opt))
						    : json_null());
			json_array_append_new(jresults, jr);
		} else {
			printf("\ncache %u pages\n", cap);
			printf("  %-12s %12s %9s %14s\n", "policy", "misses", "miss%", "sampling");
			for (unsigned k = 0; k < nres; k++) {
				printf("  %-12s %12" PRIu64 " %8.3f%%", res[k].name, res[k].misses,
				       100.0 * (double)res[k].misses / (double)t.n);
				if (res[k].is_ept)
					printf(" %14" PRIu64, res[k].sampling);
				putchar('\n');
			}
			if (best != NONE && lru > opt)
				printf("  best ept policy %s closes %.1f%% of the LRU-to-OPT gap\n",
				       res[best].name,
				       100.0 * (double)((int64_t)lru - (int64_t)res[best].misses) /
					       (double)(lru - opt));
			else if (best != NONE)
				printf("  no gap to close: OPT equals LRU\n");
		}
	}
	if (json) {
		char *text;

		json_object_set_new(root, "results", jresults);
		text = json_dumps(root, JSON_COMPACT);
		if (text)
			puts(text);
		free(text);
		json_decref(root);
	}
	free(nu);
	free(t.acc);
	return 0;
}

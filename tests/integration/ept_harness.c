/*
 * The shared fixtures of the ept integration suites (see ept_harness.h): the
 * servers and regions of a test, the verifying workload and its hang
 * detector, the page pattern, and the residency sampler.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ept/ept.h"
#include "memserver/client.h"
#include "tests/integration/ept_harness.h"
#include "tests/integration/harness.h"

#define WORDS (PAGE / 8)
struct daemon eh_da, eh_db;

void eh_sleep_us(unsigned us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/*
 * Hang detector for one blocking step (a workload run, a flush, a drop): if
 * it has not finished within WATCH_S seconds (an engine stall, not slowness:
 * each step takes well under a second), the test fails with the step's name
 * and the engine's counters, instead of waiting for Check's timeout.
 */
#define WATCH_S 30

struct watch {
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	const char *what;
	struct ept *e;
};

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	struct timespec ts;
	const char *mult = getenv("CK_TIMEOUT_MULTIPLIER");
	int secs = WATCH_S * (mult && atoi(mult) > 0 ? atoi(mult) : 1);
	bool done;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += secs;
	pthread_mutex_lock(&w->lock);
	while (!w->done)
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
			break;
	done = w->done;
	pthread_mutex_unlock(&w->lock);
	if (!done)
		ck_abort_msg("%s did not finish within %d s: the engine stalled", w->what, secs);
	return NULL;
}

static void watch_begin(struct watch *w, const char *what)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->what = what;
	ck_assert_int_eq(pthread_create(&w->th, NULL, watch_main, w), 0);
}

static void watch_end(struct watch *w)
{
	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->th, NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
}

int eh_flush_w(struct ept *e)
{
	struct watch w;
	int ret;

	watch_begin(&w, "ept_flush");
	ret = ept_flush(e);
	watch_end(&w);
	return ret;
}

int eh_drop_w(struct ept *e)
{
	struct watch w;
	int ret;

	watch_begin(&w, "ept_drop");
	ret = ept_drop(e);
	watch_end(&w);
	return ret;
}

/* Word i of page at version ver (ver >= 1); odd, so never all zeros. */
static inline uint64_t word(uint64_t page, uint32_t ver, unsigned i)
{
	return ((page + 1) * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)ver * 0xc2b2ae3d27d4eb4full) ^
	       ((uint64_t)i << 40) ^ i ^ 1;
}

void eh_fill_page(void *dst, uint64_t page, uint32_t ver)
{
	uint64_t *w = dst;

	for (unsigned i = 0; i < WORDS; i++)
		w[i] = word(page, ver, i) | 1;
}

/* Index of the first wrong word of a page expected at version ver (0: zeros),
 * or -1 when it is right. */
int eh_check_page(const void *src, uint64_t page, uint32_t ver)
{
	const volatile uint64_t *w = src;

	for (unsigned i = 0; i < WORDS; i++) {
		uint64_t want = ver ? word(page, ver, i) | 1 : 0;

		if (w[i] != want)
			return (int)i;
	}
	return -1;
}

/* ---- servers and regions ------------------------------------------------ */

void eh_rig_regions(struct rig *r, uint64_t npages, unsigned nsrv, bool replicated)
{
	memset(r, 0, sizeof(*r));
	r->npages = npages;
	r->nsrv = nsrv;
	r->replicated = replicated;
	r->srv[0] = &eh_da;
	r->srv[1] = &eh_db;
	for (unsigned s = 0; s < nsrv; s++) {
		/* Over the TCP listener even when the engine goes over rdma://:
		 * a test that forks after this may not inherit verbs state. */
		struct ms_client *c = client_connect(r->srv[s]->tcp_url, NULL);
		uint64_t off = replicated ? 0 : 16 * s;
		uint64_t pages = replicated ? npages : npages / nsrv + off;

		r->region[s] = 100 + s;
		ck_assert_int_eq(ms_client_create(c, r->region[s], pages * PAGE, r->token[s]), 0);
		ms_client_close(c);
	}
	if (replicated) {
		r->next = 1;
		r->ext[0] = (struct ept_extent){ .first_page = 0, .npages = npages,
						 .nreplicas = nsrv };
		for (unsigned s = 0; s < nsrv; s++) {
			struct ept_replica *rep = &r->ext[0].replicas[s];

			rep->url = r->srv[s]->url;
			rep->region = r->region[s];
			memcpy(rep->token, r->token[s], MS_TOKEN_LEN);
			rep->region_page = 0;
		}
		return;
	}
	r->next = nsrv;
	for (unsigned s = 0; s < nsrv; s++) {
		struct ept_replica *rep = &r->ext[s].replicas[0];

		r->ext[s].first_page = s * (npages / nsrv);
		r->ext[s].npages = s + 1 < nsrv ? npages / nsrv : npages - s * (npages / nsrv);
		r->ext[s].nreplicas = 1;
		rep->url = r->srv[s]->url;
		rep->region = r->region[s];
		memcpy(rep->token, r->token[s], MS_TOKEN_LEN);
		rep->region_page = 16 * s;
	}
}

void eh_rig_start(struct rig *r, struct ept_config *cfg)
{
	int ret;

	cfg->mem_size = r->npages * PAGE;
	cfg->extents = r->ext;
	cfg->nextents = r->next;
	ret = ept_create(cfg, &r->e);
	ck_assert_msg(ret == 0, "ept_create: %s", strerror(-ret));
	ck_assert_int_eq(ept_start(r->e), 0);
}

void eh_rig_stop(struct rig *r)
{
	ept_stop(r->e);
	ept_destroy(r->e);
	r->e = NULL;
}

/* Opens server s's region directly and compares every page of every extent it
 * holds with the shadow. Returns the number of wrong pages; *first names one. */
uint64_t eh_server_mismatches(struct rig *r, unsigned s, const uint32_t *shadow,
			      char *first, size_t first_len)
{
	struct ms_client *c = client_connect(r->srv[s]->url, NULL);
	uint64_t epoch, bad = 0;
	uint8_t *buf, *zero;
	uint64_t *pages;
	unsigned e0 = r->replicated ? 0 : s, e1 = e0 + 1;

	ck_assert_int_eq(ms_client_open(c, r->region[s], r->token[s], &epoch, NULL), 0);
	for (unsigned x = e0; x < e1; x++) {
		const struct ept_extent *ext = &r->ext[x];
		uint64_t base = ext->replicas[r->replicated ? s : 0].region_page;

		buf = calloc(ext->npages, PAGE);
		zero = calloc(ext->npages, 1);
		pages = calloc(ext->npages, sizeof(*pages));
		ck_assert(buf && zero && pages);
		for (uint64_t i = 0; i < ext->npages; i++)
			pages[i] = base + i;
		ck_assert_int_eq(ms_client_read(c, r->region[s], epoch, pages,
						(unsigned)ext->npages, buf, zero),
				 0);
		for (uint64_t i = 0; i < ext->npages; i++) {
			uint64_t page = ext->first_page + i;
			int w = eh_check_page(buf + i * PAGE, page, shadow[page]);

			if (w >= 0) {
				if (!bad)
					snprintf(first, first_len,
						 "page %llu (server %s region %llu page %llu): word "
						 "%d is %#llx, expected version %u%s",
						 (unsigned long long)page, r->srv[s]->url,
						 (unsigned long long)r->region[s],
						 (unsigned long long)pages[i], w,
						 (unsigned long long)((uint64_t *)(buf + i * PAGE))[w],
						 shadow[page], zero[i] ? " (never written)" : "");
				bad++;
			}
		}
		free(buf);
		free(zero);
		free(pages);
	}
	ms_client_close(c);
	return bad;
}

void eh_assert_servers_match(struct rig *r, const uint32_t *shadow, unsigned only)
{
	for (unsigned s = 0; s < r->nsrv; s++) {
		char first[400] = "";
		uint64_t bad;

		if (only != ~0u && s != only)
			continue;
		bad = eh_server_mismatches(r, s, shadow, first, sizeof(first));
		ck_assert_msg(bad == 0, "%llu pages on server %u differ from what was written: %s",
			      (unsigned long long)bad, s, first);
	}
}

/* A daemon killed on purpose: reap it and remove its scratch directory. */
void eh_daemon_kill(struct daemon *d)
{
	char path[600];
	DIR *dir;
	struct dirent *de;

	ck_assert_int_ne(daemon_signal_wait(d, SIGKILL, 10000), -1);
	dir = opendir(d->dir);
	while (dir && (de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", d->dir, de->d_name);
		unlink(path);
	}
	if (dir)
		closedir(dir);
	rmdir(d->dir);
	d->dir[0] = '\0';
}

void eh_start_servers(unsigned n)
{
	memset(&eh_da, 0, sizeof(eh_da));
	memset(&eh_db, 0, sizeof(eh_db));
	daemon_start(&eh_da, NULL);
	if (n > 1)
		daemon_start(&eh_db, NULL);
}

void eh_stop_servers(void)
{
	if (eh_da.dir[0])
		daemon_stop_clean(&eh_da);
	if (eh_db.dir[0])
		daemon_stop_clean(&eh_db);
}

/* ---- the workload ------------------------------------------------------- */

uint64_t eh_xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

void eh_wl_init(struct wl *w, struct ept *e, unsigned nthreads, unsigned write_pct, bool zipf,
		long ops)
{
	memset(w, 0, sizeof(*w));
	w->base = ept_base(e);
	w->npages = ept_mem_size(e) / PAGE;
	w->nthreads = nthreads;
	w->write_pct = write_pct;
	w->zipf = zipf;
	w->ops = ops;
	w->shadow = calloc(w->npages, sizeof(*w->shadow));
	ck_assert_ptr_nonnull(w->shadow);
	w->per_thread = w->npages / nthreads;
	atomic_flag_clear(&w->first_taken);
	if (zipf) {
		double sum = 0;

		w->cdf = malloc(w->per_thread * sizeof(*w->cdf));
		ck_assert_ptr_nonnull(w->cdf);
		for (uint64_t k = 0; k < w->per_thread; k++) {
			sum += 1.0 / pow((double)(k + 1), 0.99);
			w->cdf[k] = sum;
		}
		for (uint64_t k = 0; k < w->per_thread; k++)
			w->cdf[k] /= sum;
		/* A multiplier coprime with the count scrambles ranks over the
		 * stripe, so hot pages are not neighbours. */
		for (w->mult = 2654435761u; gcd64(w->mult, w->per_thread) != 1; w->mult += 2)
			;
	}
}

void eh_wl_free(struct wl *w)
{
	free(w->shadow);
	free(w->cdf);
	w->shadow = NULL;
	w->cdf = NULL;
}

static uint64_t wl_pick(struct wl *w, uint64_t *seed)
{
	if (w->zipf) {
		double u = (double)(eh_xs(seed) >> 11) / (double)(1ull << 53);
		uint64_t lo = 0, hi = w->per_thread - 1;

		while (lo < hi) {
			uint64_t mid = (lo + hi) / 2;

			if (w->cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo * w->mult % w->per_thread;
	}
	return eh_xs(seed) % w->per_thread;
}

static void wl_mismatch(struct wl *w, uint64_t page, int word_idx, uint32_t ver)
{
	atomic_fetch_add(&w->mismatches, 1);
	if (w->shared_mismatches)
		__atomic_add_fetch(w->shared_mismatches, 1, __ATOMIC_SEQ_CST);
	if (!atomic_flag_test_and_set(&w->first_taken))
		snprintf(w->first, sizeof(w->first), "page %llu word %d: %#llx, expected version %u",
			 (unsigned long long)page, word_idx,
			 (unsigned long long)((uint64_t *)(w->base + page * PAGE))[word_idx], ver);
}

static void *worker(void *arg)
{
	struct worker_arg *a = arg;
	struct wl *w = a->w;
	uint64_t seed = 0x9e3779b97f4a7c15ull * (a->t + 1) + 12345;
	sigset_t all;

	/* Threads touching the region block every signal (see DESIGN). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (long k = 0; w->ops < 0 || k < w->ops; k++) {
		uint64_t idx, page;

		if (atomic_load_explicit(&w->stop, memory_order_relaxed))
			break;
		if (w->sweep) {
			if ((uint64_t)k >= w->per_thread)
				break;
			idx = (uint64_t)k;
		} else {
			idx = wl_pick(w, &seed);
		}
		page = idx * w->nthreads + a->t;
		if (page >= w->npages)
			continue;
		if (eh_xs(&seed) % 100 < w->write_pct) {
			eh_fill_page(w->base + page * PAGE, page, ++w->shadow[page]);
		} else {
			int bad = eh_check_page(w->base + page * PAGE, page, w->shadow[page]);

			if (bad >= 0)
				wl_mismatch(w, page, bad, w->shadow[page]);
		}
		atomic_fetch_add_explicit(&w->progress, 1, memory_order_relaxed);
		if (w->shared_progress)
			__atomic_add_fetch(w->shared_progress, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

void eh_wl_start(struct wl *w, struct wl_run *run)
{
	ck_assert_uint_le(w->nthreads, MAXTHREADS);
	for (unsigned t = 0; t < w->nthreads; t++) {
		run->args[t] = (struct worker_arg){ .w = w, .t = t };
		ck_assert_int_eq(pthread_create(&run->th[t], NULL, worker, &run->args[t]), 0);
	}
}

void eh_wl_join(struct wl *w, struct wl_run *run)
{
	for (unsigned t = 0; t < w->nthreads; t++)
		pthread_join(run->th[t], NULL);
}

void eh_wl_run(struct wl *w)
{
	struct wl_run run;
	struct watch wd;

	watch_begin(&wd, "a workload run");
	eh_wl_start(w, &run);
	eh_wl_join(w, &run);
	watch_end(&wd);
}

void eh_assert_no_mismatch(struct wl *w, const char *phase)
{
	long n = atomic_load(&w->mismatches);

	ck_assert_msg(n == 0, "%s: %ld reads saw wrong data; first: %s", phase, n, w->first);
}

/* ---- residency sampling ------------------------------------------------- */

/* Rss (KiB) of the mapping that starts at base, from /proc/self/smaps; -1 if
 * there is none. *len gets the mapping's length. */
static long region_rss_kib(uintptr_t base, uint64_t *len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			if (in)
				break;
			in = lo == base;
			if (in)
				*len = hi - lo;
			continue;
		}
		if (in && sscanf(line, "Rss: %ld kB", &kib) == 1)
			break;
	}
	fclose(f);
	return kib;
}

static void *sampler_main(void *arg)
{
	struct sampler *s = arg;
	uintptr_t base = (uintptr_t)ept_base(s->e);

	while (!atomic_load(&s->stop)) {
		struct ept_stats st;

		if (s->smaps) {
			uint64_t len = 0;
			long kib = region_rss_kib(base, &len);

			if (kib < 0) {
				s->vma_missing = true;
			} else {
				s->vma_len = len;
				if ((uint64_t)kib / 4 > s->max_rss_pages)
					s->max_rss_pages = (uint64_t)kib / 4;
			}
		}
		ept_get_stats(s->e, &st);
		s->cap = st.capacity_pages;
		if (st.resident > s->max_resident)
			s->max_resident = st.resident;
		s->samples++;
		eh_sleep_us(500);
	}
	return NULL;
}

void eh_sampler_start(struct sampler *s, struct ept *e, bool smaps)
{
	memset(s, 0, sizeof(*s));
	s->e = e;
	s->smaps = smaps;
	ck_assert_int_eq(pthread_create(&s->th, NULL, sampler_main, s), 0);
}

void eh_sampler_stop(struct sampler *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
}

void eh_stats(struct ept *e, struct ept_stats *st)
{
	ept_get_stats(e, st);
}

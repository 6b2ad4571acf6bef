/*
 * Integration tests of the virtual cache (ept/): the engine over real memserver
 * daemons (loopback TCP) with real userfaultfd, driven by a small
 * multi-threaded workload.
 *
 * The workload: thread t of N owns the pages p with p % N == t, so each page
 * has one writer and its expected contents are known exactly. A shadow array
 * holds each page's version; a write bumps it and fills the whole page from
 * (page, version); a read checks every word. Pages never written read as
 * zeros. After a run, every region is opened directly with the client library
 * and each page compared with the shadow.
 *
 * Covered: integrity (uniform and zipf, both policies, prefetch on and off,
 * random completion delays, two servers), write-back correctness, residency
 * (the region's Rss from smaps and the engine's frame count never exceed the
 * cache), clean pages are never written back, never-written pages cost no
 * server read, drop leaves nothing resident, flush makes the servers hold what
 * the region holds (zeros too), reads survive the loss of one replica, the loss
 * of the only replica is fatal and reported (in a forked child, reaped with a
 * timeout), clean shutdown with faults in flight, and ept_create's errors.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ept/ept.h"
#include "memserver/client.h"
#include "tests/integration/harness.h"

#define PAGE EPT_PAGE_SIZE
#define WORDS (PAGE / 8)
#define MAXTHREADS 8

static struct daemon DA, DB;

static void sleep_us(unsigned us)
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

static int flush_w(struct ept *e)
{
	struct watch w;
	int ret;

	watch_begin(&w, "ept_flush");
	ret = ept_flush(e);
	watch_end(&w);
	return ret;
}

static int drop_w(struct ept *e)
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

static void fill_page(void *dst, uint64_t page, uint32_t ver)
{
	uint64_t *w = dst;

	for (unsigned i = 0; i < WORDS; i++)
		w[i] = word(page, ver, i) | 1;
}

/* Index of the first wrong word of a page expected at version ver (0: zeros),
 * or -1 when it is right. */
static int check_page(const void *src, uint64_t page, uint32_t ver)
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

/* The regions behind one engine: either one extent per server (extent i on
 * server i, starting at region page 16 * i to exercise the offset), or one
 * extent replicated on every server. */
struct rig {
	struct daemon *srv[2];
	unsigned nsrv;
	bool replicated;
	uint64_t npages;
	struct ept_extent ext[2];
	unsigned next;
	uint64_t region[2];
	uint8_t token[2][MS_TOKEN_LEN];
	struct ept *e;
};

static void rig_regions(struct rig *r, uint64_t npages, unsigned nsrv, bool replicated)
{
	memset(r, 0, sizeof(*r));
	r->npages = npages;
	r->nsrv = nsrv;
	r->replicated = replicated;
	r->srv[0] = &DA;
	r->srv[1] = &DB;
	for (unsigned s = 0; s < nsrv; s++) {
		struct ms_client *c = client_connect(r->srv[s]->url, NULL);
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

static void rig_start(struct rig *r, struct ept_config *cfg)
{
	int ret;

	cfg->mem_size = r->npages * PAGE;
	cfg->extents = r->ext;
	cfg->nextents = r->next;
	ret = ept_create(cfg, &r->e);
	ck_assert_msg(ret == 0, "ept_create: %s", strerror(-ret));
	ck_assert_int_eq(ept_start(r->e), 0);
}

static void rig_stop(struct rig *r)
{
	ept_stop(r->e);
	ept_destroy(r->e);
	r->e = NULL;
}

/* Opens server s's region directly and compares every page of every extent it
 * holds with the shadow. Returns the number of wrong pages; *first names one. */
static uint64_t server_mismatches(struct rig *r, unsigned s, const uint32_t *shadow,
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
			int w = check_page(buf + i * PAGE, page, shadow[page]);

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

static void assert_servers_match(struct rig *r, const uint32_t *shadow, unsigned only)
{
	for (unsigned s = 0; s < r->nsrv; s++) {
		char first[400] = "";
		uint64_t bad;

		if (only != ~0u && s != only)
			continue;
		bad = server_mismatches(r, s, shadow, first, sizeof(first));
		ck_assert_msg(bad == 0, "%llu pages on server %u differ from what was written: %s",
			      (unsigned long long)bad, s, first);
	}
}

/* A daemon killed on purpose: reap it and remove its scratch directory. */
static void daemon_kill(struct daemon *d)
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

static void start_servers(unsigned n)
{
	memset(&DA, 0, sizeof(DA));
	memset(&DB, 0, sizeof(DB));
	daemon_start(&DA, NULL);
	if (n > 1)
		daemon_start(&DB, NULL);
}

static void stop_servers(void)
{
	if (DA.dir[0])
		daemon_stop_clean(&DA);
	if (DB.dir[0])
		daemon_stop_clean(&DB);
}

/* ---- the workload ------------------------------------------------------- */

struct wl {
	uint8_t *base;
	uint64_t npages;
	unsigned nthreads;
	uint32_t *shadow;	/* page -> version; only its owner thread touches it */
	unsigned write_pct;
	bool zipf;
	bool sweep;		/* each thread visits its pages in order, once */
	long ops;		/* per thread; < 0: until stop */
	atomic_bool stop;
	atomic_long progress;
	atomic_long mismatches;
	atomic_flag first_taken;
	char first[300];
	double *cdf;		/* zipf: cumulative weights of ranks */
	uint64_t per_thread;
	uint64_t mult;		/* rank -> index scramble */
	long *shared_mismatches; /* also count here when set (forked child) */
	long *shared_progress;
};

static uint64_t xs(uint64_t *s)
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

static void wl_init(struct wl *w, struct ept *e, unsigned nthreads, unsigned write_pct, bool zipf,
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

static void wl_free(struct wl *w)
{
	free(w->shadow);
	free(w->cdf);
	w->shadow = NULL;
	w->cdf = NULL;
}

static uint64_t wl_pick(struct wl *w, uint64_t *seed)
{
	if (w->zipf) {
		double u = (double)(xs(seed) >> 11) / (double)(1ull << 53);
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
	return xs(seed) % w->per_thread;
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

struct worker_arg {
	struct wl *w;
	unsigned t;
};

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
		if (xs(&seed) % 100 < w->write_pct) {
			fill_page(w->base + page * PAGE, page, ++w->shadow[page]);
		} else {
			int bad = check_page(w->base + page * PAGE, page, w->shadow[page]);

			if (bad >= 0)
				wl_mismatch(w, page, bad, w->shadow[page]);
		}
		atomic_fetch_add_explicit(&w->progress, 1, memory_order_relaxed);
		if (w->shared_progress)
			__atomic_add_fetch(w->shared_progress, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

struct wl_run {
	pthread_t th[MAXTHREADS];
	struct worker_arg args[MAXTHREADS];
};

static void wl_start(struct wl *w, struct wl_run *run)
{
	ck_assert_uint_le(w->nthreads, MAXTHREADS);
	for (unsigned t = 0; t < w->nthreads; t++) {
		run->args[t] = (struct worker_arg){ .w = w, .t = t };
		ck_assert_int_eq(pthread_create(&run->th[t], NULL, worker, &run->args[t]), 0);
	}
}

static void wl_join(struct wl *w, struct wl_run *run)
{
	for (unsigned t = 0; t < w->nthreads; t++)
		pthread_join(run->th[t], NULL);
}

static void wl_run(struct wl *w)
{
	struct wl_run run;
	struct watch wd;

	watch_begin(&wd, "a workload run");
	wl_start(w, &run);
	wl_join(w, &run);
	watch_end(&wd);
}

static void assert_no_mismatch(struct wl *w, const char *phase)
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

struct sampler {
	struct ept *e;
	bool smaps;
	atomic_bool stop;
	pthread_t th;
	uint64_t cap;
	uint64_t max_rss_pages, max_resident, samples;
	uint64_t vma_len;
	bool vma_missing;
};

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
		sleep_us(500);
	}
	return NULL;
}

static void sampler_start(struct sampler *s, struct ept *e, bool smaps)
{
	memset(s, 0, sizeof(*s));
	s->e = e;
	s->smaps = smaps;
	ck_assert_int_eq(pthread_create(&s->th, NULL, sampler_main, s), 0);
}

static void sampler_stop(struct sampler *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
}

static void stats(struct ept *e, struct ept_stats *st)
{
	ept_get_stats(e, st);
}

/* ---- integrity and write-back ------------------------------------------- */

/*
 * Case i: bit 0 zipf, bit 1 clock (else fifo), bit 2 prefetch, bit 3 random
 * completion delays. Two servers, one extent each; region 8x the cache; four
 * threads, half writes. Every read is verified; then flush, stop, destroy,
 * and every page on the servers must match the shadow.
 */
START_TEST(integrity)
{
	bool zipf = _i & 1, clock = _i & 2, prefetch = _i & 4, delay = _i & 8;
	struct ept_config cfg = { .cache_size = 256 * PAGE, .policy = clock ? "clock" : "fifo",
				  .prefetch = prefetch, .test_delay_us = delay ? 400 : 0 };
	struct rig r;
	struct wl w;
	struct sampler smp;
	struct ept_stats st;

	start_servers(2);
	rig_regions(&r, 2048, 2, false);
	rig_start(&r, &cfg);
	wl_init(&w, r.e, 4, 50, zipf, delay ? 1500 : 4000);
	sampler_start(&smp, r.e, false);
	wl_run(&w);
	sampler_stop(&smp);
	assert_no_mismatch(&w, "integrity run");
	ck_assert_msg(smp.max_resident <= smp.cap,
		      "engine held %llu frames, capacity %llu (the documented bound is 0 extra "
		      "pages: frames include every page held)",
		      (unsigned long long)smp.max_resident, (unsigned long long)smp.cap);
	ck_assert_int_eq(flush_w(r.e), 0);
	stats(r.e, &st);
	ck_assert_ptr_null(ept_error(r.e));
	ck_assert_uint_gt(st.faults_missing, 0);
	ck_assert_uint_gt(st.evictions, 0);
	ck_assert_uint_gt(st.pages_written_back, 0);
	ck_assert_uint_gt(st.faults_remote, 0);
	ck_assert_uint_le(st.resident_peak, st.capacity_pages);
	if (!prefetch)
		ck_assert_uint_eq(st.prefetched, 0);
	rig_stop(&r);
	assert_servers_match(&r, w.shadow, ~0u);
	wl_free(&w);
	stop_servers();
}
END_TEST

/* ---- residency ---------------------------------------------------------- */

/*
 * The region's resident set, as the kernel counts it (Rss of its mapping in
 * /proc/self/smaps) and as the engine counts it (frames in use), never exceeds
 * the cache. A 2 MiB region has one page table when the kernel aligns it (as
 * 6.7+ does for 2 MiB anonymous mappings): the smaps walk then holds that
 * table's lock throughout and is an exact snapshot.
 */
START_TEST(residency)
{
	struct ept_config cfg = { .cache_size = 64 * PAGE, .policy = _i ? "clock" : "fifo",
				  .prefetch = true };
	struct rig r;
	struct wl w;
	struct sampler smp;

	start_servers(1);
	rig_regions(&r, 512, 1, false);
	rig_start(&r, &cfg);
	wl_init(&w, r.e, 4, 50, false, 3000);
	sampler_start(&smp, r.e, true);
	wl_run(&w);
	sampler_stop(&smp);
	assert_no_mismatch(&w, "residency run");
	ck_assert_msg(!smp.vma_missing && smp.vma_len == 512 * PAGE,
		      "no mapping of %u bytes starts at the region's base in smaps",
		      512 * PAGE);
	ck_assert_uint_gt(smp.samples, 3);
	ck_assert_msg(smp.max_rss_pages <= smp.cap,
		      "the region's Rss reached %llu pages with a cache of %llu (the documented "
		      "bound is 0 extra pages: frames include every page held; base %p, %s)",
		      (unsigned long long)smp.max_rss_pages, (unsigned long long)smp.cap,
		      ept_base(r.e),
		      (uintptr_t)ept_base(r.e) % (2u << 20) ? "not 2 MiB aligned" : "2 MiB aligned");
	ck_assert_msg(smp.max_resident <= smp.cap,
		      "the engine held %llu frames with a cache of %llu (the documented bound is "
		      "0 extra pages: frames include every page held)",
		      (unsigned long long)smp.max_resident, (unsigned long long)smp.cap);
	rig_stop(&r);
	wl_free(&w);
	stop_servers();
}
END_TEST

/* ---- clean pages -------------------------------------------------------- */

/*
 * Pages written back and evicted, then only read, are never written back
 * again: not when evicted by the read pass, not by a second drop.
 */
START_TEST(read_only_pass_writes_nothing)
{
	struct ept_config cfg = { .cache_size = 128 * PAGE, .policy = _i ? "clock" : "fifo" };
	struct ept_stats s1, s2, s3;
	struct rig r;
	struct wl w;

	start_servers(1);
	rig_regions(&r, 1024, 1, false);
	rig_start(&r, &cfg);
	wl_init(&w, r.e, 4, 100, false, -1);
	w.sweep = true; /* every page written once */
	wl_run(&w);
	ck_assert_int_eq(drop_w(r.e), 0);
	stats(r.e, &s1);
	ck_assert_uint_eq(s1.resident, 0);
	ck_assert_uint_ge(s1.pages_written_back, 1024);

	/* Read everything back (twice the cache, so the pass evicts). */
	w.write_pct = 0;
	wl_run(&w);
	assert_no_mismatch(&w, "read pass");
	stats(r.e, &s2);
	ck_assert_uint_ge(s2.pages_fetched, 1024);
	ck_assert_msg(s2.pages_written_back == s1.pages_written_back,
		      "a read-only pass wrote back %llu pages",
		      (unsigned long long)(s2.pages_written_back - s1.pages_written_back));
	ck_assert_uint_gt(s2.skipped_clean, s1.skipped_clean);

	ck_assert_int_eq(drop_w(r.e), 0);
	stats(r.e, &s3);
	ck_assert_msg(s3.pages_written_back == s1.pages_written_back,
		      "dropping clean pages wrote back %llu pages",
		      (unsigned long long)(s3.pages_written_back - s1.pages_written_back));
	ck_assert_uint_gt(s3.skipped_clean, s2.skipped_clean);
	ck_assert_uint_eq(s3.resident, 0);
	rig_stop(&r);
	assert_servers_match(&r, w.shadow, ~0u);
	wl_free(&w);
	stop_servers();
}
END_TEST

/* ---- zero pages --------------------------------------------------------- */

static uint64_t server_op_count(const char *url, unsigned op)
{
	struct ms_client *c = client_connect(url, NULL);
	struct ms_stat s;

	ck_assert_int_eq(ms_client_stat(c, &s), 0);
	ms_client_close(c);
	return s.ops[op].count;
}

/*
 * Never-written pages are zero-filled locally: touching 10000 of them sends no
 * READ to the server; writing zeros into them sends no WRITE.
 */
START_TEST(zero_pages_cost_no_round_trip)
{
	struct ept_config cfg = { .cache_size = 1024 * PAGE, .policy = "clock",
				  .prefetch = false };
	uint64_t reads0, writes0, n = 10000;
	struct ept_stats st;
	struct rig r;
	uint8_t *base;

	start_servers(1);
	rig_regions(&r, 12000, 1, false);
	rig_start(&r, &cfg);
	base = ept_base(r.e);
	reads0 = server_op_count(DA.url, MS_OP_READ);
	writes0 = server_op_count(DA.url, MS_OP_WRITE);
	for (uint64_t p = 0; p < n; p++)
		if (check_page(base + p * PAGE, p, 0) >= 0)
			ck_abort_msg("never-written page %llu is not zeros", (unsigned long long)p);
	stats(r.e, &st);
	ck_assert_uint_eq(server_op_count(DA.url, MS_OP_READ), reads0);
	ck_assert_uint_eq(st.faults_zero_fill, n);
	ck_assert_uint_eq(st.faults_remote, 0);
	ck_assert_uint_eq(st.pages_fetched, 0);
	ck_assert_uint_gt(st.evictions, 0); /* 10000 pages through a 1024-page cache */

	/* Zeros written into zero pages: nothing to send, even when evicted. */
	for (uint64_t p = 0; p < 2000; p++)
		memset(base + p * PAGE, 0, PAGE);
	ck_assert_int_eq(drop_w(r.e), 0);
	stats(r.e, &st);
	ck_assert_uint_eq(st.pages_written_back, 0);
	ck_assert_uint_eq(server_op_count(DA.url, MS_OP_WRITE), writes0);
	ck_assert_uint_eq(server_op_count(DA.url, MS_OP_READ), reads0);
	rig_stop(&r);
	stop_servers();
}
END_TEST

/* ---- flush and drop contracts ------------------------------------------- */

/*
 * ept_flush "waits for the servers to have them all": a page written back
 * once and then zeroed must read as zeros from the server after a flush, or a
 * restarted or migrated VMM (which starts from the servers) sees stale data.
 */
START_TEST(flush_sends_zeroed_page)
{
	struct ept_config cfg = { .cache_size = 64 * PAGE, .policy = "clock" };
	struct ept_stats st;
	struct rig r;
	uint8_t *base;
	uint32_t *shadow;

	start_servers(1);
	rig_regions(&r, 256, 1, false);
	shadow = calloc(256, sizeof(*shadow));
	ck_assert_ptr_nonnull(shadow);
	rig_start(&r, &cfg);
	base = ept_base(r.e);
	fill_page(base + 5 * PAGE, 5, 1);
	fill_page(base + 6 * PAGE, 6, 1);
	ck_assert_int_eq(flush_w(r.e), 0);
	/* The servers hold version 1 of pages 5 and 6; now page 5 is zeroed. */
	memset(base + 5 * PAGE, 0, PAGE);
	shadow[6] = 1;
	ck_assert_int_eq(flush_w(r.e), 0);
	stats(r.e, &st);
	ck_assert_ptr_null(ept_error(r.e));
	/* Within the engine the zeros are kept (read back after a drop). */
	ck_assert_int_eq(drop_w(r.e), 0);
	ck_assert_int_eq(check_page(base + 5 * PAGE, 5, 0), -1);
	ck_assert_int_eq(check_page(base + 6 * PAGE, 6, 1), -1);
	rig_stop(&r);
	{
		char first[400] = "";
		uint64_t bad = server_mismatches(&r, 0, shadow, first, sizeof(first));

		ck_assert_msg(bad == 0,
			      "after ept_flush the server does not hold what the region holds "
			      "(skipped_zero %llu): %s",
			      (unsigned long long)st.skipped_zero, first);
	}
	free(shadow);
	stop_servers();
}
END_TEST

/* Waits (bounded) until every thread of pid is stopped (state T). */
static void wait_stopped(pid_t pid)
{
	char path[64];
	uint64_t deadline = now_ns() + 10000000000ull;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	for (;;) {
		DIR *d = opendir(path);
		struct dirent *de;
		bool all = d != NULL;

		while (d && (de = readdir(d))) {
			char stat[400], line[512];
			FILE *f;

			if (de->d_name[0] == '.')
				continue;
			snprintf(stat, sizeof(stat), "%s/%s/stat", path, de->d_name);
			f = fopen(stat, "r");
			if (f && fgets(line, sizeof(line), f)) {
				char *rp = strrchr(line, ')');

				if (!rp || rp[2] != 'T')
					all = false;
			}
			if (f)
				fclose(f);
		}
		if (d)
			closedir(d);
		if (all)
			return;
		ck_assert_msg(now_ns() < deadline, "memserver %d did not stop", (int)pid);
		sleep_us(1000);
	}
}

/*
 * ept_drop leaves "nothing resident", even when prefetches are in flight: the
 * server is stopped (SIGSTOP) so that the prefetch of written pages, started
 * by a stream of faults on never-written pages, is still out during the drop.
 * (Faults on written pages would wait for the stopped server: none is made.)
 */
static int drop_thread_ret;

static void *drop_thread(void *arg)
{
	drop_thread_ret = drop_w(arg);
	return NULL;
}

START_TEST(drop_leaves_nothing_resident)
{
	struct ept_config cfg = { .cache_size = 64 * PAGE, .policy = "clock", .prefetch = true };
	struct ept_stats s0, s1, s2;
	struct rig r;
	uint8_t *base;
	uint64_t deadline;

	start_servers(1);
	rig_regions(&r, 512, 1, false);
	rig_start(&r, &cfg);
	base = ept_base(r.e);
	/* Written in a shuffled order: no stream, so no prefetch yet (and no
	 * prefetched page evicted unused, which would shrink the depth). */
	{
		uint64_t order[60], seed = 77;

		for (unsigned i = 0; i < 60; i++)
			order[i] = 40 + i;
		for (unsigned i = 59; i > 0; i--) {
			unsigned j = (unsigned)(xs(&seed) % (i + 1));
			uint64_t t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		for (unsigned i = 0; i < 60; i++)
			fill_page(base + order[i] * PAGE, order[i], 1);
	}
	ck_assert_int_eq(drop_w(r.e), 0);

	/* Only never-written pages are touched while the server is stopped
	 * (they never wait for it); the stream over them runs into the written
	 * pages, whose prefetches stay in flight. */
	ck_assert_int_eq(kill(DA.pid, SIGSTOP), 0);
	wait_stopped(DA.pid);
	for (uint64_t p = 30; p < 40; p++)
		ck_assert_int_eq(check_page(base + p * PAGE, p, 0), -1);
	stats(r.e, &s0);
	/* The drop waits for the prefetches in flight: let the server go on
	 * while it waits. */
	{
		pthread_t t;
		int ret;

		ck_assert_int_eq(pthread_create(&t, NULL, drop_thread, r.e), 0);
		sleep_us(200000);
		ck_assert_int_eq(kill(DA.pid, SIGCONT), 0);
		pthread_join(t, NULL);
		ret = drop_thread_ret;
		ck_assert_int_eq(ret, 0);
	}
	stats(r.e, &s1);
	deadline = now_ns() + 10000000000ull;
	do {
		sleep_us(5000);
		stats(r.e, &s2);
	} while (s2.pages_fetched == s0.pages_fetched && now_ns() < deadline);
	sleep_us(20000);
	stats(r.e, &s2);
	ck_assert_msg(s0.prefetched > 0 && s2.pages_fetched > s0.pages_fetched,
		      "no prefetch was in flight during the drop (prefetched %llu, fetched %llu)",
		      (unsigned long long)s0.prefetched, (unsigned long long)s2.pages_fetched);
	ck_assert_msg(s1.resident == 0 && s2.resident == 0,
		      "after ept_drop %llu frames were held (prefetches in flight), %llu once they "
		      "completed: ept_drop must wait for fetches in flight and evict them too",
		      (unsigned long long)s1.resident, (unsigned long long)s2.resident);
	/* Whatever is resident is right. */
	for (uint64_t p = 40; p < 100; p++)
		ck_assert_int_eq(check_page(base + p * PAGE, p, 1), -1);
	rig_stop(&r);
	stop_servers();
}
END_TEST

/*
 * A second engine over the same regions (a restarted or migrated VMM, which
 * "starts with a cold cache and faults pages in from the memory servers")
 * must see what the first one wrote and flushed.
 */
START_TEST(reopen_sees_written_pages)
{
	struct ept_config cfg = { .cache_size = 64 * PAGE, .policy = "clock" };
	struct rig r;
	uint8_t *base;
	uint64_t bad = 0, first_bad = 0;

	start_servers(2);
	rig_regions(&r, 256, 2, false);
	rig_start(&r, &cfg);
	base = ept_base(r.e);
	for (uint64_t p = 0; p < 256; p += 3)
		fill_page(base + p * PAGE, p, 1);
	ck_assert_int_eq(flush_w(r.e), 0);
	rig_stop(&r);
	/* The servers hold it... */
	{
		uint32_t shadow[256] = { 0 };

		for (uint64_t p = 0; p < 256; p += 3)
			shadow[p] = 1;
		assert_servers_match(&r, shadow, ~0u);
	}
	/* ...and a new engine must show it. */
	rig_start(&r, &cfg);
	base = ept_base(r.e);
	for (uint64_t p = 0; p < 256; p++)
		if (check_page(base + p * PAGE, p, p % 3 == 0 ? 1 : 0) >= 0 && !bad++)
			first_bad = p;
	rig_stop(&r);
	ck_assert_msg(bad == 0,
		      "a new engine over regions holding data reads %llu of 86 written pages "
		      "wrong (first: page %llu): it starts believing no page was ever written "
		      "(the remote bitmap starts empty and ept_config cannot say otherwise), so "
		      "it zero-fills them without asking the servers",
		      (unsigned long long)bad, (unsigned long long)first_bad);
	stop_servers();
}
END_TEST

/* ---- replicas and failures ---------------------------------------------- */

/*
 * One extent replicated on two servers. Written and flushed, dropped, then the
 * first replica's server is SIGKILLed: a read-only pass is served from the
 * other replica with the right data and no fatal error; then, degraded,
 * writes go on to the surviving replica, which ends up holding everything.
 */
START_TEST(replica_survives_server_loss)
{
	struct ept_config cfg = { .cache_size = 128 * PAGE, .policy = "clock", .prefetch = _i };
	struct ept_stats st;
	struct rig r;
	struct wl w;

	start_servers(2);
	rig_regions(&r, 1024, 2, true);
	rig_start(&r, &cfg);
	wl_init(&w, r.e, 4, 100, false, -1);
	w.sweep = true;
	wl_run(&w); /* every page version 1 */
	w.sweep = false;
	w.write_pct = 50;
	w.ops = 1000;
	wl_run(&w);
	assert_no_mismatch(&w, "write phase");
	ck_assert_int_eq(flush_w(r.e), 0);
	ck_assert_int_eq(drop_w(r.e), 0);

	daemon_kill(&DA);
	w.write_pct = 0;
	w.sweep = true;
	w.ops = -1;
	wl_run(&w);
	assert_no_mismatch(&w, "read pass after losing a replica");
	w.sweep = false;
	w.ops = 2000;
	wl_run(&w);
	assert_no_mismatch(&w, "random reads after losing a replica");
	stats(r.e, &st);
	ck_assert_msg(ept_error(r.e) == NULL, "engine failed: %s", ept_error(r.e));
	ck_assert_uint_ge(st.pages_fetched, 1024);
	ck_assert_uint_eq(st.servers_failed, 1);
	/* Degraded: writes go on to the surviving replica. */
	w.write_pct = 50;
	w.ops = 2000;
	wl_run(&w);
	assert_no_mismatch(&w, "mixed run on one replica");
	ck_assert_int_eq(flush_w(r.e), 0);
	ck_assert_msg(ept_error(r.e) == NULL, "engine failed: %s", ept_error(r.e));
	rig_stop(&r);
	assert_servers_match(&r, w.shadow, 1);
	wl_free(&w);
	stop_servers();
}
END_TEST

/* Shared with the forked child that runs the engine. */
struct fatal_box {
	long progress;
	long mismatches;
	long mismatches_at_fatal;
	int fatal_calls;
	char msg[600];
};

static struct fatal_box *box;

static void child_on_fatal(void *ctx, const char *message)
{
	(void)ctx;
	box->mismatches_at_fatal = __atomic_load_n(&box->mismatches, __ATOMIC_SEQ_CST);
	box->fatal_calls++;
	snprintf(box->msg, sizeof(box->msg), "%s", message);
	_exit(3);
}

/* The child: engine plus four endless workers; only on_fatal ends it. */
static void __attribute__((noreturn)) fatal_child(struct rig *r)
{
	struct ept_config cfg = { .mem_size = r->npages * PAGE, .cache_size = 128 * PAGE,
				  .extents = r->ext, .nextents = r->next, .policy = "clock",
				  .prefetch = true, .timeout_ms = 2000,
				  .on_fatal = child_on_fatal };
	static struct wl w;
	struct wl_run run;
	struct ept *e;

	if (ept_create(&cfg, &e) || ept_start(e))
		_exit(10);
	wl_init(&w, e, 4, 50, false, -1);
	w.shared_mismatches = &box->mismatches;
	w.shared_progress = &box->progress;
	wl_start(&w, &run);
	for (int i = 0; i < 600; i++)
		sleep_us(100000);
	_exit(11); /* no fatal within a minute */
}

/*
 * The only replica's server is SIGKILLed mid-run: the engine calls on_fatal
 * with a message naming the server and a page, and no reader ever saw wrong
 * data. The engine runs in a forked child (its workers stay blocked by
 * design) that exits from on_fatal; the test reaps it with a timeout.
 */
START_TEST(server_loss_is_fatal)
{
	struct rig r;
	pid_t pid;
	int status = 0;
	uint64_t deadline;

	box = mmap(NULL, sizeof(*box), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(box, MAP_FAILED);
	memset(box, 0, sizeof(*box));
	start_servers(1);
	rig_regions(&r, 2048, 1, false);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		fatal_child(&r);
	/* Let it run for a while. */
	deadline = now_ns() + 30000000000ull;
	while (__atomic_load_n(&box->progress, __ATOMIC_RELAXED) < 4000 && now_ns() < deadline &&
	       waitpid(pid, &status, WNOHANG) == 0)
		sleep_us(2000);
	ck_assert_msg(__atomic_load_n(&box->progress, __ATOMIC_RELAXED) >= 4000,
		      "the child made no progress (status 0x%x)", status);
	daemon_kill(&DA);
	/* Reap the child with a bound: a hang fails, it does not block. */
	deadline = now_ns() + 30000000000ull;
	for (;;) {
		pid_t got = waitpid(pid, &status, WNOHANG);

		if (got == pid)
			break;
		if (now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			ck_abort_msg("the engine did not report the lost server within 30 s");
		}
		sleep_us(5000);
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 3,
		      "child status 0x%x, expected exit 3 from on_fatal", status);
	ck_assert_int_eq(box->fatal_calls, 1);
	ck_assert_msg(strstr(box->msg, DA.url) || strstr(box->msg, "tcp://127.0.0.1:"),
		      "fatal message names no server: %s", box->msg);
	ck_assert_msg(strstr(box->msg, "page "), "fatal message names no page: %s", box->msg);
	ck_assert_msg(box->mismatches_at_fatal == 0 && box->mismatches == 0,
		      "%ld wrong reads before the fatal error (%ld in all)", box->mismatches_at_fatal,
		      box->mismatches);
	munmap(box, sizeof(*box));
}
END_TEST

/* ---- shutdown ----------------------------------------------------------- */

/*
 * Threads running with faults in flight (completions delayed), a stop flag,
 * join, ept_stop, ept_destroy: no hang (Check's timeout), no leak (SAN=1).
 */
START_TEST(clean_shutdown_with_faults_in_flight)
{
	struct ept_config cfg = { .cache_size = 128 * PAGE, .policy = _i ? "clock" : "fifo",
				  .prefetch = true, .test_delay_us = 3000 };
	struct ept_stats st;
	struct rig r;
	struct wl w;
	struct wl_run run;
	uint64_t deadline;

	start_servers(2);
	rig_regions(&r, 2048, 2, false);
	rig_start(&r, &cfg);
	wl_init(&w, r.e, 4, 50, false, -1);
	wl_start(&w, &run);
	deadline = now_ns() + 20000000000ull;
	while (atomic_load(&w.progress) < 3000 && now_ns() < deadline)
		sleep_us(1000);
	stats(r.e, &st);
	atomic_store(&w.stop, true);
	wl_join(&w, &run);
	assert_no_mismatch(&w, "run before shutdown");
	ck_assert_uint_gt(st.faults_missing, 0);
	rig_stop(&r);
	wl_free(&w);
	stop_servers();
}
END_TEST

/* ---- ept_create errors -------------------------------------------------- */

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int try_create(const struct ept_config *cfg)
{
	struct ept *e = NULL;
	int ret = ept_create(cfg, &e);

	if (ret == 0)
		ept_destroy(e);
	return ret;
}

START_TEST(create_errors)
{
	struct rig r;
	struct ept_extent ext[3];
	struct ept_config good, cfg;
	unsigned fds;
	int lfd;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t salen = sizeof(sa);
	char refused[64];

	start_servers(1);
	rig_regions(&r, 1024, 1, false);
	good = (struct ept_config){ .mem_size = 1024 * PAGE, .cache_size = 64 * PAGE,
				    .extents = r.ext, .nextents = 1 };
	/* The good configuration works (and closes what it opened). */
	ck_assert_int_eq(try_create(&good), 0);
	fds = open_fds();

#define EXPECT(errno_, ...)                                                            \
	do {                                                                           \
		cfg = good;                                                            \
		__VA_ARGS__;                                                           \
		int ret_ = try_create(&cfg);                                           \
		ck_assert_msg(ret_ == (errno_), "%s: got %d (%s), expected %d", #__VA_ARGS__, \
			      ret_, strerror(-ret_), (errno_));                        \
		ck_assert_uint_eq(open_fds(), fds);                                    \
	} while (0)

	/* Sizes. */
	EXPECT(-EINVAL, cfg.mem_size = 0);
	EXPECT(-EINVAL, cfg.mem_size = 1024 * PAGE + 1);
	EXPECT(-EINVAL, cfg.cache_size = 64 * PAGE + 512);
	EXPECT(-EINVAL, cfg.cache_size = 63 * PAGE);
	EXPECT(-EINVAL, cfg.cache_size = 0);
	/* Policy. */
	EXPECT(-EINVAL, cfg.policy = "lru");
	EXPECT(-EINVAL, cfg.policy = "");
	EXPECT(0, cfg.policy = "fifo");
	EXPECT(0, cfg.policy = "clock");
	/* Extents that do not tile [0, mem_size). */
	EXPECT(-EINVAL, cfg.nextents = 0);
	EXPECT(-EINVAL, cfg.extents = NULL);
	EXPECT(-EINVAL, cfg.mem_size = 2048 * PAGE);	/* covers half */
	EXPECT(-EINVAL, cfg.mem_size = 512 * PAGE);	/* covers more */
	ext[0] = r.ext[0];
	ext[0].npages = 512;
	ext[1] = r.ext[0];
	ext[1].first_page = 513;			/* a gap */
	ext[1].npages = 511;
	EXPECT(-EINVAL, cfg.extents = ext; cfg.nextents = 2);
	ext[1].first_page = 500;			/* an overlap */
	ext[1].npages = 524;
	EXPECT(-EINVAL, cfg.extents = ext; cfg.nextents = 2);
	ext[1].first_page = 512;			/* exact: fine, in any order */
	ext[1].npages = 512;
	ext[1].replicas[0].region_page = 512;
	ext[2] = ext[0];
	EXPECT(0, cfg.extents = &ext[1]; cfg.nextents = 2);
	ext[0].npages = 0;
	EXPECT(-EINVAL, cfg.extents = ext; cfg.nextents = 2);
	ext[0] = ext[2];
	ext[0].nreplicas = 0;
	EXPECT(-EINVAL, cfg.extents = ext; cfg.nextents = 2);
	ext[0].nreplicas = EPT_MAX_REPLICAS + 1;
	EXPECT(-EINVAL, cfg.extents = ext; cfg.nextents = 2);
	ext[0] = ext[2];
	/* The region is too small for the extent. */
	ext[1].replicas[0].region_page = 513;
	EXPECT(-EINVAL, cfg.extents = ext; cfg.nextents = 2);
	ext[1].replicas[0].region_page = 512;
	/* A wrong token, an unknown region. */
	ext[0].replicas[0].token[0] ^= 1;
	EXPECT(-EACCES, cfg.extents = ext; cfg.nextents = 2);
	ext[0] = ext[2];
	ext[0].replicas[0].region = 999;
	EXPECT(-ENOENT, cfg.extents = ext; cfg.nextents = 2);
	ext[0] = ext[2];
	/* Servers: a bad URL, one nobody listens on (a bound socket that does
	 * not listen), a second server that fails after the first connected. */
	ext[0].replicas[0].url = "bogus://127.0.0.1:1";
	EXPECT(-EINVAL, cfg.extents = ext; cfg.nextents = 2);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);
	snprintf(refused, sizeof(refused), "tcp://127.0.0.1:%u", ntohs(sa.sin_port));
	fds = open_fds();
	ext[0].replicas[0].url = refused;
	EXPECT(-ECONNREFUSED, cfg.extents = ext; cfg.nextents = 2);
	ext[0] = ext[2];
	ext[1].replicas[0].url = refused;
	EXPECT(-ECONNREFUSED, cfg.extents = ext; cfg.nextents = 2);
	ext[1].replicas[0].url = r.ext[0].replicas[0].url;
	/* A second replica on an unreachable server fails the create too. */
	ext[0].nreplicas = 2;
	ext[0].replicas[1] = ext[0].replicas[0];
	ext[0].replicas[1].url = refused;
	EXPECT(-ECONNREFUSED, cfg.extents = ext; cfg.nextents = 2);
#undef EXPECT
	close(lfd);

	/* Commands before start are refused, not hung. */
	{
		struct ept *e;
		struct ept_stats st;

		ck_assert_int_eq(ept_create(&good, &e), 0);
		ck_assert_int_eq(ept_flush(e), -EINVAL);
		ck_assert_int_eq(ept_drop(e), -EINVAL);
		ept_get_stats(e, &st);
		ck_assert_uint_eq(st.capacity_pages, 64);
		ck_assert_uint_eq(st.resident, 0);
		ept_stop(e);
		ept_destroy(e);
	}
	stop_servers();
}
END_TEST

static Suite *ept_suite(void)
{
	Suite *s = suite_create("ept");
	TCase *tc;

	tc = tcase_create("integrity");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, integrity, 0, 16);
	suite_add_tcase(s, tc);

	tc = tcase_create("residency");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, residency, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("clean");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, read_only_pass_writes_nothing, 0, 2);
	tcase_add_test(tc, zero_pages_cost_no_round_trip);
	tcase_add_test(tc, flush_sends_zeroed_page);
	tcase_add_test(tc, drop_leaves_nothing_resident);
	tcase_add_test(tc, reopen_sees_written_pages);
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_set_timeout(tc, 90);
	tcase_add_loop_test(tc, replica_survives_server_loss, 0, 2);
	tcase_add_test(tc, server_loss_is_fatal);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, clean_shutdown_with_faults_in_flight, 0, 2);
	tcase_add_test(tc, create_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ept_suite());
	int failed;

	/* The failure cases log errors on purpose; keep them visible. */
	log_init("test_ept", LOG_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

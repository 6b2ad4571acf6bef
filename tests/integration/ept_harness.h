/*
 * Shared fixtures of the virtual cache's integration suites (test_ept_*.c):
 * memserver daemons started through harness.h, the regions and engine of one
 * test (a rig), a multi-threaded verifying workload, a residency sampler, and
 * the page pattern every suite writes and checks.
 *
 * The workload: thread t of N owns the pages p with p % N == t, so each page
 * has one writer and its expected contents are known exactly. A shadow array
 * holds each page's version; a write bumps it and fills the whole page from
 * (page, version); a read checks every word. Pages never written read as
 * zeros. After a run, every region can be opened directly with the client
 * library and each page compared with the shadow.
 *
 * Every name here carries the eh_ prefix. The helpers run inside Check's
 * forked child (CK_FORK) and fail the running test on any error; the daemons
 * they start stay in that child's process group (see harness.h).
 */
#ifndef LEGATO_TESTS_INTEGRATION_EPT_HARNESS_H
#define LEGATO_TESTS_INTEGRATION_EPT_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ept/ept.h"
#include "memserver/proto.h"
#include "tests/integration/harness.h"

#define PAGE EPT_PAGE_SIZE
#define MAXTHREADS 8

/* The test's memory servers: eh_da always, eh_db when two were started. A
 * daemon not running has dir[0] == '\0'. */
extern struct daemon eh_da, eh_db;

/* Starts eh_da, and eh_db when n > 1, with default options (both zeroed
 * first). */
void eh_start_servers(unsigned n);

/* Stops every server still running (SIGTERM) and asserts it exited cleanly. */
void eh_stop_servers(void);

/* SIGKILLs a running daemon, reaps it and removes its scratch directory;
 * leaves d->dir empty, so eh_stop_servers skips it. */
void eh_daemon_kill(struct daemon *d);

/* Sleeps us microseconds. */
void eh_sleep_us(unsigned us);

/* ept_flush and ept_drop under a hang detector: the test fails when the call
 * has not returned within 30 s (times CK_TIMEOUT_MULTIPLIER). Return what the
 * call returned. */
int eh_flush_w(struct ept *e);
int eh_drop_w(struct ept *e);

/* Fills one page (PAGE bytes) with the pattern of (page, ver), ver >= 1; the
 * pattern is never all zeros. */
void eh_fill_page(void *dst, uint64_t page, uint32_t ver);

/* Index of the first wrong word of a page expected at version ver (0: zeros),
 * or -1 when it is right. */
int eh_check_page(const void *src, uint64_t page, uint32_t ver);

/* One xorshift64 step: advances *s (never 0) and returns it. */
uint64_t eh_xs(uint64_t *s);

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

/*
 * Fills r (zeroed first) and creates region 100 + s on server s (eh_da, then
 * eh_db) for each of the nsrv (1 or 2) servers, which must be running. Not
 * replicated: the npages pages are split into one extent per server, extent s
 * at region page 16 * s of server s. Replicated: one extent of npages pages
 * with a replica on every server, at region page 0. No engine yet.
 */
void eh_rig_regions(struct rig *r, uint64_t npages, unsigned nsrv, bool replicated);

/* Sets cfg's mem_size, extents and nextents from r, then creates and starts
 * the engine into r->e. May be called again after eh_rig_stop: a new engine
 * over the same regions. */
void eh_rig_start(struct rig *r, struct ept_config *cfg);

/* ept_stop and ept_destroy of r->e, which becomes NULL. */
void eh_rig_stop(struct rig *r);

/* Opens server s's region directly and compares every page of every extent it
 * holds with shadow (page -> version, 0: never written). Returns the number of
 * wrong pages; when there is one, first (first_len bytes) describes the first. */
uint64_t eh_server_mismatches(struct rig *r, unsigned s, const uint32_t *shadow, char *first,
			      size_t first_len);

/* Fails the test unless every server of r (only server `only`, unless it is
 * ~0u) holds what shadow says. */
void eh_assert_servers_match(struct rig *r, const uint32_t *shadow, unsigned only);

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

struct worker_arg {
	struct wl *w;
	unsigned t;
};

struct wl_run {
	pthread_t th[MAXTHREADS];
	struct worker_arg args[MAXTHREADS];
};

/*
 * Sets up a workload over e's whole region (w zeroed first, every page at
 * version 0): nthreads threads (at most MAXTHREADS), write_pct percent
 * writes, pages picked uniformly or by zipf (0.99) over each thread's stripe,
 * ops operations per thread (< 0: until w->stop). Between runs the caller may
 * change sweep, write_pct and ops; the shadow and the mismatch count carry
 * over. Release with eh_wl_free.
 */
void eh_wl_init(struct wl *w, struct ept *e, unsigned nthreads, unsigned write_pct, bool zipf,
		long ops);
void eh_wl_free(struct wl *w);

/* Starts w's threads (each blocks every signal) into run; eh_wl_join waits for
 * them. */
void eh_wl_start(struct wl *w, struct wl_run *run);
void eh_wl_join(struct wl *w, struct wl_run *run);

/* One run to completion (start and join) under the hang detector. */
void eh_wl_run(struct wl *w);

/* Fails the test, naming phase and the first wrong read, when any read of w so
 * far saw wrong data. */
void eh_assert_no_mismatch(struct wl *w, const char *phase);

/* ---- residency sampling ------------------------------------------------- */

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

/* Starts a thread (s zeroed first) that every 0.5 ms records e's capacity and
 * the maximum of its resident frames and, when smaps, the maximum Rss (in
 * pages) and the length of the mapping at ept_base(e) from /proc/self/smaps
 * (vma_missing when there is none). Read the results after eh_sampler_stop. */
void eh_sampler_start(struct sampler *s, struct ept *e, bool smaps);
void eh_sampler_stop(struct sampler *s);

/* ept_get_stats. */
void eh_stats(struct ept *e, struct ept_stats *st);

#endif

/*
 * The fault engine: region set-up with userfaultfd, the handler thread's loop,
 * and what happens on a fault. See engine.h for why one thread owns all state.
 *
 * A missing-page fault on page p, by the state of p's frame:
 *   none        take a frame (evicting if needed); never-written pages get a
 *               local zero page, others a READ to a server (frame FETCHING);
 *               then maybe prefetch ahead on a detected stream
 *   FETCHING    nothing: the install will wake every thread waiting on p
 *   MAPPED      a stale message (p was installed meanwhile): wake, in case
 *   INACTIVE    a sampled reference: re-install the local copy
 *   WRITEBACK   re-install from the write-back buffer
 * A write-protect fault only happens to a writer caught in an unmap window
 * (evict.c): by the time it is read the page is gone or back; wake it so it
 * retries. Loads may arrive flagged as writes (KVM's async page-fault worker):
 * nothing here depends on the flag.
 */
#include "ept/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <xxhash.h>

#include "common/log.h"
#include "common/util.h"

#define UFFD_BATCH 64

void ept_verify_note(struct ept *e, uint64_t page, uint64_t sum)
{
	if (e->verify)
		e->verify[page] = sum;
}

void ept_verify(struct ept *e, uint64_t page, uint64_t sum, const char *how)
{
	if (e->verify && e->verify[page] && e->verify[page] != sum)
		ept_fatal(e, "verify: page %llu %s differs from what was last written back "
			  "(hash %016llx, expected %016llx)", (unsigned long long)page, how,
			  (unsigned long long)sum, (unsigned long long)e->verify[page]);
}

uint8_t *ept_page_addr(const struct ept *e, uint64_t page)
{
	return e->base + page * EPT_PAGE_SIZE;
}

void ept_fatal(struct ept *e, const char *fmt, ...)
{
	va_list ap;

	if (e->failed)
		return;
	e->failed = true;
	pthread_mutex_lock(&e->cmd_lock);
	va_start(ap, fmt);
	vsnprintf(e->fatal_msg, sizeof(e->fatal_msg), fmt, ap);
	va_end(ap);
	e->fatal = true;
	pthread_mutex_unlock(&e->cmd_lock);
	log_err("virtual cache failed: %s; no more faults will be served", e->fatal_msg);
	if (e->on_fatal)
		e->on_fatal(e->fatal_ctx, e->fatal_msg);
}

int ept_wake(struct ept *e, uint64_t page)
{
	struct uffdio_range r = { .start = (uintptr_t)ept_page_addr(e, page),
				  .len = EPT_PAGE_SIZE };

	if (ioctl(e->uffd, UFFDIO_WAKE, &r) < 0) {
		ept_fatal(e, "UFFDIO_WAKE of page %llu: %s", (unsigned long long)page,
			  strerror(errno));
		return -errno;
	}
	return 0;
}

int ept_install(struct ept *e, uint64_t page, const uint8_t *buf)
{
	uintptr_t dst = (uintptr_t)ept_page_addr(e, page);
	int ret;

	for (;;) {
		if (buf) {
			struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)buf,
						 .len = EPT_PAGE_SIZE };

			ret = ioctl(e->uffd, UFFDIO_COPY, &c);
		} else {
			struct uffdio_zeropage z = { .range = { .start = dst,
								.len = EPT_PAGE_SIZE } };

			ret = ioctl(e->uffd, UFFDIO_ZEROPAGE, &z);
		}
		if (ret == 0)
			return 0;
		if (errno == EAGAIN)
			continue; /* the mm changed under us: retry */
		if (errno == EEXIST)
			return ept_wake(e, page); /* -EEXIST wakes nobody */
		ept_fatal(e, "installing page %llu: %s", (unsigned long long)page,
			  strerror(errno));
		return -errno;
	}
}

static void note_resident(struct ept *e)
{
	uint64_t r = e->ft.nframes - e->ft.nfree;

	if (r > e->st.resident_peak)
		e->st.resident_peak = r;
}

/* A frame for page: free, or freed by evicting. for_prefetch may only
 * displace victims the policy calls cold. Returns the frame or -1. */
static int32_t take_frame(struct ept *e, uint64_t page, bool for_prefetch)
{
	while (e->ft.nfree == 0) {
		unsigned f;
		bool cold;

		if (e->writes_inflight >= EPT_WB_WINDOW)
			return -1;
		if (!e->pops->victim(e->pol, &f, &cold) || (for_prefetch && !cold))
			return -1;
		ept_evict_frame(e, f);
		if (e->failed)
			return -1;
	}
	return ept_frames_take(&e->ft, page);
}

/* Marks f mapped and hands it to the policy. */
static void frame_mapped(struct ept *e, uint32_t f, uint64_t sum)
{
	struct ept_frame *fr = &e->ft.frames[f];

	fr->state = FR_MAPPED;
	fr->sum = sum;
	if (e->pops->set_page)
		e->pops->set_page(e->pol, f, fr->page);
	e->pops->insert(e->pol, f, fr->flags & FR_PREFETCHED);
	note_resident(e);
}

/* A prefetched marker page: tracked by the policy like a mapped page but kept
 * in its buffer (INACTIVE), so touching it faults and moves the stream on. */
static void frame_held(struct ept *e, uint32_t f, uint64_t sum)
{
	struct ept_frame *fr = &e->ft.frames[f];

	fr->state = FR_INACTIVE;
	fr->sum = sum;
	if (e->pops->set_page)
		e->pops->set_page(e->pol, f, fr->page);
	e->pops->insert(e->pol, f, true);
	note_resident(e);
}

static void defer_fault(struct ept *e, uint64_t page, uint64_t t0)
{
	if (e->ndeferred == e->deferred_cap) {
		unsigned cap = e->deferred_cap ? e->deferred_cap * 2 : 64;
		uint64_t *p = realloc(e->deferred, cap * sizeof(*p));
		uint64_t *q = realloc(e->deferred_t0, cap * sizeof(*q));

		if (p)
			e->deferred = p;
		if (q)
			e->deferred_t0 = q;
		if (!p || !q) {
			ept_fatal(e, "out of memory queueing a fault");
			return;
		}
		e->deferred_cap = cap;
	}
	e->deferred[e->ndeferred] = page;
	e->deferred_t0[e->ndeferred++] = t0;
}

/* Starts serving page p in a new frame; returns false when no frame could be
 * had (the caller defers or gives up). */
static bool start_page(struct ept *e, uint64_t page, uint64_t t0, bool prefetch, bool marker)
{
	int32_t f = take_frame(e, page, prefetch);
	struct ept_frame *fr;
	struct ept_read *rd;

	if (f < 0)
		return false;
	fr = &e->ft.frames[f];
	fr->t0 = t0;
	if (prefetch) {
		fr->flags |= FR_PREFETCHED | (marker ? FR_MARKER : 0);
		e->st.prefetched++;
	}
	if (!ept_remote_test(&e->ft, page) && marker) {
		fr->buf = ept_buf_get(&e->ft);
		memset(fr->buf, 0, EPT_PAGE_SIZE);
		frame_held(e, (uint32_t)f, e->zero_sum);
		return true;
	}
	if (!ept_remote_test(&e->ft, page)) {
		/* Never written (or written back as zeros): no round trip. */
		ept_verify(e, page, e->zero_sum, "zero-filled");
		if (ept_install(e, page, NULL))
			return true;
		frame_mapped(e, (uint32_t)f, e->zero_sum);
		if (!prefetch) {
			e->st.faults_zero_fill++;
			hist_add(&e->st.lat_zero_fill, now_ns() - t0);
		}
		return true;
	}
	rd = e->read_free;
	if (rd)
		e->read_free = rd->next_free;
	else
		rd = malloc(sizeof(*rd));
	if (!rd) {
		ept_fatal(e, "out of memory starting a fetch");
		return true;
	}
	*rd = (struct ept_read){ .frame = (uint32_t)f, .gen = fr->gen, .page = page,
				 .prefetch = prefetch };
	fr->state = FR_FETCHING;
	fr->buf = ept_buf_get(&e->ft);
	e->reads_inflight++;
	if (ept_remote_read(e, rd, fr->buf)) {
		char where[256];

		ept_remote_describe(e, page, where, sizeof(where));
		ept_fatal(e, "no live memory server holds page %llu: %s", (unsigned long long)page,
			  where);
	}
	return true;
}

static void prefetch_hit(struct ept *e, struct ept_frame *fr)
{
	if (fr->flags & FR_PREFETCHED) {
		fr->flags &= ~FR_PREFETCHED;
		e->st.prefetch_hits++;
	}
}

/* Feeds the stream detector with a fault on page (or the touch of a window's
 * marker) and issues whatever window it asks for. */
static void prefetch_after(struct ept *e, uint64_t page, bool marker_hit)
{
	int64_t stride;
	uint64_t q, marker;
	unsigned n;

	if (!e->prefetch_on)
		return;
	n = marker_hit ? ept_prefetch_on_marker(&e->pf, page, &stride, &q)
		       : ept_prefetch_on_fault(&e->pf, page, &stride, &q);
	marker = ept_prefetch_marker(&e->pf);
	for (unsigned i = 0; i < n && !e->failed; i++, q += (uint64_t)stride) {
		if (q >= e->npages)
			break; /* also catches a negative stride running below 0 */
		if (ept_frames_lookup(&e->ft, q) >= 0)
			continue;
		if (!start_page(e, q, 0, true, q == marker))
			break;
	}
}

/* Re-installs a page held locally (inactive copy or write-back buffer). */
static void reinstall(struct ept *e, uint32_t f, const uint8_t *content, uint64_t t0,
		      struct hist *lat)
{
	struct ept_frame *fr = &e->ft.frames[f];

	if (ept_install(e, fr->page, content))
		return;
	if (fr->state == FR_INACTIVE) {
		ept_buf_put(&e->ft, fr->buf);
		fr->buf = NULL;
		fr->state = FR_MAPPED;
		e->pops->reference(e->pol, f);
	} else {
		frame_mapped(e, f, fr->sum);
	}
	hist_add(lat, now_ns() - t0);
}

static void serve_missing(struct ept *e, uint64_t page, uint64_t t0)
{
	int32_t f = ept_frames_lookup(&e->ft, page);
	struct ept_frame *fr;

	if (f < 0) {
		if (!start_page(e, page, t0, false, false))
			defer_fault(e, page, t0);
		else if (e->prefetch_on)
			prefetch_after(e, page, false);
		return;
	}
	fr = &e->ft.frames[f];
	switch (fr->state) {
	case FR_FETCHING:
		e->st.faults_in_flight++;
		if (!fr->t0)
			fr->t0 = t0;
		if (fr->flags & FR_MARKER) {
			/* Installed when it arrives: someone waits for it now. */
			fr->flags &= ~FR_MARKER;
			prefetch_hit(e, fr);
			prefetch_after(e, page, true);
		} else {
			prefetch_hit(e, fr);
			prefetch_after(e, page, false);
		}
		break;
	case FR_MAPPED:
		ept_wake(e, page);
		break;
	case FR_INACTIVE: {
		bool marker = fr->flags & FR_MARKER;

		e->st.faults_inactive_hit++;
		fr->flags &= ~FR_MARKER;
		prefetch_hit(e, fr);
		reinstall(e, (uint32_t)f, fr->buf, t0, &e->st.lat_inactive_hit);
		prefetch_after(e, page, marker);
		break;
	}
	case FR_WRITEBACK:
		e->st.faults_wb_hit++;
		ept_verify(e, page, XXH3_64bits(fr->pending ? fr->pending : fr->wb->buf,
						EPT_PAGE_SIZE), "re-installed from write-back");
		reinstall(e, (uint32_t)f, fr->pending ? fr->pending : fr->wb->buf, t0,
			  &e->st.lat_wb_hit);
		prefetch_after(e, page, false);
		break;
	}
}

static void handle_missing(struct ept *e, uint64_t page, uint64_t t0)
{
	e->st.faults_missing++;
	serve_missing(e, page, t0);
}

static void handle_wp(struct ept *e, uint64_t page)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)ept_page_addr(e, page), .len = EPT_PAGE_SIZE },
		.mode = 0, /* clear protection (if any) and wake */
	};

	e->st.faults_wp++;
	if (ioctl(e->uffd, UFFDIO_WRITEPROTECT, &wp) < 0 && errno != ENOENT)
		ept_fatal(e, "UFFDIO_WRITEPROTECT clear of page %llu: %s",
			  (unsigned long long)page, strerror(errno));
}

void ept_on_read_done(struct ept *e, struct ept_read *rd, uint8_t *buf, bool zero, int result)
{
	struct ept_frame *fr = &e->ft.frames[rd->frame];

	e->reads_inflight--;
	rd->next_free = e->read_free;
	e->read_free = rd;
	if (fr->gen != rd->gen || fr->state != FR_FETCHING || fr->buf != buf)
		abort(); /* a FETCHING frame is never reused: a broken invariant */
	if (result) {
		struct ept_ext *ext = ept_remote_ext(e, rd->page);

		ept_fatal(e, "cannot fetch page %llu from %s (region %llu): %s",
			  (unsigned long long)rd->page, ext->rep[0].srv->url,
			  (unsigned long long)ext->rep[0].region, strerror(-result));
		return;
	}
	e->st.pages_fetched++;
	ept_verify(e, fr->page, zero ? e->zero_sum : XXH3_64bits(buf, EPT_PAGE_SIZE), "fetched");
	if (fr->flags & FR_MARKER) {
		/* Nobody waits: hold it back so the reader's touch is seen. */
		if (zero)
			memset(buf, 0, EPT_PAGE_SIZE);
		frame_held(e, rd->frame, XXH3_64bits(buf, EPT_PAGE_SIZE));
		return;
	}
	if (ept_install(e, fr->page, zero ? NULL : buf))
		return;
	ept_buf_put(&e->ft, fr->buf);
	fr->buf = NULL;
	frame_mapped(e, rd->frame, zero ? e->zero_sum : XXH3_64bits(buf, EPT_PAGE_SIZE));
	if (fr->t0) {
		e->st.faults_remote++;
		hist_add(&e->st.lat_remote, now_ns() - fr->t0);
	}
}

/* Faults deferred for lack of a frame, retried once frames come back. */
static void retry_deferred(struct ept *e)
{
	unsigned i = 0, n = e->ndeferred;

	e->ndeferred = 0;
	for (; i < n && !e->failed; i++) {
		uint64_t page = e->deferred[i], t0 = e->deferred_t0[i];

		if (ept_frames_lookup(&e->ft, page) >= 0)
			serve_missing(e, page, t0);
		else if (!start_page(e, page, t0, false, false)) {
			break;
		}
	}
	/* Keep the rest, in order. */
	if (i < n) {
		memmove(e->deferred + e->ndeferred, e->deferred + i, (n - i) * sizeof(uint64_t));
		memmove(e->deferred_t0 + e->ndeferred, e->deferred_t0 + i,
			(n - i) * sizeof(uint64_t));
		e->ndeferred += n - i;
	}
}

void ept_retry_deferred(struct ept *e)
{
	if (e->ndeferred)
		retry_deferred(e);
}

void ept_read_faults(struct ept *e)
{
	struct uffd_msg msgs[UFFD_BATCH];
	ssize_t n = read(e->uffd, msgs, sizeof(msgs));
	uint64_t t0 = now_ns();

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			ept_fatal(e, "reading userfaultfd: %s", strerror(errno));
		return;
	}
	for (ssize_t i = 0; i < n / (ssize_t)sizeof(msgs[0]) && !e->failed; i++) {
		uint64_t addr = msgs[i].arg.pagefault.address;
		uint64_t page = (addr - (uintptr_t)e->base) / EPT_PAGE_SIZE;

		if (msgs[i].event != UFFD_EVENT_PAGEFAULT || addr < (uintptr_t)e->base ||
		    page >= e->npages)
			continue;
		if (msgs[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)
			handle_wp(e, page);
		else
			handle_missing(e, page, t0);
	}
}

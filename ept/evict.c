/*
 * Eviction, reference sampling, write-back and flush.
 *
 * Unmapping a page (for eviction or for sampling) follows the one safe order:
 *   write-protect   writers now block (and KVM drops its EPT entry through the
 *                   MMU notifier), readers still see the page
 *   copy out        the copy is final: nobody can change the page any more
 *   zap             MADV_DONTNEED: the next access is a missing fault
 *   wake            writers blocked on the protection retry and fault anew
 * so no write can fall between the copy and the zap. Dirtiness is decided by
 * content: the copy's XXH3 against the hash of what the servers hold (set when
 * the page was fetched or last written back). A clean page is dropped, an
 * all-zero page is recorded as zero (cleared remote bit, nothing sent), and
 * anything else is written back asynchronously, batched with its neighbours;
 * until the servers acknowledge it the buffer serves faults on that page.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <xxhash.h>

#include "common/log.h"
#include "common/util.h"
#include "ept/engine.h"

static int write_protect(struct ept *e, uint64_t page, bool on)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)ept_page_addr(e, page), .len = EPT_PAGE_SIZE },
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	if (ioctl(e->uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
		ept_fatal(e, "UFFDIO_WRITEPROTECT of page %llu: %s", (unsigned long long)page,
			  strerror(errno));
		return -errno;
	}
	return 0;
}

/* Copies a mapped page into buf while it is write-protected, leaving it mapped
 * and writable again (a consistent snapshot for flush). */
static int snapshot(struct ept *e, uint64_t page, uint8_t *buf)
{
	int ret = write_protect(e, page, true);

	if (ret)
		return ret;
	memcpy(buf, ept_page_addr(e, page), EPT_PAGE_SIZE);
	return write_protect(e, page, false); /* also wakes blocked writers */
}

int ept_unmap_to_buf(struct ept *e, uint32_t f)
{
	struct ept_frame *fr = &e->ft.frames[f];
	uint8_t *addr = ept_page_addr(e, fr->page);
	int ret;

	ret = write_protect(e, fr->page, true);
	if (ret)
		return ret;
	fr->buf = ept_buf_get(&e->ft);
	memcpy(fr->buf, addr, EPT_PAGE_SIZE);
	if (madvise(addr, EPT_PAGE_SIZE, MADV_DONTNEED)) {
		ept_fatal(e, "MADV_DONTNEED of page %llu: %s", (unsigned long long)fr->page,
			  strerror(errno));
		return -errno;
	}
	return ept_wake(e, fr->page);
}

static bool is_zero_page(const uint8_t *p)
{
	static const uint8_t zero[EPT_PAGE_SIZE];

	return memcmp(p, zero, EPT_PAGE_SIZE) == 0;
}

void ept_start_write(struct ept *e, uint32_t f, uint8_t *buf, uint64_t sum)
{
	struct ept_frame *fr = &e->ft.frames[f];
	struct ept_write *wr;

	fr->sum = sum;
	ept_remote_set(&e->ft, fr->page, true);
	ept_verify_note(e, fr->page, sum);
	if (fr->wb) {
		/* One write per page in flight: this copy goes after it. */
		if (fr->pending)
			ept_buf_put(&e->ft, fr->pending);
		fr->pending = buf;
		fr->pending_sum = sum;
		return;
	}
	wr = e->write_free;
	if (wr)
		e->write_free = wr->next_free;
	else
		wr = malloc(sizeof(*wr));
	if (!wr) {
		ept_buf_put(&e->ft, buf);
		ept_fatal(e, "out of memory starting a write-back");
		return;
	}
	*wr = (struct ept_write){ .frame = f, .page = fr->page, .buf = buf, .sum = sum };
	fr->wb = wr;
	e->writes_inflight++;
	if (ept_remote_write(e, wr)) {
		char where[256];

		ept_remote_describe(e, fr->page, where, sizeof(where));
		ept_fatal(e, "cannot write back page %llu: no live memory server holds it: %s",
			  (unsigned long long)fr->page, where);
	}
}

/*
 * Decides what buf (the page's final contents) needs: returns true when it
 * must be written back (ownership of buf then passes to the write), false when
 * the servers already hold it or it is all zeros (buf is released).
 */
static bool classify(struct ept *e, uint32_t f, uint8_t *buf)
{
	struct ept_frame *fr = &e->ft.frames[f];
	uint64_t h = XXH3_64bits(buf, EPT_PAGE_SIZE);

	if (h == fr->sum && (ept_remote_test(&e->ft, fr->page) || h == e->zero_sum)) {
		e->st.skipped_clean++;
		ept_buf_put(&e->ft, buf);
		return false;
	}
	/* Zeros are never sent, unless the servers hold an older non-zero copy
	 * (or one is on its way): then the zeros must replace it there, or a
	 * reader starting from the servers (a restarted or migrated VMM) would
	 * see stale data. */
	if (h == e->zero_sum && !fr->wb && !ept_remote_test(&e->ft, fr->page) &&
	    is_zero_page(buf)) {
		e->st.skipped_zero++;
		ept_buf_put(&e->ft, buf);
		fr->sum = e->zero_sum;
		ept_verify_note(e, fr->page, e->zero_sum);
		return false;
	}
	ept_start_write(e, f, buf, h);
	return true;
}

bool ept_evict_frame(struct ept *e, uint32_t f)
{
	struct ept_frame *fr = &e->ft.frames[f];
	uint8_t *buf;

	if (fr->state == FR_MAPPED) {
		if (ept_unmap_to_buf(e, f))
			return false;
	} else if (fr->state != FR_INACTIVE) {
		return false;
	}
	buf = fr->buf;
	fr->buf = NULL;
	e->pops->remove(e->pol, f);
	e->st.evictions++;
	/* One sample to replace the victim, one to grow the list to its size. */
	e->sample_credit = MIN(e->sample_credit + 2, e->ft.nframes);
	if (fr->flags & FR_MARKER)
		ept_prefetch_feedback(&e->pf, 0); /* the stream stopped before it */
	classify(e, f, buf);
	if (fr->wb) {
		fr->state = FR_WRITEBACK;
		return false;
	}
	ept_frames_release(&e->ft, f);
	return true;
}

void ept_sample(struct ept *e)
{
	unsigned n;

	/* Sample only as fast as pages are evicted, as Linux scans only to
	 * reclaim: a working set that fits raises no sampling faults at all,
	 * and under pressure the inactive list refills as victims leave it. */
	if (!e->pops->deactivate || e->failed || !e->sample_credit)
		return;
	n = e->pops->deactivate(e->pol, e->scratch, MIN(64u, e->sample_credit));
	e->sample_credit -= n;
	for (unsigned i = 0; i < n; i++) {
		uint32_t f = e->scratch[i];

		if (e->ft.frames[f].state != FR_MAPPED)
			continue; /* a readahead marker: unmapped already */
		if (ept_unmap_to_buf(e, f))
			return;
		e->ft.frames[f].state = FR_INACTIVE;
	}
}

void ept_on_write_done(struct ept *e, struct ept_write *wr)
{
	struct ept_frame *fr = &e->ft.frames[wr->frame];

	e->writes_inflight--;
	if (fr->wb != wr)
		abort(); /* frames with a write in flight are never reused */
	fr->wb = NULL;
	if (wr->error) {
		struct ept_ext *ext = ept_remote_ext(e, wr->page);

		ept_fatal(e, "cannot write back page %llu to %s (region %llu): %s",
			  (unsigned long long)wr->page, ext->rep[0].srv->url,
			  (unsigned long long)ext->rep[0].region, strerror(-wr->error));
	} else {
		e->st.pages_written_back++;
	}
	ept_buf_put(&e->ft, wr->buf);
	wr->next_free = e->write_free;
	e->write_free = wr;
	if (fr->pending && !e->failed) {
		uint8_t *next = fr->pending;

		fr->pending = NULL;
		ept_start_write(e, wr->frame, next, fr->pending_sum);
		return;
	}
	if (fr->state == FR_WRITEBACK)
		ept_frames_release(&e->ft, wr->frame);
}

/* Writes back frame f if dirty, leaving it resident. */
static void flush_frame(struct ept *e, uint32_t f)
{
	struct ept_frame *fr = &e->ft.frames[f];
	uint8_t *buf = ept_buf_get(&e->ft);

	if (fr->state == FR_MAPPED) {
		if (snapshot(e, fr->page, buf)) {
			ept_buf_put(&e->ft, buf);
			return;
		}
	} else {
		memcpy(buf, fr->buf, EPT_PAGE_SIZE);
	}
	classify(e, f, buf);
}

void ept_drop_resident(struct ept *e)
{
	for (uint32_t f = 0; f < e->ft.nframes && !e->failed; f++) {
		uint8_t st = e->ft.frames[f].state;

		if (st == FR_MAPPED || st == FR_INACTIVE)
			ept_evict_frame(e, f);
	}
	ept_remote_submit(e);
}

void ept_flush_begin(struct ept *e, int cmd)
{
	e->flush_cmd = cmd;
	for (uint32_t f = 0; f < e->ft.nframes && !e->failed; f++) {
		struct ept_frame *fr = &e->ft.frames[f];

		if (fr->state != FR_MAPPED && fr->state != FR_INACTIVE)
			continue;
		if (cmd == CMD_DROP)
			ept_evict_frame(e, f);
		else
			flush_frame(e, f);
	}
	ept_remote_submit(e);
	ept_flush_progress(e);
}

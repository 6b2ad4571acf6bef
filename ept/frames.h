/*
 * The engine's bookkeeping, all owned by the handler thread (no locks): one
 * frame per page of cache capacity, a hash from page number to frame, the pool
 * of 4 KiB local buffers that hold pages while they are not mapped (fetch
 * targets, sampled-inactive copies, write-back copies), and the one bitmap over
 * the whole region: which pages have contents on the memory servers.
 *
 * Memory scales with the cache (frames, hash, buffers in use) plus one bit per
 * page of the region, never with bytes of the region.
 */
#ifndef LEGATO_EPT_FRAMES_H
#define LEGATO_EPT_FRAMES_H

#include <stdbool.h>
#include <stdint.h>

enum ept_frame_state {
	FR_FREE = 0,
	FR_FETCHING,	/* read from a server in flight; waiters block in the kernel */
	FR_MAPPED,	/* installed in the region */
	FR_INACTIVE,	/* unmapped for reference sampling; contents in buf */
	FR_WRITEBACK,	/* evicted; contents held by its write-back (see wb) */
};

#define FR_PREFETCHED 0x1	/* installed ahead of any fault, not yet known used */
#define FR_MARKER 0x2		/* a readahead marker: held unmapped until touched */

struct ept_write;

/*
 * Local page buffers per frame, the most one frame can hold at once: its own
 * copy (inactive), the copy a write in flight owns, and the next copy waiting
 * behind that write. Only the buffers actually used are committed.
 */
#define EPT_BUFS_PER_FRAME 3

struct ept_frame {
	uint64_t page;
	uint8_t state;
	uint8_t flags;
	uint32_t gen;		/* bumped whenever the frame changes page or state */
	uint64_t sum;		/* XXH3 of the copy on the servers (or of zeros) */
	uint8_t *buf;		/* FETCHING, INACTIVE: the frame's own page buffer */
	/* Write-back: at most one write per page in flight (wb); a newer copy
	 * to write after it waits in pending. A WRITEBACK frame's contents are
	 * pending if set, else wb's buffer. A frame with wb set is never freed. */
	struct ept_write *wb;
	uint8_t *pending;
	uint64_t pending_sum;
	uint64_t t0;		/* first demand fault's arrival (ns), 0: none */
	int32_t next_free;
};

struct ept_frames {
	struct ept_frame *frames;
	uint32_t nframes;
	int32_t free_head;
	uint32_t nfree;
	/* open addressing, linear probing: page+1 (0 = empty) -> frame */
	uint64_t *keys;
	uint32_t *vals;
	uint64_t hash_mask;
	/* buffer pool: LIFO so recently used (hot, committed) buffers are reused */
	uint8_t *pool;
	uint8_t **buf_free;
	uint32_t nbuf_free;
	uint32_t nbufs;
	/* region-wide: page has contents on the servers */
	uint64_t *remote;
	uint64_t npages;
};

/* Allocates everything for nframes frames over a region of npages pages.
 * Returns 0 or -ENOMEM. */
int ept_frames_init(struct ept_frames *t, uint32_t nframes, uint64_t npages);
void ept_frames_free(struct ept_frames *t);

/* Frame holding page, or -1. */
int32_t ept_frames_lookup(const struct ept_frames *t, uint64_t page);

/* Takes a free frame for page and indexes it. Returns the frame or -1 when no
 * frame is free. The frame's state must then be set by the caller. */
int32_t ept_frames_take(struct ept_frames *t, uint64_t page);

/* Unindexes and frees frame f (its buffer, if any, must be released first). */
void ept_frames_release(struct ept_frames *t, uint32_t f);

/* A 4 KiB buffer from the pool; cannot run out (EPT_BUFS_PER_FRAME). */
uint8_t *ept_buf_get(struct ept_frames *t);
void ept_buf_put(struct ept_frames *t, uint8_t *buf);

static inline bool ept_remote_test(const struct ept_frames *t, uint64_t page)
{
	return t->remote[page / 64] >> (page % 64) & 1;
}

static inline void ept_remote_set(struct ept_frames *t, uint64_t page, bool on)
{
	if (on)
		t->remote[page / 64] |= 1ull << (page % 64);
	else
		t->remote[page / 64] &= ~(1ull << (page % 64));
}

#endif

/*
 * Stream detection for prefetch, after Leap, with Linux-style asynchronous
 * readahead. The deltas between the last few faulting pages vote (Boyer-Moore
 * majority) for a stride; with a majority, a window of pages ahead on that
 * stride is fetched. Prefetched pages are installed, so a stream that is being
 * followed raises no faults at all: to know when to fetch the next window, one
 * page of each window, its marker, is held back unmapped; touching it faults
 * (a cheap local fault), confirms the stream and starts the next window while
 * the rest of the current one is still ahead of the reader. The depth grows
 * with each confirmed window and shrinks when a marker is evicted untouched.
 */
#ifndef LEGATO_EPT_PREFETCH_H
#define LEGATO_EPT_PREFETCH_H

#include <stdint.h>

#define PREFETCH_HISTORY 8
#define PREFETCH_NO_MARKER UINT64_MAX

struct ept_prefetch {
	uint64_t history[PREFETCH_HISTORY];
	unsigned count;		/* faults recorded, saturating at PREFETCH_HISTORY */
	unsigned next;		/* ring index */
	unsigned depth;		/* current window */
	unsigned max_depth;
	uint64_t window_first;	/* first page of the stream's current window */
	uint64_t last_issued;	/* furthest page already prefetched on this stream */
	int64_t last_stride;	/* the stream's stride; 0: no stream */
	uint64_t marker;	/* page held back in the last window */
};

void ept_prefetch_init(struct ept_prefetch *p, unsigned max_depth);

/*
 * Records a fault on page and, when a stream is detected, returns how many
 * pages to prefetch (0: none) with their stride in *stride, starting at
 * *first. A fault inside the stream's window already issued starts nothing:
 * pages issued once are never issued again.
 */
unsigned ept_prefetch_on_fault(struct ept_prefetch *p, uint64_t page, int64_t *stride,
			       uint64_t *first);

/* A window's marker page was touched: the stream is confirmed; returns the
 * next window like ept_prefetch_on_fault (0 when no stream is active). */
unsigned ept_prefetch_on_marker(struct ept_prefetch *p, uint64_t page, int64_t *stride,
				uint64_t *first);

/* The marker page of the window last returned (PREFETCH_NO_MARKER: none). */
uint64_t ept_prefetch_marker(const struct ept_prefetch *p);

/* Feedback: a window was confirmed (grow) or a marker was evicted untouched
 * (shrink). */
void ept_prefetch_feedback(struct ept_prefetch *p, int used);

#endif

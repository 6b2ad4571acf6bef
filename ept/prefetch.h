/*
 * Stream detection for prefetch, after Leap: the deltas between the last few
 * demand faults vote (Boyer-Moore majority) for a stride; with a majority, the
 * pages ahead on that stride are worth fetching. The depth grows while
 * prefetched pages are used and shrinks when they are not.
 */
#ifndef LEGATO_EPT_PREFETCH_H
#define LEGATO_EPT_PREFETCH_H

#include <stdint.h>

#define PREFETCH_HISTORY 8

struct ept_prefetch {
	uint64_t history[PREFETCH_HISTORY];
	unsigned count;		/* faults recorded, saturating at PREFETCH_HISTORY */
	unsigned next;		/* ring index */
	unsigned depth;		/* current window */
	unsigned max_depth;
	uint64_t last_issued;	/* furthest page already prefetched on this stream */
	int64_t last_stride;
};

void ept_prefetch_init(struct ept_prefetch *p, unsigned max_depth);

/*
 * Records a demand fault on page and, when a stream is detected, returns how
 * many pages to prefetch (0: none) with their stride in *stride, starting at
 * *first (pages already issued on the same stream are skipped).
 */
unsigned ept_prefetch_on_fault(struct ept_prefetch *p, uint64_t page, int64_t *stride,
			       uint64_t *first);

/* Feedback: a prefetched page was used (grow) or evicted unused (shrink). */
void ept_prefetch_feedback(struct ept_prefetch *p, int used);

#endif

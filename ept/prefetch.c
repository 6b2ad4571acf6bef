/*
 * Majority-vote stride detector and readahead windows (see prefetch.h).
 */
#include "ept/prefetch.h"

#include <string.h>

void ept_prefetch_init(struct ept_prefetch *p, unsigned max_depth)
{
	memset(p, 0, sizeof(*p));
	p->max_depth = max_depth;
	p->depth = max_depth / 4 ? max_depth / 4 : 1;
	p->marker = PREFETCH_NO_MARKER;
}

/* Boyer-Moore majority over the deltas of the history window; returns 0 when
 * no delta holds a strict majority. */
static int64_t majority_stride(const struct ept_prefetch *p)
{
	int64_t deltas[PREFETCH_HISTORY], cand = 0;
	unsigned n = 0, votes = 0, count = 0;

	for (unsigned i = 1; i < p->count; i++) {
		unsigned cur = (p->next + PREFETCH_HISTORY - i) % PREFETCH_HISTORY;
		unsigned prev = (cur + PREFETCH_HISTORY - 1) % PREFETCH_HISTORY;

		deltas[n++] = (int64_t)(p->history[cur] - p->history[prev]);
	}
	for (unsigned i = 0; i < n; i++) {
		if (votes == 0) {
			cand = deltas[i];
			votes = 1;
		} else {
			votes += deltas[i] == cand ? 1 : -1u;
		}
	}
	for (unsigned i = 0; i < n; i++)
		count += deltas[i] == cand;
	return n >= 2 && count * 2 > n ? cand : 0;
}

/* Steps from a to b along stride s: >= 0 when b is reached from a. */
static int64_t steps(uint64_t a, uint64_t b, int64_t s)
{
	int64_t d = (int64_t)(b - a);

	return d % s ? -1 : d / s;
}

/* Issues the window of depth pages after the stream's last issued page. */
static unsigned issue(struct ept_prefetch *p, uint64_t first, unsigned n, int64_t s,
		      int64_t *stride, uint64_t *out_first)
{
	p->last_stride = s;
	p->window_first = first;
	p->last_issued = first + (uint64_t)s * (n - 1);
	/* The marker is the window's first page: when it is touched, the rest of
	 * the window is still ahead of the reader while the next one arrives. */
	p->marker = first;
	*stride = s;
	*out_first = first;
	return n;
}

static void record(struct ept_prefetch *p, uint64_t page)
{
	p->history[p->next] = page;
	p->next = (p->next + 1) % PREFETCH_HISTORY;
	if (p->count < PREFETCH_HISTORY)
		p->count++;
}

unsigned ept_prefetch_on_fault(struct ept_prefetch *p, uint64_t page, int64_t *stride,
			       uint64_t *first)
{
	int64_t s, k;

	record(p, page);
	if (p->max_depth == 0)
		return 0;
	/* Just past the stream's front: the stream went on through everything
	 * issued (which raised no faults), whatever the history says. */
	if (p->last_stride && page == p->last_issued + (uint64_t)p->last_stride) {
		ept_prefetch_feedback(p, 1);
		return issue(p, page + (uint64_t)p->last_stride, p->depth, p->last_stride, stride,
			     first);
	}
	s = majority_stride(p);
	if (s == 0)
		return 0;
	/* A fault at or behind the stream's front, within a few windows of it,
	 * is part of the stream (a page sampled or evicted meanwhile, or every
	 * access reported): nothing is issued twice. */
	if (s == p->last_stride) {
		k = steps(page, p->last_issued, s);
		if (k >= 0 && k < 4 * (int64_t)p->max_depth) {
			/* Top the window up to depth ahead, contiguously. */
			if (k >= (int64_t)p->depth)
				return 0;
			return issue(p, p->last_issued + (uint64_t)s, p->depth - (unsigned)k, s,
				     stride, first);
		}
	}
	return issue(p, page + (uint64_t)s, p->depth, s, stride, first);
}

unsigned ept_prefetch_on_marker(struct ept_prefetch *p, uint64_t page, int64_t *stride,
				uint64_t *first)
{
	int64_t s = p->last_stride;

	record(p, page);
	if (s == 0 || p->max_depth == 0)
		return 0;
	ept_prefetch_feedback(p, 1);
	return issue(p, p->last_issued + (uint64_t)s, p->depth, s, stride, first);
}

uint64_t ept_prefetch_marker(const struct ept_prefetch *p)
{
	return p->marker;
}

void ept_prefetch_feedback(struct ept_prefetch *p, int used)
{
	if (used && p->depth < p->max_depth)
		p->depth = p->depth * 2 <= p->max_depth ? p->depth * 2 : p->max_depth;
	else if (!used && p->depth > 1)
		p->depth /= 2;
}

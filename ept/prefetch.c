/*
 * Majority-vote stride detector (see prefetch.h).
 */
#include "ept/prefetch.h"

#include <string.h>

void ept_prefetch_init(struct ept_prefetch *p, unsigned max_depth)
{
	memset(p, 0, sizeof(*p));
	p->max_depth = max_depth;
	p->depth = max_depth / 4 ? max_depth / 4 : 1;
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

unsigned ept_prefetch_on_fault(struct ept_prefetch *p, uint64_t page, int64_t *stride,
			       uint64_t *first)
{
	int64_t s;
	uint64_t start;
	unsigned n;

	p->history[p->next] = page;
	p->next = (p->next + 1) % PREFETCH_HISTORY;
	if (p->count < PREFETCH_HISTORY)
		p->count++;
	s = majority_stride(p);
	if (s == 0 || p->max_depth == 0)
		return 0;
	start = page + (uint64_t)s;
	/* Continue a stream already being prefetched instead of re-issuing. */
	if (s == p->last_stride) {
		int64_t ahead = (int64_t)(p->last_issued - page) / s;

		if (ahead > 0 && (unsigned)ahead >= p->depth)
			return 0; /* still far enough ahead */
		if (ahead > 0)
			start = p->last_issued + (uint64_t)s;
	}
	n = p->depth;
	if (s == p->last_stride && p->last_issued != 0) {
		int64_t ahead = (int64_t)(p->last_issued - page) / s;

		if (ahead > 0)
			n = p->depth - (unsigned)ahead;
	}
	p->last_stride = s;
	p->last_issued = start + (uint64_t)s * (n - 1);
	*stride = s;
	*first = start;
	return n;
}

void ept_prefetch_feedback(struct ept_prefetch *p, int used)
{
	if (used && p->depth < p->max_depth)
		p->depth++;
	else if (!used && p->depth > 1)
		p->depth--;
}

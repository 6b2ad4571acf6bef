/*
 * CLOCK-style LRU approximation with sampled references, after Linux's
 * active/inactive lists. Mapped pages sit on the active list, where their use
 * is invisible. The engine keeps the inactive list topped up to a fraction of
 * the cache by unmapping the oldest active pages (keeping their contents
 * locally): a page touched while inactive faults, which is the reference bit,
 * and goes back to the head of the active list; the victim is the oldest
 * inactive page, one that was not touched for a whole trip down the list.
 *
 * Demand-fetched and prefetched pages enter the active head; a prediction
 * still never displaces a page in use, because prefetch takes only free
 * frames or victims from the inactive list.
 */
#include <errno.h>
#include <stdlib.h>

#include "ept/policy.h"
#include "ept/policy_list.h"

/* Inactive target: 1/INACTIVE_DIV of the frames (at least 2). Larger lists
 * approximate LRU better but cost one local fault per re-referenced page. */
#define INACTIVE_DIV 8

enum { LIST_ACTIVE = 1, LIST_INACTIVE = 2 };

struct ept_policy {
	struct fl_list active, inactive;
	struct fl_link *links;
	unsigned target;
};

static int clock_create(unsigned nframes, struct ept_policy **out)
{
	struct ept_policy *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->links = calloc(nframes, sizeof(*p->links));
	if (!p->links) {
		free(p);
		return -ENOMEM;
	}
	fl_init(&p->active, LIST_ACTIVE);
	fl_init(&p->inactive, LIST_INACTIVE);
	p->target = nframes / INACTIVE_DIV > 2 ? nframes / INACTIVE_DIV : 2;
	*out = p;
	return 0;
}

static void clock_destroy(struct ept_policy *p)
{
	free(p->links);
	free(p);
}

static void clock_insert(struct ept_policy *p, unsigned f, bool prefetched)
{
	/* Prefetched pages too: placed at the tail they would be sampled (and
	 * cost a fault) before the reader reaches them. They cannot displace a
	 * page in use: prefetch only takes free frames or cold victims. */
	(void)prefetched;
	fl_push_head(&p->active, p->links, f);
}

static void clock_remove(struct ept_policy *p, unsigned f)
{
	if (p->links[f].list == LIST_ACTIVE)
		fl_unlink(&p->active, p->links, f);
	else if (p->links[f].list == LIST_INACTIVE)
		fl_unlink(&p->inactive, p->links, f);
}

static void clock_reference(struct ept_policy *p, unsigned f)
{
	clock_remove(p, f);
	fl_push_head(&p->active, p->links, f);
}

static bool clock_victim(struct ept_policy *p, unsigned *f, bool *cold)
{
	if (p->inactive.tail != FL_NONE) {
		*f = p->inactive.tail;
		*cold = true;
		return true;
	}
	if (p->active.tail != FL_NONE) {
		*f = p->active.tail;
		*cold = false;
		return true;
	}
	return false;
}

static unsigned clock_deactivate(struct ept_policy *p, unsigned *out, unsigned max)
{
	unsigned n = 0;

	while (n < max && p->inactive.len < p->target && p->active.len > 1) {
		unsigned f = p->active.tail;

		fl_unlink(&p->active, p->links, f);
		fl_push_head(&p->inactive, p->links, f);
		out[n++] = f;
	}
	return n;
}

const struct ept_policy_ops ept_policy_clock = {
	.name = "clock",
	.create = clock_create,
	.destroy = clock_destroy,
	.insert = clock_insert,
	.reference = clock_reference,
	.remove = clock_remove,
	.victim = clock_victim,
	.deactivate = clock_deactivate,
};

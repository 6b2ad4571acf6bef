/*
 * "refault": the clock policy plus refault detection, after Linux's workingset
 * shadow entries and 2Q's ghost queue. Evicted pages leave a ghost (page and
 * eviction count) in a small lossy table. A page faulting back in while its
 * ghost is younger than one cache's worth of evictions was evicted too early:
 * it enters the active head, protected. Any other new page starts on
 * probation at the active tail, the next to be sampled: unless it is touched
 * again soon it is the next victim. Pages used once (scans, the tail of a
 * skewed distribution) thus pass through without pushing out the pages that
 * are used again and again.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "ept/policy.h"
#include "ept/policy_list.h"

#define INACTIVE_DIV 8

enum { LIST_ACTIVE = 1, LIST_INACTIVE = 2 };

struct ghost {
	uint64_t page_plus1; /* 0: empty */
	uint64_t evicted_at;
};

struct ept_policy {
	struct fl_list active, inactive;
	struct fl_link *links;
	uint64_t *pages;	/* page of each frame, from set_page */
	struct ghost *ghosts;	/* lossy: a newer ghost overwrites an older */
	uint64_t ghost_mask;
	uint64_t evictions;
	unsigned nframes;
	unsigned target;
};

static int refault_create(unsigned nframes, struct ept_policy **out)
{
	struct ept_policy *p = calloc(1, sizeof(*p));
	uint64_t slots = 16;

	if (!p)
		return -ENOMEM;
	while (slots < 2ull * nframes)
		slots *= 2;
	p->links = calloc(nframes, sizeof(*p->links));
	p->pages = calloc(nframes, sizeof(*p->pages));
	p->ghosts = calloc(slots, sizeof(*p->ghosts));
	if (!p->links || !p->pages || !p->ghosts) {
		free(p->links);
		free(p->pages);
		free(p->ghosts);
		free(p);
		return -ENOMEM;
	}
	p->ghost_mask = slots - 1;
	p->nframes = nframes;
	fl_init(&p->active, LIST_ACTIVE);
	fl_init(&p->inactive, LIST_INACTIVE);
	p->target = nframes / INACTIVE_DIV > 2 ? nframes / INACTIVE_DIV : 2;
	*out = p;
	return 0;
}

static void refault_destroy(struct ept_policy *p)
{
	free(p->links);
	free(p->pages);
	free(p->ghosts);
	free(p);
}

static struct ghost *ghost_slot(struct ept_policy *p, uint64_t page)
{
	uint64_t h = page * 0x9e3779b97f4a7c15ull;

	return &p->ghosts[(h >> 20) & p->ghost_mask];
}

static void refault_set_page(struct ept_policy *p, unsigned f, uint64_t page)
{
	p->pages[f] = page;
}

static void push_tail(struct ept_policy *p, unsigned f)
{
	struct fl_list *l = &p->active;

	if (l->tail == FL_NONE) {
		fl_push_head(l, p->links, f);
		return;
	}
	p->links[f].prev = l->tail;
	p->links[f].next = FL_NONE;
	p->links[f].list = LIST_ACTIVE;
	p->links[l->tail].next = f;
	l->tail = f;
	l->len++;
}

static void refault_insert(struct ept_policy *p, unsigned f, bool prefetched)
{
	struct ghost *g = ghost_slot(p, p->pages[f]);
	bool refault = g->page_plus1 == p->pages[f] + 1 &&
		       p->evictions - g->evicted_at <= p->nframes;

	if (refault || prefetched)
		fl_push_head(&p->active, p->links, f);
	else
		push_tail(p, f);
	if (refault)
		g->page_plus1 = 0;
}

static void refault_remove(struct ept_policy *p, unsigned f)
{
	if (p->links[f].list == LIST_ACTIVE)
		fl_unlink(&p->active, p->links, f);
	else if (p->links[f].list == LIST_INACTIVE)
		fl_unlink(&p->inactive, p->links, f);
	else
		return;
	*ghost_slot(p, p->pages[f]) = (struct ghost){ p->pages[f] + 1, p->evictions++ };
}

static void refault_reference(struct ept_policy *p, unsigned f)
{
	if (p->links[f].list == LIST_ACTIVE)
		fl_unlink(&p->active, p->links, f);
	else if (p->links[f].list == LIST_INACTIVE)
		fl_unlink(&p->inactive, p->links, f);
	fl_push_head(&p->active, p->links, f);
}

static bool refault_victim(struct ept_policy *p, unsigned *f, bool *cold)
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

static unsigned refault_deactivate(struct ept_policy *p, unsigned *out, unsigned max)
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

const struct ept_policy_ops ept_policy_refault = {
	.name = "refault",
	.create = refault_create,
	.destroy = refault_destroy,
	.set_page = refault_set_page,
	.insert = refault_insert,
	.reference = refault_reference,
	.remove = refault_remove,
	.victim = refault_victim,
	.deactivate = refault_deactivate,
};

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
#include "ept/policy_sampled.h"

struct ghost {
	uint64_t page_plus1; /* 0: empty */
	uint64_t evicted_at;
};

struct ept_policy {
	struct sampled_lists l;
	uint64_t *pages;	/* page of each frame, from set_page */
	struct ghost *ghosts;	/* lossy: a newer ghost overwrites an older */
	uint64_t ghost_mask;
	uint64_t evictions;
	unsigned nframes;
};

static void refault_destroy(struct ept_policy *p)
{
	sampled_free(&p->l);
	free(p->pages);
	free(p->ghosts);
	free(p);
}

static int refault_create(unsigned nframes, struct ept_policy **out)
{
	struct ept_policy *p = calloc(1, sizeof(*p));
	uint64_t slots = 16;

	if (!p)
		return -ENOMEM;
	while (slots < 2ull * nframes)
		slots *= 2;
	p->pages = calloc(nframes, sizeof(*p->pages));
	p->ghosts = calloc(slots, sizeof(*p->ghosts));
	if (sampled_init(&p->l, nframes) || !p->pages || !p->ghosts) {
		refault_destroy(p);
		return -ENOMEM;
	}
	p->ghost_mask = slots - 1;
	p->nframes = nframes;
	*out = p;
	return 0;
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

static void refault_insert(struct ept_policy *p, unsigned f, bool prefetched)
{
	struct ghost *g = ghost_slot(p, p->pages[f]);
	bool refault = g->page_plus1 == p->pages[f] + 1 &&
		       p->evictions - g->evicted_at <= p->nframes;

	if (refault || prefetched)
		fl_push_head(&p->l.active, p->l.links, f);
	else
		fl_push_tail(&p->l.active, p->l.links, f);
	if (refault)
		g->page_plus1 = 0;
}

static void refault_remove(struct ept_policy *p, unsigned f)
{
	if (sampled_remove(&p->l, f))
		*ghost_slot(p, p->pages[f]) = (struct ghost){ p->pages[f] + 1, p->evictions++ };
}

static void refault_reference(struct ept_policy *p, unsigned f)
{
	sampled_reference(&p->l, f);
}

static bool refault_victim(struct ept_policy *p, unsigned *f, bool *cold)
{
	return sampled_victim(&p->l, f, cold);
}

static unsigned refault_deactivate(struct ept_policy *p, unsigned *out, unsigned max)
{
	return sampled_deactivate(&p->l, out, max);
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

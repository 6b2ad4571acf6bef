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
#include "ept/policy_sampled.h"

struct ept_policy {
	struct sampled_lists l;
};

static int clock_create(unsigned nframes, struct ept_policy **out)
{
	struct ept_policy *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	if (sampled_init(&p->l, nframes)) {
		free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

static void clock_destroy(struct ept_policy *p)
{
	sampled_free(&p->l);
	free(p);
}

static void clock_insert(struct ept_policy *p, unsigned f, bool prefetched)
{
	/* Prefetched pages too: placed at the tail they would be sampled (and
	 * cost a fault) before the reader reaches them. They cannot displace a
	 * page in use: prefetch only takes free frames or cold victims. */
	(void)prefetched;
	fl_push_head(&p->l.active, p->l.links, f);
}

static void clock_remove(struct ept_policy *p, unsigned f)
{
	sampled_remove(&p->l, f);
}

static void clock_reference(struct ept_policy *p, unsigned f)
{
	sampled_reference(&p->l, f);
}

static bool clock_victim(struct ept_policy *p, unsigned *f, bool *cold)
{
	return sampled_victim(&p->l, f, cold);
}

static unsigned clock_deactivate(struct ept_policy *p, unsigned *out, unsigned max)
{
	return sampled_deactivate(&p->l, out, max);
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

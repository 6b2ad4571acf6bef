/*
 * FIFO replacement: evict in insertion order. The baseline every other policy
 * is measured against; it observes nothing, so it never samples and calls every
 * victim cold (FIFO has no notion of use).
 */
#include <errno.h>
#include <stdlib.h>

#include "ept/policy.h"
#include "ept/policy_list.h"

struct ept_policy {
	struct fl_list queue;
	struct fl_link *links;
};

static int fifo_create(unsigned nframes, struct ept_policy **out)
{
	struct ept_policy *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->links = calloc(nframes, sizeof(*p->links));
	if (!p->links) {
		free(p);
		return -ENOMEM;
	}
	fl_init(&p->queue, 1);
	*out = p;
	return 0;
}

static void fifo_destroy(struct ept_policy *p)
{
	free(p->links);
	free(p);
}

static void fifo_insert(struct ept_policy *p, unsigned f, bool prefetched)
{
	(void)prefetched;
	fl_push_head(&p->queue, p->links, f);
}

static void fifo_reference(struct ept_policy *p, unsigned f)
{
	(void)p;
	(void)f;
}

static void fifo_remove(struct ept_policy *p, unsigned f)
{
	if (p->links[f].list)
		fl_unlink(&p->queue, p->links, f);
}

static bool fifo_victim(struct ept_policy *p, unsigned *f, bool *cold)
{
	if (p->queue.tail == FL_NONE)
		return false;
	*f = p->queue.tail;
	*cold = true;
	return true;
}

const struct ept_policy_ops ept_policy_fifo = {
	.name = "fifo",
	.create = fifo_create,
	.destroy = fifo_destroy,
	.insert = fifo_insert,
	.reference = fifo_reference,
	.remove = fifo_remove,
	.victim = fifo_victim,
	.deactivate = NULL,
};

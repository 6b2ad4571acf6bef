/*
 * The active/inactive lists of the sampling policies (see policy_sampled.h).
 */
#include "ept/policy_sampled.h"

#include <errno.h>
#include <stdlib.h>

enum { LIST_ACTIVE = 1, LIST_INACTIVE = 2 };

int sampled_init(struct sampled_lists *l, unsigned nframes)
{
	l->links = calloc(nframes, sizeof(*l->links));
	if (!l->links)
		return -ENOMEM;
	fl_init(&l->active, LIST_ACTIVE);
	fl_init(&l->inactive, LIST_INACTIVE);
	l->target = nframes / SAMPLED_INACTIVE_DIV > 2 ? nframes / SAMPLED_INACTIVE_DIV : 2;
	return 0;
}

void sampled_free(struct sampled_lists *l)
{
	free(l->links);
	l->links = NULL;
}

bool sampled_remove(struct sampled_lists *l, unsigned f)
{
	if (l->links[f].list == LIST_ACTIVE)
		fl_unlink(&l->active, l->links, f);
	else if (l->links[f].list == LIST_INACTIVE)
		fl_unlink(&l->inactive, l->links, f);
	else
		return false;
	return true;
}

void sampled_reference(struct sampled_lists *l, unsigned f)
{
	sampled_remove(l, f);
	fl_push_head(&l->active, l->links, f);
}

bool sampled_victim(struct sampled_lists *l, unsigned *f, bool *cold)
{
	if (l->inactive.tail != FL_NONE) {
		*f = l->inactive.tail;
		*cold = true;
		return true;
	}
	if (l->active.tail != FL_NONE) {
		*f = l->active.tail;
		*cold = false;
		return true;
	}
	return false;
}

unsigned sampled_deactivate(struct sampled_lists *l, unsigned *out, unsigned max)
{
	unsigned n = 0;

	while (n < max && l->inactive.len < l->target && l->active.len > 1) {
		unsigned f = l->active.tail;

		fl_unlink(&l->active, l->links, f);
		fl_push_head(&l->inactive, l->links, f);
		out[n++] = f;
	}
	return n;
}

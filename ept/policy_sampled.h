/*
 * The active/inactive list pair the sampling policies (clock, refault) share:
 * mapped pages on the active list, pages unmapped for reference sampling on
 * the inactive list, kept at about 1/8 of the frames. Each policy decides
 * only where a new page enters; sampling, references and victims are the same.
 */
#ifndef LEGATO_EPT_POLICY_SAMPLED_H
#define LEGATO_EPT_POLICY_SAMPLED_H

#include <stdbool.h>

#include "ept/policy_list.h"

/* Inactive target: 1/INACTIVE_DIV of the frames (at least 2). Larger lists
 * approximate LRU better but cost one local fault per re-referenced page. */
#define SAMPLED_INACTIVE_DIV 8

struct sampled_lists {
	struct fl_list active, inactive;
	struct fl_link *links;
	unsigned target;
};

/* Returns 0 or -ENOMEM. */
int sampled_init(struct sampled_lists *l, unsigned nframes);
void sampled_free(struct sampled_lists *l);
/* Unlinks f from whichever list holds it; false when it was on none. */
bool sampled_remove(struct sampled_lists *l, unsigned f);
/* A sampled (inactive) frame was touched: back to the active head. */
void sampled_reference(struct sampled_lists *l, unsigned f);
/* The oldest inactive frame (cold), else the oldest active one (not cold). */
bool sampled_victim(struct sampled_lists *l, unsigned *f, bool *cold);
/* Moves the oldest active frames to the inactive list, up to the target. */
unsigned sampled_deactivate(struct sampled_lists *l, unsigned *out, unsigned max);

#endif

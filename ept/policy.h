/*
 * Replacement policies behind one interface. A policy orders frames (small
 * integers 0..nframes-1), never pages or memory, so the same code runs in the
 * engine and in the offline simulator (tools/cachesim).
 *
 * What a policy can observe is what the engine can: a frame entering the cache
 * (insert), leaving it (remove), and a reference to a frame the engine has
 * unmapped for sampling (reference; such "inactive" frames are the ones the
 * policy returned from deactivate). References to mapped frames are invisible.
 */
#ifndef LEGATO_EPT_POLICY_H
#define LEGATO_EPT_POLICY_H

#include <stdbool.h>
#include <stdint.h>

struct ept_policy;

struct ept_policy_ops {
	const char *name;
	/* Returns 0 or -ENOMEM. */
	int (*create)(unsigned nframes, struct ept_policy **out);
	void (*destroy)(struct ept_policy *p);
	/* Optional: frame f is about to hold page (called before insert), for
	 * policies that remember pages across evictions. */
	void (*set_page)(struct ept_policy *p, unsigned f, uint64_t page);
	/* Frame f now holds a page: fetched on demand, or prefetched. */
	void (*insert)(struct ept_policy *p, unsigned f, bool prefetched);
	/* The page in frame f (inactive) was referenced; the engine maps it again. */
	void (*reference)(struct ept_policy *p, unsigned f);
	/* Frame f leaves the cache. */
	void (*remove)(struct ept_policy *p, unsigned f);
	/* The frame to evict next (it stays tracked until remove). Returns false
	 * when nothing is tracked. *cold is set when the policy believes the
	 * victim unused (prefetch may only displace cold victims). */
	bool (*victim)(struct ept_policy *p, unsigned *f, bool *cold);
	/* Frames to unmap now to sample references (at most max); the policy
	 * considers them inactive from now on. NULL: the policy never samples. */
	unsigned (*deactivate)(struct ept_policy *p, unsigned *out, unsigned max);
};

/* The built-in policies, NULL-terminated. */
extern const struct ept_policy_ops *const ept_policies[];

/* Looks a policy up by name; NULL when unknown. */
const struct ept_policy_ops *ept_policy_find(const char *name);

extern const struct ept_policy_ops ept_policy_fifo;
extern const struct ept_policy_ops ept_policy_clock;
extern const struct ept_policy_ops ept_policy_refault;

#endif

/*
 * The table of replacement policies: adding one is a new policy_*.c file and
 * one line here.
 */
#include <string.h>

#include "ept/ept.h"
#include "ept/policy.h"

const struct ept_policy_ops *const ept_policies[] = {
	&ept_policy_fifo,
	&ept_policy_clock,
	&ept_policy_refault,
	NULL,
};

const char *const ept_policy_names[] = { "fifo", "clock", "refault", NULL };

const struct ept_policy_ops *ept_policy_find(const char *name)
{
	for (unsigned i = 0; ept_policies[i]; i++)
		if (strcmp(ept_policies[i]->name, name) == 0)
			return ept_policies[i];
	return NULL;
}

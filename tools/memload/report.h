/*
 * memload's report (report.c): what a run measured, printed as text or as one
 * JSON object.
 */
#ifndef LEGATO_TOOLS_MEMLOAD_REPORT_H
#define LEGATO_TOOLS_MEMLOAD_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "ept/ept.h"
#include "tools/memload/memload.h"

/* What one run measured, filled in by main() as it goes. */
struct ml_report {
	double setup_s, elapsed_s;
	uint64_t ops, reads, writes;
	bool have_stats;
	struct ept_stats st;	/* at the end of the workload */
	uint64_t resident_peak;	/* at the very end, before stopping */
	uint64_t capacity_pages;
	uint64_t read_mismatches, sweep_mismatches, server_mismatches;
	bool server_checked, server_failed;
	int flush_result;
	uint64_t smaps_peak_kb;
};

/* Prints the configuration o, facts of the run r (graph size, the op count
 * when o has none) and the figures rp as one compact JSON object on a line of
 * stdout. */
void ml_print_json(const struct ml_opts *o, const struct ml_run *r, const struct ml_report *rp);
/* The same for people, as a few lines of text on stdout. */
void ml_print_text(const struct ml_opts *o, const struct ml_run *r, const struct ml_report *rp);

#endif

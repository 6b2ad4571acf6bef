/*
 * memload: a native load generator and correctness harness for the virtual
 * cache (ept). memload.c owns the memory-server regions, the engine's life
 * cycle, the residency sampler and the run; options.c the command line;
 * report.c the report (report.h); workload.c owns the access patterns, the
 * shadow of every page's contents and verification.
 */
#ifndef LEGATO_TOOLS_MEMLOAD_MEMLOAD_H
#define LEGATO_TOOLS_MEMLOAD_MEMLOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define ML_PAGE 4096u
#define ML_WORDS (ML_PAGE / 8u)
#define MIN_U64(a, b) ((uint64_t)(a) < (uint64_t)(b) ? (uint64_t)(a) : (uint64_t)(b))

enum ml_pattern { PAT_SEQ, PAT_UNIFORM, PAT_ZIPF, PAT_GRAPH, PAT_TRACE };

struct ml_opts {
	const char *servers[16];
	unsigned nservers;
	uint64_t mem, cache;
	unsigned threads;
	enum ml_pattern pattern;
	const char *pattern_text;
	double theta;
	const char *trace_file;
	uint64_t ops;		/* 0: the pattern's default */
	double write_ratio;
	double zero_ratio;
	const char *policy;
	bool prefetch;
	bool verify, local, json;
	const char *key_file;
	unsigned replicas;
	uint64_t seed;
	unsigned test_delay_us;
	unsigned timeout_s;
};

/* One access of a trace. */
struct ml_access {
	uint64_t page;
	bool write;
};

/*
 * The shadow of a page: its version (bits 0..30; 0 = never written, all
 * zeros) and, in bit 31, whether that version's contents are all zeros.
 */
#define ML_ZERO_FLAG 0x80000000u
#define ML_VERSION_MASK 0x7fffffffu

struct ml_thread {
	unsigned id;
	uint64_t ops_target;
	_Atomic uint64_t done;
	uint64_t reads, writes, mismatches;
	char pad[64];
};

struct ml_graph;

struct ml_run {
	const struct ml_opts *o;
	uint8_t *base;		/* the region: ept_base() or local memory */
	uint64_t npages;
	uint32_t *shadow;	/* npages entries (synthetic patterns, traces) */
	struct ml_access *trace;
	uint64_t trace_len;
	struct ml_graph *graph;
	uint8_t *graph_private;	/* --verify with graph: the reference copy */
	struct ml_thread *th;
	uint64_t ops_total;	/* what the workload will do */
	_Atomic uint64_t mismatch_reports;
};

/* options.c */
/* Parses the command line into *o, defaults filled in, and checks the
 * combination. Returns only when it is valid: --help prints the usage and
 * exits 0, an error prints one line and exits 2. */
void ml_parse_args(int argc, char **argv, struct ml_opts *o);

/* workload.c */
/* Loads a "PAGE R|W" trace; returns 0 or prints the error and returns -1. */
int ml_trace_load(const char *path, struct ml_access **out, uint64_t *len);
/* Prepares the pattern's state (graph: generates it into the region).
 * Returns 0 or prints the error and returns -1. */
int ml_prepare(struct ml_run *r);
/* The body of worker thread t. */
void ml_worker(struct ml_run *r, unsigned t);
/* After the workload: re-reads every page through the region and compares it
 * with the shadow (or, for graph, runs the reference PageRank and compares the
 * whole region); returns the number of mismatching pages. */
uint64_t ml_verify_region(struct ml_run *r);
/* Expected contents of page p as the shadow (or the graph reference) says,
 * into buf. */
void ml_expected(const struct ml_run *r, uint64_t p, uint64_t *buf);
/* Graph facts for the report (false when not a graph run). */
bool ml_graph_info(const struct ml_run *r, uint64_t *vertices, uint64_t *edges,
		   uint64_t *iterations);
void ml_cleanup(struct ml_run *r);

/* Reports one mismatching page (at most a few lines per run). */
void ml_report_mismatch(struct ml_run *r, const char *where, uint64_t page,
			const uint64_t *got);

#endif

/*
 * What the pieces of bench-memserver share. bench_memserver.c parses the
 * options, sets up the in-process memory server and the raw server, and writes
 * the report; bench_memserver_run.c owns the thread placement and parts 1 and 2
 * (latency and throughput against the raw transport); bench_memserver_rss.c
 * owns part 3 (the RSS of the real daemon). See bench_memserver.c for what is
 * measured and why.
 */
#ifndef LEGATO_TOOLS_BENCH_BENCH_MEMSERVER_H
#define LEGATO_TOOLS_BENCH_BENCH_MEMSERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "memserver/proto.h"
#include "tools/bench/benchutil.h"
#include "tools/bench/rawtcp.h"

#define BENCH_PAGES 256u	/* pages read in turn (1 MiB, written up front) */
#define MAX_DEPTH RAW_MAX_DEPTH

/* Frame sizes of the requests measured, from memserver/proto.h. */
#define READ_REQ_LEN (MS_HDR_LEN + 16u + 8u)
#define READ_RESP_LEN (MS_HDR_LEN + 16u + MS_PAGE_SIZE)
#define WRITE_REQ_LEN (MS_HDR_LEN + 16u + 16u + MS_PAGE_SIZE)
#define WRITE_RESP_LEN MS_HDR_LEN
#define PING_REQ_LEN (MS_HDR_LEN + 8u)
#define PING_RESP_LEN MS_HDR_LEN

struct options {
	const char *outdir;
	const char *memserver;
	bool quick;
	unsigned rounds;
	unsigned lat_iters;   /* per mode per round */
	unsigned tput_ms;     /* per mode per round */
	unsigned rss_regions; /* of 64 MiB */
	unsigned rss_write_mib;
};

/* Thread placement (bench_memserver_run.c). */
enum placement { PL_CROSS, PL_SAME, PL_FREE, PL_COUNT };

extern const char *const placement_name[PL_COUNT];
extern const char *const placement_text[PL_COUNT];

/* Picks the client's CPU and the servers' CPU among those this process may
 * use (dies on error). Call once, before the other placement functions. */
void placement_init(void);
/* Whether placement p can be applied here: PL_CROSS needs two CPUs. */
bool placement_possible(enum placement p);
/* The placement the headline figures use: PL_CROSS when possible, else
 * PL_SAME. */
enum placement headline_placement(void);
/* Applies p: pins the calling (main, client) thread and every other (server)
 * thread of the process; PL_FREE gives them all CPUs back. Dies on error. */
void place(enum placement p);

/* The in-process set-up parts 1 and 2 run against, filled in by main(). */
struct ctx {
	struct options *o;
	struct raw_server raw;
	struct ms_server *srv;
	struct ms_client *cl;
	uint64_t region, epoch;
	uint8_t *pages;		/* MS_MAX_BATCH (>= MAX_DEPTH) pages of client buffers */
	uint8_t *raw_req, *raw_rx;
	unsigned cursor;	/* next page number to use */
};

/* Part 1: latency (bench_memserver_run.c). */

enum lat_mode { LAT_RAW_READ, LAT_MS_READ, LAT_RAW_PING, LAT_MS_PING, LAT_MODES };

extern const char *const lat_mode_name[LAT_MODES];

struct lat_result {
	struct bench_samples all[LAT_MODES];
	double round_p50[LAT_MODES][64], round_p99[LAT_MODES][64];
};

/* Measures every lat_mode under placement pl: warm-up, then c->o->rounds
 * rounds of c->o->lat_iters round trips per mode, alternating which of each
 * compared pair goes first. Adds every sample to lr->all (sorted on return)
 * and each round's p50 and p99 to lr->round_p50/round_p99. Leaves the
 * threads placed as pl. Dies on error. */
void run_latency(struct ctx *c, struct lat_result *lr, enum placement pl);

/* Part 2: throughput (bench_memserver_run.c). */

struct tput_case {
	const char *name;
	uint8_t op;
	unsigned depth;
	uint32_t req_len, resp_len;
	double raw_pps[64], ms_pps[64];
	uint64_t raw_pages, ms_pages, raw_ns, ms_ns;
};

/* Measures tc (its op, depth and frame sizes set) with the headline
 * placement: warm-up, then c->o->rounds rounds of c->o->tput_ms each, raw
 * and memserver alternating. Adds to tc's page and time totals and fills
 * raw_pps/ms_pps per round. Leaves the threads placed. Dies on error. */
void run_tput(struct ctx *c, struct tput_case *tc);

/* Part 3: daemon RSS (bench_memserver_rss.c). */

struct rss_result {
	bool ok;
	char error[256];
	double idle_mib, untouched_mib, written_mib;
	double untouched_anon_mib, untouched_file_mib;
	uint64_t created_bytes, written_bytes, stat_resident;
};

/* Starts o->memserver, creates o->rss_regions regions of 64 MiB, writes
 * o->rss_write_mib MiB and reads the daemon's RSS at each step into rr; stops
 * the daemon. rr->ok is false, with rr->error set, when it could not be
 * measured. rr must be zeroed by the caller. */
void run_rss(struct options *o, struct rss_result *rr);

#endif

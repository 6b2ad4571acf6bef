/*
 * ept: the virtual cache. A memory region of mem_size bytes whose contents live
 * on memory servers and of which at most cache_size bytes are resident locally
 * at any moment. Accesses to non-resident pages fault through userfaultfd to
 * the engine's handler thread, which fetches the page (or zero-fills a page
 * never written, with no network round trip), evicting another page first when
 * the cache is full; dirty victims are written back asynchronously.
 *
 * The region is ordinary anonymous memory to its users: any thread may touch it
 * (a vCPU, a device thread, a kernel worker); the VMM hands it to KVM as guest
 * RAM. Lifecycle: ept_create -> ept_start -> (use) -> stop every thread that
 * touches the region -> ept_stop -> ept_destroy. Never unmap or unregister the
 * region while a thread may touch it: absent pages would read as zeros.
 *
 * Thread safety: ept_flush, ept_drop, ept_get_stats and ept_error may be called
 * from any thread while the engine runs; they are served by the handler thread
 * and must not be called from a thread that could itself be blocked on a fault
 * of this region while waiting (they never touch the region themselves).
 */
#ifndef LEGATO_EPT_EPT_H
#define LEGATO_EPT_EPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/auth.h"
#include "common/hist.h"
#include "memserver/proto.h"

#define EPT_PAGE_SIZE MS_PAGE_SIZE
#define EPT_MAX_REPLICAS 4

/* Where one replica of an extent lives. */
struct ept_replica {
	const char *url;		/* "tcp://H:P" */
	uint64_t region;		/* region id on that server */
	uint8_t token[MS_TOKEN_LEN];	/* its capability token */
	uint64_t region_page;		/* first page of the extent within the region */
};

/* Pages [first_page, first_page + npages) of the cache live on these replicas
 * (a write completes when every replica has it; reads use any live one). */
struct ept_extent {
	uint64_t first_page;
	uint64_t npages;
	unsigned nreplicas;
	struct ept_replica replicas[EPT_MAX_REPLICAS];
};

struct ept_config {
	uint64_t mem_size;		/* bytes, multiple of EPT_PAGE_SIZE */
	uint64_t cache_size;		/* bytes resident at most, >= 64 pages */
	const struct ept_extent *extents; /* must cover [0, mem_size) exactly */
	unsigned nextents;
	const struct auth_key *key;	/* cluster key for the servers, or NULL */
	const char *policy;		/* "fifo", "clock" (default) */
	bool prefetch;			/* stream prefetch (default on: set true) */
	unsigned prefetch_depth;	/* pages ahead, 0: default (32) */
	int timeout_ms;			/* per server request, 0: default (5000) */
	/* Called once, from the handler thread, when a fault cannot be served
	 * correctly (every replica failed). The engine then serves nothing more:
	 * faulting threads stay blocked, so no wrong data is ever seen. The
	 * callback should stop the VM (or exit the process). */
	void (*on_fatal)(void *ctx, const char *message);
	void *fatal_ctx;
	/* Test hook: delay each fetch and write-back completion by a random
	 * 0..test_delay_us, to exercise races on purpose. */
	unsigned test_delay_us;
};

struct ept_stats {
	uint64_t faults_missing;	/* missing-page faults received */
	uint64_t faults_wp;		/* write-protect faults received */
	uint64_t faults_zero_fill;	/* served with a local zero page */
	uint64_t faults_remote;		/* served by a fetch from a memory server */
	uint64_t faults_wb_hit;		/* served from a write-back buffer */
	uint64_t faults_inactive_hit;	/* served from the local inactive list */
	uint64_t faults_in_flight;	/* joined a fetch already in flight */
	uint64_t pages_fetched;
	uint64_t pages_written_back;
	uint64_t skipped_clean;		/* evicted without write-back: unchanged */
	uint64_t skipped_zero;		/* evicted without write-back: all zero */
	uint64_t prefetched;		/* pages installed ahead of a fault */
	uint64_t prefetch_hits;		/* of those, known to have been used */
	uint64_t evictions;
	uint64_t resident;		/* frames in use now (mapped or buffered) */
	uint64_t resident_peak;
	uint64_t capacity_pages;	/* cache_size / EPT_PAGE_SIZE */
	uint64_t writeback_inflight;
	uint64_t servers_failed;	/* servers given up on (replicas degraded) */
	struct hist lat_zero_fill;	/* ns from fault read to install */
	struct hist lat_remote;
	struct hist lat_wb_hit;
	struct hist lat_inactive_hit;
};

struct ept;

/*
 * Maps the region, registers it with userfaultfd, connects to every replica's
 * server and opens its region (fencing any earlier opener). Nothing is resident.
 * Returns 0, -EINVAL (bad config: sizes, extents not covering the region,
 * unknown policy), -ENOSYS (userfaultfd unavailable: the message says why),
 * or -errno from connecting (logged with the server's URL).
 */
int ept_create(const struct ept_config *cfg, struct ept **out);

/* The region's first byte. */
void *ept_base(const struct ept *e);
uint64_t ept_mem_size(const struct ept *e);

/* Starts the handler thread. Returns 0 or -errno. */
int ept_start(struct ept *e);

/* Writes back every dirty resident page and waits for the servers to have
 * them all. Pages stay resident. Returns 0 or -EIO (engine failed). */
int ept_flush(struct ept *e);

/* Flushes, then evicts every page: nothing stays resident. Returns 0 or -EIO. */
int ept_drop(struct ept *e);

/* A consistent snapshot of the statistics. */
void ept_get_stats(struct ept *e, struct ept_stats *out);

/* The stats as a JSON object text (malloc'd; free it). NULL on ENOMEM. */
char *ept_stats_json(const struct ept_stats *s);

/* The fatal error message, or NULL while the engine is healthy. */
const char *ept_error(struct ept *e);

/*
 * Finishes every fetch and write-back in flight, then stops the handler. The
 * caller must have stopped every thread that touches the region (a later fault
 * would block forever). Idempotent. Dirty pages are NOT written back: call
 * ept_flush first to keep them.
 */
void ept_stop(struct ept *e);

/* Stops if needed, closes server connections, unmaps the region, frees. */
void ept_destroy(struct ept *e);

/* Names of the built-in replacement policies, NULL-terminated. */
extern const char *const ept_policy_names[];

#endif

/*
 * Private to ept/: the engine object shared by the fault engine (engine.c),
 * eviction and write-back (evict.c) and the memory-server side (remote.c).
 *
 * One handler thread owns everything below except the command block: faults,
 * fetch and write completions and commands are all events of its one loop, so
 * page state needs no locks and every transition is ordered. The concurrency
 * that matters (many pages in flight) comes from pipelining requests to the
 * servers, not from threads: on the machines this runs on a thread wake-up
 * costs as much as a network round trip.
 */
#ifndef LEGATO_EPT_ENGINE_H
#define LEGATO_EPT_ENGINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "ept/ept.h"
#include "ept/frames.h"
#include "ept/policy.h"
#include "ept/prefetch.h"
#include "memserver/client.h"

/* Frames kept free ahead of demand, so a fault rarely waits for an eviction
 * (a fraction of the cache, at least a batch). */
#define EPT_FREE_TARGET_DIV 32
#define EPT_FREE_TARGET_MIN 8
/* Writes in flight at most; beyond it faults needing a frame wait. */
#define EPT_WB_WINDOW 256

struct ept_server {
	char url[300];
	struct ms_client *client;
	bool failed;
	uint64_t progress_ns;	/* last reply, or first request after idle */
};

struct ept_ext {
	uint64_t first_page, npages;
	unsigned nreplicas;
	struct {
		struct ept_server *srv;
		uint64_t region, epoch, region_page;
	} rep[EPT_MAX_REPLICAS];
};

/* A page write in flight to every replica of its extent. */
struct ept_write {
	uint32_t frame;
	uint64_t page;
	uint8_t *buf;		/* owned by the write until it completes */
	uint64_t sum;
	uint8_t remaining;	/* replicas still to answer */
	uint8_t acked;		/* replicas that stored it */
	int error;
	struct ept_write *next_free;
};

/* A page read in flight. */
struct ept_read {
	uint32_t frame;
	uint32_t gen;
	uint64_t page;
	uint8_t replica;	/* replica being tried */
	bool prefetch;
	struct ept_read *next_free;
};

enum { BATCH_READ, BATCH_WRITE };

/* One request to one server: up to MS_MAX_BATCH pages of one region. */
struct ept_batch {
	struct ms_io io;
	struct ept_server *srv;
	struct ept_ext *ext;
	unsigned replica;
	uint8_t kind;
	unsigned n;
	uint64_t region_pages[MS_MAX_BATCH];
	uint8_t *bufs[MS_MAX_BATCH];
	uint8_t zero[MS_MAX_BATCH];
	void *items[MS_MAX_BATCH]; /* struct ept_read * or struct ept_write * */
	uint64_t delay_until;	   /* test hook: complete no earlier than this */
	struct ept_batch *next;
};

enum ept_cmd { CMD_NONE, CMD_FLUSH, CMD_DROP, CMD_STATS, CMD_STOP };

struct ept {
	/* immutable after create */
	uint8_t *base;
	uint64_t size, npages;
	int uffd;
	int evfd;		/* commands */
	int epfd;
	bool prefetch_on;
	unsigned test_delay_us;
	uint64_t test_delay_rng;	/* xorshift state; each engine its own, so
					 * engines in one process never race on it */
	uint64_t timeout_ns;
	void (*on_fatal)(void *ctx, const char *message);
	void *fatal_ctx;
	uint64_t zero_sum;

	/* handler-thread state */
	struct ept_frames ft;
	const struct ept_policy_ops *pops;
	struct ept_policy *pol;
	struct ept_prefetch pf;
	struct ept_server *servers;
	unsigned nservers;
	struct ept_ext *exts;
	unsigned nexts;
	struct ept_batch **open_reads;	/* per extent replica: batch being filled */
	struct ept_batch **open_writes;
	struct ept_batch *delayed;	/* test hook: completions held back */
	struct ept_read *read_free;
	struct ept_write *write_free;
	unsigned writes_inflight;
	unsigned reads_inflight;
	uint64_t *deferred;		/* demand faults waiting for a free frame */
	uint64_t *deferred_t0;
	unsigned ndeferred, deferred_cap;
	bool failed;
	bool stopping;
	struct ept_stats st;
	uint32_t *scratch;		/* nframes entries */
	uint64_t *verify;		/* debug (LEGATO_EPT_VERIFY=1): per-page hash of
					 * what the servers hold, 0 = unknown */
	uint32_t sample_credit;		/* pages the sampler may unmap (see ept_sample) */
	int flush_cmd;			/* CMD_FLUSH/CMD_DROP being executed, or 0 */
	unsigned flush_outstanding;

	/* command block, under cmd_lock */
	pthread_t thread;
	bool started;
	pthread_mutex_t cmd_lock;
	pthread_cond_t cmd_cond;
	int cmd;
	bool cmd_done;
	int cmd_result;
	struct ept_stats cmd_stats;
	char fatal_msg[512];
	bool fatal;
};

/* engine.c */
/* Debug verification: records / checks the hash the servers hold for page. */
void ept_verify_note(struct ept *e, uint64_t page, uint64_t sum);
void ept_verify(struct ept *e, uint64_t page, uint64_t sum, const char *how);
/* Reads and serves the pending userfaultfd messages. */
void ept_read_faults(struct ept *e);
/* Retries faults that waited for a free frame. */
void ept_retry_deferred(struct ept *e);
void ept_fatal(struct ept *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ept_on_read_done(struct ept *e, struct ept_read *rd, uint8_t *buf, bool zero, int result);
void ept_on_write_done(struct ept *e, struct ept_write *wr);
uint8_t *ept_page_addr(const struct ept *e, uint64_t page);
/* Installs buf (or zeros when buf is NULL) at page and wakes its waiters.
 * Returns 0 or -errno (fatal already reported). */
int ept_install(struct ept *e, uint64_t page, const uint8_t *buf);
int ept_wake(struct ept *e, uint64_t page);

/* evict.c */
/* Keeps free frames at the target by evicting; may start write-backs. */
void ept_evict_to_target(struct ept *e, bool for_prefetch);
/* Evicts frame f now (any resident state). Returns true when the frame is free
 * on return (clean), false when a write-back now holds it. */
bool ept_evict_frame(struct ept *e, uint32_t f);
/* Moves mapped frames the policy samples to the inactive state. */
void ept_sample(struct ept *e);
/* Unmaps a mapped frame into f->buf (write-protect, copy, zap, wake). */
int ept_unmap_to_buf(struct ept *e, uint32_t f);
/* Queues a write of buf (the page's contents, hash sum) for frame f; takes
 * ownership of buf. */
void ept_start_write(struct ept *e, uint32_t f, uint8_t *buf, uint64_t sum);
/* Starts a flush (CMD_FLUSH) or drop (CMD_DROP); completion is signalled by
 * ept_flush_progress when nothing is outstanding. */
void ept_flush_begin(struct ept *e, int cmd);
/* Evicts every mapped or sampled frame (drop's last pass). */
void ept_drop_resident(struct ept *e);
void ept_flush_progress(struct ept *e);

/* remote.c */
int ept_remote_open(struct ept *e, const struct ept_config *cfg);
void ept_remote_close(struct ept *e);
struct ept_ext *ept_remote_ext(struct ept *e, uint64_t page);
/* "URL (region R[, failed]), ..." for the replicas holding page, into buf
 * (truncated to len), for error messages. */
void ept_remote_describe(struct ept *e, uint64_t page, char *buf, size_t len);
/* Queues a read of rd->page into buf from the replica rd->replica. */
int ept_remote_read(struct ept *e, struct ept_read *rd, uint8_t *buf);
/* Queues wr to every replica. */
int ept_remote_write(struct ept *e, struct ept_write *wr);
/* Sends every queued batch. */
void ept_remote_submit(struct ept *e);
/* Collects completions from every server without blocking; returns how many
 * requests completed. */
unsigned ept_remote_poll(struct ept *e);
/* Test hook: releases delayed completions that are due; returns ms until the
 * next one (-1: none). */
int ept_remote_delayed(struct ept *e);

#endif

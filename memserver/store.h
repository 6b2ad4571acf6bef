/*
 * The memory server's pool: a table of regions, each a run of 4 KiB pages with a
 * checksum stored next to each page (MS_SLOT_SIZE), and the capacity accounting
 * behind them. Transport-free, so
 * the TCP server, a future RDMA server, the unit tests and the fuzzer share it.
 *
 * Invariants:
 *  - reserved <= capacity at all times; a region's whole size is reserved when
 *    it is created, so a write is never refused for space.
 *  - RAM is committed only for pages ever written (lazy anonymous mappings with
 *    MADV_NOHUGEPAGE); a never-written page reads as zero and costs nothing,
 *    until the region is first registered for RDMA: registration pins (and
 *    so commits) all of it, and it counts as resident from then on.
 *  - A page's stored checksum is never 0 (ms_page_sum); 0 is "never written".
 *  - A lease (an RDMA registration of the region) lives only while its
 *    holder's open is current: the next open or the delete revokes every
 *    lease before it returns.
 *  - A deleted region's mappings are unmapped; the kernel zeroes those frames
 *    before any reuse, so no tenant ever reads another's data.
 *  - Opens are exclusive: each open bumps the region's epoch, and page I/O must
 *    carry the current epoch, so an older holder is fenced.
 *
 * Locking: the table has one mutex (create, open, delete, lookups). Each region
 * has a rwlock: page I/O holds it shared for a whole batch, open and delete
 * hold it exclusively, so a fence or delete never races a batch in flight.
 */
#ifndef LEGATO_MEMSERVER_STORE_H
#define LEGATO_MEMSERVER_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "memserver/proto.h"

struct ms_store;
struct ms_region;

/* Creates an empty pool able to reserve capacity bytes. Returns 0 or -ENOMEM. */
int ms_store_create(uint64_t capacity, struct ms_store **out);

/* Frees the pool and every region in it. No region references may remain. */
void ms_store_destroy(struct ms_store *st);

/* Pool-level figures for STAT (capacity, reserved, resident, regions). */
void ms_store_stat(struct ms_store *st, struct ms_stat *out);

/*
 * Creates region id of size bytes (a non-zero multiple of MS_PAGE_SIZE, at most
 * MS_MAX_REGION_SIZE) and writes its new random capability token.
 * Returns 0, -EINVAL, -EEXIST, -ENOSPC or -ENOMEM.
 */
int ms_store_region_create(struct ms_store *st, uint64_t id, uint64_t size,
			   uint8_t token[MS_TOKEN_LEN]);

/*
 * Opens region id with its token, fencing any earlier open. On success *out
 * holds a reference (drop it with ms_region_put) and *epoch the new epoch.
 * Returns 0, -ENOENT or -EACCES.
 */
int ms_store_region_open(struct ms_store *st, uint64_t id, const uint8_t token[MS_TOKEN_LEN],
			 struct ms_region **out, uint64_t *epoch, uint64_t *size);

/* Deletes region id (token required), fencing every holder and releasing its
 * memory and reservation. Returns 0, -ENOENT or -EACCES. */
int ms_store_region_delete(struct ms_store *st, uint64_t id, const uint8_t token[MS_TOKEN_LEN]);

/* Drops a reference taken by ms_store_region_open. */
void ms_region_put(struct ms_region *r);

uint64_t ms_region_id(const struct ms_region *r);

/*
 * Page I/O on a region a connection holds at epoch. begin takes the region's
 * lock shared and checks the epoch: it returns 0 (the caller must call
 * ms_region_io_end), -ESTALE when fenced, or -ENOENT when deleted (no lock
 * held on error). Between begin and end the page calls below may be used.
 */
int ms_region_io_begin(struct ms_region *r, uint64_t epoch);
void ms_region_io_end(struct ms_region *r);

/* True when page is inside the region. */
bool ms_region_page_valid(const struct ms_region *r, uint64_t page);

/*
 * Copies page into dst (MS_PAGE_SIZE bytes) after verifying its stored checksum.
 * A never-written page sets *zero and copies nothing. Returns 0 or -EBADMSG.
 */
int ms_region_read_page(struct ms_region *r, uint64_t page, void *dst, uint64_t *sum,
			bool *zero);

/* Stores src as page with checksum sum (already verified by the caller). */
void ms_region_write_page(struct ms_region *r, uint64_t page, const void *src, uint64_t sum);

/* Between io_begin and io_end: sets bit i of bitmap (LSB first) for each page
 * first + i (i < n) that holds data. Returns 0 or -ERANGE. */
int ms_region_written_map(struct ms_region *r, uint64_t first, uint32_t n, uint8_t *bitmap);

/*
 * A lease: someone outside the store (an RDMA connection) exposes the
 * region's memory, and must stop when the region is fenced or deleted.
 * expose(l, slots, len) is given the region's slots to register (page p's
 * slot at slots + p * MS_SLOT_SIZE: the page, then its le64 checksum, 0 for
 * never written), and revoke(l) undoes it; both
 * run with the region's lock held exclusively (so no fence can slip between
 * the epoch check and the exposure), revoke exactly once for each successful
 * expose, from whichever thread fences, deletes or drops. Neither may call
 * back into the store. The lease's memory is its holder's and must stay
 * valid until ms_region_lease_drop returns.
 */
struct ms_region_lease {
	int (*expose)(struct ms_region_lease *l, void *slots, size_t len);
	void (*revoke)(struct ms_region_lease *l);
	struct ms_region_lease *next;	/* the store's */
	bool revoked;			/* under the region lock */
};

/*
 * For the holder of epoch (the caller's open): exposes the region through
 * l->expose and, if that succeeds, keeps l until it is revoked. The region
 * is then pinned (all of it counts as resident). Returns 0, -ESTALE (fenced
 * meanwhile), -ENOENT (deleted) or expose's -errno. Takes the region lock
 * exclusively: not between io_begin and io_end.
 */
int ms_region_lease_add(struct ms_region *r, uint64_t epoch, struct ms_region_lease *l);

/* Removes l, revoking it unless that already happened. Takes the region
 * lock exclusively. */
void ms_region_lease_drop(struct ms_region *r, struct ms_region_lease *l);

uint64_t ms_region_size(const struct ms_region *r);

/* Test hook: flips one bit of a stored page so its checksum no longer matches.
 * Returns 0, -ENOENT, -ERANGE, or -ENODATA for a never-written page. */
int ms_store_debug_corrupt(struct ms_store *st, uint64_t id, uint64_t page);

#endif

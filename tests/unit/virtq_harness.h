/*
 * The driver side of the split-virtqueue suites (test_vmm_virtq*.c): a flat
 * "guest RAM" of RAM_SIZE bytes at guest-physical RAM_BASE, between two
 * PROT_NONE guard pages, so a read outside it faults; the translation
 * callback the queue under test (vq) is given, which refuses any range not
 * wholly inside RAM and counts what it refused; and a small driver that lays
 * the rings out and adds chains (direct and indirect) the way a guest does.
 *
 * Layout: the descriptor table at RAM_BASE, the avail ring and the used ring
 * (4-aligned) right after it, then a bump heap (64-byte aligned allocations)
 * for buffers and indirect tables up to the end of RAM. Everything is reset by
 * the fixture of virtq_tcase() before each test. The helpers run inside
 * Check's forked child (CK_FORK) and fail the running test on any error.
 */
#ifndef LEGATO_TESTS_UNIT_VIRTQ_HARNESS_H
#define LEGATO_TESTS_UNIT_VIRTQ_HARNESS_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/virtq.h"

#define RAM_BASE 0x100000ull
#define RAM_SIZE (1u << 20)
#define NIOV 16
#define F_INDIRECT (1ull << VIRTIO_F_INDIRECT_DESC)
#define F_EVENT_IDX (1ull << VIRTIO_F_EVENT_IDX)

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

/* The driver's view of one queue. */
struct drv {
	struct vmm_virtq_config cfg;
	struct vmm_virtq_desc *desc;
	struct vmm_virtq_avail *avail;
	struct vmm_virtq_used *used;
	uint16_t avail_idx;	/* next avail index to publish */
	uint16_t next_desc;	/* next free slot in the table (bump, modulo size) */
	uint16_t last_used;	/* next used entry to read */
	uint64_t heap;		/* next free guest-physical byte for buffers */
};

/* One buffer of a chain: length and direction in, address filled in by the
 * driver when it adds the chain. */
struct seg {
	uint32_t len;
	bool wr;
	uint64_t gpa;		/* filled in by the driver */
};

/* The guest RAM (RAM_SIZE bytes, zeroed before each test). */
extern uint8_t *ram;

/* What flat_gpa() refused since the test started: how many ranges, and the
 * last one refused. */
extern unsigned xl_refused;
extern uint64_t xl_bad_gpa, xl_bad_len;

/* The queue under test (initialised with flat_gpa before each test), the
 * driver, and room for one popped chain (iov[NIOV], ch). */
extern struct vmm_virtq vq;
extern struct drv drv;
extern struct iovec iov[NIOV];
extern struct vmm_virtq_chain ch;

/* The translation callback: the host address of [gpa, gpa + len) when it lies
 * wholly in RAM (overflow-safe), else NULL after recording the refusal in
 * xl_refused, xl_bad_gpa and xl_bad_len. ctx is unused. */
void *flat_gpa(void *ctx, uint64_t gpa, uint64_t len);

/* The host address of gpa, which must lie in RAM (not checked). */
void *hva_of(uint64_t gpa);

/* Resets drv and lays out a queue of size entries with these features (rings
 * from RAM_BASE, heap after them) without telling vq. */
void drv_layout(unsigned size, uint64_t features);

/* drv_layout(), then vmm_virtq_enable(), which must succeed. */
void drv_enable(unsigned size, uint64_t features);

/* len bytes from the heap (64-byte aligned); fails the test when RAM is
 * exhausted. */
uint64_t drv_alloc(uint64_t len);

/* Writes descriptor i of table t (little-endian). */
void set_desc(struct vmm_virtq_desc *t, unsigned i, uint64_t addr, uint32_t len,
	      uint16_t flags, uint16_t next);

/* The used_event field (after the avail ring) and the avail_event field
 * (after the used ring) of the current layout. */
uint16_t *used_event(void);
uint16_t *avail_event(void);

/* Puts head in the next avail ring entry and publishes avail->idx (release). */
void drv_publish(uint16_t head);

/* Adds s[0..n) as one chain in the descriptor table from the next free slot
 * on (wrapping modulo the size), each buffer freshly allocated (s[k].gpa set),
 * and publishes it. Returns the head. */
uint16_t drv_add_direct(struct seg *s, unsigned n);

/* Adds s[0..n) as a freshly allocated indirect table of n entries pointed to
 * by one descriptor in the next free slot, and publishes it. Returns the
 * head. */
uint16_t drv_add_indirect(struct seg *s, unsigned n);

/* Sets descriptor head to (addr, len, flags, next) and publishes it as a
 * chain; the rest of the chain, if any, is already in place. */
void drv_raw(uint16_t head, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);

/* Reads the next used element (acquire) into *id and *len; false when the
 * device has published none. */
bool drv_get_used(uint32_t *id, uint32_t *len);

/* Asserts the next used element is (id, len). */
void expect_used(uint32_t id, uint32_t len);

/* Pops one chain into iov/ch and asserts it is exactly s[0..n) with head
 * head: same buffers in order (zero lengths left out), readable before
 * writable, and matching counts and byte totals. */
void pop_expect(uint16_t head, const struct seg *s, unsigned n);

/* A test case whose fixture (before each test, in the child) maps RAM with
 * its guard pages once, zeroes it, clears the refusal record and initialises
 * vq over flat_gpa; timeout 10 s. */
TCase *virtq_tcase(const char *name);

#endif

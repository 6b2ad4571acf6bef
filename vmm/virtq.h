/*
 * The device side of a virtio 1.x split virtqueue, as a pure library shared
 * by the virtio-pci devices (virtio-net, virtio-blk). It owns the queue's
 * configuration and validation, taking available descriptor chains (direct
 * and indirect) as host iovecs, publishing used elements, and both kinds of
 * notification suppression (VIRTIO_F_EVENT_IDX or the ring flags). It knows
 * nothing of PCI, devices or the VMM: guest memory is reached only through
 * the translation callback given to vmm_virtq_init(), so the tests and the
 * fuzzer (tools/fuzz/fuzz_virtq.c) run it over a flat buffer.
 *
 * Trust: everything in guest memory is the guest's and may change under us.
 * Each guest value is loaded once into a local and checked there; a driver
 * that breaks the rules (an index out of range, a loop, a buffer outside RAM,
 * ...) makes the queue *broken*: a sticky state in which every call does
 * nothing, until vmm_virtq_reset(). The device then sets DEVICE_NEEDS_RESET,
 * saying why (vmm_virtq_broken_reason()).
 *
 * Threads and locking: a queue is used by one thread at a time (the
 * device's queue thread, or the vCPU thread that handles its notification
 * under the device's lock); no function here takes a lock, blocks or
 * allocates, so every contract below reads "caller serialises per queue".
 * Distinct queues are independent. Ordering against the guest's vCPUs is by
 * the barriers described on each function.
 *
 * Byte order: virtio 1.x rings are little-endian; fields are converted with
 * <endian.h> (a no-op on the x86-64 hosts legato runs on).
 *
 * The split ring (virtio 1.x section 2.7), for a queue of size N (a power of
 * two, 1..32768), in three separately placed guest-physical areas:
 *
 *   descriptor table (driver writes), 16 * N bytes, 16-byte aligned
 *   +------------------+---------+-----------+-----------+
 *   | addr (le64)      | len le32| flags le16| next le16 |  x N
 *   +------------------+---------+-----------+-----------+
 *     flags: NEXT (chain continues at `next`), WRITE (device-writable),
 *            INDIRECT (addr/len is a table of descriptors)
 *
 *   driver area, "avail" ring (driver writes), 6 + 2 * N bytes, 2-aligned
 *   +-------+-------+---------+---------+-----+-----------+------------+
 *   | flags | idx   | ring[0] | ring[1] | ... | ring[N-1] | used_event |
 *   +-------+-------+---------+---------+-----+-----------+------------+
 *     flags: NO_INTERRUPT; ring[i]: head descriptor index; idx: free-running
 *     count of heads published; used_event: EVENT_IDX only
 *
 *   device area, "used" ring (device writes), 6 + 8 * N bytes, 4-aligned
 *   +-------+-------+--------------------+-----+----------------------+-------------+
 *   | flags | idx   | ring[0]: id, len   | ... | ring[N-1]: id, len   | avail_event |
 *   +-------+-------+--------------------+-----+----------------------+-------------+
 *     flags: NO_NOTIFY; id: head of a finished chain (le32); len: bytes the
 *     device wrote into it (le32); avail_event: EVENT_IDX only
 *
 * A chain lists its device-readable buffers first, then the writable ones.
 * idx fields count modulo 2^16; ring slots are idx % N.
 */
#ifndef LEGATO_VMM_VIRTQ_H
#define LEGATO_VMM_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define VMM_VIRTQ_MAX_SIZE 32768u

/* Descriptor flags. */
#define VIRTQ_DESC_F_NEXT 1u
#define VIRTQ_DESC_F_WRITE 2u
#define VIRTQ_DESC_F_INDIRECT 4u
/* Ring flags. */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u
#define VIRTQ_USED_F_NO_NOTIFY 1u
/* Feature bit numbers this layer looks at. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29

/* Guest-memory layouts (all fields little-endian). */
struct vmm_virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vmm_virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];	/* [size], then uint16_t used_event */
};

struct vmm_virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vmm_virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct vmm_virtq_used_elem ring[];	/* [size], then uint16_t avail_event */
};

/* Bytes each area takes for a queue of n entries. */
#define VMM_VIRTQ_DESC_BYTES(n) (16ull * (n))
#define VMM_VIRTQ_AVAIL_BYTES(n) (6ull + 2ull * (n))
#define VMM_VIRTQ_USED_BYTES(n) (6ull + 8ull * (n))

/* What the driver programmed for one queue. */
struct vmm_virtq_config {
	unsigned size;		/* power of two, 1..VMM_VIRTQ_MAX_SIZE */
	uint64_t desc;		/* guest-physical addresses of the three areas */
	uint64_t avail;
	uint64_t used;
	uint64_t features;	/* negotiated feature bits; only bits 28, 29 are looked at */
};

/* One chain taken by vmm_virtq_pop(): iov[0, nout) are device-readable,
 * iov[nout, nout + nin) device-writable; zero-length buffers are left out.
 * out_len + in_len <= UINT32_MAX. */
struct vmm_virtq_chain {
	uint16_t head;		/* give back to vmm_virtq_push() */
	unsigned nout;
	unsigned nin;
	uint32_t out_len;
	uint32_t in_len;
};

/* A queue. Fields are private to virtq.c; the struct is public so devices
 * can embed it. */
struct vmm_virtq {
	void *(*gpa_to_hva)(void *ctx, uint64_t gpa, uint64_t len);
	void *ctx;
	const char *broken_reason;	/* static; set with broken */
	bool enabled;
	bool broken;
	bool event_idx;
	bool indirect;
	bool notify;			/* the driver should notify us */
	bool signalled_valid;		/* signalled_used means something */
	uint16_t size;
	uint16_t last_avail;		/* next avail entry to take */
	uint16_t shadow_avail;		/* avail->idx as last loaded */
	uint16_t used_idx;		/* next used entry to fill */
	uint16_t signalled_used;	/* used_idx at the last need_interrupt() */
	uint16_t used_flags;		/* our copy of used->flags */
	struct vmm_virtq_desc *desc;	/* host pointers into guest RAM */
	struct vmm_virtq_avail *avail;
	struct vmm_virtq_used *used;
	uint16_t *used_event;		/* &avail->ring[size] */
	uint16_t *avail_event;		/* (uint16_t *)&used->ring[size] */
};

/*
 * Prepares vq (disabled, not broken) with the translation callback and its
 * context, both kept for the queue's life. gpa_to_hva(ctx, gpa, len) returns
 * the host address of guest-physical [gpa, gpa + len), or NULL unless the
 * whole range is guest RAM (it must be overflow-safe; len is never 0 here);
 * in the VMM it is vmm_gpa(). It is called from the queue's thread only.
 * Does not touch guest memory.
 */
void vmm_virtq_init(struct vmm_virtq *vq,
		    void *(*gpa_to_hva)(void *ctx, uint64_t gpa, uint64_t len), void *ctx);

/*
 * Enables the queue as cfg describes (the driver's queue_enable write):
 * checks the size, the areas' alignment (desc 16, avail 2, used 4) and that
 * each area is wholly guest RAM, and translates the three areas once (guest
 * RAM must not move while the queue is enabled). Indices start at 0 and
 * notifications enabled, as after a device reset; guest memory is not
 * written. Returns 0, -EINVAL (size or alignment), -EFAULT (an area not in
 * RAM), -EBUSY (already enabled) or -EIO (broken: reset first). The queue is
 * unchanged on error.
 */
int vmm_virtq_enable(struct vmm_virtq *vq, const struct vmm_virtq_config *cfg);

/*
 * Forgets everything but the callback (the driver reset the device or the
 * queue): disabled, not broken, indices 0. Does not touch guest memory.
 */
void vmm_virtq_reset(struct vmm_virtq *vq);

/* True once the driver broke the rules; sticky until vmm_virtq_reset(). */
bool vmm_virtq_broken(const struct vmm_virtq *vq);
/* Which rule the driver broke first, as a short static phrase for a log line
 * ("loop in a descriptor chain", "buffer not in guest RAM", ...); NULL while
 * the queue is not broken. */
const char *vmm_virtq_broken_reason(const struct vmm_virtq *vq);
bool vmm_virtq_enabled(const struct vmm_virtq *vq);
/* The queue's size while enabled (at most that many chains are ever out). */
unsigned vmm_virtq_size(const struct vmm_virtq *vq);

/*
 * Takes the next available chain, if any. Loads avail->idx with acquire
 * semantics before reading the ring entry and the descriptors, and follows
 * indirect tables (when VIRTIO_F_INDIRECT_DESC was negotiated). Each buffer
 * is translated here; iov[] gets host addresses, at most max entries.
 * With EVENT_IDX and notifications enabled, avail_event is advanced. Before
 * sleeping after a 0, call vmm_virtq_enable_notify() (see the loop there).
 *
 * Returns 1 with *chain filled, 0 when nothing is available (or the queue is
 * disabled), or -EIO when the queue is (or has just become) broken: a
 * descriptor index >= size, a chain longer than the queue (a loop), an
 * indirect table that is nested, not a multiple of 16 bytes, empty, longer
 * than VMM_VIRTQ_MAX_SIZE, outside RAM, flagged NEXT, or not negotiated, a
 * buffer not wholly in RAM, a readable buffer after a writable one, more than
 * max buffers, more than UINT32_MAX bytes in all, or avail->idx more than
 * size ahead of the last entry taken.
 */
int vmm_virtq_pop(struct vmm_virtq *vq, struct iovec *iov, unsigned max,
		  struct vmm_virtq_chain *chain);

/*
 * Returns a chain to the driver: writes used element (head, written) and then
 * stores used->idx with release semantics. Call need_interrupt() after one or
 * more pushes. Returns 0, -EINVAL (a device bug: disabled, head >= size, or
 * every chain taken was already pushed) or -EIO (broken).
 */
int vmm_virtq_push(struct vmm_virtq *vq, uint16_t head, uint32_t written);

/*
 * Whether the driver wants an interrupt for what was pushed since the last
 * call: with EVENT_IDX, vmm_virtq_need_event(used_event, now, then) over all
 * those pushes; without it, unless the driver set VIRTQ_AVAIL_F_NO_INTERRUPT.
 * False when nothing was pushed since the last call (except the first call
 * after vmm_virtq_set_indices(), which is conservatively true), when disabled
 * or broken. A full barrier orders the used->idx stores before the loads.
 */
bool vmm_virtq_need_interrupt(struct vmm_virtq *vq);

/*
 * Asks the driver to stop notifying: sets VIRTQ_USED_F_NO_NOTIFY, or with
 * EVENT_IDX stops advancing avail_event. A hint only; the driver may still
 * notify.
 */
void vmm_virtq_disable_notify(struct vmm_virtq *vq);

/*
 * Asks the driver to notify again (clears VIRTQ_USED_F_NO_NOTIFY, or with
 * EVENT_IDX writes avail_event = the next entry to take), then after a full
 * barrier re-checks avail->idx. Returns true when buffers are available, so
 * the device goes on instead of sleeping; false when it may sleep until the
 * next notification (also when disabled or broken). The device loop:
 *
 *	do {
 *		vmm_virtq_disable_notify(vq);
 *		while (vmm_virtq_pop(vq, iov, max, &c) == 1)
 *			... vmm_virtq_push(vq, c.head, n) ...;
 *		if (vmm_virtq_need_interrupt(vq)) ... interrupt ...;
 *	} while (vmm_virtq_enable_notify(vq));
 */
bool vmm_virtq_enable_notify(struct vmm_virtq *vq);

/*
 * The device's position: the next avail entry to take and the next used
 * entry to fill. set_indices() restores both on an enabled queue (migration;
 * the tests use it to start near the 16-bit wrap), writes used->idx, and
 * makes the next need_interrupt() true. Chains in [used, last_avail) count as
 * taken and not yet pushed. Returns 0, -EINVAL (disabled, or last_avail more
 * than size ahead of used) or -EIO.
 */
void vmm_virtq_get_indices(const struct vmm_virtq *vq, uint16_t *last_avail, uint16_t *used);
int vmm_virtq_set_indices(struct vmm_virtq *vq, uint16_t last_avail, uint16_t used);

/* vring_need_event(): true when event_idx lies in [old_idx, new_idx) modulo
 * 2^16, i.e. the driver asked to hear about one of the entries just added
 * (indices old_idx .. new_idx - 1). Pure. */
bool vmm_virtq_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx);

#endif

/*
 * The split virtqueue, device side (vmm/virtq.h has the layout and the
 * contracts). This file owns every access to a queue's rings and descriptor
 * tables: the three areas are translated once at enable and kept as host
 * pointers; buffers and indirect tables are translated on each use through
 * the caller's callback, so nothing here ever dereferences an address that
 * did not come back from it. Guest-written values are loaded exactly once
 * (atomic loads, or a copy the compiler may not re-read) and checked in
 * locals, so a guest rewriting a descriptor while we walk it cannot make us
 * use a value we did not check. Any rule broken by the driver makes the
 * queue broken (sticky); the walk is bounded by the queue or table size.
 *
 * Ordering with the driver (virtio 1.x 2.7.7, 2.7.13, Linux vhost): acquire
 * load of avail->idx before the ring entries and descriptors it publishes;
 * used elements stored before a release store of used->idx; a full fence
 * between publishing used->idx and reading used_event/avail->flags, and
 * between re-enabling notifications and re-reading avail->idx.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "vmm/virtq.h"

/* One descriptor, loaded from guest memory and converted to host order. */
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* A chain being gathered by vmm_virtq_pop(). */
struct walk {
	struct iovec *iov;
	unsigned max;
	struct vmm_virtq_chain *chain;
	uint64_t total;
};

/* The driver broke a rule: the queue stops for good (until a reset), and
 * why is kept for the device's warning. The first reason stays: later calls
 * return -EIO before they could break anything again. */
static int set_broken(struct vmm_virtq *vq, const char *why)
{
	vq->broken = true;
	vq->broken_reason = why;
	return -EIO;
}

static uint16_t load16(const uint16_t *p, int order)
{
	return le16toh(__atomic_load_n(p, order));
}

static void store16(uint16_t *p, uint16_t v, int order)
{
	__atomic_store_n(p, htole16(v), order);
}

/* Loads the 16-byte descriptor at p (any alignment: indirect tables need not
 * be aligned) once; the empty asm keeps the compiler from re-reading guest
 * memory in place of the copy. */
static void desc_load(const uint8_t *p, struct desc *d)
{
	struct vmm_virtq_desc raw;

	memcpy(&raw, p, sizeof(raw));
	__asm__ volatile("" : "+m"(raw));
	d->addr = le64toh(raw.addr);
	d->len = le32toh(raw.len);
	d->flags = le16toh(raw.flags);
	d->next = le16toh(raw.next);
}

/* ----------------------------------------------------------- set-up */

void vmm_virtq_init(struct vmm_virtq *vq,
		    void *(*gpa_to_hva)(void *ctx, uint64_t gpa, uint64_t len), void *ctx)
{
	memset(vq, 0, sizeof(*vq));
	vq->gpa_to_hva = gpa_to_hva;
	vq->ctx = ctx;
}

void vmm_virtq_reset(struct vmm_virtq *vq)
{
	vmm_virtq_init(vq, vq->gpa_to_hva, vq->ctx);
}

bool vmm_virtq_broken(const struct vmm_virtq *vq)
{
	return vq->broken;
}

const char *vmm_virtq_broken_reason(const struct vmm_virtq *vq)
{
	return vq->broken ? vq->broken_reason : NULL;
}

bool vmm_virtq_enabled(const struct vmm_virtq *vq)
{
	return vq->enabled;
}

unsigned vmm_virtq_size(const struct vmm_virtq *vq)
{
	return vq->size;
}

/* Host address of one ring area of len bytes at gpa (aligned, checked by
 * check_config()), or NULL when not RAM or not as aligned on the host. */
static void *map_area(struct vmm_virtq *vq, uint64_t gpa, uint64_t len, unsigned align)
{
	void *hva = vq->gpa_to_hva(vq->ctx, gpa, len);

	if (!hva || ((uintptr_t)hva & (align - 1)))
		return NULL;
	return hva;
}

static int check_config(const struct vmm_virtq_config *cfg)
{
	if (cfg->size == 0 || cfg->size > VMM_VIRTQ_MAX_SIZE || (cfg->size & (cfg->size - 1)))
		return -EINVAL;
	if ((cfg->desc & 15) || (cfg->avail & 1) || (cfg->used & 3))
		return -EINVAL;
	return 0;
}

int vmm_virtq_enable(struct vmm_virtq *vq, const struct vmm_virtq_config *cfg)
{
	struct vmm_virtq_desc *desc;
	struct vmm_virtq_avail *avail;
	struct vmm_virtq_used *used;
	int r;

	if (vq->broken)
		return -EIO;
	if (vq->enabled)
		return -EBUSY;
	r = check_config(cfg);
	if (r)
		return r;
	desc = map_area(vq, cfg->desc, VMM_VIRTQ_DESC_BYTES(cfg->size), 16);
	avail = map_area(vq, cfg->avail, VMM_VIRTQ_AVAIL_BYTES(cfg->size), 2);
	used = map_area(vq, cfg->used, VMM_VIRTQ_USED_BYTES(cfg->size), 4);
	if (!desc || !avail || !used)
		return -EFAULT;
	vmm_virtq_reset(vq);
	vq->size = (uint16_t)cfg->size;	/* 32768 fits */
	vq->event_idx = (cfg->features >> VIRTIO_F_EVENT_IDX) & 1;
	vq->indirect = (cfg->features >> VIRTIO_F_INDIRECT_DESC) & 1;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->used_event = &avail->ring[cfg->size];
	vq->avail_event = (uint16_t *)&used->ring[cfg->size];
	vq->notify = true;
	vq->signalled_valid = true;
	vq->enabled = true;
	return 0;
}

void vmm_virtq_get_indices(const struct vmm_virtq *vq, uint16_t *last_avail, uint16_t *used)
{
	*last_avail = vq->last_avail;
	*used = vq->used_idx;
}

int vmm_virtq_set_indices(struct vmm_virtq *vq, uint16_t last_avail, uint16_t used)
{
	if (vq->broken)
		return -EIO;
	if (!vq->enabled || (uint16_t)(last_avail - used) > vq->size)
		return -EINVAL;
	vq->last_avail = vq->shadow_avail = last_avail;
	vq->used_idx = vq->signalled_used = used;
	vq->signalled_valid = false;
	store16(&vq->used->idx, used, __ATOMIC_RELEASE);
	if (vq->event_idx && vq->notify)
		store16(vq->avail_event, last_avail, __ATOMIC_RELAXED);
	return 0;
}

/* ------------------------------------------------------ taking chains */

/* How many avail entries wait to be taken (0..size), or -EIO (broken) when
 * the driver published more than size. avail->idx is re-loaded (acquire)
 * only once everything seen before has been taken. */
static int avail_pending(struct vmm_virtq *vq)
{
	uint16_t idx, n;

	if (vq->shadow_avail != vq->last_avail)
		return (uint16_t)(vq->shadow_avail - vq->last_avail);
	idx = load16(&vq->avail->idx, __ATOMIC_ACQUIRE);
	n = (uint16_t)(idx - vq->last_avail);
	if (n > vq->size)
		return set_broken(vq, "avail index more than the queue size ahead");
	vq->shadow_avail = idx;
	return n;
}

/* Appends the buffer d describes to the chain (zero-length: skipped).
 * Returns 0, or -EIO with the queue broken (as do the walks below). */
static int add_buffer(struct vmm_virtq *vq, struct walk *w, const struct desc *d)
{
	struct vmm_virtq_chain *c = w->chain;
	unsigned n = c->nout + c->nin;
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;
	void *hva;

	if (d->len == 0)
		return 0;
	if (!writable && c->nin)
		return set_broken(vq, "readable buffer after a writable one");
	if (n >= w->max)
		return set_broken(vq, "more buffers in a chain than the device takes");
	w->total += d->len;
	if (w->total > UINT32_MAX)
		return set_broken(vq, "chain of 4 GiB or more");
	hva = vq->gpa_to_hva(vq->ctx, d->addr, d->len);
	if (!hva)
		return set_broken(vq, "buffer not in guest RAM");
	w->iov[n].iov_base = hva;
	w->iov[n].iov_len = d->len;
	if (writable) {
		c->nin++;
		c->in_len += d->len;
	} else {
		c->nout++;
		c->out_len += d->len;
	}
	return 0;
}

/* Walks the indirect table d points to: it ends the chain (NEXT is not
 * allowed beside INDIRECT), and NEXT inside it indexes the table. */
static int walk_indirect(struct vmm_virtq *vq, struct walk *w, const struct desc *d)
{
	const uint8_t *table;
	uint32_t n, i = 0, seen = 0;
	struct desc e;
	int r;

	if (!vq->indirect)
		return set_broken(vq, "indirect descriptor not negotiated");
	if (d->flags & VIRTQ_DESC_F_NEXT)
		return set_broken(vq, "indirect descriptor with NEXT");
	if (d->len == 0 || d->len % sizeof(struct vmm_virtq_desc))
		return set_broken(vq, "indirect table length not a positive multiple of 16");
	n = d->len / sizeof(struct vmm_virtq_desc);
	if (n > VMM_VIRTQ_MAX_SIZE)
		return set_broken(vq, "indirect table longer than 32768 entries");
	table = vq->gpa_to_hva(vq->ctx, d->addr, d->len);
	if (!table)
		return set_broken(vq, "indirect table not in guest RAM");
	for (;;) {
		if (i >= n)
			return set_broken(vq, "next index beyond the indirect table");
		if (++seen > n)
			return set_broken(vq, "loop in an indirect table");
		desc_load(table + (size_t)i * sizeof(struct vmm_virtq_desc), &e);
		if (e.flags & VIRTQ_DESC_F_INDIRECT)
			return set_broken(vq, "nested indirect table");
		r = add_buffer(vq, w, &e);
		if (r)
			return r;
		if (!(e.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		i = e.next;
	}
}

/* Walks the chain that starts at head in the descriptor table. */
static int walk_chain(struct vmm_virtq *vq, struct walk *w, uint16_t head)
{
	unsigned i = head, seen = 0;
	struct desc d;
	int r;

	for (;;) {
		if (i >= vq->size)
			return set_broken(vq, !seen ? "head index beyond the queue size"
						       : "next index beyond the queue size");
		if (++seen > vq->size)
			return set_broken(vq, "loop in a descriptor chain");
		desc_load((const uint8_t *)&vq->desc[i], &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return walk_indirect(vq, w, &d);
		r = add_buffer(vq, w, &d);
		if (r)
			return r;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

int vmm_virtq_pop(struct vmm_virtq *vq, struct iovec *iov, unsigned max,
		  struct vmm_virtq_chain *chain)
{
	struct walk w = { .iov = iov, .max = max, .chain = chain };
	uint16_t slot, head;
	int n;

	if (vq->broken)
		return -EIO;
	if (!vq->enabled)
		return 0;
	n = avail_pending(vq);
	if (n <= 0)
		return n;
	slot = vq->last_avail & (vq->size - 1);
	head = load16(&vq->avail->ring[slot], __ATOMIC_RELAXED);
	vq->last_avail++;
	if (vq->event_idx && vq->notify)
		store16(vq->avail_event, vq->last_avail, __ATOMIC_RELAXED);
	memset(chain, 0, sizeof(*chain));
	chain->head = head;
	if (walk_chain(vq, &w, head))
		return -EIO;	/* broken, with the reason the walk found */
	return 1;
}

/* ---------------------------------------------- returning chains */

int vmm_virtq_push(struct vmm_virtq *vq, uint16_t head, uint32_t written)
{
	struct vmm_virtq_used_elem *e;

	if (vq->broken)
		return -EIO;
	if (!vq->enabled || head >= vq->size || vq->used_idx == vq->last_avail)
		return -EINVAL;		/* a device bug: nothing of that is outstanding */
	e = &vq->used->ring[vq->used_idx & (vq->size - 1)];
	__atomic_store_n(&e->id, htole32((uint32_t)head), __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, htole32(written), __ATOMIC_RELAXED);
	vq->used_idx++;
	store16(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
	return 0;
}

bool vmm_virtq_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

bool vmm_virtq_need_interrupt(struct vmm_virtq *vq)
{
	uint16_t old = vq->signalled_used, now = vq->used_idx;
	bool valid = vq->signalled_valid;

	if (vq->broken || !vq->enabled)
		return false;
	vq->signalled_used = now;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	if (now == old)
		return false;
	/* Our used->idx store before the driver's used_event / flags. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->event_idx)
		return vmm_virtq_need_event(load16(vq->used_event, __ATOMIC_RELAXED), now, old);
	return !(load16(&vq->avail->flags, __ATOMIC_RELAXED) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

/* ------------------------------------------------- notifications */

void vmm_virtq_disable_notify(struct vmm_virtq *vq)
{
	if (vq->broken || !vq->enabled)
		return;
	vq->notify = false;
	if (!vq->event_idx && !(vq->used_flags & VIRTQ_USED_F_NO_NOTIFY)) {
		vq->used_flags |= VIRTQ_USED_F_NO_NOTIFY;
		store16(&vq->used->flags, vq->used_flags, __ATOMIC_RELAXED);
	}
}

bool vmm_virtq_enable_notify(struct vmm_virtq *vq)
{
	if (vq->broken || !vq->enabled)
		return false;
	vq->notify = true;
	if (vq->event_idx) {
		store16(vq->avail_event, vq->last_avail, __ATOMIC_RELAXED);
	} else if (vq->used_flags & VIRTQ_USED_F_NO_NOTIFY) {
		vq->used_flags &= (uint16_t)~VIRTQ_USED_F_NO_NOTIFY;
		store16(&vq->used->flags, vq->used_flags, __ATOMIC_RELAXED);
	}
	/* The driver may have added buffers before seeing the store above:
	 * make it visible before looking again (the driver does the mirror). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->shadow_avail != vq->last_avail)
		return true;
	return avail_pending(vq) > 0;
}

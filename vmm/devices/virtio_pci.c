/*
 * The virtio 1.x ("modern") PCI transport: vendor 1af4, device 1040 + type,
 * revision 1, found by the stock kernel's virtio_pci driver through vendor
 * capabilities in configuration space. Everything sits in one 32-bit memory
 * BAR:
 *
 *   0x0000  common configuration (features, status, queue set-up)
 *   0x1000  ISR status (read clears)
 *   0x2000  device-specific configuration (the back-end's)
 *   0x3000  notify area: queue i at 0x3000 + 4 i (notify_off_multiplier 4)
 *   0x4000  MSI-X table, one 16-byte entry per vector (queues + config)
 *   0x6000  MSI-X pending-bit array
 *
 * Configuration space: capability list at 0x40 -> common (0x40) -> notify
 * (0x50) -> ISR (0x64) -> device (0x74) -> MSI-X (0x84). No INTx: the driver
 * uses MSI-X. Notifications arrive through one ioeventfd per queue (the MMIO
 * handler only covers writes an ioeventfd did not match); interrupts leave
 * through one irqfd per vector, so neither bounces through a vCPU thread.
 * A masked vector (entry or whole function) records its interrupt in the PBA
 * and delivers it when unmasked. vio->lock covers every field below; the
 * back-end's thread takes it only to raise interrupts.
 *
 * Also the back-ends' shared parts: their thread's life cycle (struct
 * vmm_virtio_worker) and the one-device-per-option set.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/wire.h"
#include "vmm/devices/pci.h"
#include "vmm/devices/virtio_pci.h"

#define BAR_SIZE 0x8000
#define COMMON_OFF 0x0000
#define COMMON_LEN 0x38
#define ISR_OFF 0x1000
#define DEVCFG_OFF 0x2000
#define NOTIFY_OFF 0x3000
#define NOTIFY_MULT 4
#define MSIX_TABLE_OFF 0x4000
#define MSIX_PBA_OFF 0x6000
#define CAP_MSIX 0x84
#define NO_VECTOR 0xffff
#define MSIX_CTRL_MASKALL 0x4000
#define MSIX_CTRL_ENABLE 0x8000
#define VIRTIO_F_INDIRECT 28
#define VIRTIO_F_EVENT 29

struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;	/* ctrl bit 0: masked */
	int gsi;
	int efd;
};

struct vmm_virtio {
	struct vmm_pci_dev pci;
	struct vmm *vm;
	const struct vmm_virtio_ops *ops;
	void *dev;
	pthread_mutex_t lock;
	uint64_t dev_features, drv_features;
	uint32_t dev_feature_sel, drv_feature_sel;
	uint8_t status, isr, generation;
	bool started;
	bool stopping;		/* reset asked: a vCPU stops the back-end (bar_io) */
	uint16_t queue_sel, config_vector;
	struct {
		struct vmm_virtq vq;
		struct vmm_virtq_config cfg;
		uint16_t vector;
		int kick_fd;
	} q[VMM_VIRTIO_MAX_QUEUES];
	unsigned nvec;
	struct msix_entry msix[VMM_VIRTIO_MAX_QUEUES + 1];
	uint64_t pba;
	uint32_t bar_addr;	/* where the ioeventfds are, when bar_on */
	bool bar_on;
	unsigned warnings;	/* guest-caused warnings logged so far */
};

/* A guest can repeat what makes us warn (reset, break a queue, reset...) as
 * often as it likes: the first few are logged, the rest at debug level. */
#define GUEST_WARNINGS 5

static void guest_warn(struct vmm_virtio *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void guest_warn(struct vmm_virtio *v, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (v->warnings < GUEST_WARNINGS)
		log_warn("%s: %s%s", v->pci.name, msg,
			 ++v->warnings == GUEST_WARNINGS ? " (further ones at debug level)" : "");
	else
		log_debug("%s: %s", v->pci.name, msg);
}

static void *gpa_to_hva(void *ctx, uint64_t gpa, uint64_t len)
{
	return vmm_gpa(&((struct vmm *)ctx)->mem, gpa, len);
}

static bool msix_masked(const struct vmm_virtio *v, unsigned vec)
{
	uint16_t ctrl = (uint16_t)(v->pci.cfg[CAP_MSIX + 2] | v->pci.cfg[CAP_MSIX + 3] << 8);

	return !(ctrl & MSIX_CTRL_ENABLE) || (ctrl & MSIX_CTRL_MASKALL) || (v->msix[vec].ctrl & 1);
}

/* Interrupts through vector vec now, or marks it pending. Caller holds lock. */
static void raise_locked(struct vmm_virtio *v, uint16_t vec)
{
	static const uint64_t one = 1;

	if (vec >= v->nvec)
		return;		/* NO_VECTOR: the driver wants none */
	if (msix_masked(v, vec)) {
		v->pba |= 1ull << vec;
		return;
	}
	if (write(v->msix[vec].efd, &one, sizeof(one)) < 0)
		log_debug("%s: irqfd write: %s", v->pci.name, strerror(errno));
}

/* Delivers what became deliverable after an unmask. Caller holds lock. */
static void flush_pending(struct vmm_virtio *v)
{
	for (unsigned vec = 0; vec < v->nvec; vec++)
		if ((v->pba & (1ull << vec)) && !msix_masked(v, vec)) {
			v->pba &= ~(1ull << vec);
			raise_locked(v, (uint16_t)vec);
		}
}

void vmm_virtio_used(struct vmm_virtio *v, unsigned i)
{
	if (!vmm_virtq_need_interrupt(&v->q[i].vq))
		return;
	pthread_mutex_lock(&v->lock);
	v->isr |= 1;
	raise_locked(v, v->q[i].vector);
	pthread_mutex_unlock(&v->lock);
}

void vmm_virtio_needs_reset(struct vmm_virtio *v, unsigned i, const char *what)
{
	const char *why = vmm_virtq_broken_reason(&v->q[i].vq);

	pthread_mutex_lock(&v->lock);
	if (!(v->status & VIRTIO_STATUS_NEEDS_RESET)) {
		guest_warn(v, "%s queue broken (%s): device needs a reset", what,
			   why ? why : "no reason recorded");
		v->status |= VIRTIO_STATUS_NEEDS_RESET;
		v->isr |= 2;
		raise_locked(v, v->config_vector);
	}
	pthread_mutex_unlock(&v->lock);
}

struct vmm_virtq *vmm_virtio_queue(struct vmm_virtio *v, unsigned i)
{
	return &v->q[i].vq;
}

int vmm_virtio_kick_fd(const struct vmm_virtio *v, unsigned i)
{
	return v->q[i].kick_fd;
}

/* ---------------------------------------------------------- reset, status */

/* Back to the reset state. The back-end must be stopped. Caller holds lock. */
static void reset_state(struct vmm_virtio *v)
{
	for (unsigned i = 0; i < v->ops->nqueues; i++) {
		uint64_t drain;

		vmm_virtq_reset(&v->q[i].vq);
		v->q[i].cfg = (struct vmm_virtq_config){ .size = v->ops->queue_max };
		v->q[i].vector = NO_VECTOR;
		while (read(v->q[i].kick_fd, &drain, sizeof(drain)) > 0)
			;
	}
	v->status = 0;
	v->isr = 0;
	v->drv_features = 0;
	v->dev_feature_sel = v->drv_feature_sel = 0;
	v->queue_sel = 0;
	v->config_vector = NO_VECTOR;
}

/* The driver wrote status 0. A started back-end is stopped by bar_io once
 * the lock is dropped (its thread may be waiting for the lock to raise an
 * interrupt); the rest of the reset follows. Caller holds lock. */
static void device_reset(struct vmm_virtio *v)
{
	if (v->started) {
		v->started = false;
		v->stopping = true;
		return;
	}
	reset_state(v);
}

static void set_status(struct vmm_virtio *v, uint8_t s)
{
	if (s == 0) {
		device_reset(v);
		return;
	}
	if ((s & VIRTIO_STATUS_FEATURES_OK) && !(v->status & VIRTIO_STATUS_FEATURES_OK) &&
	    ((v->drv_features & ~v->dev_features) ||
	     !(v->drv_features & (1ull << VIRTIO_F_VERSION_1))))
		s &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;	/* refused: the driver sees it */
	if ((s & VIRTIO_STATUS_DRIVER_OK) && !v->started) {
		int rc = v->ops->start(v->dev, v->drv_features);

		if (rc) {
			log_warn("%s: cannot start: %s", v->pci.name, strerror(-rc));
			s |= VIRTIO_STATUS_NEEDS_RESET;
		} else {
			v->started = true;
		}
	}
	v->status = s | (v->status & VIRTIO_STATUS_NEEDS_RESET);
}

/* ---------------------------------------------------------- common config */

/* The common configuration structure as the driver would read it now. */
static void common_image(struct vmm_virtio *v, uint8_t img[COMMON_LEN])
{
	unsigned qs = v->queue_sel;
	bool qok = qs < v->ops->nqueues;
	uint64_t f = v->dev_feature_sel < 2 ? v->dev_features >> (32 * v->dev_feature_sel) : 0;
	uint64_t df = v->drv_feature_sel < 2 ? v->drv_features >> (32 * v->drv_feature_sel) : 0;

	memset(img, 0, COMMON_LEN);
	put_le32(img + 0x00, v->dev_feature_sel);
	put_le32(img + 0x04, (uint32_t)f);
	put_le32(img + 0x08, v->drv_feature_sel);
	put_le32(img + 0x0c, (uint32_t)df);
	put_le16(img + 0x10, v->config_vector);
	put_le16(img + 0x12, (uint16_t)v->ops->nqueues);
	img[0x14] = v->status;
	img[0x15] = v->generation;
	put_le16(img + 0x16, v->queue_sel);
	if (!qok)
		return;		/* queue_size 0: no such queue */
	put_le16(img + 0x18, (uint16_t)v->q[qs].cfg.size);
	put_le16(img + 0x1a, v->q[qs].vector);
	put_le16(img + 0x1c, vmm_virtq_enabled(&v->q[qs].vq));
	put_le16(img + 0x1e, (uint16_t)qs);
	put_le64(img + 0x20, v->q[qs].cfg.desc);
	put_le64(img + 0x28, v->q[qs].cfg.avail);
	put_le64(img + 0x30, v->q[qs].cfg.used);
}

static void queue_enable(struct vmm_virtio *v, unsigned qs)
{
	struct vmm_virtq_config c = v->q[qs].cfg;
	int rc;

	if (vmm_virtq_enabled(&v->q[qs].vq))
		return;
	c.features = v->drv_features;
	rc = c.size && c.size <= v->ops->queue_max ? vmm_virtq_enable(&v->q[qs].vq, &c) : -EINVAL;
	if (rc)
		guest_warn(v, "queue %u: cannot enable (size %u): %s", qs, c.size, strerror(-rc));
}

/* Applies the field at off, whose bytes in img the driver just wrote. */
static void common_apply(struct vmm_virtio *v, unsigned off, const uint8_t img[COMMON_LEN])
{
	unsigned qs = v->queue_sel;
	bool qok = qs < v->ops->nqueues && !vmm_virtq_enabled(&v->q[qs].vq);
	uint32_t sel;
	uint16_t vec;

	switch (off) {
	case 0x00: v->dev_feature_sel = get_le32(img); break;
	case 0x08: v->drv_feature_sel = get_le32(img + 0x08); break;
	case 0x0c:
		sel = v->drv_feature_sel;
		if (sel < 2 && !(v->status & VIRTIO_STATUS_FEATURES_OK))
			v->drv_features = (v->drv_features & ~(0xffffffffull << (32 * sel))) |
					  (uint64_t)get_le32(img + 0x0c) << (32 * sel);
		break;
	case 0x10:
		vec = get_le16(img + 0x10);
		v->config_vector = vec < v->nvec ? vec : NO_VECTOR;
		break;
	case 0x14: set_status(v, img[0x14]); break;
	case 0x16: v->queue_sel = get_le16(img + 0x16); break;
	case 0x18:
		if (qok)
			v->q[qs].cfg.size = get_le16(img + 0x18);
		break;
	case 0x1a:
		if (qs < v->ops->nqueues) {
			vec = get_le16(img + 0x1a);
			v->q[qs].vector = vec < v->nvec ? vec : NO_VECTOR;
		}
		break;
	case 0x1c:
		if (qs < v->ops->nqueues && get_le16(img + 0x1c) == 1)
			queue_enable(v, qs);
		break;
	case 0x20: if (qok) v->q[qs].cfg.desc = get_le64(img + 0x20); break;
	case 0x28: if (qok) v->q[qs].cfg.avail = get_le64(img + 0x28); break;
	case 0x30: if (qok) v->q[qs].cfg.used = get_le64(img + 0x30); break;
	}
}

static void common_access(struct vmm_virtio *v, unsigned off, uint8_t *data, unsigned len,
			  bool is_write)
{
	static const struct { uint8_t off, size; } fields[] = {
		{ 0x00, 4 }, { 0x04, 4 }, { 0x08, 4 }, { 0x0c, 4 }, { 0x10, 2 }, { 0x12, 2 },
		{ 0x14, 1 }, { 0x15, 1 }, { 0x16, 2 }, { 0x18, 2 }, { 0x1a, 2 }, { 0x1c, 2 },
		{ 0x1e, 2 }, { 0x20, 8 }, { 0x28, 8 }, { 0x30, 8 },
	};
	uint8_t img[COMMON_LEN];

	if (off + len > COMMON_LEN) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	common_image(v, img);
	if (!is_write) {
		memcpy(data, img + off, len);
		return;
	}
	/* Merge into the current values and apply every field the write
	 * touched: a 64-bit address arrives as two 32-bit halves. */
	memcpy(img + off, data, len);
	for (unsigned i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (fields[i].off < off + len && off < fields[i].off + fields[i].size)
			common_apply(v, fields[i].off, img);
}

/* ---------------------------------------------------------------- MSI-X */

static void msix_access(struct vmm_virtio *v, unsigned off, uint8_t *data, unsigned len,
			bool is_write)
{
	unsigned vec = off / 16, word = (off % 16) / 4;
	struct msix_entry *e;
	uint32_t *w, val = 0;

	if (vec >= v->nvec || len != 4 || off % 4) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	e = &v->msix[vec];
	w = word == 0 ? &e->addr_lo : word == 1 ? &e->addr_hi : word == 2 ? &e->data : &e->ctrl;
	if (!is_write) {
		put_le32(data, *w);
		return;
	}
	val = get_le32(data);
	*w = word == 3 ? (val & 1) : val;
	if (word < 3)
		vmm_msi_route_set(v->vm, (unsigned)e->gsi, (uint64_t)e->addr_hi << 32 | e->addr_lo,
				  e->data);
	else
		flush_pending(v);
}

static void msix_cfg_write(struct vmm_pci_dev *dev, unsigned off, uint32_t val, unsigned len)
{
	struct vmm_virtio *v = dev->opaque;

	/* Only the message control's upper byte (enable, mask all) is writable. */
	for (unsigned i = 0; i < len; i++, off++, val >>= 8)
		if (off == CAP_MSIX + 3)
			dev->cfg[off] = (uint8_t)val & 0xc0;
	pthread_mutex_lock(&v->lock);
	flush_pending(v);
	pthread_mutex_unlock(&v->lock);
}

/* ---------------------------------------------------------- the BAR */

/* One access to the BAR. Caller holds lock. */
static void bar_access(struct vmm_virtio *v, uint64_t offset, uint8_t *data, unsigned len,
		       bool is_write)
{
	static const uint64_t one = 1;

	if (offset < COMMON_OFF + COMMON_LEN) {
		common_access(v, (unsigned)offset, data, len, is_write);
	} else if (offset == ISR_OFF && !is_write) {
		data[0] = v->isr;
		memset(data + 1, 0, len - 1);
		v->isr = 0;
	} else if (offset >= DEVCFG_OFF && offset + len <= DEVCFG_OFF + (uint64_t)v->ops->cfg_size) {
		if (!is_write)
			v->ops->cfg_read(v->dev, (unsigned)(offset - DEVCFG_OFF), data, len);
		else if (v->ops->cfg_write)
			v->ops->cfg_write(v->dev, (unsigned)(offset - DEVCFG_OFF), data, len);
	} else if (offset >= NOTIFY_OFF && offset < NOTIFY_OFF + NOTIFY_MULT * v->ops->nqueues) {
		/* A notification no ioeventfd caught (another width). */
		if (is_write &&
		    write(v->q[(offset - NOTIFY_OFF) / NOTIFY_MULT].kick_fd, &one, sizeof(one)) < 0)
			log_debug("%s: kick: %s", v->pci.name, strerror(errno));
		else if (!is_write)
			memset(data, 0, len);
	} else if (offset >= MSIX_TABLE_OFF && offset < MSIX_TABLE_OFF + 16u * v->nvec) {
		msix_access(v, (unsigned)(offset - MSIX_TABLE_OFF), data, len, is_write);
	} else if (offset >= MSIX_PBA_OFF && offset + len <= MSIX_PBA_OFF + 8 && !is_write) {
		for (unsigned i = 0; i < len; i++)
			data[i] = (uint8_t)(v->pba >> (8 * (offset - MSIX_PBA_OFF + i)));
	} else if (!is_write) {
		memset(data, 0, len);
	}
}

/*
 * The vCPU whose write resets a started device stops the back-end here,
 * without the lock (its thread may wait for it to raise an interrupt), then
 * finishes the reset. Until then the device is in reset for the other
 * vCPUs: their writes are dropped, so a second stop, a start, or a queue
 * enabled under the back-end's thread cannot overlap it (only a driver
 * racing its own reset gets there); their reads see the old state.
 */
static void bar_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct vmm_virtio *v = opaque;
	bool resetting;

	pthread_mutex_lock(&v->lock);
	resetting = v->stopping;	/* by another vCPU */
	if (!resetting || !is_write)
		bar_access(v, offset, data, len, is_write);
	if (v->stopping && !resetting) {
		pthread_mutex_unlock(&v->lock);
		v->ops->stop(v->dev, -1);	/* unbounded: the device may start again */
		pthread_mutex_lock(&v->lock);
		v->stopping = false;
		reset_state(v);
	}
	pthread_mutex_unlock(&v->lock);
}

/* The BAR moved: the ioeventfds follow it. */
static void bar_moved(struct vmm_pci_dev *dev, unsigned n, uint32_t addr, bool on)
{
	struct vmm_virtio *v = dev->opaque;

	if (n != 0)
		return;
	for (unsigned i = 0; i < v->ops->nqueues; i++) {
		uint64_t at = NOTIFY_OFF + NOTIFY_MULT * i;

		if (v->bar_on)
			vmm_ioeventfd(v->vm, v->bar_addr + at, 2, v->q[i].kick_fd, false);
		if (on)
			vmm_ioeventfd(v->vm, addr + at, 2, v->q[i].kick_fd, true);
	}
	v->bar_addr = addr;
	v->bar_on = on;
}

/* ---------------------------------------------------------- set-up */

static void put_cap(uint8_t *cfg, unsigned at, unsigned next, uint8_t type, uint32_t off,
		    uint32_t len, unsigned cap_len)
{
	cfg[at] = 0x09;			/* vendor-specific */
	cfg[at + 1] = (uint8_t)next;
	cfg[at + 2] = (uint8_t)cap_len;
	cfg[at + 3] = type;
	cfg[at + 4] = 0;		/* BAR 0 */
	put_le32(cfg + at + 8, off);
	put_le32(cfg + at + 12, len);
}

static void build_config_space(struct vmm_virtio *v)
{
	uint8_t *c = v->pci.cfg;

	vmm_pci_header(&v->pci, 0x1af4, (uint16_t)(0x1040 + v->ops->device_id),
		       v->ops->class_code << 8 | 1, 0x1af4, v->ops->device_id);
	c[0x06] |= 0x10;		/* status: capability list */
	c[0x34] = 0x40;
	put_cap(c, 0x40, 0x50, 1, COMMON_OFF, COMMON_LEN, 16);
	put_cap(c, 0x50, 0x64, 2, NOTIFY_OFF, NOTIFY_MULT * v->ops->nqueues, 20);
	put_le32(c + 0x50 + 16, NOTIFY_MULT);
	put_cap(c, 0x64, 0x74, 3, ISR_OFF, 1, 16);
	put_cap(c, 0x74, CAP_MSIX, 4, DEVCFG_OFF, v->ops->cfg_size, 16);
	c[CAP_MSIX] = 0x11;
	c[CAP_MSIX + 1] = 0;
	put_le16(c + CAP_MSIX + 2, (uint16_t)(v->nvec - 1));
	put_le32(c + CAP_MSIX + 4, MSIX_TABLE_OFF);	/* BIR 0 */
	put_le32(c + CAP_MSIX + 8, MSIX_PBA_OFF);
}

static int setup_vectors(struct vmm_virtio *v)
{
	for (unsigned i = 0; i < v->nvec; i++) {
		struct msix_entry *e = &v->msix[i];

		e->ctrl = 1;	/* masked at reset, as the spec says */
		e->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (e->efd < 0)
			return -errno;
		e->gsi = vmm_msi_route_add(v->vm);
		if (e->gsi < 0)
			return e->gsi;
		if (vmm_irqfd(v->vm, (unsigned)e->gsi, e->efd, true))
			return -EIO;
	}
	for (unsigned i = 0; i < v->ops->nqueues; i++) {
		v->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->q[i].kick_fd < 0)
			return -errno;
		vmm_virtq_init(&v->q[i].vq, gpa_to_hva, v->vm);
	}
	return 0;
}

int vmm_virtio_create(struct vmm *vm, const struct vmm_virtio_ops *ops, void *dev,
		      uint64_t features, struct vmm_virtio **out)
{
	struct vmm_virtio *v;
	int rc;

	if (!ops->nqueues || ops->nqueues > VMM_VIRTIO_MAX_QUEUES || ops->cfg_size > 0x1000)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	pthread_mutex_init(&v->lock, NULL);
	v->vm = vm;
	v->ops = ops;
	v->dev = dev;
	v->dev_features = features | 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT |
			  1ull << VIRTIO_F_INDIRECT;
	v->nvec = ops->nqueues + 1;
	for (unsigned i = 0; i <= VMM_VIRTIO_MAX_QUEUES; i++)
		v->msix[i].efd = -1;
	for (unsigned i = 0; i < VMM_VIRTIO_MAX_QUEUES; i++)
		v->q[i].kick_fd = -1;
	v->pci.name = ops->name;
	v->pci.opaque = v;
	v->pci.cfg_write = msix_cfg_write;
	v->pci.bar_moved = bar_moved;
	build_config_space(v);
	rc = setup_vectors(v);
	if (!rc)
		rc = vmm_pci_bar(vm, &v->pci, 0, vmm_pci_alloc_mmio(vm, BAR_SIZE), BAR_SIZE, false,
				 bar_io, v);
	if (!rc)
		rc = vmm_pci_add_any(vm, &v->pci);
	if (rc) {
		vmm_virtio_destroy(v);
		return rc;
	}
	reset_state(v);
	*out = v;
	return 0;
}

int vmm_virtio_destroy(struct vmm_virtio *v)
{
	if (!v)
		return 0;
	/* The vCPUs are gone: no lock needed, and the back-end's thread may
	 * still want it while it stops. A thread that does not stop still
	 * uses the queues, the kick fds and the irqfds: leave them all. */
	if (v->started) {
		v->started = false;
		if (v->ops->stop(v->dev, VMM_VIRTIO_STOP_TIMEOUT_MS)) {
			v->vm->device_stuck = true;
			return -ETIMEDOUT;
		}
	}
	for (unsigned i = 0; i <= VMM_VIRTIO_MAX_QUEUES; i++)
		if (v->msix[i].efd >= 0)
			close(v->msix[i].efd);
	for (unsigned i = 0; i < VMM_VIRTIO_MAX_QUEUES; i++)
		if (v->q[i].kick_fd >= 0)
			close(v->q[i].kick_fd);
	free(v);
	return 0;
}

/* ------------------------------------------------ the back-end's thread */

static void *worker_main(void *p)
{
	struct vmm_virtio_worker *w = p;

	pthread_setname_np(pthread_self(), w->kind);
	w->run(w->arg);
	return NULL;
}

int vmm_virtio_worker_init(struct vmm_virtio_worker *w, const char *kind, const char *label,
			   void (*run)(void *arg), void *arg)
{
	*w = (struct vmm_virtio_worker){ .kind = kind, .label = label, .run = run, .arg = arg };
	w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return w->stop_fd < 0 ? -errno : 0;
}

int vmm_virtio_worker_start(struct vmm_virtio_worker *w)
{
	pthread_attr_t attr;
	sigset_t all;
	int rc;

	if (w->running || w->stuck)
		return -EBUSY;
	/* The mask is set at creation, not by the thread itself: it inherits
	 * nothing from the vCPU thread that starts it, even for an instant. */
	sigfillset(&all);
	rc = pthread_attr_init(&attr);
	if (rc)
		return -rc;
	rc = pthread_attr_setsigmask_np(&attr, &all);
	if (!rc)
		rc = pthread_create(&w->thread, &attr, worker_main, w);
	pthread_attr_destroy(&attr);
	if (rc)
		return -rc;
	w->running = true;
	return 0;
}

/* timeout_ms from now on CLOCK_REALTIME, what pthread_timedjoin_np takes. */
static void deadline(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

int vmm_virtio_worker_stop(struct vmm_virtio_worker *w, int timeout_ms)
{
	static const uint64_t one = 1;
	struct timespec ts;
	uint64_t v;
	int rc;

	if (!w->running)
		return 0;
	if (write(w->stop_fd, &one, sizeof(one)) < 0)
		log_err("%s %s: cannot stop its thread: %s", w->kind, w->label, strerror(errno));
	if (timeout_ms < 0) {
		rc = pthread_join(w->thread, NULL);
	} else {
		deadline(&ts, timeout_ms);
		rc = pthread_timedjoin_np(w->thread, NULL, &ts);
	}
	w->running = false;
	if (rc == ETIMEDOUT) {
		/* Blocked on guest memory nobody serves, most likely: as with a
		 * stuck vCPU, the process exits around it rather than hang. */
		log_err("%s %s: thread still busy %d ms after being told to stop (blocked on "
			"guest memory no memory server serves?); left running", w->kind, w->label,
			timeout_ms);
		pthread_detach(w->thread);
		w->stuck = true;
		return -ETIMEDOUT;
	}
	while (read(w->stop_fd, &v, sizeof(v)) > 0)
		;
	return 0;
}

int vmm_virtio_worker_stop_fd(const struct vmm_virtio_worker *w)
{
	return w->stop_fd;
}

void vmm_virtio_worker_fini(struct vmm_virtio_worker *w)
{
	if (w->stuck || w->stop_fd < 0)
		return;
	close(w->stop_fd);
	w->stop_fd = -1;
}

/* ---------------------------------------- one device per command-line option */

struct vmm_virtio_set {
	void (*destroy)(void *dev);
	unsigned n;		/* created so far */
	void *dev[];
};

void vmm_virtio_set_fini(void *state)
{
	struct vmm_virtio_set *s = state;

	for (unsigned i = 0; i < s->n; i++)
		s->destroy(s->dev[i]);
	free(s);
}

int vmm_virtio_set_init(struct vmm *vm, unsigned n, int (*create)(struct vmm *vm, unsigned i,
								  void **dev),
			void (*destroy)(void *dev), void **state)
{
	struct vmm_virtio_set *s = calloc(1, sizeof(*s) + n * sizeof(s->dev[0]));
	int rc;

	if (!s)
		return -ENOMEM;
	s->destroy = destroy;
	for (; s->n < n; s->n++) {
		rc = create(vm, s->n, &s->dev[s->n]);
		if (rc) {
			vmm_virtio_set_fini(s);
			return rc;
		}
	}
	*state = s;
	return 0;
}

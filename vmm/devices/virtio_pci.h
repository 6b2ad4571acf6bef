/*
 * The virtio 1.x PCI transport (vmm/devices/virtio_pci.c) as device back-ends
 * see it. A back-end (virtio-blk, virtio-net) describes itself with a struct
 * vmm_virtio_ops, gets a transport from vmm_virtio_create, and from DRIVER_OK
 * on serves its queues on a thread of its own:
 *
 *   guest driver                 transport (vCPU threads)       back-end thread
 *   ------------                 ------------------------       ---------------
 *   features, queues, status --> common config, MSI-X table
 *   DRIVER_OK ----------------------------------------------->  ops->start()
 *   queue notify (MMIO write) -- ioeventfd (in KVM) --------->  kick fd readable
 *                                                               pop, do I/O, push
 *   interrupt <--------------------- irqfd <----------------  vmm_virtio_used()
 *   status = 0 (reset) ------------------------------------->  ops->stop(), joined
 *
 * The back-end touches guest memory only through its queues' iovecs (which
 * point into guest RAM: the virtual cache serves them like any access) and
 * must block all signals in its threads (DESIGN: a thread faulting on guest
 * memory with a signal pending spins).
 */
#ifndef LEGATO_VMM_DEVICES_VIRTIO_PCI_H
#define LEGATO_VMM_DEVICES_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/virtq.h"
#include "vmm/vmm.h"

#define VIRTIO_F_VERSION_1 32
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80
#define VMM_VIRTIO_MAX_QUEUES 16

struct vmm_virtio;

struct vmm_virtio_ops {
	const char *name;
	uint16_t device_id;	/* virtio device type: 1 network, 2 block */
	uint32_t class_code;	/* PCI class, subclass, prog-if (e.g. 0x010000) */
	unsigned nqueues;	/* <= VMM_VIRTIO_MAX_QUEUES */
	uint16_t queue_max;	/* largest queue size offered (a power of two) */
	uint16_t cfg_size;	/* bytes of device-specific configuration */
	/* Device-specific configuration, from a vCPU thread under the
	 * transport's lock; off + len <= cfg_size. cfg_write may be NULL
	 * (writes ignored). */
	void (*cfg_read)(void *dev, unsigned off, uint8_t *data, unsigned len);
	void (*cfg_write)(void *dev, unsigned off, const uint8_t *data, unsigned len);
	/* DRIVER_OK: the queues the driver enabled are ready and features are
	 * final; start serving them. Returns 0 or -errno (the transport then
	 * tells the driver the device needs a reset). vCPU thread. */
	int (*start)(void *dev, uint64_t features);
	/* The driver reset the device (or the VM ends): stop serving and return
	 * only when no thread of the back-end touches a queue any more. Only
	 * called after a successful start. vCPU or main thread. */
	void (*stop)(void *dev);
};

/*
 * Creates a virtio-pci device for back-end dev on the next free PCI slot:
 * one 32 KiB memory BAR (common config, ISR, device config, notify area,
 * MSI-X table and PBA; nqueues + 1 vectors, each an MSI route with an
 * irqfd), and an eventfd per queue that guest notifications signal through
 * an ioeventfd. features are the device's own bits; VERSION_1, EVENT_IDX and
 * INDIRECT_DESC are added. Returns 0 with *out set, or -errno.
 */
int vmm_virtio_create(struct vmm *vm, const struct vmm_virtio_ops *ops, void *dev,
		      uint64_t features, struct vmm_virtio **out);
/* Stops the back-end if started and frees the transport (VM teardown, after
 * the vCPUs are joined). */
void vmm_virtio_destroy(struct vmm_virtio *vio);

/* Queue i (< nqueues). From start() to stop() it belongs to the back-end's
 * thread. */
struct vmm_virtq *vmm_virtio_queue(struct vmm_virtio *vio, unsigned i);
/* The eventfd (non-blocking) that becomes readable when the driver notifies
 * queue i; the back-end reads it to clear it, then drains the queue. */
int vmm_virtio_kick_fd(const struct vmm_virtio *vio, unsigned i);
/* After pushing used buffers on queue i: interrupts the driver if the queue
 * asks for it (event index or flags), through the queue's MSI-X vector (or
 * records it pending while that vector is masked). Any thread. */
void vmm_virtio_used(struct vmm_virtio *vio, unsigned i);
/* The driver broke the rules (a queue reported broken): sets
 * DEVICE_NEEDS_RESET and raises the configuration interrupt. Any thread. */
void vmm_virtio_needs_reset(struct vmm_virtio *vio, const char *why);

#endif

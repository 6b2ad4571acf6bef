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
 * memory with a signal pending spins). struct vmm_virtio_worker below is
 * that thread's life cycle, and vmm_virtio_set_init/fini the "one device per
 * --disk / --net" bookkeeping, both shared by the back-ends.
 */
#ifndef LEGATO_VMM_DEVICES_VIRTIO_PCI_H
#define LEGATO_VMM_DEVICES_VIRTIO_PCI_H

#include <pthread.h>
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
/* How long VM teardown waits for a back-end's thread to stop (see stop). */
#define VMM_VIRTIO_STOP_TIMEOUT_MS 5000

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
	/* Stop serving; only called after a successful start. Returns 0 once
	 * no thread of the back-end touches a queue (or dev) any more.
	 * timeout_ms < 0: the driver reset the device (vCPU thread); wait as
	 * long as it takes, since the device may start again on the same
	 * state (a vCPU stuck here is caught by the VM's bounded vCPU join).
	 * timeout_ms >= 0: VM teardown (main thread, vCPUs joined); a thread
	 * still busy after that long (blocked on guest memory that nobody
	 * serves) is logged and left running, -ETIMEDOUT returned, and from
	 * then on nothing it may use is freed (the process is exiting). */
	int (*stop)(void *dev, int timeout_ms);
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
/* Stops the back-end if started (bounded by VMM_VIRTIO_STOP_TIMEOUT_MS) and
 * frees the transport (VM teardown, after the vCPUs are joined; vio may be
 * NULL). Returns 0, or -ETIMEDOUT when the back-end's thread did not stop:
 * the transport is then left allocated, and the back-end must free nothing
 * its thread may still use either. */
int vmm_virtio_destroy(struct vmm_virtio *vio);

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
/* The driver broke the rules on queue i (vmm_virtq_pop() returned -EIO):
 * sets DEVICE_NEEDS_RESET and raises the configuration interrupt, once until
 * the reset. The warning names the queue (what, e.g. "request") and the rule
 * broken (vmm_virtq_broken_reason()). The queue's owner thread only (it reads
 * the queue); takes the transport's lock. */
void vmm_virtio_needs_reset(struct vmm_virtio *vio, unsigned i, const char *what);

/* ------------------------------------------------ the back-end's thread */

/*
 * One back-end thread, from ops->start() to ops->stop(). It starts with
 * every signal blocked and is named after the device kind; run(arg) serves
 * the queues and must return soon after the stop fd (an eventfd) becomes
 * readable, so it polls that fd wherever it waits (it need not read it).
 * Fields are private to virtio_pci.c. Not thread-safe: start and stop come
 * from the transport, serialised by it (ops->start/stop); init and fini
 * from device set-up and teardown.
 */
struct vmm_virtio_worker {
	const char *kind;	/* thread name, e.g. "virtio-net" (<= 15 chars) */
	const char *label;	/* which device, in the log: the TAP, the file */
	void (*run)(void *arg);
	void *arg;
	pthread_t thread;
	int stop_fd;
	bool running;		/* started, not yet joined or left */
	bool stuck;		/* a bounded stop gave up: the thread still runs */
};

/* Prepares w (not running) and its stop eventfd. kind and label are kept,
 * not copied. Returns 0 or -errno; vmm_virtio_worker_fini() is safe either
 * way. */
int vmm_virtio_worker_init(struct vmm_virtio_worker *w, const char *kind, const char *label,
			   void (*run)(void *arg), void *arg);
/* Starts the thread (run(arg) on it, all signals blocked from its first
 * instruction). Returns 0, -EBUSY when running or left stuck, or the
 * negated pthread_create error. */
int vmm_virtio_worker_start(struct vmm_virtio_worker *w);
/* Makes the stop fd readable and joins the thread: without a bound when
 * timeout_ms < 0, else at most that long. Then clears the stop fd (the
 * worker may start again). Returns 0 (also when not running), or
 * -ETIMEDOUT: one error logged naming the device, the thread detached and
 * left running; w, its arg and its fd stay valid, and w cannot start again. */
int vmm_virtio_worker_stop(struct vmm_virtio_worker *w, int timeout_ms);
/* The eventfd (non-blocking) run() polls: readable once stop is asked. */
int vmm_virtio_worker_stop_fd(const struct vmm_virtio_worker *w);
/* Closes the stop fd of a worker that is not running; does nothing to a
 * stuck one (its thread still polls the fd). */
void vmm_virtio_worker_fini(struct vmm_virtio_worker *w);

/* ---------------------------------------- one device per command-line option */

/*
 * The state of a struct vmm_device_ops for a back-end with one device per
 * --disk or --net: vmm_virtio_set_init() creates n devices in order with
 * create(vm, i, &dev) (which returns 0 with dev set, or -errno having freed
 * what it made, setting vm->init_error_reported when it printed why), and on
 * the first failure destroys the ones made and returns its error.
 * vmm_virtio_set_fini(state) destroys them all, in order. Main thread.
 */
int vmm_virtio_set_init(struct vmm *vm, unsigned n, int (*create)(struct vmm *vm, unsigned i,
								  void **dev),
			void (*destroy)(void *dev), void **state);
void vmm_virtio_set_fini(void *state);

#endif

/*
 * The device side of virtio_evil (guest-images/virtio_evil.c), implemented in
 * virtio_evil_dev.c: finding the virtio-blk PCI function through sysfs and
 * taking it from the kernel, mapping BAR 0, walking the vendor capabilities,
 * the highest System RAM address, a few mlock'ed pages with their
 * guest-physical addresses (pagemap), device reset and set-up exactly as a
 * driver would do it, and notify and wait helpers. Everything here prints its
 * own errors through say() and returns -1 on failure. Ring and MMIO fields are
 * accessed through volatile pointers or __atomic builtins, little-endian (x86).
 */
#ifndef LEGATO_GUEST_IMAGES_VIRTIO_EVIL_H
#define LEGATO_GUEST_IMAGES_VIRTIO_EVIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PFX "legato-evil: "

/* Common configuration (virtio 1.x 4.1.4.3). */
#define C_DFSELECT 0x00
#define C_DF 0x04
#define C_GFSELECT 0x08
#define C_GF 0x0c
#define C_NUMQ 0x12
#define C_STATUS 0x14
#define C_QSELECT 0x16
#define C_QSIZE 0x18
#define C_QENABLE 0x1c
#define C_QNOTIFYOFF 0x1e
#define C_QDESC 0x20
#define C_QDRIVER 0x28
#define C_QDEVICE 0x30

#define S_ACK 0x01
#define S_DRIVER 0x02
#define S_DRIVER_OK 0x04
#define S_FEATURES_OK 0x08
#define S_NEEDS_RESET 0x40
#define S_FAILED 0x80

#define QSIZE 16
#define NPAGES 4

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct used_elem {
	uint32_t id;
	uint32_t len;
};

/* The device, once found and mapped: its PCI address, BAR 0, and the offsets
 * in BAR 0 of the common, notify and device configuration. */
extern char bdf[256];
extern volatile uint8_t *bar;
extern size_t bar_len;
extern uint32_t common_off, notify_off, notify_mult, device_off;
extern uint64_t ram_end;	/* first byte past the highest System RAM */

/* Our memory: page 0 rings, page 1 headers and status bytes, pages 2-3 data;
 * pa[i] is the guest-physical address of page i, PG(i) our address. */
extern uint8_t *mem;
extern uint64_t pa[NPAGES];
extern long pgsz;

#define RING_DESC 0x000
#define RING_AVAIL 0x400
#define RING_USED 0x800

#define PG(i) (mem + (size_t)(i) * (size_t)pgsz)

/* Queue 0's rings in page 0. */
extern volatile struct desc *vdesc;
extern volatile uint16_t *avail;	/* flags, idx, ring[QSIZE], used_event */
extern volatile uint16_t *used16;	/* flags, idx */
extern volatile struct used_elem *used_ring;

/* How the queue is placed; a normal set-up unless an attack says otherwise. */
struct qsetup {
	uint16_t size;
	uint64_t desc, driver, device;
};

/* Prints PFX, the message and a newline on stdout, and flushes it. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------ MMIO */

static inline uint8_t rd8(uint32_t off) { return *(volatile uint8_t *)(bar + off); }
static inline uint16_t rd16(uint32_t off) { return *(volatile uint16_t *)(bar + off); }
static inline uint32_t rd32(uint32_t off) { return *(volatile uint32_t *)(bar + off); }
static inline void wr8(uint32_t off, uint8_t v) { *(volatile uint8_t *)(bar + off) = v; }
static inline void wr16(uint32_t off, uint16_t v) { *(volatile uint16_t *)(bar + off) = v; }
static inline void wr32(uint32_t off, uint32_t v) { *(volatile uint32_t *)(bar + off) = v; }

/* The device status register. */
static inline uint8_t status(void) { return rd8(common_off + C_STATUS); }

/* ------------------------------------------------------------ discovery */

/* Finds the virtio-blk PCI function (1af4:1042) in sysfs and sets bdf; with
 * several, the first one listed. */
int find_device(void);

/* Unbinds the function from its driver, if any, and enables it. */
int take_device(void);

/* Maps BAR 0 (sysfs resource0) into bar, bar_len. */
int map_bar(void);

/* Walks the capability list of configuration space for the virtio vendor
 * capabilities; sets common_off, notify_off, notify_mult and device_off,
 * each checked to lie in BAR 0. */
int find_caps(void);

/* Sets ram_end from /proc/iomem. */
int find_ram_end(void);

/* Maps, mlocks and zeroes NPAGES pages (mem), finds their guest-physical
 * addresses (pa) in /proc/self/pagemap, and points the ring pointers at
 * page 0. */
int alloc_pages(void);

/* ------------------------------------------------------------ device set-up */

/* Writes status 0 and waits (1 s at most) until it reads back 0. */
int reset_device(void);

/* Reset, features (VERSION_1 only), queue 0 placed as q says, DRIVER_OK;
 * page 0 (the rings) is zeroed after the reset. Returns 0, or -1 on an error
 * that was printed. *enabled gets what queue_enable reads back. */
int setup_device(const struct qsetup *q, bool *enabled);

/* The normal placement: QSIZE entries, rings in page 0. */
void normal_queue(struct qsetup *q);

/* ------------------------------------------------------------ notify, wait */

/* A full fence, then a write to queue 0's notify address. */
void notify(void);

/* Publishes ring entry slot = head, sets avail->idx to idx (release) and
 * notifies. */
void publish(unsigned slot, uint16_t head, uint16_t idx);

/* used->idx (acquire). */
uint16_t used_idx(void);

/* Waits until NEEDS_RESET or used->idx >= want (modulo 2^16), at most ms
 * milliseconds; returns the status read last. */
uint8_t wait_outcome(uint16_t want, unsigned ms);

#endif

/*
 * virtio_evil: a hostile guest driver for legato's virtio-blk (workload
 * legato.run=evil). Run as root inside the guest, it takes the virtio-blk PCI
 * function (1af4:1042) away from the kernel (unbind, enable, mmap BAR 0
 * through sysfs), finds the common, notify and device configuration through
 * the vendor capabilities in configuration space, and then, once per attack,
 * resets the device, sets it up exactly as a driver would (features: only
 * VIRTIO_F_VERSION_1; queue 0 of size 16 in a few mlock'ed pages whose
 * guest-physical addresses come from /proc/self/pagemap), publishes one
 * crafted descriptor chain and notifies. The VMM must either flag the device
 * DEVICE_NEEDS_RESET (bad descriptors) or complete the request as an I/O
 * error (a bad request); it must never crash or hang. One line per attack:
 *
 *   legato-evil: NAME status=0x.. used=N result=ok|fail
 *
 * then, after one more reset, a valid read of sector 0 proves the device
 * still works:
 *
 *   legato-evil: valid-read status=0 result=ok
 *   legato-evil: done failures=N          (exit status 0 when N == 0)
 *
 * Indirect descriptors are not attacked as tables: this program accepts only
 * VERSION_1, so INDIRECT_DESC is never negotiated; a descriptor flagged
 * INDIRECT anyway is one of the attacks (the device must refuse it).
 * Every wait is bounded (reset 1 s, request 5 s). Ring and MMIO fields are
 * accessed through volatile pointers or __atomic builtins, little-endian (x86).
 *
 * This file holds the attacks and main; finding, mapping and setting up the
 * device, and notifying and waiting, are in virtio_evil_dev.c (virtio_evil.h).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "virtio_evil.h"

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

#define BLK_IN 0
#define BLK_OUT 1
#define BLK_S_OK 0
#define BLK_S_IOERR 1

#define WAIT_REQ_MS 5000
#define WAIT_IDLE_MS 500	/* an attack that must change nothing */

#define ADDR_OUTSIDE 0xfff00000000ull

/* Page 1: the headers and status bytes of two requests. */
#define HDR1 0x000
#define STATUS1 0x080
#define HDR2 0x100
#define STATUS2 0x180

#define HDR1_PA (pa[1] + HDR1)
#define STATUS1_PA (pa[1] + STATUS1)
#define HDR2_PA (pa[1] + HDR2)
#define STATUS2_PA (pa[1] + STATUS2)
#define DATA1_PA pa[2]
#define DATA2_PA pa[3]

static uint64_t capacity;	/* sectors */
static unsigned failures;

/* ------------------------------------------------------------ requests */

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	vdesc[i].addr = addr;
	vdesc[i].len = len;
	vdesc[i].flags = flags;
	vdesc[i].next = next;
}

static void set_hdr(unsigned off, uint32_t type, uint64_t sector)
{
	volatile uint8_t *h = PG(1) + off;

	for (unsigned i = 0; i < 4; i++) {
		h[i] = (uint8_t)(type >> (8 * i));
		h[4 + i] = 0;
	}
	for (unsigned i = 0; i < 8; i++)
		h[8 + i] = (uint8_t)(sector >> (8 * i));
}

static uint8_t byte_at(const uint8_t *p) { return *(volatile const uint8_t *)p; }

/* A valid read of sector 0 as chain desc[base..base+2], ring slot `slot`,
 * avail->idx = idx (the device already took idx - 1 chains). */
static void build_read(unsigned base, unsigned hdr, uint64_t hdr_pa, uint64_t data_pa,
		       uint64_t status_pa, uint64_t sector)
{
	set_hdr(hdr, BLK_IN, sector);
	set_desc(base, hdr_pa, 16, F_NEXT, (uint16_t)(base + 1));
	set_desc(base + 1, data_pa, 512, F_NEXT | F_WRITE, (uint16_t)(base + 2));
	set_desc(base + 2, status_pa, 1, F_WRITE, 0);
}

/* Second request on a queue that just completed one: must still work. */
static bool still_usable(const char *name)
{
	uint8_t s, st;

	memset(PG(3), 0xa5, 512);
	PG(1)[STATUS2] = 0xff;
	build_read(8, HDR2, HDR2_PA, DATA2_PA, STATUS2_PA, 0);
	publish(1, 8, 2);
	s = wait_outcome(2, WAIT_REQ_MS);
	st = byte_at(PG(1) + STATUS2);
	if (s & S_NEEDS_RESET || used_idx() != 2 || st != BLK_S_OK ||
	    used_ring[1].id != 8 || used_ring[1].len != 513) {
		say("%s: follow-up read of sector 0 on the same queue: status 0x%02x used=%u "
		    "id=%u len=%u blk-status=%u (want used=2 id=8 len=513 blk-status=0)",
		    name, s, used_idx(), used_ring[1].id, used_ring[1].len, st);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ attacks */

enum expect {
	EXP_RESET,	/* bad descriptors: DEVICE_NEEDS_RESET, nothing used */
	EXP_IOERR,	/* a bad request: used, status byte IOERR, queue still usable */
	EXP_NOSTATUS,	/* no status byte: used with len 0 (or NEEDS_RESET) */
	EXP_NOENABLE,	/* bad queue set-up: queue_enable must not stick */
};

struct attack {
	const char *name;
	enum expect exp;
};

static const struct attack attacks[] = {
	{ "addr-outside-ram", EXP_RESET },
	{ "len-crosses-ram-end", EXP_RESET },
	{ "addr-len-wraps-64bit", EXP_RESET },
	{ "len-4gib", EXP_RESET },
	{ "next-loop-self", EXP_RESET },
	{ "next-loop-cycle", EXP_RESET },
	{ "next-out-of-range", EXP_RESET },
	{ "head-out-of-range", EXP_RESET },
	{ "readable-after-writable", EXP_RESET },
	{ "avail-idx-jump", EXP_RESET },
	{ "indirect-not-negotiated", EXP_RESET },
	{ "read-past-end-of-disk", EXP_IOERR },
	{ "read-straddles-end-of-disk", EXP_IOERR },
	{ "read-huge-sector", EXP_IOERR },
	{ "no-header", EXP_IOERR },
	{ "no-status-byte", EXP_NOSTATUS },
	{ "ring-outside-ram", EXP_NOENABLE },
	{ "ring-misaligned", EXP_NOENABLE },
	{ "queue-size-not-pow2", EXP_NOENABLE },
};

/* Adjusts the queue set-up for the set-up attacks. */
static void attack_queue(const char *name, struct qsetup *q)
{
	normal_queue(q);
	if (!strcmp(name, "ring-outside-ram"))
		q->desc = ADDR_OUTSIDE;
	else if (!strcmp(name, "ring-misaligned"))
		q->desc = pa[0] + RING_DESC + 8;
	else if (!strcmp(name, "queue-size-not-pow2"))
		q->size = QSIZE - 1;
}

/* Fills the descriptor table for the attack; returns the ring entry (head)
 * and sets *idx to the avail->idx to publish. */
static uint16_t attack_chain(const char *name, uint16_t *idx)
{
	*idx = 1;
	/* The default: a valid read of sector 0 at desc 0..2. */
	build_read(0, HDR1, HDR1_PA, DATA1_PA, STATUS1_PA, 0);
	if (!strcmp(name, "addr-outside-ram")) {
		set_desc(1, ADDR_OUTSIDE, 512, F_NEXT | F_WRITE, 2);
	} else if (!strcmp(name, "len-crosses-ram-end")) {
		/* A write (device-readable data): a buggy device would read, not
		 * scribble over the guest's last page. Sector 1 keeps sector 0. */
		set_hdr(HDR1, BLK_OUT, 1);
		set_desc(1, ram_end - 256, 512, F_NEXT, 2);
	} else if (!strcmp(name, "addr-len-wraps-64bit")) {
		set_hdr(HDR1, BLK_OUT, 1);
		set_desc(1, 0xfffffffffffffe00ull, 0x400, F_NEXT, 2);	/* wraps to 0x200 */
	} else if (!strcmp(name, "len-4gib")) {
		set_hdr(HDR1, BLK_OUT, 1);
		set_desc(1, 0x100000, 0xfffffe00u, F_NEXT, 2);
	} else if (!strcmp(name, "next-loop-self")) {
		set_desc(1, DATA1_PA, 512, F_NEXT | F_WRITE, 1);
	} else if (!strcmp(name, "next-loop-cycle")) {
		set_desc(0, HDR1_PA, 16, F_NEXT, 1);
		set_desc(1, DATA1_PA, 8, F_NEXT, 0);	/* readable, back to the head */
	} else if (!strcmp(name, "next-out-of-range")) {
		set_desc(1, DATA1_PA, 512, F_NEXT | F_WRITE, QSIZE);
	} else if (!strcmp(name, "head-out-of-range")) {
		return QSIZE;
	} else if (!strcmp(name, "readable-after-writable")) {
		set_desc(1, DATA1_PA, 512, F_NEXT | F_WRITE, 3);
		set_desc(3, DATA2_PA, 512, F_NEXT, 2);	/* readable after writable */
	} else if (!strcmp(name, "avail-idx-jump")) {
		*idx = QSIZE + 1;
	} else if (!strcmp(name, "indirect-not-negotiated")) {
		/* A well-formed one-entry indirect table (in page 3) holding a
		 * readable header: INDIRECT_DESC was not negotiated. */
		volatile struct desc *t = (volatile struct desc *)PG(3);

		t[0].addr = HDR1_PA;
		t[0].len = 16;
		t[0].flags = 0;
		t[0].next = 0;
		set_desc(0, DATA2_PA, 16, F_INDIRECT, 0);
	} else if (!strcmp(name, "read-past-end-of-disk")) {
		set_hdr(HDR1, BLK_IN, capacity);
	} else if (!strcmp(name, "read-straddles-end-of-disk")) {
		set_hdr(HDR1, BLK_IN, capacity - 1);
		set_desc(1, DATA1_PA, 1024, F_NEXT | F_WRITE, 2);
	} else if (!strcmp(name, "read-huge-sector")) {
		set_hdr(HDR1, BLK_IN, 0xffffffffffffffffull);	/* * 512 wraps */
	} else if (!strcmp(name, "no-header")) {
		/* Only writable buffers: no 16-byte header to read. */
		set_desc(0, DATA1_PA, 512, F_NEXT | F_WRITE, 2);
	} else if (!strcmp(name, "no-status-byte")) {
		/* Header and data both device-readable: nowhere to put a status. */
		set_desc(1, DATA1_PA, 512, 0, 0);
	}
	return 0;
}

static bool run_attack(const struct attack *a)
{
	struct qsetup q;
	uint16_t head, idx, u = 0;
	uint8_t s = 0, st, hdr_before[16];
	bool enabled = false, ok = false;

	attack_queue(a->name, &q);
	if (setup_device(&q, &enabled)) {
		say("%s: device set-up failed", a->name);
		goto out;
	}
	if (a->exp == EXP_NOENABLE) {
		/* Notify anyway: a queue that never came up must not be served. */
		notify();
		wait_outcome(1, WAIT_IDLE_MS);
		s = status();
		u = used_idx();
		ok = !enabled && !(s & S_NEEDS_RESET) && u == 0;
		if (!ok)
			say("%s: queue_enable reads %d (want 0), used=%u", a->name, enabled, u);
		goto out;
	}
	if (!enabled) {
		say("%s: queue_enable did not stick on a valid queue", a->name);
		goto out;
	}
	memset(PG(2), 0xa5, 2 * (size_t)pgsz);
	PG(1)[STATUS1] = 0xff;
	head = attack_chain(a->name, &idx);
	memcpy(hdr_before, PG(1) + HDR1, 16);
	publish(0, head, idx);
	s = wait_outcome(1, WAIT_REQ_MS);
	u = used_idx();
	st = byte_at(PG(1) + STATUS1);
	switch (a->exp) {
	case EXP_RESET:
		ok = (s & S_NEEDS_RESET) && u == 0 && st == 0xff;
		if (!ok)
			say("%s: want NEEDS_RESET and nothing used; got status 0x%02x used=%u "
			    "blk-status=0x%02x", a->name, s, u, st);
		break;
	case EXP_IOERR:
		ok = !(s & S_NEEDS_RESET) && u == 1 && st == BLK_S_IOERR &&
		     used_ring[0].id == head && used_ring[0].len == 1;
		if (!ok)
			say("%s: want used=1 id=%u len=1 blk-status=1 without NEEDS_RESET; got "
			    "status 0x%02x used=%u id=%u len=%u blk-status=0x%02x", a->name, head,
			    s, u, used_ring[0].id, used_ring[0].len, st);
		else
			ok = still_usable(a->name);
		break;
	case EXP_NOSTATUS:
		if (s & S_NEEDS_RESET) {
			ok = u == 0;
			break;
		}
		ok = u == 1 && used_ring[0].id == head && used_ring[0].len == 0 &&
		     !memcmp(hdr_before, PG(1) + HDR1, 16) && byte_at(PG(2)) == 0xa5 &&
		     byte_at(PG(1) + STATUS1) == 0xff;
		if (!ok)
			say("%s: want NEEDS_RESET, or used=1 id=%u len=0 and our readable buffers "
			    "untouched; got status 0x%02x used=%u id=%u len=%u", a->name, head, s,
			    u, used_ring[0].id, used_ring[0].len);
		else
			ok = still_usable(a->name);
		break;
	case EXP_NOENABLE:
		break;
	}
out:
	printf(PFX "%s status=0x%02x used=%u result=%s\n", a->name, s, u, ok ? "ok" : "fail");
	fflush(stdout);
	return ok;
}

static bool valid_read(void)
{
	struct qsetup q;
	bool enabled = false;
	uint8_t s, st = 0xff;
	char hex[33];

	normal_queue(&q);
	if (setup_device(&q, &enabled) || !enabled) {
		say("valid-read: device set-up failed (queue enabled %d)", enabled);
		goto fail;
	}
	memset(PG(2), 0xa5, (size_t)pgsz);
	PG(1)[STATUS1] = 0xff;
	build_read(0, HDR1, HDR1_PA, DATA1_PA, STATUS1_PA, 0);
	publish(0, 0, 1);
	s = wait_outcome(1, WAIT_REQ_MS);
	st = byte_at(PG(1) + STATUS1);
	if ((s & S_NEEDS_RESET) || used_idx() != 1 || st != BLK_S_OK || used_ring[0].id != 0 ||
	    used_ring[0].len != 513) {
		say("valid-read: status 0x%02x used=%u id=%u len=%u blk-status=0x%02x (want "
		    "used=1 id=0 len=513 blk-status=0)", s, used_idx(), used_ring[0].id,
		    used_ring[0].len, st);
		goto fail;
	}
	for (unsigned i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", byte_at(PG(2) + i));
	say("sector0 head=%s", hex);
	say("valid-read status=0 result=ok");
	return true;
fail:
	printf(PFX "valid-read status=%u result=fail\n", st);
	fflush(stdout);
	return false;
}

int main(void)
{
	uint32_t lo, hi;
	uint64_t feat;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0)
		say("not root: sysfs and pagemap will refuse");
	if (find_device() || take_device() || map_bar() || find_caps() || find_ram_end() ||
	    alloc_pages()) {
		say("done failures=1");
		return 1;
	}
	lo = rd32(device_off);
	hi = rd32(device_off + 4);
	capacity = (uint64_t)hi << 32 | lo;
	wr32(common_off + C_DFSELECT, 0);
	lo = rd32(common_off + C_DF);
	wr32(common_off + C_DFSELECT, 1);
	hi = rd32(common_off + C_DF);
	feat = (uint64_t)hi << 32 | lo;
	say("device %s bar0 %zu bytes: common 0x%x, notify 0x%x (multiplier %u), device 0x%x; "
	    "%u queue(s), capacity %" PRIu64 " sectors; RAM ends at 0x%" PRIx64,
	    bdf, bar_len, common_off, notify_off, notify_mult, device_off,
	    rd16(common_off + C_NUMQ), capacity, ram_end);
	say("features offered 0x%016" PRIx64 ", accepted 0x%016" PRIx64
	    " (VERSION_1 only: INDIRECT_DESC and EVENT_IDX not negotiated)",
	    feat, (uint64_t)1 << 32);
	say("rings at 0x%" PRIx64 ", buffers at 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64,
	    pa[0], pa[1], pa[2], pa[3]);
	if (capacity == 0) {
		say("capacity 0: cannot run the disk attacks");
		say("done failures=1");
		return 1;
	}
	for (unsigned i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++)
		if (!run_attack(&attacks[i]))
			failures++;
	if (!valid_read())
		failures++;
	if (reset_device())
		failures++;
	say("done failures=%u", failures);
	return failures ? 1 : 0;
}

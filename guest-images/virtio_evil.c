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
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PFX "legato-evil: "
#define VENDOR 0x1af4
#define DEVICE_BLK 0x1042

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

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

#define QSIZE 16
#define BLK_IN 0
#define BLK_OUT 1
#define BLK_S_OK 0
#define BLK_S_IOERR 1

#define WAIT_RESET_MS 1000
#define WAIT_REQ_MS 5000
#define WAIT_IDLE_MS 500	/* an attack that must change nothing */

#define NPAGES 4
#define ADDR_OUTSIDE 0xfff00000000ull

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

/* The device, once found and mapped. */
static char bdf[256];
static char devdir[300];
static volatile uint8_t *bar;
static size_t bar_len;
static uint32_t common_off, notify_off, notify_mult, device_off;
static uint64_t capacity;	/* sectors */
static uint64_t ram_end;	/* first byte past the highest System RAM */

/* Our memory: page 0 rings, page 1 headers and status bytes, pages 2-3 data. */
static uint8_t *mem;
static uint64_t pa[NPAGES];
static long pgsz;

#define RING_DESC 0x000
#define RING_AVAIL 0x400
#define RING_USED 0x800
#define HDR1 0x000
#define STATUS1 0x080
#define HDR2 0x100
#define STATUS2 0x180

static volatile struct desc *vdesc;
static volatile uint16_t *avail;	/* flags, idx, ring[QSIZE], used_event */
static volatile uint16_t *used16;	/* flags, idx */
static volatile struct used_elem *used_ring;

static unsigned failures;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs(PFX, stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* ------------------------------------------------------------ MMIO */

static uint8_t rd8(uint32_t off) { return *(volatile uint8_t *)(bar + off); }
static uint16_t rd16(uint32_t off) { return *(volatile uint16_t *)(bar + off); }
static uint32_t rd32(uint32_t off) { return *(volatile uint32_t *)(bar + off); }
static void wr8(uint32_t off, uint8_t v) { *(volatile uint8_t *)(bar + off) = v; }
static void wr16(uint32_t off, uint16_t v) { *(volatile uint16_t *)(bar + off) = v; }
static void wr32(uint32_t off, uint32_t v) { *(volatile uint32_t *)(bar + off) = v; }

static void wr64(uint32_t off, uint64_t v)
{
	wr32(off, (uint32_t)v);		/* low half first */
	wr32(off + 4, (uint32_t)(v >> 32));
}

static uint8_t status(void) { return rd8(common_off + C_STATUS); }
static void set_status(uint8_t s) { wr8(common_off + C_STATUS, s); }

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap(void)
{
	struct timespec ts = { 0, 1000000 };

	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ sysfs */

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return (int)n;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	if (n < 0)
		return -errno;
	return 0;
}

static long hex_file(const char *dir, const char *name)
{
	char path[512], buf[64];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	return strtol(buf, NULL, 0);
}

static int find_device(void)
{
	const char *base = "/sys/bus/pci/devices";
	DIR *d = opendir(base);
	struct dirent *e;
	int found = 0;

	if (!d) {
		say("cannot open %s: %s", base, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		char dir[512];

		if (e->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", base, e->d_name);
		if (hex_file(dir, "vendor") == VENDOR && hex_file(dir, "device") == DEVICE_BLK) {
			if (!found++) {
				snprintf(bdf, sizeof(bdf), "%s", e->d_name);
				snprintf(devdir, sizeof(devdir), "%s/%s", base, e->d_name);
			}
		}
	}
	closedir(d);
	if (!found) {
		say("no virtio-blk PCI function (%04x:%04x) in %s", VENDOR, DEVICE_BLK, base);
		return -1;
	}
	if (found > 1)
		say("%d virtio-blk functions; using %s", found, bdf);
	return 0;
}

static int take_device(void)
{
	char path[512], link[512];
	ssize_t n;
	int rc;

	snprintf(path, sizeof(path), "%s/driver", devdir);
	n = readlink(path, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = 0;
		snprintf(path, sizeof(path), "%s/driver/unbind", devdir);
		rc = write_file(path, bdf);
		if (rc) {
			say("cannot unbind %s from %s: %s", bdf, strrchr(link, '/') + 1,
			    strerror(-rc));
			return -1;
		}
		say("unbound %s from %s", bdf, strrchr(link, '/') + 1);
	} else {
		say("%s has no driver bound", bdf);
	}
	snprintf(path, sizeof(path), "%s/enable", devdir);
	rc = write_file(path, "1");
	if (rc) {
		say("cannot enable %s: %s", bdf, strerror(-rc));
		return -1;
	}
	return 0;
}

static int map_bar(void)
{
	char path[512];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/resource0", devdir);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0) {
		say("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		say("cannot size %s", path);
		close(fd);
		return -1;
	}
	bar_len = (size_t)st.st_size;
	bar = mmap(NULL, bar_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (bar == MAP_FAILED) {
		say("cannot mmap %s (%zu bytes): %s", path, bar_len, strerror(errno));
		bar = NULL;
		return -1;
	}
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Walks the capability list for the virtio vendor capabilities. */
static int find_caps(void)
{
	char path[512];
	uint8_t cfg[256];
	int fd, n;
	unsigned ptr, hops = 0;
	bool have_common = false, have_notify = false, have_device = false;

	snprintf(path, sizeof(path), "%s/config", devdir);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		say("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	n = (int)pread(fd, cfg, sizeof(cfg), 0);
	close(fd);
	if (n < 256) {
		say("%s: read %d bytes of configuration space, want 256", path, n);
		return -1;
	}
	if (!(cfg[0x06] & 0x10)) {
		say("%s: no capability list", bdf);
		return -1;
	}
	for (ptr = cfg[0x34] & 0xfc; ptr && hops < 48; ptr = cfg[ptr + 1] & 0xfc, hops++) {
		uint8_t type, barno;
		uint32_t off, len;

		if (ptr < 0x40) {
			say("%s: capability pointer 0x%x out of range", bdf, ptr);
			return -1;
		}
		if (cfg[ptr] != 0x09)
			continue;
		if (ptr + 20 > 256 || cfg[ptr + 2] < 16) {
			say("%s: vendor capability at 0x%x: length %u does not fit", bdf, ptr,
			    cfg[ptr + 2]);
			return -1;
		}
		type = cfg[ptr + 3];
		barno = cfg[ptr + 4];
		off = le32(cfg + ptr + 8);
		len = le32(cfg + ptr + 12);
		if (type != 1 && type != 2 && type != 4)
			continue;
		if (barno != 0 || (uint64_t)off + len > bar_len) {
			say("%s: capability type %u in BAR %u at 0x%x+0x%x: not in BAR 0 (%zu bytes)",
			    bdf, type, barno, off, len, bar_len);
			return -1;
		}
		if (type == 1 && !have_common) {
			common_off = off;
			have_common = len >= 0x38;
		} else if (type == 2 && !have_notify) {
			notify_off = off;
			notify_mult = le32(cfg + ptr + 16);
			have_notify = cfg[ptr + 2] >= 20;
		} else if (type == 4 && !have_device) {
			device_off = off;
			have_device = len >= 8;
		}
	}
	if (!have_common || !have_notify || !have_device) {
		say("%s: missing virtio capabilities (common %d, notify %d, device %d)", bdf,
		    have_common, have_notify, have_device);
		return -1;
	}
	return 0;
}

/* The end of the highest System RAM range in /proc/iomem. */
static int find_ram_end(void)
{
	FILE *f = fopen("/proc/iomem", "r");
	char line[256];

	if (!f) {
		say("cannot open /proc/iomem: %s", strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b;

		if (line[0] != ' ' && strstr(line, ": System RAM") &&
		    sscanf(line, "%llx-%llx", &a, &b) == 2 && b + 1 > ram_end)
			ram_end = b + 1;
	}
	fclose(f);
	if (!ram_end || ram_end < 0x100000) {
		say("no System RAM in /proc/iomem (not root?)");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ memory */

static int alloc_pages(void)
{
	int fd;

	pgsz = sysconf(_SC_PAGESIZE);
	/* Keep compaction away from our mlock'ed pages while the device uses them. */
	write_file("/proc/sys/vm/compact_unevictable_allowed", "0");
	mem = mmap(NULL, NPAGES * (size_t)pgsz, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED) {
		say("mmap: %s", strerror(errno));
		return -1;
	}
	if (mlock(mem, NPAGES * (size_t)pgsz)) {
		say("mlock: %s", strerror(errno));
		return -1;
	}
	memset(mem, 0, NPAGES * (size_t)pgsz);
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0) {
		say("cannot open /proc/self/pagemap: %s", strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < NPAGES; i++) {
		uintptr_t va = (uintptr_t)mem + i * (size_t)pgsz;
		uint64_t e, pfn;

		if (pread(fd, &e, sizeof(e), (off_t)(va / (uintptr_t)pgsz * 8)) != sizeof(e)) {
			say("pagemap read: %s", strerror(errno));
			close(fd);
			return -1;
		}
		pfn = e & ((1ull << 55) - 1);
		if (!(e >> 63) || !pfn) {
			say("page %u not present or PFN hidden (pagemap entry 0x%016" PRIx64 ")",
			    i, e);
			close(fd);
			return -1;
		}
		pa[i] = pfn * (uint64_t)pgsz;
	}
	close(fd);
	vdesc = (volatile struct desc *)(mem + RING_DESC);
	avail = (volatile uint16_t *)(mem + RING_AVAIL);
	used16 = (volatile uint16_t *)(mem + RING_USED);
	used_ring = (volatile struct used_elem *)(mem + RING_USED + 4);
	return 0;
}

#define PG(i) (mem + (size_t)(i) * (size_t)pgsz)
#define HDR1_PA (pa[1] + HDR1)
#define STATUS1_PA (pa[1] + STATUS1)
#define HDR2_PA (pa[1] + HDR2)
#define STATUS2_PA (pa[1] + STATUS2)
#define DATA1_PA pa[2]
#define DATA2_PA pa[3]

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

/* ------------------------------------------------------------ device set-up */

static int reset_device(void)
{
	uint64_t t0 = now_ms();

	set_status(0);
	while (status() != 0) {
		if (now_ms() - t0 > WAIT_RESET_MS) {
			say("reset: status still 0x%02x after %d ms", status(), WAIT_RESET_MS);
			return -1;
		}
		nap();
	}
	return 0;
}

/* How the queue is placed; a normal set-up unless an attack says otherwise. */
struct qsetup {
	uint16_t size;
	uint64_t desc, driver, device;
};

static uint16_t queue_notify_off;

/* Reset, features, queue 0, DRIVER_OK. Returns 0, or -1 on an error that was
 * printed. *enabled gets what queue_enable reads back. */
static int setup_device(const struct qsetup *q, bool *enabled)
{
	uint32_t hi;
	uint16_t qmax;
	uint8_t s;

	if (reset_device())
		return -1;
	/* The device wrote nothing while reset; start from clean rings. */
	memset(PG(0), 0, (size_t)pgsz);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	set_status(S_ACK);
	set_status(S_ACK | S_DRIVER);
	wr32(common_off + C_DFSELECT, 1);
	hi = rd32(common_off + C_DF);
	if (!(hi & 1)) {
		say("device does not offer VIRTIO_F_VERSION_1 (features[63:32] 0x%08x)", hi);
		return -1;
	}
	wr32(common_off + C_GFSELECT, 0);
	wr32(common_off + C_GF, 0);
	wr32(common_off + C_GFSELECT, 1);
	wr32(common_off + C_GF, 1);		/* VERSION_1 only */
	set_status(S_ACK | S_DRIVER | S_FEATURES_OK);
	s = status();
	if (!(s & S_FEATURES_OK)) {
		say("FEATURES_OK did not stick (status 0x%02x)", s);
		return -1;
	}
	wr16(common_off + C_QSELECT, 0);
	qmax = rd16(common_off + C_QSIZE);
	if (qmax < QSIZE) {
		say("queue 0: size %u offered, want at least %u", qmax, QSIZE);
		return -1;
	}
	wr16(common_off + C_QSIZE, q->size);
	wr64(common_off + C_QDESC, q->desc);
	wr64(common_off + C_QDRIVER, q->driver);
	wr64(common_off + C_QDEVICE, q->device);
	queue_notify_off = rd16(common_off + C_QNOTIFYOFF);
	wr16(common_off + C_QENABLE, 1);
	*enabled = rd16(common_off + C_QENABLE) == 1;
	set_status(S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	s = status();
	if (!(s & S_DRIVER_OK)) {
		say("DRIVER_OK did not stick (status 0x%02x)", s);
		return -1;
	}
	return 0;
}

static void normal_queue(struct qsetup *q)
{
	q->size = QSIZE;
	q->desc = pa[0] + RING_DESC;
	q->driver = pa[0] + RING_AVAIL;
	q->device = pa[0] + RING_USED;
}

static void notify(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	wr16(notify_off + (uint32_t)queue_notify_off * notify_mult, 0);
}

/* Publishes ring entry slot = head and sets avail->idx to idx. */
static void publish(unsigned slot, uint16_t head, uint16_t idx)
{
	avail[2 + slot] = head;
	__atomic_store_n((uint16_t *)&avail[1], idx, __ATOMIC_RELEASE);
	notify();
}

static uint16_t used_idx(void)
{
	return __atomic_load_n((uint16_t *)&used16[1], __ATOMIC_ACQUIRE);
}

/* Waits until NEEDS_RESET or used->idx >= want; returns the status read last. */
static uint8_t wait_outcome(uint16_t want, unsigned ms)
{
	uint64_t t0 = now_ms();
	uint8_t s;

	for (;;) {
		s = status();
		if ((s & S_NEEDS_RESET) || (uint16_t)(used_idx() - want) < 0x8000)
			return s;
		if (now_ms() - t0 > ms)
			return s;
		nap();
	}
}

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

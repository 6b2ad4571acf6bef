/*
 * virtio_evil's hold on the device (see virtio_evil.h): sysfs discovery of the
 * virtio-blk PCI function, BAR 0, the vendor capabilities, the end of System
 * RAM, our pages and their guest-physical addresses, the driver's set-up
 * sequence, and notify and wait. The attacks live in virtio_evil.c.
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

#include "virtio_evil.h"

#define VENDOR 0x1af4
#define DEVICE_BLK 0x1042
#define WAIT_RESET_MS 1000

char bdf[256];
static char devdir[300];
volatile uint8_t *bar;
size_t bar_len;
uint32_t common_off, notify_off, notify_mult, device_off;
uint64_t ram_end;

uint8_t *mem;
uint64_t pa[NPAGES];
long pgsz;

volatile struct desc *vdesc;
volatile uint16_t *avail;
volatile uint16_t *used16;
volatile struct used_elem *used_ring;

static uint16_t queue_notify_off;

void say(const char *fmt, ...)
{
	va_list ap;

	fputs(PFX, stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* ------------------------------------------------------------ MMIO, time */

static void wr64(uint32_t off, uint64_t v)
{
	wr32(off, (uint32_t)v);		/* low half first */
	wr32(off + 4, (uint32_t)(v >> 32));
}

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

int find_device(void)
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

int take_device(void)
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

int map_bar(void)
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
int find_caps(void)
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
int find_ram_end(void)
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

int alloc_pages(void)
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

/* ------------------------------------------------------------ device set-up */

int reset_device(void)
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

/* Reset, features, queue 0, DRIVER_OK. Returns 0, or -1 on an error that was
 * printed. *enabled gets what queue_enable reads back. */
int setup_device(const struct qsetup *q, bool *enabled)
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

void normal_queue(struct qsetup *q)
{
	q->size = QSIZE;
	q->desc = pa[0] + RING_DESC;
	q->driver = pa[0] + RING_AVAIL;
	q->device = pa[0] + RING_USED;
}

/* ------------------------------------------------------------ notify, wait */

void notify(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	wr16(notify_off + (uint32_t)queue_notify_off * notify_mult, 0);
}

/* Publishes ring entry slot = head and sets avail->idx to idx. */
void publish(unsigned slot, uint16_t head, uint16_t idx)
{
	avail[2 + slot] = head;
	__atomic_store_n((uint16_t *)&avail[1], idx, __ATOMIC_RELEASE);
	notify();
}

uint16_t used_idx(void)
{
	return __atomic_load_n((uint16_t *)&used16[1], __ATOMIC_ACQUIRE);
}

/* Waits until NEEDS_RESET or used->idx >= want; returns the status read last. */
uint8_t wait_outcome(uint16_t want, unsigned ms)
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

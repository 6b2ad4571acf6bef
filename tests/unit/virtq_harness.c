/*
 * The driver-side harness of the split-virtqueue suites: the guarded flat
 * guest RAM, the counting translation callback, and the little driver that
 * lays out rings and adds chains as a guest would (see virtq_harness.h).
 */
#include <check.h>
#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/unit/virtq_harness.h"
#include "vmm/virtq.h"

uint8_t *ram;
unsigned xl_refused;
uint64_t xl_bad_gpa, xl_bad_len;
struct vmm_virtq vq;
struct drv drv;
struct iovec iov[NIOV];
struct vmm_virtq_chain ch;

/* The translation callback: flat RAM, overflow-safe, refusals recorded. */
void *flat_gpa(void *ctx, uint64_t gpa, uint64_t len)
{
	(void)ctx;
	if (gpa < RAM_BASE || len > RAM_SIZE || gpa - RAM_BASE > RAM_SIZE - len) {
		xl_refused++;
		xl_bad_gpa = gpa;
		xl_bad_len = len;
		return NULL;
	}
	return ram + (gpa - RAM_BASE);
}

void *hva_of(uint64_t gpa)
{
	return ram + (gpa - RAM_BASE);
}

/* ------------------------------------------------------- the driver */

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Rings back to back from RAM_BASE, buffers after them. */
void drv_layout(unsigned size, uint64_t features)
{
	memset(&drv, 0, sizeof(drv));
	drv.cfg.size = size;
	drv.cfg.features = features;
	drv.cfg.desc = RAM_BASE;
	drv.cfg.avail = drv.cfg.desc + VMM_VIRTQ_DESC_BYTES(size);
	drv.cfg.used = align_up(drv.cfg.avail + VMM_VIRTQ_AVAIL_BYTES(size), 4);
	drv.heap = align_up(drv.cfg.used + VMM_VIRTQ_USED_BYTES(size), 64);
	drv.desc = hva_of(drv.cfg.desc);
	drv.avail = hva_of(drv.cfg.avail);
	drv.used = hva_of(drv.cfg.used);
}

void drv_enable(unsigned size, uint64_t features)
{
	drv_layout(size, features);
	ck_assert_int_eq(vmm_virtq_enable(&vq, &drv.cfg), 0);
}

uint64_t drv_alloc(uint64_t len)
{
	uint64_t gpa = drv.heap;

	drv.heap = align_up(drv.heap + len, 64);
	ck_assert_uint_le(drv.heap, RAM_BASE + RAM_SIZE);
	return gpa;
}

void set_desc(struct vmm_virtq_desc *t, unsigned i, uint64_t addr, uint32_t len,
	      uint16_t flags, uint16_t next)
{
	t[i].addr = htole64(addr);
	t[i].len = htole32(len);
	t[i].flags = htole16(flags);
	t[i].next = htole16(next);
}

uint16_t *used_event(void)
{
	return &drv.avail->ring[drv.cfg.size];
}

uint16_t *avail_event(void)
{
	return (uint16_t *)&drv.used->ring[drv.cfg.size];
}

void drv_publish(uint16_t head)
{
	drv.avail->ring[drv.avail_idx & (drv.cfg.size - 1)] = htole16(head);
	drv.avail_idx++;
	__atomic_store_n(&drv.avail->idx, htole16(drv.avail_idx), __ATOMIC_RELEASE);
}

/* Writes s[0..n) into t at slots first, first + 1, ... (modulo tsize),
 * chained with NEXT, each with a freshly allocated buffer. */
static void drv_fill(struct vmm_virtq_desc *t, unsigned tsize, unsigned first, struct seg *s,
		     unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (first + k) % tsize;
		uint16_t flags = (s[k].wr ? VIRTQ_DESC_F_WRITE : 0) |
				 (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0);

		s[k].gpa = drv_alloc(s[k].len ? s[k].len : 1);
		set_desc(t, i, s[k].gpa, s[k].len, flags, (uint16_t)((i + 1) % tsize));
	}
}

uint16_t drv_add_direct(struct seg *s, unsigned n)
{
	uint16_t head = drv.next_desc & (drv.cfg.size - 1);

	drv_fill(drv.desc, drv.cfg.size, head, s, n);
	drv.next_desc += n;
	drv_publish(head);
	return head;
}

uint16_t drv_add_indirect(struct seg *s, unsigned n)
{
	uint16_t head = drv.next_desc & (drv.cfg.size - 1);
	uint64_t table = drv_alloc(16ull * n);

	drv_fill(hva_of(table), n, 0, s, n);
	set_desc(drv.desc, head, table, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
	drv.next_desc++;
	drv_publish(head);
	return head;
}

/* Publishes a one-descriptor chain at head whose descriptor is already set. */
void drv_raw(uint16_t head, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	set_desc(drv.desc, head, addr, len, flags, next);
	drv_publish(head);
}

/* The next used element, if the device published one. */
bool drv_get_used(uint32_t *id, uint32_t *len)
{
	uint16_t idx = le16toh(__atomic_load_n(&drv.used->idx, __ATOMIC_ACQUIRE));
	struct vmm_virtq_used_elem *e;

	if (idx == drv.last_used)
		return false;
	e = &drv.used->ring[drv.last_used++ & (drv.cfg.size - 1)];
	*id = le32toh(e->id);
	*len = le32toh(e->len);
	return true;
}

void expect_used(uint32_t id, uint32_t len)
{
	uint32_t got_id, got_len;

	ck_assert(drv_get_used(&got_id, &got_len));
	ck_assert_uint_eq(got_id, id);
	ck_assert_uint_eq(got_len, len);
}

/* Pops one chain and checks it is exactly s[0..n) (zero lengths left out). */
void pop_expect(uint16_t head, const struct seg *s, unsigned n)
{
	unsigned k = 0, nout = 0, nin = 0;
	uint32_t out_len = 0, in_len = 0;

	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), 1);
	ck_assert_uint_eq(ch.head, head);
	for (unsigned i = 0; i < n; i++) {
		if (!s[i].len)
			continue;
		ck_assert_ptr_eq(iov[k].iov_base, hva_of(s[i].gpa));
		ck_assert_uint_eq(iov[k].iov_len, s[i].len);
		if (s[i].wr) {
			nin++;
			in_len += s[i].len;
		} else {
			ck_assert_uint_eq(nin, 0);
			nout++;
			out_len += s[i].len;
		}
		k++;
	}
	ck_assert_uint_eq(ch.nout, nout);
	ck_assert_uint_eq(ch.nin, nin);
	ck_assert_uint_eq(ch.out_len, out_len);
	ck_assert_uint_eq(ch.in_len, in_len);
}

/* ------------------------------------------------------ the fixture */

/* Maps RAM between its guard pages once per process (each test is a forked
 * child), then starts every test from zeroed RAM and a fresh queue. */
static void setup(void)
{
	long page = sysconf(_SC_PAGESIZE);

	if (!ram) {
		uint8_t *m = mmap(NULL, RAM_SIZE + 2 * (size_t)page, PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		ck_assert_ptr_ne(m, MAP_FAILED);
		ram = m + page;
		ck_assert_int_eq(mprotect(ram, RAM_SIZE, PROT_READ | PROT_WRITE), 0);
	}
	memset(ram, 0, RAM_SIZE);
	xl_refused = 0;
	xl_bad_gpa = xl_bad_len = 0;
	vmm_virtq_init(&vq, flat_gpa, NULL);
}

TCase *virtq_tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 10);
	return tc;
}

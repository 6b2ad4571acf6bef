/*
 * Unit tests of the split virtqueue (vmm/virtq.h) over a flat "guest RAM":
 * 1 MiB at guest-physical RAM_BASE, between two PROT_NONE guard pages, so a
 * read outside it faults, and a translation callback that refuses any range
 * not wholly inside and counts what it refused. A small driver written here
 * lays the rings out and adds chains (direct and indirect) the way a guest
 * does. Covered: pop/push round trips, the 16-bit index wrap, every rule a
 * driver can break (each makes the queue broken for good, and nothing outside
 * RAM is ever asked for or read), EVENT_IDX and NO_INTERRUPT interrupt
 * decisions, notification suppression with the enable-then-recheck race,
 * configuration rejection, and a driver thread and a device thread exchanging
 * chains with both kinds of suppression and no lost wake-up.
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/virtq.h"

#define RAM_BASE 0x100000ull
#define RAM_SIZE (1u << 20)
#define NIOV 16
#define F_INDIRECT (1ull << VIRTIO_F_INDIRECT_DESC)
#define F_EVENT_IDX (1ull << VIRTIO_F_EVENT_IDX)

static uint8_t *ram;
static unsigned xl_refused;
static uint64_t xl_bad_gpa, xl_bad_len;

/* The translation callback: flat RAM, overflow-safe, refusals recorded. */
static void *flat_gpa(void *ctx, uint64_t gpa, uint64_t len)
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

static void *hva_of(uint64_t gpa)
{
	return ram + (gpa - RAM_BASE);
}

/* ------------------------------------------------------- the driver */

struct drv {
	struct vmm_virtq_config cfg;
	struct vmm_virtq_desc *desc;
	struct vmm_virtq_avail *avail;
	struct vmm_virtq_used *used;
	uint16_t avail_idx;	/* next avail index to publish */
	uint16_t next_desc;	/* next free slot in the table (bump, modulo size) */
	uint16_t last_used;	/* next used entry to read */
	uint64_t heap;		/* next free guest-physical byte for buffers */
};

struct seg {
	uint32_t len;
	bool wr;
	uint64_t gpa;		/* filled in by the driver */
};

static struct vmm_virtq vq;
static struct drv drv;
static struct iovec iov[NIOV];
static struct vmm_virtq_chain ch;

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Rings back to back from RAM_BASE, buffers after them. */
static void drv_layout(unsigned size, uint64_t features)
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

static void drv_enable(unsigned size, uint64_t features)
{
	drv_layout(size, features);
	ck_assert_int_eq(vmm_virtq_enable(&vq, &drv.cfg), 0);
}

static uint64_t drv_alloc(uint64_t len)
{
	uint64_t gpa = drv.heap;

	drv.heap = align_up(drv.heap + len, 64);
	ck_assert_uint_le(drv.heap, RAM_BASE + RAM_SIZE);
	return gpa;
}

static void set_desc(struct vmm_virtq_desc *t, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	t[i].addr = htole64(addr);
	t[i].len = htole32(len);
	t[i].flags = htole16(flags);
	t[i].next = htole16(next);
}

static uint16_t *used_event(void)
{
	return &drv.avail->ring[drv.cfg.size];
}

static uint16_t *avail_event(void)
{
	return (uint16_t *)&drv.used->ring[drv.cfg.size];
}

static void drv_publish(uint16_t head)
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

static uint16_t drv_add_direct(struct seg *s, unsigned n)
{
	uint16_t head = drv.next_desc & (drv.cfg.size - 1);

	drv_fill(drv.desc, drv.cfg.size, head, s, n);
	drv.next_desc += n;
	drv_publish(head);
	return head;
}

static uint16_t drv_add_indirect(struct seg *s, unsigned n)
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
static void drv_raw(uint16_t head, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	set_desc(drv.desc, head, addr, len, flags, next);
	drv_publish(head);
}

/* The next used element, if the device published one. */
static bool drv_get_used(uint32_t *id, uint32_t *len)
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

static void expect_used(uint32_t id, uint32_t len)
{
	uint32_t got_id, got_len;

	ck_assert(drv_get_used(&got_id, &got_len));
	ck_assert_uint_eq(got_id, id);
	ck_assert_uint_eq(got_len, len);
}

/* Pops one chain and checks it is exactly s[0..n) (zero lengths left out). */
static void pop_expect(uint16_t head, const struct seg *s, unsigned n)
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

/* -------------------------------------------------- round trips */

START_TEST(direct_chains)
{
	struct seg a[] = { { 100, false, 0 } };
	struct seg b[] = { { 16, false, 0 }, { 512, true, 0 }, { 4, true, 0 } };
	struct seg c[] = { { 64, true, 0 } };
	uint16_t ha, hb, hc;
	uint32_t id, len;

	drv_enable(16, 0);
	ha = drv_add_direct(a, 1);
	hb = drv_add_direct(b, 3);
	hc = drv_add_direct(c, 1);
	pop_expect(ha, a, 1);
	pop_expect(hb, b, 3);
	pop_expect(hc, c, 1);
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), 0);
	ck_assert_int_eq(vmm_virtq_push(&vq, ha, 0), 0);
	ck_assert_int_eq(vmm_virtq_push(&vq, hb, 516), 0);
	ck_assert_int_eq(vmm_virtq_push(&vq, hc, 64), 0);
	ck_assert_uint_eq(le16toh(drv.used->idx), 3);
	expect_used(ha, 0);
	expect_used(hb, 516);
	expect_used(hc, 64);
	ck_assert(!drv_get_used(&id, &len));
	ck_assert(!vmm_virtq_broken(&vq));
	ck_assert_uint_eq(xl_refused, 0);
}
END_TEST

START_TEST(indirect_chains)
{
	struct seg a[] = { { 32, false, 0 }, { 200, true, 0 }, { 1, true, 0 } };
	struct seg b[] = { { 8, false, 0 } };
	struct seg c[] = { { 10, false, 0 }, { 20, false, 0 }, { 30, true, 0 } };
	struct vmm_virtq_desc *t;
	uint64_t table;
	uint16_t ha, hb, hc;

	drv_enable(8, F_INDIRECT);
	ha = drv_add_indirect(a, 3);
	hb = drv_add_direct(b, 1);
	/* c's table in the order 0 -> 2 -> 1: NEXT indexes the table. */
	table = drv_alloc(48);
	t = hva_of(table);
	for (unsigned k = 0; k < 3; k++)
		c[k].gpa = drv_alloc(c[k].len);
	set_desc(t, 0, c[0].gpa, c[0].len, VIRTQ_DESC_F_NEXT, 2);
	set_desc(t, 2, c[1].gpa, c[1].len, VIRTQ_DESC_F_NEXT, 1);
	set_desc(t, 1, c[2].gpa, c[2].len, VIRTQ_DESC_F_WRITE, 0);
	hc = drv.next_desc++;
	/* The WRITE flag of the descriptor that points to a table is ignored. */
	drv_raw(hc, table, 48, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	pop_expect(ha, a, 3);
	pop_expect(hb, b, 1);
	pop_expect(hc, c, 3);
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), 0);
	ck_assert_uint_eq(xl_refused, 0);
}
END_TEST

START_TEST(zero_length_skipped)
{
	struct seg a[] = { { 0, false, 0 }, { 10, false, 0 }, { 0, true, 0 }, { 20, true, 0 },
			   { 0, false, 0 } };	/* empty readable after writable: fine */
	struct seg b[] = { { 0, true, 0 } };
	uint16_t ha, hb;

	drv_enable(8, F_INDIRECT);
	ha = drv_add_direct(a, 5);
	hb = drv_add_indirect(b, 1);
	pop_expect(ha, a, 5);
	pop_expect(hb, b, 1);
	ck_assert_uint_eq(ch.nout + ch.nin, 0);
	ck_assert(!vmm_virtq_broken(&vq));
}
END_TEST

START_TEST(exactly_max_buffers)
{
	struct seg a[NIOV];

	drv_enable(32, 0);
	for (unsigned k = 0; k < NIOV; k++)
		a[k] = (struct seg){ 8, k >= NIOV / 2, 0 };
	pop_expect(drv_add_direct(a, NIOV), a, NIOV);
}
END_TEST

START_TEST(index_wrap)
{
	uint16_t la, u;
	uint32_t id, len;

	drv_enable(8, F_INDIRECT);
	ck_assert_int_eq(vmm_virtq_set_indices(&vq, 65530, 65530), 0);
	ck_assert_uint_eq(le16toh(drv.used->idx), 65530);
	drv.avail_idx = drv.last_used = 65530;
	/* Rounds of 1..3 chains until both indices have wrapped. */
	for (unsigned round = 0; round < 8; round++) {
		struct seg s[3][2];
		uint16_t heads[3];
		unsigned n = round % 3 + 1;

		for (unsigned c = 0; c < n; c++) {
			s[c][0] = (struct seg){ 4 + c, false, 0 };
			s[c][1] = (struct seg){ 16 * (round + 1), true, 0 };
			heads[c] = c == 1 ? drv_add_indirect(s[c], 2) : drv_add_direct(s[c], 2);
		}
		for (unsigned c = 0; c < n; c++)
			pop_expect(heads[c], s[c], 2);
		ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), 0);
		for (unsigned c = 0; c < n; c++)
			ck_assert_int_eq(vmm_virtq_push(&vq, heads[c], 100 + c), 0);
		for (unsigned c = 0; c < n; c++)
			expect_used(heads[c], 100 + c);
		ck_assert(!drv_get_used(&id, &len));
	}
	vmm_virtq_get_indices(&vq, &la, &u);
	ck_assert_uint_eq(la, (uint16_t)(65530 + 15));	/* 1+2+3+1+2+3+1+2 */
	ck_assert_uint_eq(u, la);
	ck_assert_uint_eq(le16toh(drv.used->idx), 9);
	ck_assert(!vmm_virtq_broken(&vq));
}
END_TEST

/* --------------------------------------------------- broken queues */

/* The queue is broken and stays so: a good chain published afterwards is
 * not taken, and nothing else does anything. */
static void assert_broken(void)
{
	struct seg good[] = { { 8, false, 0 } };

	ck_assert(vmm_virtq_broken(&vq));
	drv.next_desc = 0;
	drv_add_direct(good, 1);
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), -EIO);
	ck_assert_int_eq(vmm_virtq_push(&vq, 0, 0), -EIO);
	ck_assert(!vmm_virtq_need_interrupt(&vq));
	ck_assert(!vmm_virtq_enable_notify(&vq));
	ck_assert_int_eq(vmm_virtq_set_indices(&vq, 0, 0), -EIO);
	ck_assert_int_eq(vmm_virtq_enable(&vq, &drv.cfg), -EIO);
	ck_assert_uint_eq(le16toh(drv.used->idx), 0);
}

/* Pops, expecting the queue to break; only in-RAM ranges were asked for. */
static void pop_breaks(void)
{
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), -EIO);
	assert_broken();
	ck_assert_uint_eq(xl_refused, 0);
}

/* Chains that break the queue, each laid out on a fresh 32-entry queue. */
static void bad_head_index(void)
{
	drv_publish(32);
}

static void bad_next_index(void)
{
	set_desc(drv.desc, 1, drv_alloc(8), 8, VIRTQ_DESC_F_NEXT, 0xffff);
	drv_raw(0, drv_alloc(8), 8, VIRTQ_DESC_F_NEXT, 1);
}

/* Zero-length descriptors take no iovec: only the length bound stops it. */
static void bad_loop(void)
{
	set_desc(drv.desc, 5, RAM_BASE, 0, VIRTQ_DESC_F_NEXT, 3);
	drv_raw(3, RAM_BASE, 0, VIRTQ_DESC_F_NEXT, 5);
}

static void bad_self_loop(void)
{
	drv_raw(7, drv_alloc(4), 4, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 7);
}

static void bad_indirect_loop(void)
{
	uint64_t t = drv_alloc(64);

	set_desc(hva_of(t), 0, RAM_BASE, 0, VIRTQ_DESC_F_NEXT, 2);
	set_desc(hva_of(t), 2, RAM_BASE, 0, VIRTQ_DESC_F_NEXT, 0);
	drv_raw(0, t, 64, VIRTQ_DESC_F_INDIRECT, 0);
}

static void bad_indirect_next_index(void)
{
	uint64_t t = drv_alloc(32);	/* two entries */

	set_desc(hva_of(t), 0, drv_alloc(8), 8, VIRTQ_DESC_F_NEXT, 2);
	drv_raw(0, t, 32, VIRTQ_DESC_F_INDIRECT, 0);
}

static void bad_order(void)
{
	struct seg a[] = { { 8, false, 0 }, { 8, true, 0 }, { 8, false, 0 } };

	drv_add_direct(a, 3);
}

/* The order holds across the direct part and the table. */
static void bad_order_indirect(void)
{
	uint64_t t = drv_alloc(16);

	set_desc(hva_of(t), 0, drv_alloc(8), 8, 0, 0);
	set_desc(drv.desc, 1, t, 16, VIRTQ_DESC_F_INDIRECT, 0);
	drv_raw(0, drv_alloc(8), 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
}

static void bad_too_many(void)
{
	struct seg a[NIOV + 1];

	for (unsigned k = 0; k < NIOV + 1; k++)
		a[k] = (struct seg){ 8, false, 0 };
	drv_add_direct(a, NIOV + 1);
}

static void bad_avail_jump(void)
{
	drv.avail->idx = htole16(33);
}

/* avail->idx moving backwards looks like 65535 new entries. */
static void bad_avail_back(void)
{
	struct seg a[] = { { 8, false, 0 } };

	drv_add_direct(a, 1);
	pop_expect(0, a, 1);
	drv.avail->idx = htole16(0);
}

static void bad_nested_indirect(void)
{
	uint64_t inner = drv_alloc(16), outer = drv_alloc(32);

	set_desc(hva_of(inner), 0, drv_alloc(8), 8, 0, 0);
	set_desc(hva_of(outer), 0, drv_alloc(8), 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(hva_of(outer), 1, inner, 16, VIRTQ_DESC_F_INDIRECT, 0);
	drv_raw(0, outer, 32, VIRTQ_DESC_F_INDIRECT, 0);
}

static void bad_indirect_unnegotiated(void)
{
	uint64_t t = drv_alloc(16);

	set_desc(hva_of(t), 0, drv_alloc(8), 8, 0, 0);
	drv_raw(0, t, 16, VIRTQ_DESC_F_INDIRECT, 0);
}

static const struct {
	const char *name;
	void (*lay)(void);
	uint64_t features;
	unsigned max;		/* iovec room; 0: NIOV */
} breakers[] = {
	{ "head index >= size", bad_head_index, 0, 0 },
	{ "next index >= size", bad_next_index, 0, 0 },
	{ "zero-length loop", bad_loop, 0, 0 },
	{ "self loop, room for more", bad_self_loop, 0, 64 },
	{ "loop in a table", bad_indirect_loop, F_INDIRECT, 0 },
	{ "next index out of the table", bad_indirect_next_index, F_INDIRECT, 0 },
	{ "readable after writable", bad_order, 0, 0 },
	{ "readable after writable, indirect", bad_order_indirect, F_INDIRECT, 0 },
	{ "more buffers than iovecs", bad_too_many, 0, 0 },
	{ "avail idx size + 1 ahead", bad_avail_jump, 0, 0 },
	{ "avail idx backwards", bad_avail_back, 0, 0 },
	{ "nested indirect", bad_nested_indirect, F_INDIRECT, 0 },
	{ "indirect not negotiated", bad_indirect_unnegotiated, 0, 0 },
};

START_TEST(broken_chain)
{
	static struct iovec many[64];
	unsigned max = breakers[_i].max ? breakers[_i].max : NIOV;

	drv_enable(32, breakers[_i].features);
	breakers[_i].lay();
	ck_assert_msg(vmm_virtq_pop(&vq, max > NIOV ? many : iov, max, &ch) == -EIO,
		      "%s: not broken", breakers[_i].name);
	assert_broken();
	ck_assert_uint_eq(xl_refused, 0);
}
END_TEST

/* Buffers not wholly in RAM: refused by the callback, never touched. */
static const struct {
	uint64_t gpa;
	uint32_t len;
} outside[] = {
	{ RAM_BASE + RAM_SIZE - 8, 16 },	/* straddles the end */
	{ RAM_BASE + RAM_SIZE, 1 },		/* just past it */
	{ RAM_BASE - 4, 8 },			/* straddles the start */
	{ 0, 4096 },				/* below */
	{ UINT64_MAX - 7, 16 },			/* gpa + len wraps */
	{ UINT64_MAX, 2 },
};

START_TEST(broken_buffer_outside_ram)
{
	drv_enable(16, 0);
	set_desc(drv.desc, 1, outside[_i].gpa, outside[_i].len, VIRTQ_DESC_F_WRITE, 0);
	drv_raw(0, drv_alloc(8), 8, VIRTQ_DESC_F_NEXT, 1);
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), -EIO);
	ck_assert_uint_eq(xl_refused, 1);
	ck_assert_uint_eq(xl_bad_gpa, outside[_i].gpa);
	ck_assert_uint_eq(xl_bad_len, outside[_i].len);
	assert_broken();
	ck_assert_uint_eq(xl_refused, 1);
}
END_TEST

START_TEST(broken_indirect_outside_ram)
{
	drv_enable(16, F_INDIRECT);
	drv_raw(0, outside[_i].gpa, 16, VIRTQ_DESC_F_INDIRECT, 0);
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), -EIO);
	ck_assert_uint_eq(xl_refused, 1);
	ck_assert_uint_eq(xl_bad_gpa, outside[_i].gpa);
	ck_assert_uint_eq(xl_bad_len, 16);
	assert_broken();
}
END_TEST

START_TEST(broken_total_length)
{
	/* 8192 readable 512 KiB buffers, all the same bytes, in one indirect
	 * table: UINT32_MAX in all is fine, one byte more breaks the queue. */
	enum { N = 8192, LEN = 512 * 1024 };
	static struct iovec big[N];
	struct vmm_virtq_desc *t;
	uint64_t table, buf;

	drv_enable(16, F_INDIRECT);
	table = drv_alloc(16ull * N);
	buf = drv_alloc(LEN);
	t = hva_of(table);
	for (unsigned k = 0; k < N; k++)
		set_desc(t, k, buf, k + 1 < N ? LEN : LEN - 1, k + 1 < N ? VIRTQ_DESC_F_NEXT : 0,
			 (uint16_t)(k + 1));
	drv_raw(0, table, 16 * N, VIRTQ_DESC_F_INDIRECT, 0);
	ck_assert_int_eq(vmm_virtq_pop(&vq, big, N, &ch), 1);
	ck_assert_uint_eq(ch.nout, N);
	ck_assert_uint_eq(ch.out_len, UINT32_MAX);
	t[N - 1].len = htole32(LEN);
	drv_raw(1, table, 16 * N, VIRTQ_DESC_F_INDIRECT, 0);
	ck_assert_int_eq(vmm_virtq_pop(&vq, big, N, &ch), -EIO);
	assert_broken();
	ck_assert_uint_eq(xl_refused, 0);
}
END_TEST

/* Indirect descriptors the spec forbids: table lengths not a positive
 * multiple of 16, too long, NEXT beside INDIRECT. */
static const struct {
	uint32_t len;
	uint16_t flags;
} bad_indirect[] = {
	{ 0, VIRTQ_DESC_F_INDIRECT },
	{ 24, VIRTQ_DESC_F_INDIRECT },
	{ 15, VIRTQ_DESC_F_INDIRECT },
	{ 16 * (VMM_VIRTQ_MAX_SIZE + 1), VIRTQ_DESC_F_INDIRECT },
	{ 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT },
};

START_TEST(broken_indirect_table)
{
	uint64_t t;

	drv_enable(16, F_INDIRECT);
	t = drv_alloc(16);
	set_desc(hva_of(t), 0, drv_alloc(8), 8, 0, 0);
	set_desc(drv.desc, 1, drv_alloc(8), 8, 0, 0);
	drv_raw(0, t, bad_indirect[_i].len, bad_indirect[_i].flags, 1);
	pop_breaks();
}
END_TEST

START_TEST(reset_recovers)
{
	struct seg a[] = { { 8, true, 0 } };

	drv_enable(16, 0);
	/* Device bugs are refused but do not break the queue. */
	ck_assert_int_eq(vmm_virtq_push(&vq, 0, 0), -EINVAL);	/* nothing taken */
	ck_assert_int_eq(vmm_virtq_set_indices(&vq, 17, 0), -EINVAL);
	pop_expect(drv_add_direct(a, 1), a, 1);
	ck_assert_int_eq(vmm_virtq_push(&vq, 16, 0), -EINVAL);	/* head >= size */
	ck_assert_int_eq(vmm_virtq_push(&vq, 0, 8), 0);
	ck_assert_int_eq(vmm_virtq_push(&vq, 0, 8), -EINVAL);	/* pushed twice */
	ck_assert(!vmm_virtq_broken(&vq));
	drv_publish(99);
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), -EIO);
	vmm_virtq_reset(&vq);
	ck_assert(!vmm_virtq_broken(&vq));
	ck_assert(!vmm_virtq_enabled(&vq));
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), 0);
	ck_assert_int_eq(vmm_virtq_push(&vq, 0, 0), -EINVAL);
	memset(ram, 0, RAM_SIZE);
	drv_enable(16, 0);
	pop_expect(drv_add_direct(a, 1), a, 1);
	ck_assert_int_eq(vmm_virtq_push(&vq, 0, 8), 0);
	ck_assert_uint_eq(le16toh(drv.used->idx), 1);
}
END_TEST

/* ------------------------------------------------ configuration */

START_TEST(config_accepted)
{
	static const unsigned sizes[] = { 1, 2, 256, VMM_VIRTQ_MAX_SIZE };

	for (unsigned k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		vmm_virtq_reset(&vq);
		drv_enable(sizes[k], F_EVENT_IDX | F_INDIRECT);
		ck_assert(vmm_virtq_enabled(&vq));
	}
	ck_assert_int_eq(vmm_virtq_enable(&vq, &drv.cfg), -EBUSY);
	ck_assert_uint_eq(xl_refused, 0);
}
END_TEST

/* 0: the good layout's address. */
static const struct {
	unsigned size;
	uint64_t desc, avail, used;
	int err;
} bad_config[] = {
	{ 0, 0, 0, 0, -EINVAL },
	{ 3, 0, 0, 0, -EINVAL },
	{ 100, 0, 0, 0, -EINVAL },
	{ 65536, 0, 0, 0, -EINVAL },
	{ 0x80000001u, 0, 0, 0, -EINVAL },
	{ 16, RAM_BASE + 0x1008, 0, 0, -EINVAL },		/* misaligned */
	{ 16, 0, RAM_BASE + 0x1001, 0, -EINVAL },
	{ 16, 0, 0, RAM_BASE + 0x1002, -EINVAL },
	{ 16, RAM_BASE + RAM_SIZE - 128, 0, 0, -EFAULT },	/* straddles the end */
	{ 16, RAM_BASE - 256, 0, 0, -EFAULT },			/* below RAM */
	{ 16, UINT64_MAX - 15, 0, 0, -EFAULT },			/* gpa + len wraps */
	{ 16, 0, RAM_BASE - 2, 0, -EFAULT },
	{ 16, 0, RAM_BASE + RAM_SIZE, 0, -EFAULT },
	{ 16, 0, UINT64_MAX - 1, 0, -EFAULT },
	{ 16, 0, 0, RAM_BASE + RAM_SIZE - 64, -EFAULT },
	{ 16, 0, 0, 0x1000, -EFAULT },
	{ 16, 0, 0, UINT64_MAX - 3, -EFAULT },
};

START_TEST(config_rejected)
{
	struct vmm_virtq_config cfg;

	drv_layout(16, 0);
	cfg = drv.cfg;
	cfg.size = bad_config[_i].size;
	if (bad_config[_i].desc)
		cfg.desc = bad_config[_i].desc;
	if (bad_config[_i].avail)
		cfg.avail = bad_config[_i].avail;
	if (bad_config[_i].used)
		cfg.used = bad_config[_i].used;
	ck_assert_int_eq(vmm_virtq_enable(&vq, &cfg), bad_config[_i].err);
	ck_assert(!vmm_virtq_enabled(&vq));
	ck_assert(!vmm_virtq_broken(&vq));
	drv_publish(0);
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), 0);
	ck_assert_int_eq(vmm_virtq_push(&vq, 0, 0), -EINVAL);
	ck_assert(!vmm_virtq_need_interrupt(&vq));
	ck_assert(!vmm_virtq_enable_notify(&vq));
	ck_assert_int_eq(vmm_virtq_set_indices(&vq, 1, 1), -EINVAL);
}
END_TEST

/* -------------------------------------------- interrupts, notifications */

START_TEST(need_event_arithmetic)
{
	ck_assert(vmm_virtq_need_event(0, 1, 0));
	ck_assert(!vmm_virtq_need_event(1, 1, 0));
	ck_assert(vmm_virtq_need_event(5, 10, 3));
	ck_assert(vmm_virtq_need_event(3, 10, 3));
	ck_assert(vmm_virtq_need_event(9, 10, 3));
	ck_assert(!vmm_virtq_need_event(10, 10, 3));
	ck_assert(!vmm_virtq_need_event(2, 10, 3));
	ck_assert(!vmm_virtq_need_event(7, 7, 7));
	/* Across the wrap. */
	ck_assert(vmm_virtq_need_event(65535, 1, 65534));
	ck_assert(vmm_virtq_need_event(0, 1, 65535));
	ck_assert(vmm_virtq_need_event(65534, 1, 65534));
	ck_assert(!vmm_virtq_need_event(65533, 1, 65534));
	ck_assert(!vmm_virtq_need_event(1, 1, 65534));
	ck_assert(vmm_virtq_need_event(65530, 2, 65000));
}
END_TEST

static void add_pop_push(unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		struct seg a[] = { { 8, true, 0 } };
		uint16_t h = drv_add_direct(a, 1);

		pop_expect(h, a, 1);
		ck_assert_int_eq(vmm_virtq_push(&vq, h, 8), 0);
	}
}

START_TEST(event_idx_interrupts)
{
	drv_enable(8, F_EVENT_IDX);
	*used_event() = htole16(1);		/* "tell me when entry 1 is used" */
	ck_assert(!vmm_virtq_need_interrupt(&vq));	/* nothing pushed */
	add_pop_push(1);			/* used 0 */
	ck_assert(!vmm_virtq_need_interrupt(&vq));
	add_pop_push(1);			/* used 1 */
	ck_assert(vmm_virtq_need_interrupt(&vq));
	add_pop_push(1);
	ck_assert(!vmm_virtq_need_interrupt(&vq));
	*used_event() = htole16(4);
	add_pop_push(3);			/* 3, 4, 5 at once: 4 among them */
	ck_assert(vmm_virtq_need_interrupt(&vq));
	ck_assert(!vmm_virtq_need_interrupt(&vq));
	/* pop advanced avail_event while notifications are on. */
	ck_assert_uint_eq(le16toh(*avail_event()), 6);

	/* Across the wrap; the first decision after a restore is yes. */
	ck_assert_int_eq(vmm_virtq_set_indices(&vq, 65534, 65534), 0);
	drv.avail_idx = drv.last_used = 65534;
	ck_assert(vmm_virtq_need_interrupt(&vq));
	*used_event() = htole16(65535);
	add_pop_push(2);			/* used 65534, 65535 */
	ck_assert(vmm_virtq_need_interrupt(&vq));
	*used_event() = htole16(0);
	add_pop_push(1);			/* used 0 */
	ck_assert(vmm_virtq_need_interrupt(&vq));
	*used_event() = htole16(65535);		/* stale: already passed */
	add_pop_push(2);
	ck_assert(!vmm_virtq_need_interrupt(&vq));
	ck_assert_uint_eq(le16toh(drv.used->idx), 3);
}
END_TEST

START_TEST(no_interrupt_flag)
{
	drv_enable(8, 0);
	ck_assert(!vmm_virtq_need_interrupt(&vq));	/* nothing pushed */
	add_pop_push(1);
	ck_assert(vmm_virtq_need_interrupt(&vq));
	ck_assert(!vmm_virtq_need_interrupt(&vq));
	drv.avail->flags = htole16(VIRTQ_AVAIL_F_NO_INTERRUPT);
	add_pop_push(2);
	ck_assert(!vmm_virtq_need_interrupt(&vq));
	drv.avail->flags = 0;
	add_pop_push(1);
	ck_assert(vmm_virtq_need_interrupt(&vq));
	ck_assert_uint_eq(le16toh(*avail_event()), 0);	/* untouched without EVENT_IDX */
}
END_TEST

START_TEST(notify_flag_race)
{
	struct seg a[] = { { 8, false, 0 } };
	uint16_t h;

	drv_enable(8, 0);
	vmm_virtq_disable_notify(&vq);
	ck_assert_uint_eq(le16toh(drv.used->flags), VIRTQ_USED_F_NO_NOTIFY);
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), 0);
	ck_assert(!vmm_virtq_enable_notify(&vq));
	ck_assert_uint_eq(le16toh(drv.used->flags), 0);
	/* A buffer arrives after the device saw the ring empty but before it
	 * re-enabled notifications: the driver did not kick, enable says so. */
	vmm_virtq_disable_notify(&vq);
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), 0);
	h = drv_add_direct(a, 1);
	ck_assert(vmm_virtq_enable_notify(&vq));
	ck_assert_uint_eq(le16toh(drv.used->flags), 0);
	pop_expect(h, a, 1);
	ck_assert(!vmm_virtq_enable_notify(&vq));
}
END_TEST

START_TEST(notify_event_idx_race)
{
	struct seg a[] = { { 8, false, 0 } };
	uint16_t h;

	drv_enable(8, F_EVENT_IDX);
	vmm_virtq_disable_notify(&vq);
	ck_assert_uint_eq(le16toh(drv.used->flags), 0);	/* no flag with EVENT_IDX */
	add_pop_push(2);
	ck_assert_uint_eq(le16toh(*avail_event()), 0);	/* not advanced while off */
	ck_assert(!vmm_virtq_enable_notify(&vq));
	ck_assert_uint_eq(le16toh(*avail_event()), 2);
	vmm_virtq_disable_notify(&vq);
	h = drv_add_direct(a, 1);
	ck_assert(vmm_virtq_enable_notify(&vq));
	ck_assert_uint_eq(le16toh(*avail_event()), 2);
	pop_expect(h, a, 1);
	ck_assert_uint_eq(le16toh(*avail_event()), 3);	/* on again: pop advances it */
	ck_assert(!vmm_virtq_enable_notify(&vq));
}
END_TEST

/* ------------------------------------------ a driver and a device, racing */

/* The driver (this thread) and the device (another) exchange STRESS_N chains
 * of one readable and one writable 4-byte buffer over a 64-entry queue, each
 * side sleeping on a semaphore when it has nothing to do and woken only when
 * the other side's suppression rules say so (kicks: avail_event or
 * NO_NOTIFY; interrupts: vmm_virtq_need_interrupt()). A lost wake-up hangs
 * the test into its timeout; wrong data or order is counted. */
#define STRESS_N 20000
#define STRESS_Q 64
#define STRESS_INFLIGHT (STRESS_Q / 2)	/* two descriptors a chain */

static sem_t kick_sem, irq_sem;
static unsigned dev_errors;

static void *stress_device(void *arg)
{
	uint32_t expect = 0;
	struct iovec v[4];
	struct vmm_virtq_chain c;

	(void)arg;
	while (expect < STRESS_N) {
		vmm_virtq_disable_notify(&vq);
		while (vmm_virtq_pop(&vq, v, 4, &c) == 1) {
			uint32_t seq;

			memcpy(&seq, v[0].iov_base, 4);
			if (c.nout != 1 || c.nin != 1 || v[1].iov_len != 4 || seq != expect)
				dev_errors++;
			memcpy(v[1].iov_base, &seq, 4);
			if (vmm_virtq_push(&vq, c.head, 4))
				dev_errors++;
			expect++;
		}
		if (vmm_virtq_broken(&vq)) {
			dev_errors++;
			break;
		}
		if (vmm_virtq_need_interrupt(&vq))
			sem_post(&irq_sem);
		if (!vmm_virtq_enable_notify(&vq) && expect < STRESS_N)
			sem_wait(&kick_sem);
	}
	return NULL;
}

/* Adds chains while there is room; kicks if the device asked for it. */
static unsigned stress_add(unsigned *sent, unsigned inflight, uint64_t bufs)
{
	uint16_t old = drv.avail_idx;
	uint16_t event;
	bool kick;

	while (*sent < STRESS_N && inflight < STRESS_INFLIGHT) {
		unsigned slot = *sent % STRESS_INFLIGHT;
		uint64_t out = bufs + 8 * slot;
		uint32_t seq = *sent;

		memcpy(hva_of(out), &seq, 4);
		set_desc(drv.desc, 2 * slot, out, 4, VIRTQ_DESC_F_NEXT, (uint16_t)(2 * slot + 1));
		set_desc(drv.desc, 2 * slot + 1, out + 4, 4, VIRTQ_DESC_F_WRITE, 0);
		drv.avail->ring[drv.avail_idx++ & (STRESS_Q - 1)] = htole16((uint16_t)(2 * slot));
		(*sent)++;
		inflight++;
	}
	if (drv.avail_idx == old)
		return 0;
	__atomic_store_n(&drv.avail->idx, htole16(drv.avail_idx), __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	event = le16toh(__atomic_load_n(avail_event(), __ATOMIC_RELAXED));
	if (drv.cfg.features & F_EVENT_IDX)
		kick = vmm_virtq_need_event(event, drv.avail_idx, old);
	else
		kick = !(le16toh(__atomic_load_n(&drv.used->flags, __ATOMIC_RELAXED)) &
			 VIRTQ_USED_F_NO_NOTIFY);
	if (kick)
		sem_post(&kick_sem);
	return (uint16_t)(drv.avail_idx - old);
}

/* Sleeps until the device interrupts, unless used entries raced in. */
static void stress_wait(void)
{
	if (drv.cfg.features & F_EVENT_IDX)
		__atomic_store_n(used_event(), htole16(drv.last_used), __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (le16toh(__atomic_load_n(&drv.used->idx, __ATOMIC_ACQUIRE)) == drv.last_used)
		sem_wait(&irq_sem);
}

START_TEST(stress_two_threads)
{
	unsigned sent = 0, done = 0, inflight = 0, bad = 0;
	pthread_t dev;
	uint64_t bufs;

	drv_enable(STRESS_Q, _i ? F_EVENT_IDX : 0);
	bufs = drv_alloc(8 * STRESS_INFLIGHT);
	ck_assert_int_eq(sem_init(&kick_sem, 0, 0), 0);
	ck_assert_int_eq(sem_init(&irq_sem, 0, 0), 0);
	ck_assert_int_eq(pthread_create(&dev, NULL, stress_device, NULL), 0);
	while (done < STRESS_N) {
		unsigned added = stress_add(&sent, inflight, bufs), reaped = 0;
		uint32_t id, len, seq;

		inflight += added;
		while (drv_get_used(&id, &len)) {
			unsigned slot = done % STRESS_INFLIGHT;

			memcpy(&seq, hva_of(bufs + 8 * slot + 4), 4);
			bad += id != 2 * slot || len != 4 || seq != done;
			done++;
			inflight--;
			reaped++;
		}
		if (!added && !reaped)
			stress_wait();
	}
	ck_assert_int_eq(pthread_join(dev, NULL), 0);
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_eq(dev_errors, 0);
	ck_assert_uint_eq(sent, STRESS_N);
	ck_assert(!vmm_virtq_broken(&vq));
	ck_assert_uint_eq(xl_refused, 0);
}
END_TEST

static TCase *tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 10);
	return tc;
}

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

int main(void)
{
	Suite *s = suite_create("vmm_virtq");
	TCase *rt = tcase("round_trips"), *br = tcase("broken"), *cf = tcase("config"),
	      *nt = tcase("notify"), *st = tcase("threads");
	SRunner *sr;
	int failed;

	tcase_add_test(rt, direct_chains);
	tcase_add_test(rt, indirect_chains);
	tcase_add_test(rt, zero_length_skipped);
	tcase_add_test(rt, exactly_max_buffers);
	tcase_add_test(rt, index_wrap);
	tcase_add_loop_test(br, broken_chain, 0, NELEM(breakers));
	tcase_add_loop_test(br, broken_buffer_outside_ram, 0, NELEM(outside));
	tcase_add_loop_test(br, broken_indirect_outside_ram, 0, NELEM(outside));
	tcase_add_test(br, broken_total_length);
	tcase_add_loop_test(br, broken_indirect_table, 0, NELEM(bad_indirect));
	tcase_add_test(br, reset_recovers);
	tcase_add_test(cf, config_accepted);
	tcase_add_loop_test(cf, config_rejected, 0, NELEM(bad_config));
	tcase_add_test(nt, need_event_arithmetic);
	tcase_add_test(nt, event_idx_interrupts);
	tcase_add_test(nt, no_interrupt_flag);
	tcase_add_test(nt, notify_flag_race);
	tcase_add_test(nt, notify_event_idx_race);
	tcase_add_loop_test(st, stress_two_threads, 0, 2);
	tcase_set_timeout(st, 60);
	suite_add_tcase(s, rt);
	suite_add_tcase(s, br);
	suite_add_tcase(s, cf);
	suite_add_tcase(s, nt);
	suite_add_tcase(s, st);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

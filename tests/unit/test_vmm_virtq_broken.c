/*
 * Unit tests of the split virtqueue (vmm/virtq.h) against a driver that
 * breaks the rules, driven by the driver of virtq_harness.h over its guarded
 * flat guest RAM: bad head and next indices, loops (direct, indirect, and of
 * zero-length descriptors that take no iovec), readable after writable, more
 * buffers than iovecs, avail->idx jumping ahead or moving back, nested or
 * unnegotiated indirect tables, tables of a forbidden length, buffers and
 * tables not wholly in RAM, and a chain of more than UINT32_MAX bytes in all.
 * Each makes the queue broken for good, with a reason that names the rule
 * broken (vmm_virtq_broken_reason), and nothing outside RAM is ever asked
 * for or read; only a reset brings the queue back (and clears the reason),
 * while device bugs (bad pushes) are refused without breaking it.
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "tests/unit/virtq_harness.h"
#include "vmm/virtq.h"

/* --------------------------------------------------- broken queues */

/* The queue is broken and stays so: a good chain published afterwards is
 * not taken, nothing else does anything, and the reason stays the first. */
static void assert_broken(void)
{
	struct seg good[] = { { 8, false, 0 } };
	const char *why = vmm_virtq_broken_reason(&vq);

	ck_assert(vmm_virtq_broken(&vq));
	ck_assert_ptr_nonnull(why);
	ck_assert_uint_gt(strlen(why), 8);
	drv.next_desc = 0;
	drv_add_direct(good, 1);
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), -EIO);
	ck_assert_int_eq(vmm_virtq_push(&vq, 0, 0), -EIO);
	ck_assert(!vmm_virtq_need_interrupt(&vq));
	ck_assert(!vmm_virtq_enable_notify(&vq));
	ck_assert_int_eq(vmm_virtq_set_indices(&vq, 0, 0), -EIO);
	ck_assert_int_eq(vmm_virtq_enable(&vq, &drv.cfg), -EIO);
	ck_assert_uint_eq(le16toh(drv.used->idx), 0);
	ck_assert_ptr_eq(vmm_virtq_broken_reason(&vq), why);
}

/* The queue broke for the reason that contains want. */
static void assert_reason(const char *want)
{
	const char *why = vmm_virtq_broken_reason(&vq);

	ck_assert_msg(why && strstr(why, want), "reason \"%s\", expected one with \"%s\"",
		      why ? why : "(none)", want);
}

/* Pops, expecting the queue to break for a reason with want in it; only
 * in-RAM ranges were asked for. */
static void pop_breaks(const char *want)
{
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), -EIO);
	assert_reason(want);
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
	const char *reason;	/* part of what vmm_virtq_broken_reason() says */
} breakers[] = {
	{ "head index >= size", bad_head_index, 0, 0, "head index beyond the queue" },
	{ "next index >= size", bad_next_index, 0, 0, "next index beyond the queue" },
	{ "zero-length loop", bad_loop, 0, 0, "loop in a descriptor chain" },
	{ "self loop, room for more", bad_self_loop, 0, 64, "loop in a descriptor chain" },
	{ "loop in a table", bad_indirect_loop, F_INDIRECT, 0, "loop in an indirect table" },
	{ "next index out of the table", bad_indirect_next_index, F_INDIRECT, 0,
	  "next index beyond the indirect table" },
	{ "readable after writable", bad_order, 0, 0, "readable buffer after a writable" },
	{ "readable after writable, indirect", bad_order_indirect, F_INDIRECT, 0,
	  "readable buffer after a writable" },
	{ "more buffers than iovecs", bad_too_many, 0, 0, "more buffers" },
	{ "avail idx size + 1 ahead", bad_avail_jump, 0, 0, "avail index" },
	{ "avail idx backwards", bad_avail_back, 0, 0, "avail index" },
	{ "nested indirect", bad_nested_indirect, F_INDIRECT, 0, "nested indirect" },
	{ "indirect not negotiated", bad_indirect_unnegotiated, 0, 0, "not negotiated" },
};

START_TEST(broken_chain)
{
	static struct iovec many[64];
	unsigned max = breakers[_i].max ? breakers[_i].max : NIOV;

	drv_enable(32, breakers[_i].features);
	breakers[_i].lay();
	ck_assert_ptr_null(vmm_virtq_broken_reason(&vq));
	ck_assert_msg(vmm_virtq_pop(&vq, max > NIOV ? many : iov, max, &ch) == -EIO,
		      "%s: not broken", breakers[_i].name);
	assert_reason(breakers[_i].reason);
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
	assert_reason("buffer not in guest RAM");
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
	assert_reason("indirect table not in guest RAM");
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
	assert_reason("4 GiB");
	assert_broken();
	ck_assert_uint_eq(xl_refused, 0);
}
END_TEST

/* Indirect descriptors the spec forbids: table lengths not a positive
 * multiple of 16, too long, NEXT beside INDIRECT. */
static const struct {
	uint32_t len;
	uint16_t flags;
	const char *reason;
} bad_indirect[] = {
	{ 0, VIRTQ_DESC_F_INDIRECT, "multiple of 16" },
	{ 24, VIRTQ_DESC_F_INDIRECT, "multiple of 16" },
	{ 15, VIRTQ_DESC_F_INDIRECT, "multiple of 16" },
	{ 16 * (VMM_VIRTQ_MAX_SIZE + 1), VIRTQ_DESC_F_INDIRECT, "longer than" },
	{ 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, "with NEXT" },
};

START_TEST(broken_indirect_table)
{
	uint64_t t;

	drv_enable(16, F_INDIRECT);
	t = drv_alloc(16);
	set_desc(hva_of(t), 0, drv_alloc(8), 8, 0, 0);
	set_desc(drv.desc, 1, drv_alloc(8), 8, 0, 0);
	drv_raw(0, t, bad_indirect[_i].len, bad_indirect[_i].flags, 1);
	pop_breaks(bad_indirect[_i].reason);
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
	ck_assert_ptr_null(vmm_virtq_broken_reason(&vq));
	drv_publish(99);
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), -EIO);
	assert_reason("head index");
	vmm_virtq_reset(&vq);
	ck_assert(!vmm_virtq_broken(&vq));
	ck_assert_ptr_null(vmm_virtq_broken_reason(&vq));
	ck_assert(!vmm_virtq_enabled(&vq));
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), 0);
	ck_assert_int_eq(vmm_virtq_push(&vq, 0, 0), -EINVAL);
	memset(ram, 0, RAM_SIZE);
	drv_enable(16, 0);
	pop_expect(drv_add_direct(a, 1), a, 1);
	ck_assert_int_eq(vmm_virtq_push(&vq, 0, 8), 0);
	ck_assert_uint_eq(le16toh(drv.used->idx), 1);
	/* Broken again, for another reason: that one is reported. */
	drv_raw(1, RAM_BASE, 0, VIRTQ_DESC_F_NEXT, 1);
	ck_assert_int_eq(vmm_virtq_pop(&vq, iov, NIOV, &ch), -EIO);
	assert_reason("loop in a descriptor chain");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmm_virtq_broken");
	TCase *br = virtq_tcase("broken");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(br, broken_chain, 0, NELEM(breakers));
	tcase_add_loop_test(br, broken_buffer_outside_ram, 0, NELEM(outside));
	tcase_add_loop_test(br, broken_indirect_outside_ram, 0, NELEM(outside));
	tcase_add_test(br, broken_total_length);
	tcase_add_loop_test(br, broken_indirect_table, 0, NELEM(bad_indirect));
	tcase_add_test(br, reset_recovers);
	suite_add_tcase(s, br);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

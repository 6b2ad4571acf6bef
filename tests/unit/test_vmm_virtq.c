/*
 * Unit tests of the split virtqueue (vmm/virtq.h) working as it should, driven
 * by the driver of virtq_harness.h over its guarded flat guest RAM: pop/push
 * round trips of direct and indirect chains, the 16-bit index wrap,
 * configuration accepted and rejected, EVENT_IDX and NO_INTERRUPT interrupt
 * decisions, notification suppression with the enable-then-recheck race, and
 * a driver thread and a device thread exchanging chains with both kinds of
 * suppression and no lost wake-up. Every rule a driver can break is in
 * test_vmm_virtq_broken.c. Also the thread helper the queues' back-ends run
 * on (struct vmm_virtio_worker, vmm/devices/virtio_pci.h): signals blocked,
 * named, stopped and restarted, and a thread that will not stop is left
 * behind after a bounded wait instead of hanging the caller.
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/virtq_harness.h"
#include "vmm/devices/virtio_pci.h"
#include "vmm/virtq.h"

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
	ck_assert_ptr_null(vmm_virtq_broken_reason(&vq));
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

/* ------------------------------------------------ the back-end's thread */

static struct vmm_virtio_worker wk;
static unsigned wk_runs, wk_ends;
static bool wk_arg_ok, wk_masked, wk_named;
static sem_t wk_started, wk_release;

/* A well-behaved run(): notes how it started, then waits for the stop fd. */
static void wk_polite(void *arg)
{
	struct pollfd p = { .fd = vmm_virtio_worker_stop_fd(&wk), .events = POLLIN };
	char name[16] = "";
	sigset_t mask;

	wk_arg_ok = arg == &wk;
	pthread_sigmask(SIG_BLOCK, NULL, &mask);
	wk_masked = sigismember(&mask, SIGTERM) && sigismember(&mask, SIGUSR1) &&
		    sigismember(&mask, SIGINT);
	pthread_getname_np(pthread_self(), name, sizeof(name));
	wk_named = strcmp(name, "virtio-test") == 0;
	__atomic_add_fetch(&wk_runs, 1, __ATOMIC_SEQ_CST);
	sem_post(&wk_started);
	while (poll(&p, 1, -1) < 0)
		;
	__atomic_add_fetch(&wk_ends, 1, __ATOMIC_SEQ_CST);
}

/* A run() stuck elsewhere (as on a page nobody serves): ignores the stop fd. */
static void wk_stuck(void *arg)
{
	(void)arg;
	sem_post(&wk_started);
	while (sem_wait(&wk_release) < 0)
		;
	__atomic_add_fetch(&wk_ends, 1, __ATOMIC_SEQ_CST);
}

START_TEST(worker_start_stop)
{
	sigset_t usr1;

	/* The caller's mask is not what the thread gets. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	ck_assert_int_eq(sem_init(&wk_started, 0, 0), 0);
	ck_assert_int_eq(vmm_virtio_worker_init(&wk, "virtio-test", "unit", wk_polite, &wk), 0);
	ck_assert_int_eq(vmm_virtio_worker_stop(&wk, -1), 0);	/* not running: nothing */
	for (unsigned round = 1; round <= 2; round++) {
		ck_assert_int_eq(vmm_virtio_worker_start(&wk), 0);
		ck_assert_int_eq(vmm_virtio_worker_start(&wk), -EBUSY);
		sem_wait(&wk_started);
		ck_assert(wk_arg_ok);
		ck_assert(wk_masked);
		ck_assert(wk_named);
		/* The stop fd was cleared after the last stop: it waits. */
		usleep(20000);
		ck_assert_uint_eq(__atomic_load_n(&wk_ends, __ATOMIC_SEQ_CST), round - 1);
		ck_assert_int_eq(vmm_virtio_worker_stop(&wk, round == 1 ? -1 : 5000), 0);
		ck_assert_uint_eq(wk_ends, round);
	}
	ck_assert_uint_eq(wk_runs, 2);
	vmm_virtio_worker_fini(&wk);
	ck_assert_int_eq(vmm_virtio_worker_stop_fd(&wk), -1);
}
END_TEST

START_TEST(worker_stuck_left)
{
	int fd;

	ck_assert_int_eq(sem_init(&wk_started, 0, 0), 0);
	ck_assert_int_eq(sem_init(&wk_release, 0, 0), 0);
	ck_assert_int_eq(vmm_virtio_worker_init(&wk, "virtio-test", "stuck", wk_stuck, &wk), 0);
	fd = vmm_virtio_worker_stop_fd(&wk);
	ck_assert_int_eq(vmm_virtio_worker_start(&wk), 0);
	sem_wait(&wk_started);
	ck_assert_int_eq(vmm_virtio_worker_stop(&wk, 100), -ETIMEDOUT);
	/* Left behind for good: no restart, its stop fd stays open. */
	ck_assert_int_eq(vmm_virtio_worker_start(&wk), -EBUSY);
	ck_assert_int_eq(vmm_virtio_worker_stop(&wk, 100), 0);
	vmm_virtio_worker_fini(&wk);
	ck_assert_int_ge(fcntl(fd, F_GETFD), 0);
	ck_assert_int_eq(vmm_virtio_worker_stop_fd(&wk), fd);
	/* Once unblocked it ends on its own (detached: nothing joins it). */
	sem_post(&wk_release);
	for (int i = 0; i < 500 && !__atomic_load_n(&wk_ends, __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	ck_assert_uint_eq(wk_ends, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmm_virtq");
	TCase *rt = virtq_tcase("round_trips"), *cf = virtq_tcase("config"),
	      *nt = virtq_tcase("notify"), *st = virtq_tcase("threads"),
	      *wt = tcase_create("worker");
	SRunner *sr;
	int failed;

	tcase_add_test(rt, direct_chains);
	tcase_add_test(rt, indirect_chains);
	tcase_add_test(rt, zero_length_skipped);
	tcase_add_test(rt, exactly_max_buffers);
	tcase_add_test(rt, index_wrap);
	tcase_add_test(cf, config_accepted);
	tcase_add_loop_test(cf, config_rejected, 0, NELEM(bad_config));
	tcase_add_test(nt, need_event_arithmetic);
	tcase_add_test(nt, event_idx_interrupts);
	tcase_add_test(nt, no_interrupt_flag);
	tcase_add_test(nt, notify_flag_race);
	tcase_add_test(nt, notify_event_idx_race);
	tcase_add_loop_test(st, stress_two_threads, 0, 2);
	tcase_set_timeout(st, 60);
	tcase_add_test(wt, worker_start_stop);
	tcase_add_test(wt, worker_stuck_left);
	tcase_set_timeout(wt, 10);
	suite_add_tcase(s, rt);
	suite_add_tcase(s, cf);
	suite_add_tcase(s, nt);
	suite_add_tcase(s, st);
	suite_add_tcase(s, wt);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

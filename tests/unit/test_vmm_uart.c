/*
 * Unit tests of the 16550A model (vmm/devices/uart.h): transmit, the divisor
 * latch, the interrupt identification register and the IRQ line, the THRE
 * re-assertion the Linux driver tests for, the kernel's loopback probe, and
 * console input held until a driver listens, then delivered in order.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/devices/uart.h"

static uint8_t out[8192];
static size_t nout;
static int line, edges;

static void tx(void *ctx, uint8_t b)
{
	(void)ctx;
	out[nout++] = b;
}

static void irq(void *ctx, int level)
{
	(void)ctx;
	if (level && !line)
		edges++;
	line = level;
}

static struct vmm_uart u;

static void setup(void)
{
	nout = 0;
	line = edges = 0;
	vmm_uart_reset(&u, tx, irq, NULL);
}

START_TEST(transmit_and_dlab)
{
	vmm_uart_write(&u, 0, 'h');
	vmm_uart_write(&u, 0, 'i');
	ck_assert_uint_eq(nout, 2);
	ck_assert_mem_eq(out, "hi", 2);
	ck_assert_uint_eq(vmm_uart_read(&u, 5) & 0x60, 0x60);	/* THRE | TEMT */
	vmm_uart_write(&u, 3, 0x80);				/* DLAB */
	vmm_uart_write(&u, 0, 0x01);
	vmm_uart_write(&u, 1, 0x00);
	ck_assert_uint_eq(vmm_uart_read(&u, 0), 0x01);
	vmm_uart_write(&u, 3, 0x03);
	vmm_uart_write(&u, 7, 0x5a);				/* scratch */
	ck_assert_uint_eq(vmm_uart_read(&u, 7), 0x5a);
	ck_assert_uint_eq(nout, 2);				/* divisor writes not sent */
}
END_TEST

START_TEST(thre_interrupt)
{
	vmm_uart_write(&u, 2, 0x01);				/* FIFO on */
	ck_assert_uint_eq(vmm_uart_read(&u, 2), 0xc1);		/* 16550A, none */
	/* The driver's THRE test: enable, IIR shows THRE; disable, re-enable,
	 * THRE again. */
	vmm_uart_write(&u, 1, 0x02);
	ck_assert_int_eq(line, 1);
	ck_assert_uint_eq(vmm_uart_read(&u, 2) & 0x0f, 0x02);
	ck_assert_int_eq(line, 0);				/* acknowledged */
	vmm_uart_write(&u, 1, 0x00);
	vmm_uart_write(&u, 1, 0x02);
	ck_assert_uint_eq(vmm_uart_read(&u, 2) & 0x0f, 0x02);
	/* Each transmitted byte re-asserts it: a new edge. */
	vmm_uart_write(&u, 0, 'x');
	ck_assert_int_eq(line, 1);
	ck_assert_int_eq(edges, 3);
	vmm_uart_write(&u, 1, 0x00);
	ck_assert_int_eq(line, 0);
}
END_TEST

START_TEST(loopback_probe)
{
	vmm_uart_write(&u, 4, 0x1a);				/* LOOP | OUT2 | RTS */
	ck_assert_uint_eq(vmm_uart_read(&u, 6) & 0xf0, 0x90);	/* DCD | CTS */
	vmm_uart_write(&u, 4, 0x1f);
	ck_assert_uint_eq(vmm_uart_read(&u, 6) & 0xf0, 0xf0);
	vmm_uart_write(&u, 0, 'L');				/* looped back, not sent */
	ck_assert_uint_eq(nout, 0);
	ck_assert_uint_eq(vmm_uart_read(&u, 5) & 1, 1);
	ck_assert_uint_eq(vmm_uart_read(&u, 0), 'L');
	vmm_uart_write(&u, 4, 0x0b);
	ck_assert_uint_eq(vmm_uart_read(&u, 6), 0xb0);
}
END_TEST

START_TEST(input_waits_for_driver)
{
	static const uint8_t msg[] = "echo hello, this is longer than the fifo\n";
	uint8_t got[sizeof(msg)];
	size_t n = 0;

	ck_assert_uint_eq(vmm_uart_input(&u, msg, sizeof(msg) - 1), sizeof(msg) - 1);
	ck_assert_uint_eq(vmm_uart_read(&u, 5) & 1, 0);		/* nobody listens yet */
	ck_assert_int_eq(line, 0);
	vmm_uart_write(&u, 1, 0x0f);				/* the driver's IER probe */
	ck_assert_uint_eq(vmm_uart_read(&u, 5) & 1, 0);		/* takes nothing */
	vmm_uart_write(&u, 1, 0x00);
	vmm_uart_write(&u, 2, 0x07);				/* FIFO on, cleared */
	vmm_uart_write(&u, 4, 0x0b);				/* open: DTR RTS OUT2 */
	vmm_uart_write(&u, 1, 0x01);				/* RX interrupts */
	ck_assert_int_eq(line, 1);
	ck_assert_uint_eq(vmm_uart_read(&u, 2) & 0x0f, 0x04);
	while (vmm_uart_read(&u, 5) & 1)
		got[n++] = vmm_uart_read(&u, 0);
	ck_assert_uint_eq(n, sizeof(msg) - 1);
	ck_assert_mem_eq(got, msg, n);
	ck_assert_int_eq(line, 0);
	ck_assert_uint_eq(vmm_uart_read(&u, 2) & 0x0f, 0x01);
}
END_TEST

START_TEST(input_queue_bounded)
{
	static uint8_t big[VMM_UART_INQ + 100];

	memset(big, 'a', sizeof(big));
	ck_assert_uint_eq(vmm_uart_input(&u, big, sizeof(big)), VMM_UART_INQ);
	ck_assert_uint_eq(vmm_uart_input(&u, big, 1), 0);
	vmm_uart_write(&u, 4, 0x08);
	vmm_uart_write(&u, 1, 0x01);	/* a driver: the FIFO takes 16 */
	ck_assert_uint_eq(vmm_uart_read(&u, 0), 'a');	/* and refills from the queue */
	ck_assert_uint_eq(vmm_uart_input(&u, big, 100), VMM_UART_FIFO + 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmm_uart");
	TCase *tc = tcase_create("uart");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, transmit_and_dlab);
	tcase_add_test(tc, thre_interrupt);
	tcase_add_test(tc, loopback_probe);
	tcase_add_test(tc, input_waits_for_driver);
	tcase_add_test(tc, input_queue_bounded);
	tcase_set_timeout(tc, 10);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

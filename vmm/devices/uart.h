/*
 * The 16550A UART model behind vmm/devices/uart.c, free of KVM so the unit
 * tests drive it directly: registers, the 16-byte receive FIFO fed from a
 * host-side input queue, loopback, and the interrupt identification logic.
 * The caller serialises calls (the device holds a mutex).
 */
#ifndef LEGATO_VMM_DEVICES_UART_H
#define LEGATO_VMM_DEVICES_UART_H

#include <stddef.h>
#include <stdint.h>

#define VMM_UART_FIFO 16
#define VMM_UART_INQ 4096

struct vmm_uart {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	int thre_pending;		/* THR-empty interrupt not yet acknowledged */
	uint8_t rx[VMM_UART_FIFO];
	unsigned rx_head, rx_count;
	uint8_t inq[VMM_UART_INQ];	/* host input not yet in the FIFO */
	unsigned inq_head, inq_count;
	int irq_level;
	void (*tx)(void *ctx, uint8_t byte);
	void (*irq)(void *ctx, int level);
	void *ctx;
};

/* Reset state; tx receives transmitted bytes, irq the line level on change. */
void vmm_uart_reset(struct vmm_uart *u, void (*tx)(void *, uint8_t), void (*irq)(void *, int),
		    void *ctx);
uint8_t vmm_uart_read(struct vmm_uart *u, unsigned reg);
void vmm_uart_write(struct vmm_uart *u, unsigned reg, uint8_t value);
/* Queues host input; returns the bytes taken. Bytes move into the FIFO while
 * a driver has the port open: receive interrupts enabled and MCR OUT2 set. */
size_t vmm_uart_input(struct vmm_uart *u, const uint8_t *buf, size_t len);
uint8_t vmm_uart_iir(const struct vmm_uart *u);

#endif

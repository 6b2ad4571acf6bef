/*
 * COM1: an 8250/16550A UART at port 0x3f8, IRQ 4. Transmitted bytes go to the
 * VMM's console output (stdout) at once, so THR is always empty; input from
 * the VMM's stdin waits in a 4 KiB queue and enters the 16-byte receive FIFO
 * only while the guest's driver has the port open (receive interrupts and OUT2
 * on), so nothing typed before
 * the guest's tty is open is dropped by its FIFO reset. The interrupt line is
 * driven from IIR (level = an interrupt is pending), which gives the edges the
 * ISA (edge-triggered) input needs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/devices/uart.h"
#include "vmm/vmm.h"

#define REG_RBR_THR 0
#define REG_IER 1
#define REG_IIR_FCR 2
#define REG_LCR 3
#define REG_MCR 4
#define REG_LSR 5
#define REG_MSR 6
#define REG_SCR 7

#define IER_RDI 0x01
#define IER_THRI 0x02
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define MCR_OUT2 0x08
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define COM1_PORT 0x3f8
#define COM1_IRQ 4

uint8_t vmm_uart_iir(const struct vmm_uart *u)
{
	uint8_t fifo = (u->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((u->ier & IER_RDI) && u->rx_count)
		return fifo | IIR_RDI;
	if ((u->ier & IER_THRI) && u->thre_pending)
		return fifo | IIR_THRI;
	return fifo | IIR_NONE;
}

static void update_irq(struct vmm_uart *u)
{
	int level = !(vmm_uart_iir(u) & IIR_NONE);

	if (level != u->irq_level) {
		u->irq_level = level;
		if (u->irq)
			u->irq(u->ctx, level);
	}
}

static void rx_push(struct vmm_uart *u, uint8_t b)
{
	if (u->rx_count == VMM_UART_FIFO)
		return;		/* overrun: the byte is lost, as on hardware */
	u->rx[(u->rx_head + u->rx_count++) % VMM_UART_FIFO] = b;
}

/* Moves queued host input into the FIFO while a driver listens: receive
 * interrupts on and OUT2 (the PC's interrupt gate) set, which Linux does when
 * the tty is opened, not while probing the port (IER test, loopback test). */
static void refill(struct vmm_uart *u)
{
	while ((u->ier & IER_RDI) && (u->mcr & MCR_OUT2) && !(u->mcr & MCR_LOOP) && u->inq_count &&
	       u->rx_count < VMM_UART_FIFO) {
		rx_push(u, u->inq[u->inq_head]);
		u->inq_head = (u->inq_head + 1) % VMM_UART_INQ;
		u->inq_count--;
	}
}

void vmm_uart_reset(struct vmm_uart *u, void (*tx)(void *, uint8_t), void (*irq)(void *, int),
		    void *ctx)
{
	memset(u, 0, sizeof(*u));
	u->tx = tx;
	u->irq = irq;
	u->ctx = ctx;
	u->dll = 12;	/* 9600 baud */
}

size_t vmm_uart_input(struct vmm_uart *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	while (n < len && u->inq_count < VMM_UART_INQ) {
		u->inq[(u->inq_head + u->inq_count++) % VMM_UART_INQ] = buf[n++];
	}
	refill(u);
	update_irq(u);
	return n;
}

uint8_t vmm_uart_read(struct vmm_uart *u, unsigned reg)
{
	uint8_t v = 0xff;

	switch (reg) {
	case REG_RBR_THR:
		if (u->lcr & LCR_DLAB) {
			v = u->dll;
			break;
		}
		v = 0;
		if (u->rx_count) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % VMM_UART_FIFO;
			u->rx_count--;
		}
		refill(u);
		break;
	case REG_IER:
		v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
		break;
	case REG_IIR_FCR:
		v = vmm_uart_iir(u);
		if ((v & 0x0f) == IIR_THRI)
			u->thre_pending = 0;	/* reading IIR acknowledges THRE */
		break;
	case REG_LCR:
		v = u->lcr;
		break;
	case REG_MCR:
		v = u->mcr;
		break;
	case REG_LSR:
		v = LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0);
		break;
	case REG_MSR:
		if (u->mcr & MCR_LOOP) {
			/* DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
			v = (uint8_t)((u->mcr & 0x01) << 5 | (u->mcr & 0x02) << 3 |
				      (u->mcr & 0x04) << 4 | (u->mcr & 0x08) << 4);
		} else {
			v = 0xb0;	/* DCD, DSR, CTS */
		}
		break;
	case REG_SCR:
		v = u->scr;
		break;
	default:
		break;
	}
	update_irq(u);
	return v;
}

void vmm_uart_write(struct vmm_uart *u, unsigned reg, uint8_t value)
{
	switch (reg) {
	case REG_RBR_THR:
		if (u->lcr & LCR_DLAB) {
			u->dll = value;
			break;
		}
		if (u->mcr & MCR_LOOP)
			rx_push(u, value);
		else if (u->tx)
			u->tx(u->ctx, value);
		u->thre_pending = 1;	/* sent at once: THR is empty again */
		break;
	case REG_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = value;
			break;
		}
		if ((value & IER_THRI) && !(u->ier & IER_THRI))
			u->thre_pending = 1;
		u->ier = value & 0x0f;
		refill(u);
		break;
	case REG_IIR_FCR:
		u->fcr = value & 0xc9;
		if (value & FCR_CLEAR_RX) {
			u->rx_count = 0;
			u->rx_head = 0;
		}
		refill(u);
		break;
	case REG_LCR:
		u->lcr = value;
		break;
	case REG_MCR:
		u->mcr = value & 0x1f;
		refill(u);
		break;
	case REG_SCR:
		u->scr = value;
		break;
	default:
		break;
	}
	update_irq(u);
}

/* ---------------------------------------------------------- device glue */

struct uart_dev {
	pthread_mutex_t lock;
	struct vmm_uart u;
	struct vmm *vm;
};

static void uart_tx(void *ctx, uint8_t byte)
{
	struct uart_dev *d = ctx;

	if (write(d->vm->console_out, &byte, 1) < 0)
		log_debug("console write: %s", strerror(errno));
}

static void uart_irq(void *ctx, int level)
{
	struct uart_dev *d = ctx;

	vmm_irq_line(d->vm, COM1_IRQ, level);
}

static void uart_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct uart_dev *d = opaque;

	pthread_mutex_lock(&d->lock);
	if (is_write)
		vmm_uart_write(&d->u, (unsigned)offset, data[0]);
	else
		data[0] = vmm_uart_read(&d->u, (unsigned)offset);
	for (unsigned i = 1; i < len && !is_write; i++)
		data[i] = 0xff;
	pthread_mutex_unlock(&d->lock);
}

size_t vmm_console_input(struct vmm *vm, const uint8_t *buf, size_t len)
{
	struct uart_dev *d = vm->console;
	size_t n;

	if (!d)
		return len;
	pthread_mutex_lock(&d->lock);
	n = vmm_uart_input(&d->u, buf, len);
	pthread_mutex_unlock(&d->lock);
	return n;
}

size_t vmm_console_room(struct vmm *vm)
{
	struct uart_dev *d = vm->console;
	size_t n;

	if (!d)
		return VMM_UART_INQ;
	pthread_mutex_lock(&d->lock);
	n = VMM_UART_INQ - d->u.inq_count;
	pthread_mutex_unlock(&d->lock);
	return n;
}

static int uart_init(struct vmm *vm, void **state)
{
	struct uart_dev *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	d->vm = vm;
	vmm_uart_reset(&d->u, uart_tx, uart_irq, d);
	rc = vmm_bus_register(&vm->bus, VMM_PIO, COM1_PORT, 8, uart_io, d, "uart");
	if (rc < 0) {
		free(d);
		return rc;
	}
	vm->console = d;
	*state = d;
	return 0;
}

static void uart_fini(void *state)
{
	struct uart_dev *d = state;

	pthread_mutex_destroy(&d->lock);
	free(d);
}

const struct vmm_device_ops vmm_uart_ops = {
	.name = "uart",
	.init = uart_init,
	.fini = uart_fini,
};

/*
 * PCI: configuration mechanism #1 (address latch at 0xcf8, data at 0xcfc..
 * 0xcff) over bus 0, and the host bridge at 00:00.0 (1b36:0008, class 0600).
 * The DSDT's \_SB.PCI0 tells the guest to scan this bus; devices (pvpanic now,
 * virtio next) sit in slots 1..31, function 0. Writable fields: command, cache
 * line size/latency, BARs (size probing by writing all-ones) and interrupt
 * line; everything else is read-only, except that a device may take writes
 * to its capabilities (0x40 and up) through its cfg_write hook. A BAR's range
 * is decoded only while the matching enable bit of the command register is
 * set; a device that mirrors BAR addresses elsewhere (ioeventfds) hears of
 * every change through its bar_moved hook.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "vmm/devices/pci.h"

#define CONF1_ADDR 0xcf8
#define CONF1_DATA 0xcfc
#define PCI_COMMAND 0x04
#define CMD_IO 0x1
#define CMD_MEM 0x2
#define PCI_BAR0 0x10

struct vmm_pci {
	pthread_mutex_t lock;
	struct vmm *vm;
	uint32_t latch;
	uint32_t next_mmio;
	struct vmm_pci_dev *slots[32];
	struct vmm_pci_dev bridge;
};

static uint32_t cfg32(const struct vmm_pci_dev *d, unsigned off)
{
	return d->cfg[off] | d->cfg[off + 1] << 8 | d->cfg[off + 2] << 16 |
	       (uint32_t)d->cfg[off + 3] << 24;
}

static void set32(struct vmm_pci_dev *d, unsigned off, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		d->cfg[off + i] = (uint8_t)(v >> (8 * i));
}

void vmm_pci_header(struct vmm_pci_dev *dev, uint16_t vendor, uint16_t device,
		    uint32_t class_rev, uint16_t subsys_vendor, uint16_t subsys)
{
	memset(dev->cfg, 0, sizeof(dev->cfg));
	set32(dev, 0x00, vendor | (uint32_t)device << 16);
	set32(dev, 0x08, class_rev);
	set32(dev, 0x2c, subsys_vendor | (uint32_t)subsys << 16);
	for (unsigned i = 0; i < 6; i++)
		dev->bar[i].handle = -1;
}

/* Re-applies every BAR of dev to the bus (after a BAR or command write). */
static void update_bars(struct vmm_pci *pci, struct vmm_pci_dev *d)
{
	uint16_t cmd = (uint16_t)(d->cfg[PCI_COMMAND] | d->cfg[PCI_COMMAND + 1] << 8);

	for (unsigned i = 0; i < 6; i++) {
		uint32_t v = cfg32(d, PCI_BAR0 + 4 * i), addr;
		bool on;

		if (!d->bar[i].size || d->bar[i].handle < 0)
			continue;
		addr = v & (d->bar[i].io ? ~3u : ~15u);
		on = (cmd & (d->bar[i].io ? CMD_IO : CMD_MEM)) && addr &&
		     addr != (uint32_t)~(d->bar[i].size - 1);
		vmm_bus_move(&pci->vm->bus, d->bar[i].handle, addr, on);
		if (on != d->bar[i].on || (on && addr != d->bar[i].addr)) {
			d->bar[i].on = on;
			d->bar[i].addr = addr;
			if (d->bar_moved)
				d->bar_moved(d, i, addr, on);
		}
	}
}

static void cfg_write(struct vmm_pci *pci, struct vmm_pci_dev *d, unsigned off, uint32_t v,
		      unsigned len)
{
	bool bars = false;

	if (off >= 0x40) {
		if (d->cfg_write)
			d->cfg_write(d, off, v, len);
		return;
	}
	for (unsigned i = 0; i < len; i++, off++, v >>= 8) {
		uint8_t b = (uint8_t)v;

		if (off == PCI_COMMAND || off == PCI_COMMAND + 1 || off == 0x0c || off == 0x0d ||
		    off == 0x3c) {
			d->cfg[off] = b;
			bars |= off == PCI_COMMAND;
		} else if (off >= PCI_BAR0 && off < PCI_BAR0 + 24) {
			unsigned n = (off - PCI_BAR0) / 4;

			if (d->bar[n].size) {
				d->cfg[off] = b;
				bars = true;
			}
		}
	}
	if (!bars)
		return;
	for (unsigned n = 0; n < 6; n++) {
		uint32_t size = d->bar[n].size, bar;

		if (!size)
			continue;
		bar = cfg32(d, PCI_BAR0 + 4 * n) & ~(size - 1);
		set32(d, PCI_BAR0 + 4 * n, bar | (d->bar[n].io ? 1 : 0));
	}
	update_bars(pci, d);
}

static void conf1_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct vmm_pci *pci = opaque;
	struct vmm_pci_dev *d = NULL;
	uint32_t v = 0;
	unsigned reg, slot;

	for (unsigned i = 0; i < len; i++)
		v |= (uint32_t)data[i] << (8 * i);
	pthread_mutex_lock(&pci->lock);
	if (offset < 4) {	/* the address latch: only whole dwords */
		if (is_write && offset == 0 && len == 4)
			pci->latch = v;
		else if (!is_write)
			for (unsigned i = 0; i < len; i++)
				data[i] = offset == 0 && len == 4 ? (uint8_t)(pci->latch >> (8 * i)) : 0xff;
		goto out;
	}
	slot = (pci->latch >> 11) & 0x1f;
	reg = (pci->latch & 0xfc) + (unsigned)(offset - 4);
	if ((pci->latch & 0x80000000u) && !(pci->latch & 0x00ff0700u))	/* bus 0, fn 0 */
		d = pci->slots[slot];
	if (is_write) {
		if (d && reg + len <= 256)
			cfg_write(pci, d, reg, v, len);
	} else {
		for (unsigned i = 0; i < len; i++)
			data[i] = d && reg + i < 256 ? d->cfg[reg + i] : 0xff;
	}
out:
	pthread_mutex_unlock(&pci->lock);
}

uint32_t vmm_pci_alloc_mmio(struct vmm *vm, uint32_t size)
{
	struct vmm_pci *pci = vm->pci;
	uint32_t addr = (pci->next_mmio + size - 1) & ~(size - 1);

	pci->next_mmio = addr + size;
	return addr;
}

int vmm_pci_bar(struct vmm *vm, struct vmm_pci_dev *dev, unsigned n, uint32_t addr,
		uint32_t size, bool io, vmm_io_fn fn, void *opaque)
{
	int h;

	if (n >= 6 || !size || (size & (size - 1)))
		return -EINVAL;
	h = vmm_bus_register(&vm->bus, io ? VMM_PIO : VMM_MMIO, addr, size, fn, opaque,
			     dev->name);
	if (h < 0)
		return h;
	vmm_bus_move(&vm->bus, h, addr, false);	/* until the guest enables it */
	dev->bar[n].size = size;
	dev->bar[n].io = io;
	dev->bar[n].handle = h;
	set32(dev, PCI_BAR0 + 4 * n, addr | (io ? 1 : 0));
	return 0;
}

int vmm_pci_add(struct vmm *vm, unsigned slot, struct vmm_pci_dev *dev)
{
	struct vmm_pci *pci = vm->pci;

	if (!pci || slot == 0 || slot >= 32 || pci->slots[slot])
		return -EINVAL;
	pthread_mutex_lock(&pci->lock);
	pci->slots[slot] = dev;
	pthread_mutex_unlock(&pci->lock);
	return 0;
}

int vmm_pci_add_any(struct vmm *vm, struct vmm_pci_dev *dev)
{
	struct vmm_pci *pci = vm->pci;
	int rc = -ENOSPC;

	if (!pci)
		return -EINVAL;
	pthread_mutex_lock(&pci->lock);
	for (unsigned slot = 2; slot < 32; slot++)	/* 1: pvpanic */
		if (!pci->slots[slot]) {
			pci->slots[slot] = dev;
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&pci->lock);
	return rc;
}

static int pci_init(struct vmm *vm, void **state)
{
	struct vmm_pci *pci = calloc(1, sizeof(*pci));
	int rc;

	if (!pci)
		return -ENOMEM;
	pthread_mutex_init(&pci->lock, NULL);
	pci->vm = vm;
	pci->next_mmio = (uint32_t)VMM_PCI_MMIO_START;
	pci->bridge.name = "host-bridge";
	vmm_pci_header(&pci->bridge, 0x1b36, 0x0008, 0x06000000, 0x1af4, 0x1100);
	pci->slots[0] = &pci->bridge;
	rc = vmm_bus_register(&vm->bus, VMM_PIO, CONF1_ADDR, 8, conf1_io, pci, "pci-conf1");
	if (rc < 0) {
		free(pci);
		return rc;
	}
	vm->pci = pci;
	*state = pci;
	return 0;
}

static void pci_fini(void *state)
{
	free(state);
}

const struct vmm_device_ops vmm_pci_ops = {
	.name = "pci",
	.init = pci_init,
	.fini = pci_fini,
};

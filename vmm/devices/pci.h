/*
 * PCI bus 0 behind the conf1 mechanism (vmm/devices/pci.c): a device is a
 * 256-byte configuration space plus up to six 32-bit BARs whose MMIO/port
 * ranges follow the guest's programming of the BARs and the command register.
 */
#ifndef LEGATO_VMM_DEVICES_PCI_H
#define LEGATO_VMM_DEVICES_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/vmm.h"

struct vmm_pci_dev {
	const char *name;
	uint8_t cfg[256];
	struct {
		uint32_t size;		/* power of two, 0: no BAR */
		bool io;
		int handle;		/* bus range */
		uint32_t addr;		/* where it decodes, when on */
		bool on;
	} bar[6];
	void *opaque;			/* the device's, for the hooks below */
	/* Optional. A guest write to config space at 0x40 or above (the
	 * capabilities): the device updates cfg[] as it sees fit. Called from a
	 * vCPU thread under the bus's configuration lock. */
	void (*cfg_write)(struct vmm_pci_dev *dev, unsigned off, uint32_t v, unsigned len);
	/* Optional. BAR n now decodes at addr (on) or not at all (after the
	 * guest reprogrammed it or flipped the command register); same thread
	 * and lock as cfg_write. */
	void (*bar_moved)(struct vmm_pci_dev *dev, unsigned n, uint32_t addr, bool on);
};

/* Fills the identity fields of a type-0 header. */
void vmm_pci_header(struct vmm_pci_dev *dev, uint16_t vendor, uint16_t device,
		    uint32_t class_rev, uint16_t subsys_vendor, uint16_t subsys);
/* Puts dev in slot (1..31; 0 is the host bridge) and registers its BARs, set
 * up beforehand with vmm_pci_bar, at their initial addresses. */
int vmm_pci_add(struct vmm *vm, unsigned slot, struct vmm_pci_dev *dev);
/* The same on the first free slot from 2 on; -ENOSPC when the bus is full. */
int vmm_pci_add_any(struct vmm *vm, struct vmm_pci_dev *dev);
/* Declares BAR n: a 32-bit memory BAR (or I/O when io) of size bytes at addr,
 * served by fn. */
int vmm_pci_bar(struct vmm *vm, struct vmm_pci_dev *dev, unsigned n, uint32_t addr,
		uint32_t size, bool io, vmm_io_fn fn, void *opaque);

/* Next free MMIO address for a BAR of size bytes (aligned). */
uint32_t vmm_pci_alloc_mmio(struct vmm *vm, uint32_t size);

#endif

/*
 * pvpanic-pci (1b36:0011, QEMU's PCI id, which the stock kernel's pvpanic-pci
 * driver binds): one MMIO BAR whose first byte reads the supported events
 * (PANICKED | CRASH_LOADED) and takes the guest's notice. PANICKED ends the
 * VM with a non-zero status: a panic is told apart from the reboot the kernel
 * may do afterwards.
 */
#include <errno.h>
#include <stdlib.h>

#include "vmm/devices/pci.h"
#include "vmm/vmm.h"

#define PVPANIC_PANICKED 0x1
#define PVPANIC_CRASH_LOADED 0x2
#define PVPANIC_SLOT 1
#define BAR_SIZE 0x1000

struct pvpanic_dev {
	struct vmm_pci_dev pci;
	struct vmm *vm;
};

static void pvpanic_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		       bool is_write)
{
	struct pvpanic_dev *d = opaque;

	if (!is_write) {
		for (unsigned i = 0; i < len; i++)
			data[i] = offset + i == 0 ? (PVPANIC_PANICKED | PVPANIC_CRASH_LOADED) : 0;
		return;
	}
	if (offset == 0 && (data[0] & PVPANIC_PANICKED))
		vmm_request_exit(d->vm, VMM_EXIT_PANIC, "guest kernel panicked (pvpanic)");
	else if (offset == 0 && (data[0] & PVPANIC_CRASH_LOADED))
		vmm_request_exit(d->vm, VMM_EXIT_PANIC,
				 "guest kernel crashed into its crash kernel (pvpanic)");
}

static int pvpanic_init(struct vmm *vm, void **state)
{
	struct pvpanic_dev *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->vm = vm;
	d->pci.name = "pvpanic";
	vmm_pci_header(&d->pci, 0x1b36, 0x0011, 0x08800001, 0x1af4, 0x1100);
	rc = vmm_pci_bar(vm, &d->pci, 0, vmm_pci_alloc_mmio(vm, BAR_SIZE), BAR_SIZE, false,
			 pvpanic_io, d);
	if (!rc)
		rc = vmm_pci_add(vm, PVPANIC_SLOT, &d->pci);
	if (rc) {
		free(d);
		return rc;
	}
	*state = d;
	return 0;
}

static void pvpanic_fini(void *state)
{
	free(state);
}

const struct vmm_device_ops vmm_pvpanic_ops = {
	.name = "pvpanic",
	.init = pvpanic_init,
	.fini = pvpanic_fini,
};

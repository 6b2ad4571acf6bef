/*
 * The device table: every device the VM gets, created in this order (the PCI
 * bus before the PCI devices) and destroyed in reverse. A device is one file
 * under vmm/devices/ exporting a struct vmm_device_ops; adding one is adding
 * a line here. Also the port-0x80 POST/delay sink, which every kernel writes.
 */
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "vmm/vmm.h"

extern const struct vmm_device_ops vmm_uart_ops, vmm_i8042_ops, vmm_rtc_ops, vmm_pm_ops,
	vmm_pci_ops, vmm_pvpanic_ops, vmm_virtio_blk_ops, vmm_virtio_net_ops;

static void sink_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	(void)opaque;
	(void)offset;
	for (unsigned i = 0; i < len && !is_write; i++)
		data[i] = 0xff;
}

static int sink_init(struct vmm *vm, void **state)
{
	int rc = vmm_bus_register(&vm->bus, VMM_PIO, 0x80, 1, sink_io, NULL, "post");

	*state = NULL;
	return rc < 0 ? rc : 0;
}

static const struct vmm_device_ops sink_ops = { .name = "post", .init = sink_init };

const struct vmm_device_ops *const vmm_devices[] = {
	&sink_ops,
	&vmm_uart_ops,
	&vmm_i8042_ops,
	&vmm_rtc_ops,
	&vmm_pm_ops,
	&vmm_pci_ops,
	&vmm_pvpanic_ops,
	&vmm_virtio_blk_ops,
	&vmm_virtio_net_ops,
	NULL,
};

int vmm_devices_init(struct vmm *vm)
{
	int rc;

	for (vm->ndev = 0; vmm_devices[vm->ndev]; vm->ndev++) {
		const struct vmm_device_ops *ops = vmm_devices[vm->ndev];

		rc = ops->init(vm, &vm->dev_state[vm->ndev]);
		if (rc) {
			if (!vm->init_error_reported)
				log_err("device %s: %s", ops->name, strerror(-rc));
			vmm_devices_fini(vm);
			return rc;
		}
	}
	return 0;
}

void vmm_devices_fini(struct vmm *vm)
{
	while (vm->ndev > 0) {
		const struct vmm_device_ops *ops = vmm_devices[--vm->ndev];

		if (ops->fini && vm->dev_state[vm->ndev])
			ops->fini(vm->dev_state[vm->ndev]);
		vm->dev_state[vm->ndev] = NULL;
	}
	vm->console = NULL;
	vm->pci = NULL;
}

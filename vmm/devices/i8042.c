/*
 * The i8042 keyboard controller, only as much as a reset needs (`reboot=k`,
 * and the kernel's fallback after the ACPI reset register): the status port
 * 0x64 reads "input buffer empty", command 0xfe pulses the reset line, and
 * command 0xd1 followed by an output-port byte with bit 0 clear resets too.
 * No keyboard is announced (the FADT clears the 8042 flag).
 */
#include <errno.h>
#include <stdlib.h>

#include "vmm/vmm.h"

#define DATA_PORT 0x60
#define CMD_PORT 0x64

struct i8042_dev {
	pthread_mutex_t lock;
	struct vmm *vm;
	uint8_t pending_cmd;
};

static void i8042_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct i8042_dev *d = opaque;
	bool reset = false;

	(void)len;
	pthread_mutex_lock(&d->lock);
	if (!is_write) {
		data[0] = 0;	/* no data; input buffer empty */
	} else if (offset == CMD_PORT - DATA_PORT) {
		d->pending_cmd = 0;
		if (data[0] == 0xfe)
			reset = true;
		else if (data[0] == 0xd1)
			d->pending_cmd = 0xd1;
	} else if (offset == 0) {
		if (d->pending_cmd == 0xd1 && !(data[0] & 1))
			reset = true;
		d->pending_cmd = 0;
	}
	pthread_mutex_unlock(&d->lock);
	if (reset)
		vmm_request_exit(d->vm, VMM_EXIT_REBOOT, "guest rebooted (i8042 reset)");
}

static int i8042_init(struct vmm *vm, void **state)
{
	struct i8042_dev *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	d->vm = vm;
	rc = vmm_bus_register(&vm->bus, VMM_PIO, DATA_PORT, 1, i8042_io, d, "i8042");
	if (rc >= 0) {
		/* The same handler sees offset 4 through a second range. */
		rc = vmm_bus_register(&vm->bus, VMM_PIO, CMD_PORT, 1, i8042_io, d, "i8042-cmd");
	}
	if (rc < 0) {
		free(d);
		return rc;
	}
	*state = d;
	return 0;
}

static void i8042_fini(void *state)
{
	free(state);
}

const struct vmm_device_ops vmm_i8042_ops = {
	.name = "i8042",
	.init = i8042_init,
	.fini = i8042_fini,
};

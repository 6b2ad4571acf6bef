/*
 * ACPI fixed hardware as the FADT describes it (ports 0x600..0x60f): PM1a
 * event block (status, write-1-to-clear, and enable), PM1a control (SCI_EN
 * always set: there is no SMI command port, the machine is in ACPI mode from
 * the start), the 32-bit PM timer at 3.579545 MHz from CLOCK_MONOTONIC, and
 * the reset register. Writing SLP_TYP 5 with SLP_EN (the DSDT's \_S5) powers
 * the VM off; the reset value reboots it. Other sleep states are ignored.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/util.h"
#include "vmm/vmm.h"

#define PM_BASE VMM_PM1A_EVT_PORT
#define SLP_EN (1u << 13)
#define SCI_EN 1u

struct pm_dev {
	pthread_mutex_t lock;
	struct vmm *vm;
	uint16_t sts, en, cnt;
};

static uint32_t pm_timer(void)
{
	return (uint32_t)((unsigned __int128)now_ns() * 3579545u / 1000000000u);
}

static void pm_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct pm_dev *d = opaque;
	enum vmm_exit_reason exit = VMM_EXIT_NONE;
	uint8_t file[16] = { 0 };
	uint32_t tmr;
	bool cnt_written = false;

	pthread_mutex_lock(&d->lock);
	if (!is_write) {
		/* A byte image of the block; accesses of any width read from it. */
		tmr = pm_timer();
		file[0] = (uint8_t)d->sts;
		file[1] = (uint8_t)(d->sts >> 8);
		file[2] = (uint8_t)d->en;
		file[3] = (uint8_t)(d->en >> 8);
		file[4] = (uint8_t)(d->cnt | SCI_EN);
		file[5] = (uint8_t)(d->cnt >> 8);
		for (unsigned i = 0; i < 4; i++)
			file[8 + i] = (uint8_t)(tmr >> (8 * i));
		for (unsigned i = 0; i < len; i++)
			data[i] = offset + i < sizeof(file) ? file[offset + i] : 0xff;
	} else {
		for (unsigned i = 0; i < len; i++) {
			uint64_t o = offset + i;
			uint16_t b = data[i];

			if (o < 2)
				d->sts &= (uint16_t)~(b << (8 * o));
			else if (o < 4)
				d->en = (uint16_t)((d->en & ~(0xff << (8 * (o - 2)))) | b << (8 * (o - 2)));
			else if (o < 6) {
				d->cnt = (uint16_t)((d->cnt & ~(0xff << (8 * (o - 4)))) | b << (8 * (o - 4)));
				cnt_written = true;
			} else if (o == VMM_RESET_PORT - PM_BASE && b == VMM_RESET_VALUE)
				exit = VMM_EXIT_REBOOT;
		}
		if (cnt_written && (d->cnt & SLP_EN)) {
			unsigned typ = (d->cnt >> 10) & 7;

			if (typ == 5)
				exit = VMM_EXIT_POWEROFF;
			else
				log_info("guest asked for sleep type %u: ignored", typ);
			d->cnt &= (uint16_t)~SLP_EN;
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (exit == VMM_EXIT_POWEROFF)
		vmm_request_exit(d->vm, exit, "guest powered off");
	else if (exit == VMM_EXIT_REBOOT)
		vmm_request_exit(d->vm, exit, "guest rebooted");
}

static int pm_init(struct vmm *vm, void **state)
{
	struct pm_dev *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	d->vm = vm;
	rc = vmm_bus_register(&vm->bus, VMM_PIO, PM_BASE, 16, pm_io, d, "acpi-pm");
	if (rc < 0) {
		free(d);
		return rc;
	}
	*state = d;
	return 0;
}

static void pm_fini(void *state)
{
	free(state);
}

const struct vmm_device_ops vmm_pm_ops = {
	.name = "acpi-pm",
	.init = pm_init,
	.fini = pm_fini,
};

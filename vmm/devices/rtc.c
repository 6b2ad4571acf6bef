/*
 * CMOS RTC (MC146818) at ports 0x70/0x71: the host's UTC time in BCD, 24-hour
 * mode, no update in progress, the century at 0x32 (as the FADT says), 128
 * bytes of NVRAM for everything else. Bit 7 of the index port is the NMI mask
 * and is ignored. No alarm or periodic interrupts (the guest keeps time with
 * kvmclock and the local APIC timer).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/vmm.h"

#define INDEX_PORT 0x70

struct rtc_dev {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t nvram[128];
};

static uint8_t bcd(int v)
{
	return (uint8_t)((v / 10) << 4 | (v % 10));
}

static uint8_t rtc_reg(struct rtc_dev *d, uint8_t reg)
{
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	switch (reg) {
	case 0x00: return bcd(tm.tm_sec);
	case 0x02: return bcd(tm.tm_min);
	case 0x04: return bcd(tm.tm_hour);
	case 0x06: return bcd(tm.tm_wday + 1);
	case 0x07: return bcd(tm.tm_mday);
	case 0x08: return bcd(tm.tm_mon + 1);
	case 0x09: return bcd(tm.tm_year % 100);
	case 0x32: return bcd((tm.tm_year + 1900) / 100);
	case 0x0a: return 0x26;		/* 32.768 kHz, 1024 Hz; UIP clear */
	case 0x0b: return d->nvram[0x0b] | 0x02;	/* 24h, BCD */
	case 0x0c: return 0;		/* no interrupt flags */
	case 0x0d: return 0x80;		/* RAM and time valid */
	default: return d->nvram[reg & 0x7f];
	}
}

static void rtc_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct rtc_dev *d = opaque;

	pthread_mutex_lock(&d->lock);
	if (offset == 0) {
		if (is_write)
			d->index = data[0] & 0x7f;
		else
			data[0] = 0xff;
	} else if (is_write) {
		if (d->index != 0x0c && d->index != 0x0d)
			d->nvram[d->index] = data[0];
	} else {
		data[0] = rtc_reg(d, d->index);
	}
	for (unsigned i = 1; i < len && !is_write; i++)
		data[i] = 0xff;
	pthread_mutex_unlock(&d->lock);
}

static int rtc_init(struct vmm *vm, void **state)
{
	struct rtc_dev *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	d->nvram[0x0b] = 0x02;
	rc = vmm_bus_register(&vm->bus, VMM_PIO, INDEX_PORT, 2, rtc_io, d, "rtc");
	if (rc < 0) {
		free(d);
		return rc;
	}
	*state = d;
	return 0;
}

static void rtc_fini(void *state)
{
	free(state);
}

const struct vmm_device_ops vmm_rtc_ops = {
	.name = "rtc",
	.init = rtc_init,
	.fini = rtc_fini,
};

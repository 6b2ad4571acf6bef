/*
 * The port-I/O and MMIO bus: devices register ranges, vCPU threads dispatch
 * every KVM_EXIT_IO / KVM_EXIT_MMIO here. An access nobody claims reads as
 * all-ones and writes are dropped, logged once per port (and for the first
 * few MMIO addresses) at debug level: never fatal, as on real hardware.
 * Handlers run outside the bus lock and serialise themselves; ranges move
 * only when the guest reprograms a PCI BAR.
 */
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "vmm/vmm.h"

int vmm_bus_init(struct vmm_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	return -pthread_rwlock_init(&bus->lock, NULL);
}

void vmm_bus_fini(struct vmm_bus *bus)
{
	pthread_rwlock_destroy(&bus->lock);
}

static bool overlaps(const struct vmm_io_range *r, enum vmm_space space, uint64_t base,
		     uint64_t len)
{
	return r->enabled && r->space == space && base < r->base + r->len && r->base < base + len;
}

int vmm_bus_register(struct vmm_bus *bus, enum vmm_space space, uint64_t base, uint64_t len,
		     vmm_io_fn fn, void *opaque, const char *name)
{
	int handle = -ENOSPC;

	pthread_rwlock_wrlock(&bus->lock);
	for (unsigned i = 0; i < bus->nranges; i++) {
		if (overlaps(&bus->ranges[i], space, base, len)) {
			log_err("%s: [0x%llx, +0x%llx) overlaps %s", name,
				(unsigned long long)base, (unsigned long long)len,
				bus->ranges[i].name);
			handle = -EEXIST;
			goto out;
		}
	}
	if (bus->nranges < VMM_IO_MAX_RANGES) {
		handle = (int)bus->nranges++;
		bus->ranges[handle] = (struct vmm_io_range){ .space = space, .base = base,
			.len = len, .fn = fn, .opaque = opaque, .name = name, .enabled = true };
	}
out:
	pthread_rwlock_unlock(&bus->lock);
	return handle;
}

void vmm_bus_move(struct vmm_bus *bus, int handle, uint64_t base, bool enabled)
{
	pthread_rwlock_wrlock(&bus->lock);
	if (handle >= 0 && (unsigned)handle < bus->nranges) {
		struct vmm_io_range *r = &bus->ranges[handle];

		r->enabled = false;
		if (enabled) {
			for (unsigned i = 0; i < bus->nranges; i++)
				if (overlaps(&bus->ranges[i], r->space, base, r->len))
					enabled = false;
		}
		r->base = base;
		r->enabled = enabled;
		log_debug("%s moved to 0x%llx (%s)", r->name, (unsigned long long)base,
			  enabled ? "decoding" : "off");
	}
	pthread_rwlock_unlock(&bus->lock);
}

void vmm_bus_access(struct vmm_bus *bus, enum vmm_space space, uint64_t addr, uint8_t *data,
		    unsigned len, bool is_write)
{
	vmm_io_fn fn = NULL;
	void *opaque = NULL;
	uint64_t base = 0;

	pthread_rwlock_rdlock(&bus->lock);
	for (unsigned i = 0; i < bus->nranges; i++) {
		const struct vmm_io_range *r = &bus->ranges[i];

		if (r->enabled && r->space == space && addr >= r->base && addr < r->base + r->len) {
			fn = r->fn;
			opaque = r->opaque;
			base = r->base;
			break;
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	if (fn) {
		fn(opaque, addr - base, data, len, is_write);
		return;
	}
	if (!is_write)
		memset(data, 0xff, len);
	if (space == VMM_PIO) {
		uint16_t port = (uint16_t)addr;
		uint8_t bit = (uint8_t)(1u << (port & 7));

		if (!(__atomic_fetch_or(&bus->pio_logged[port >> 3], bit, __ATOMIC_RELAXED) & bit))
			log_debug("unclaimed port 0x%x (%s, %u bytes): ignored", port,
				  is_write ? "write" : "read", len);
	} else if (__atomic_fetch_add(&bus->mmio_logged, 1, __ATOMIC_RELAXED) < 16) {
		log_debug("unclaimed MMIO 0x%llx (%s, %u bytes): ignored",
			  (unsigned long long)addr, is_write ? "write" : "read", len);
	}
}

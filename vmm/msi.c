/*
 * Interrupts and notifications that bypass the vCPU threads, for devices with
 * threads of their own (virtio):
 *   - KVM's GSI routing table: the in-kernel PIC and IOAPIC routes of GSIs
 *     0-23 exactly as KVM sets them up by default, then one MSI route per
 *     device vector from GSI 24 on;
 *   - irqfds: writing an eventfd injects its GSI's route, from any thread,
 *     without a system call into the VMM's own code;
 *   - ioeventfds: a guest write to a registered MMIO address signals an
 *     eventfd inside KVM, so a queue notification never leaves the kernel.
 * KVM_SET_GSI_ROUTING replaces the whole table, so every change rewrites it
 * under msi->lock (changes are rare: a driver programming its MSI-X table).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "vmm/vmm.h"

#define MSI_FIRST_GSI 24
#define MSI_MAX_ROUTES 1024

struct vmm_msi {
	pthread_mutex_t lock;
	unsigned nmsi;		/* MSI routes: GSIs 24 .. 24 + nmsi - 1 */
	struct kvm_irq_routing_entry msi[MSI_MAX_ROUTES];
};

static unsigned default_routes(struct kvm_irq_routing_entry *e)
{
	unsigned n = 0;

	for (unsigned gsi = 0; gsi < MSI_FIRST_GSI; gsi++) {
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
		};
		if (gsi < 16)
			e[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
								  : KVM_IRQCHIP_PIC_SLAVE,
					       .pin = gsi % 8 },
			};
	}
	return n;
}

/* Rewrites KVM's table. Caller holds msi->lock. */
static int commit(struct vmm *vm)
{
	struct vmm_msi *m = vm->msi;
	struct kvm_irq_routing *r;
	unsigned n;
	int rc = 0;

	r = calloc(1, sizeof(*r) + (40 + m->nmsi) * sizeof(r->entries[0]));
	if (!r)
		return -ENOMEM;
	n = default_routes(r->entries);
	memcpy(&r->entries[n], m->msi, m->nmsi * sizeof(m->msi[0]));
	r->nr = n + m->nmsi;
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, r) < 0) {
		rc = -errno;
		log_err("KVM_SET_GSI_ROUTING (%u routes): %s", r->nr, strerror(-rc));
	}
	free(r);
	return rc;
}

int vmm_msi_init(struct vmm *vm)
{
	struct vmm_msi *m = calloc(1, sizeof(*m));
	int rc;

	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	vm->msi = m;
	pthread_mutex_lock(&m->lock);
	rc = commit(vm);
	pthread_mutex_unlock(&m->lock);
	if (rc) {
		free(m);
		vm->msi = NULL;
	}
	return rc;
}

void vmm_msi_fini(struct vmm *vm)
{
	free(vm->msi);
	vm->msi = NULL;
}

int vmm_msi_route_add(struct vmm *vm)
{
	struct vmm_msi *m = vm->msi;
	int gsi;

	pthread_mutex_lock(&m->lock);
	if (m->nmsi == MSI_MAX_ROUTES) {
		pthread_mutex_unlock(&m->lock);
		return -ENOSPC;
	}
	gsi = MSI_FIRST_GSI + (int)m->nmsi;
	/* Not delivered until programmed: users write its irqfd only for a
	 * vector the driver has set up and left unmasked. */
	m->msi[m->nmsi++] = (struct kvm_irq_routing_entry){
		.gsi = (uint32_t)gsi, .type = KVM_IRQ_ROUTING_MSI,
		.u.msi = { .address_lo = 0xfee00000u },
	};
	pthread_mutex_unlock(&m->lock);
	return gsi;
}

int vmm_msi_route_set(struct vmm *vm, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct vmm_msi *m = vm->msi;
	struct kvm_irq_routing_entry *e;
	int rc = 0;

	if (gsi < MSI_FIRST_GSI)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	if (gsi - MSI_FIRST_GSI >= m->nmsi) {
		pthread_mutex_unlock(&m->lock);
		return -EINVAL;
	}
	e = &m->msi[gsi - MSI_FIRST_GSI];
	if (e->u.msi.address_lo != (uint32_t)addr || e->u.msi.address_hi != addr >> 32 ||
	    e->u.msi.data != data) {
		e->u.msi.address_lo = (uint32_t)addr;
		e->u.msi.address_hi = (uint32_t)(addr >> 32);
		e->u.msi.data = data;
		rc = commit(vm);
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int vmm_irqfd(struct vmm *vm, unsigned gsi, int efd, bool assign)
{
	struct kvm_irqfd f = { .fd = (uint32_t)efd, .gsi = gsi,
			       .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN };

	if (ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0) {
		int rc = -errno;

		log_err("KVM_IRQFD gsi %u: %s", gsi, strerror(-rc));
		return rc;
	}
	return 0;
}

int vmm_ioeventfd(struct vmm *vm, uint64_t addr, unsigned len, int efd, bool assign)
{
	struct kvm_ioeventfd io = { .addr = addr, .len = len, .fd = efd,
				    .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN };

	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0) {
		int rc = -errno;

		log_err("KVM_IOEVENTFD 0x%llx/%u %s: %s", (unsigned long long)addr, len,
			assign ? "assign" : "deassign", strerror(-rc));
		return rc;
	}
	return 0;
}

/*
 * vCPU set-up: CPUID (KVM's supported list with the hypervisor bit set, SVM
 * and VMX hidden so the guest never nests, and a distinct APIC ID per vCPU in
 * leaves 1, 0xB/0x1F and 0x8000001E), the usual MSR reset values, and the
 * 64-bit boot state of vCPU 0 (paging on with the identity map, the boot GDT's
 * __BOOT_CS 0x10 / __BOOT_DS 0x18, rip = entry, rsi = boot_params). The other
 * vCPUs stay in KVM's wait-for-SIPI state: the guest starts them with
 * INIT/SIPI through the in-kernel local APIC, like firmware would.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "common/log.h"
#include "common/util.h"
#include "vmm/vmm.h"

#define CPUID_MAX_ENTRIES 256

void vmm_cpuid_fixup(struct kvm_cpuid2 *cpuid, unsigned index, unsigned n)
{
	unsigned shift = 0;

	while ((1u << shift) < n)
		shift++;
	for (unsigned i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		switch (e->function) {
		case 1:
			e->ecx |= 1u << 31;		/* hypervisor */
			e->ecx &= ~(1u << 5);		/* VMX */
			e->ebx = (e->ebx & 0xffff) | (MIN(n, 255u) << 16) | (index << 24);
			if (n > 1)
				e->edx |= 1u << 28;	/* HTT: EBX[23:16] is valid */
			break;
		case 0xb:
		case 0x1f:
			e->edx = index;
			if (e->index == 0) {		/* SMT level: one thread */
				e->eax = 0;
				e->ebx = 1;
				e->ecx = 1u << 8;
			} else if (e->index == 1) {	/* core level: n cores */
				e->eax = shift;
				e->ebx = n;
				e->ecx = 2u << 8 | 1;
			} else {
				e->eax = 0;
				e->ebx = 0;
				e->ecx = e->index;
			}
			break;
		case 0x80000001:
			e->ecx &= ~(1u << 2);		/* SVM */
			break;
		case 0x8000001e:
			e->eax = index;			/* extended APIC ID */
			break;
		default:
			break;
		}
	}
}

static int set_cpuid(struct vmm *vm, struct vmm_vcpu *vcpu)
{
	struct kvm_cpuid2 *cpuid;
	int rc = 0;

	cpuid = calloc(1, sizeof(*cpuid) + CPUID_MAX_ENTRIES * sizeof(cpuid->entries[0]));
	if (!cpuid)
		return -ENOMEM;
	cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		rc = -errno;
		log_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(-rc));
		goto out;
	}
	vmm_cpuid_fixup(cpuid, vcpu->index, vm->nvcpus);
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0) {
		rc = -errno;
		log_err("KVM_SET_CPUID2: %s", strerror(-rc));
	}
out:
	free(cpuid);
	return rc;
}

static int set_msrs(struct vmm_vcpu *vcpu)
{
	static const struct { uint32_t index; uint64_t value; } msrs[] = {
		{ 0x174, 0 }, { 0x175, 0 }, { 0x176, 0 },	/* SYSENTER_* */
		{ 0xc0000081, 0 }, { 0xc0000082, 0 },		/* STAR, LSTAR */
		{ 0xc0000083, 0 }, { 0xc0000084, 0 },		/* CSTAR, SFMASK */
		{ 0xc0000102, 0 },				/* KERNEL_GS_BASE */
		{ 0x1a0, 1 },					/* MISC_ENABLE: fast strings */
	};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[sizeof(msrs) / sizeof(msrs[0])];
	} m;
	int n;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = sizeof(msrs) / sizeof(msrs[0]);
	for (unsigned i = 0; i < m.hdr.nmsrs; i++) {
		m.e[i].index = msrs[i].index;
		m.e[i].data = msrs[i].value;
	}
	n = ioctl(vcpu->fd, KVM_SET_MSRS, &m);
	if (n < 0)
		return -errno;
	if ((unsigned)n < m.hdr.nmsrs)
		log_debug("vcpu %u: KVM took %d of %u MSRs", vcpu->index, n, m.hdr.nmsrs);
	return 0;
}

static void seg64(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code;
	s->db = !code;
}

static int set_boot_state(struct vmm_vcpu *vcpu, uint64_t entry)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	seg64(&sregs.cs, 0x10, 0xb, true);
	seg64(&sregs.ds, 0x18, 0x3, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.tr.base = 0;
	sregs.tr.limit = 0xfff;
	sregs.tr.selector = 0x20;
	sregs.tr.type = 0xb;
	sregs.tr.present = 1;
	sregs.tr.s = 0;
	sregs.gdt.base = VMM_GDT_ADDR;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = 0x80000011;		/* PG | ET | PE; caches on */
	sregs.cr3 = VMM_PML4_ADDR;
	sregs.cr4 = 0x20;		/* PAE */
	sregs.efer = 0x500;		/* LMA | LME */
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	memset(&regs, 0, sizeof(regs));
	regs.rflags = 2;
	regs.rip = entry;
	regs.rsi = VMM_BOOT_PARAMS_ADDR;
	regs.rsp = VMM_BOOT_STACK_ADDR;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

/* Signal mask inside KVM_RUN: everything blocked except the kick. */
static int set_signal_mask(struct vmm_vcpu *vcpu)
{
	struct {
		struct kvm_signal_mask hdr;
		uint8_t set[8];
	} m;
	sigset_t s;

	sigfillset(&s);
	sigdelset(&s, SIGUSR1);
	m.hdr.len = 8;
	memcpy(m.set, &s, 8);
	if (ioctl(vcpu->fd, KVM_SET_SIGNAL_MASK, &m) < 0)
		return -errno;
	return 0;
}

int vmm_vcpus_create(struct vmm *vm, uint64_t entry)
{
	int rc;

	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vmm_vcpu *vcpu = &vm->vcpus[i];

		vcpu->vm = vm;
		vcpu->index = i;
		vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, i);
		if (vcpu->fd < 0) {
			rc = -errno;
			log_err("KVM_CREATE_VCPU %u: %s", i, strerror(-rc));
			return rc;
		}
		vcpu->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
				 vcpu->fd, 0);
		if (vcpu->run == MAP_FAILED) {
			rc = -errno;
			vcpu->run = NULL;
			log_err("mmap kvm_run of vcpu %u: %s", i, strerror(-rc));
			return rc;
		}
		rc = set_cpuid(vm, vcpu);
		if (!rc)
			rc = set_msrs(vcpu);
		if (!rc)
			rc = set_signal_mask(vcpu);
		if (!rc && i == 0)
			rc = set_boot_state(vcpu, entry);
		if (rc) {
			log_err("setting up vcpu %u: %s", i, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

void vmm_vcpu_dump(struct vmm_vcpu *vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(stderr, "vmm: vcpu %u: registers unavailable: %s\n", vcpu->index,
			strerror(errno));
		return;
	}
	fprintf(stderr,
		"vmm: vcpu %u: rip=%016llx rsp=%016llx rflags=%08llx rax=%016llx rbx=%016llx "
		"rcx=%016llx rdx=%016llx rsi=%016llx rdi=%016llx rbp=%016llx cs=%04x "
		"cr0=%08llx cr2=%016llx cr3=%016llx cr4=%08llx efer=%llx\n",
		vcpu->index, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi,
		r.rbp, s.cs.selector, s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
}

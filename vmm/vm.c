/*
 * The KVM VM and its vCPU threads: /dev/kvm, the VM with in-kernel irqchip
 * (PIC + IOAPIC + local APICs) and PIT, the Intel TSS/identity-map pages, the
 * memory slots over guest RAM, one thread per vCPU running KVM_RUN and
 * dispatching port and MMIO exits to the bus, pause/resume, and the single
 * place a VM's end is decided (vmm_request_exit: the first reason wins).
 *
 * Kicking a vCPU: set kvm_run.immediate_exit and send SIGUSR1 to its thread.
 * The thread blocks every signal except inside KVM_RUN (KVM_SET_SIGNAL_MASK),
 * so a kick either interrupts the guest (KVM_RUN returns -EINTR) or is left
 * pending until the next KVM_RUN, which then returns at once: none is lost.
 * Either way the signal stays pending after -EINTR and is consumed there.
 * A vCPU blocked in a userfaultfd fault only notices once the page is served,
 * which is why pausing "waits for outstanding faults".
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "vmm/vmm.h"

static void kick_handler(int sig)
{
	(void)sig;
}

/* Consumes a kick left pending by a KVM_RUN that returned -EINTR. KVM only
 * tests for the signal inside KVM_RUN and puts the thread's own mask (kick
 * blocked) back before returning, so the signal is never delivered: without
 * this, every later KVM_RUN would return -EINTR at once, forever. */
static void eat_kicks(void)
{
	static const struct timespec zero;
	sigset_t kick;

	sigemptyset(&kick);
	sigaddset(&kick, SIGUSR1);
	while (sigtimedwait(&kick, NULL, &zero) == SIGUSR1)
		;
}

const char *vmm_state_name(enum vmm_state s)
{
	switch (s) {
	case VMM_STATE_CREATED: return "created";
	case VMM_STATE_RUNNING: return "running";
	case VMM_STATE_PAUSED: return "paused";
	case VMM_STATE_STOPPING: return "stopping";
	}
	return "?";
}

const char *vmm_exit_name(enum vmm_exit_reason r)
{
	switch (r) {
	case VMM_EXIT_NONE: return "none";
	case VMM_EXIT_POWEROFF: return "poweroff";
	case VMM_EXIT_REBOOT: return "reboot";
	case VMM_EXIT_STOPPED: return "stopped";
	case VMM_EXIT_PANIC: return "panic";
	case VMM_EXIT_TRIPLE_FAULT: return "triple-fault";
	case VMM_EXIT_KVM_ERROR: return "kvm-error";
	case VMM_EXIT_MEMORY: return "memory-error";
	case VMM_EXIT_VMM_ERROR: return "vmm-error";
	}
	return "?";
}

int vmm_vm_create(struct vmm *vm)
{
	struct sigaction sa;
	int rc, n;

	vm->kvm_fd = vm->vm_fd = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigaction(SIGUSR1, &sa, NULL);

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		rc = -errno;
		fprintf(stderr, "vmm: cannot open /dev/kvm: %s\n", strerror(-rc));
		return rc;
	}
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		fprintf(stderr, "vmm: /dev/kvm has an unknown API version\n");
		return -ENOTSUP;
	}
	n = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (n <= 0)
		n = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (n > 0 && (unsigned)n < vm->nvcpus) {
		fprintf(stderr, "vmm: --vcpus %u: this KVM allows at most %d\n", vm->nvcpus, n);
		return -EINVAL;
	}
	vm->run_size = (size_t)ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		rc = -errno;
		fprintf(stderr, "vmm: KVM_CREATE_VM: %s\n", strerror(-rc));
		return rc;
	}
	/* Intel needs these three pages below 4 GiB; AMD ignores them. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, VMM_TSS_ADDR) < 0)
		log_debug("KVM_SET_TSS_ADDR: %s", strerror(errno));
	{
		uint64_t idmap = VMM_IDENTITY_MAP_ADDR;

		if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
			log_debug("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		rc = -errno;
		fprintf(stderr, "vmm: KVM_CREATE_IRQCHIP: %s\n", strerror(-rc));
		return rc;
	}
	{
		struct kvm_pit_config pit = { .flags = 0 };

		if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
			rc = -errno;
			fprintf(stderr, "vmm: KVM_CREATE_PIT2: %s\n", strerror(-rc));
			return rc;
		}
	}
	rc = vmm_msi_init(vm);
	if (rc)
		return rc;
	for (unsigned i = 0; i < vm->mem.nslots; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i,
			.guest_phys_addr = vm->mem.slots[i].gpa,
			.memory_size = vm->mem.slots[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)(vm->mem.base + vm->mem.slots[i].offset),
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
			rc = -errno;
			fprintf(stderr, "vmm: KVM_SET_USER_MEMORY_REGION %u: %s\n", i,
				strerror(-rc));
			return rc;
		}
	}
	return 0;
}

void vmm_vm_destroy(struct vmm *vm)
{
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		if (vm->vcpus[i].run)
			munmap(vm->vcpus[i].run, vm->run_size);
		if (vm->vcpus[i].fd > 0)
			close(vm->vcpus[i].fd);
	}
	vmm_msi_fini(vm);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
}

void vmm_irq_line(struct vmm *vm, unsigned irq, int level)
{
	struct kvm_irq_level l = { .irq = irq, .level = level };

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
		log_debug("KVM_IRQ_LINE %u: %s", irq, strerror(errno));
}

static void kick_all(struct vmm *vm)
{
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vmm_vcpu *v = &vm->vcpus[i];

		if (!v->started)
			continue;
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(v->thread, SIGUSR1);
	}
}

static void wake_main(struct vmm *vm)
{
	uint64_t one = 1;

	if (vm->wake_fd >= 0 && write(vm->wake_fd, &one, sizeof(one)) < 0)
		log_debug("wake: %s", strerror(errno));
}

void vmm_request_exit(struct vmm *vm, enum vmm_exit_reason reason, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&vm->lock);
	if (vm->exit_reason == VMM_EXIT_NONE) {
		vm->exit_reason = reason;
		va_start(ap, fmt);
		vsnprintf(vm->exit_message, sizeof(vm->exit_message), fmt, ap);
		va_end(ap);
	}
	vm->state = VMM_STATE_STOPPING;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	kick_all(vm);
	wake_main(vm);
}

/* Returns false when the vCPU must leave its loop. */
static bool vcpu_checkpoint(struct vmm_vcpu *vcpu)
{
	struct vmm *vm = vcpu->vm;
	bool go;

	pthread_mutex_lock(&vm->lock);
	while (vm->pause_requested && vm->state != VMM_STATE_STOPPING) {
		if (!vcpu->paused) {
			vcpu->paused = true;
			pthread_cond_broadcast(&vm->cond);
		}
		pthread_cond_wait(&vm->cond, &vm->lock);
	}
	vcpu->paused = false;
	go = vm->state != VMM_STATE_STOPPING;
	pthread_mutex_unlock(&vm->lock);
	return go;
}

static void handle_system_event(struct vmm_vcpu *vcpu)
{
	struct vmm *vm = vcpu->vm;

	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vmm_request_exit(vm, VMM_EXIT_POWEROFF, "guest powered off");
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vmm_request_exit(vm, VMM_EXIT_REBOOT, "guest rebooted");
		break;
	case KVM_SYSTEM_EVENT_CRASH:
		vmm_request_exit(vm, VMM_EXIT_PANIC, "guest crashed");
		break;
	default:
		vmm_request_exit(vm, VMM_EXIT_KVM_ERROR, "unknown system event %u",
				 vcpu->run->system_event.type);
	}
}

static void *vcpu_thread(void *arg)
{
	struct vmm_vcpu *vcpu = arg;
	struct vmm *vm = vcpu->vm;
	struct kvm_run *run = vcpu->run;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
	pthread_setname_np(pthread_self(), name);
	while (vcpu_checkpoint(vcpu)) {
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				eat_kicks();
				continue;
			}
			vmm_request_exit(vm, VMM_EXIT_KVM_ERROR, "vcpu %u: KVM_RUN: %s",
					 vcpu->index, strerror(errno));
			vmm_vcpu_dump(vcpu);
			break;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			uint8_t *data = (uint8_t *)run + run->io.data_offset;

			for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
				vmm_bus_access(&vm->bus, VMM_PIO, run->io.port, data, run->io.size,
					       run->io.direction == KVM_EXIT_IO_OUT);
			break;
		}
		case KVM_EXIT_MMIO:
			vmm_bus_access(&vm->bus, VMM_MMIO, run->mmio.phys_addr, run->mmio.data,
				       run->mmio.len, run->mmio.is_write);
			break;
		case KVM_EXIT_SHUTDOWN:
			vmm_request_exit(vm, VMM_EXIT_TRIPLE_FAULT, "vcpu %u: triple fault",
					 vcpu->index);
			vmm_vcpu_dump(vcpu);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			vmm_request_exit(vm, VMM_EXIT_KVM_ERROR,
					 "vcpu %u: KVM internal error, suberror %u", vcpu->index,
					 run->internal.suberror);
			vmm_vcpu_dump(vcpu);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			vmm_request_exit(vm, VMM_EXIT_KVM_ERROR,
					 "vcpu %u: VM entry failed, reason 0x%llx", vcpu->index,
					 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			vmm_vcpu_dump(vcpu);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			handle_system_event(vcpu);
			break;
		case KVM_EXIT_HLT:
		case KVM_EXIT_INTR:
		case KVM_EXIT_IRQ_WINDOW_OPEN:
			break;
		default:
			vmm_request_exit(vm, VMM_EXIT_KVM_ERROR, "vcpu %u: unexpected exit %u",
					 vcpu->index, run->exit_reason);
			vmm_vcpu_dump(vcpu);
			break;
		}
	}
	pthread_mutex_lock(&vm->lock);
	vcpu->paused = true;	/* out of the guest for good */
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}

int vmm_vcpus_start(struct vmm *vm)
{
	int rc;

	pthread_mutex_lock(&vm->lock);
	vm->state = VMM_STATE_RUNNING;
	pthread_mutex_unlock(&vm->lock);
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		rc = pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread, &vm->vcpus[i]);
		if (rc) {
			vmm_request_exit(vm, VMM_EXIT_VMM_ERROR, "cannot start vcpu thread: %s",
					 strerror(rc));
			return -rc;
		}
		vm->vcpus[i].started = true;
	}
	return 0;
}

static void deadline(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

int vmm_vcpus_join(struct vmm *vm, int timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	vm->state = VMM_STATE_STOPPING;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	kick_all(vm);
	deadline(&ts, timeout_ms);
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		if (!vm->vcpus[i].started)
			continue;
		if (pthread_timedjoin_np(vm->vcpus[i].thread, NULL, &ts)) {
			rc = -ETIMEDOUT;
			continue;
		}
		vm->vcpus[i].started = false;
	}
	return rc;
}

int vmm_pause(struct vmm *vm, int timeout_ms)
{
	struct timespec ts;
	bool all;
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->state != VMM_STATE_RUNNING) {
		rc = vm->state == VMM_STATE_PAUSED ? 0 : -EINVAL;
		pthread_mutex_unlock(&vm->lock);
		return rc;
	}
	vm->pause_requested = true;
	pthread_mutex_unlock(&vm->lock);
	kick_all(vm);
	deadline(&ts, timeout_ms);
	pthread_mutex_lock(&vm->lock);
	for (;;) {
		all = true;
		for (unsigned i = 0; i < vm->nvcpus; i++)
			if (vm->vcpus[i].started && !vm->vcpus[i].paused)
				all = false;
		if (all || vm->state == VMM_STATE_STOPPING)
			break;
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) == ETIMEDOUT) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	if (!rc && vm->state == VMM_STATE_STOPPING)
		rc = -EINVAL;
	if (!rc)
		vm->state = VMM_STATE_PAUSED;
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

int vmm_resume(struct vmm *vm)
{
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->state == VMM_STATE_PAUSED || (vm->state == VMM_STATE_RUNNING && vm->pause_requested)) {
		vm->pause_requested = false;
		vm->state = VMM_STATE_RUNNING;
		pthread_cond_broadcast(&vm->cond);
	} else if (vm->state != VMM_STATE_RUNNING) {
		rc = -EINVAL;
	}
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

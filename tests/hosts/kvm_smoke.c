/*
 * kvm_smoke: the smallest proof that a test host's /dev/kvm runs guests.
 *
 * Creates a VM with one page of guest memory holding four real-mode
 * instructions (mov $0x10,%dx; mov $0x42,%al; out %al,(%dx); hlt), runs one
 * vCPU and checks that KVM reports an I/O exit writing 0x42 to port 0x10 and
 * then a HLT exit. Every step says what it did, so a failure names the step.
 * Exits 0 on success, 1 on any failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define GUEST_ADDR	0x1000
#define GUEST_SIZE	0x1000
#define SMOKE_PORT	0x10
#define SMOKE_VALUE	0x42

static const uint8_t guest_code[] = {
	0xba, SMOKE_PORT, 0x00,	/* mov $0x10, %dx */
	0xb0, SMOKE_VALUE,	/* mov $0x42, %al */
	0xee,			/* out %al, (%dx) */
	0xf4,			/* hlt */
};

struct smoke_vm {
	int kvm;
	int vm;
	int vcpu;
	void *mem;
	struct kvm_run *run;
	size_t run_size;
};

static int step_fail(const char *step)
{
	int err = -errno;

	fprintf(stderr, "kvm_smoke: FAILED at %s: %s\n", step, strerror(errno));
	return err ? err : -EIO;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int smoke_setup(struct smoke_vm *s)
{
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = GUEST_ADDR,
		.memory_size = GUEST_SIZE,
	};
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int api, mmap_size, err;

	s->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (s->kvm < 0)
		return step_fail("open /dev/kvm");
	api = ioctl(s->kvm, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		fprintf(stderr, "kvm_smoke: FAILED at KVM_GET_API_VERSION: got %d, want %d\n",
			api, KVM_API_VERSION);
		err = -EINVAL;
		goto close_kvm;
	}
	s->vm = ioctl(s->kvm, KVM_CREATE_VM, 0UL);
	if (s->vm < 0) {
		err = step_fail("KVM_CREATE_VM");
		goto close_kvm;
	}
	s->mem = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->mem == MAP_FAILED) {
		err = step_fail("mmap guest memory");
		goto close_vm;
	}
	memcpy(s->mem, guest_code, sizeof(guest_code));
	region.userspace_addr = (uintptr_t)s->mem;
	if (ioctl(s->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		err = step_fail("KVM_SET_USER_MEMORY_REGION");
		goto unmap_mem;
	}
	s->vcpu = ioctl(s->vm, KVM_CREATE_VCPU, 0UL);
	if (s->vcpu < 0) {
		err = step_fail("KVM_CREATE_VCPU");
		goto unmap_mem;
	}
	mmap_size = ioctl(s->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run)) {
		err = step_fail("KVM_GET_VCPU_MMAP_SIZE");
		goto close_vcpu;
	}
	s->run_size = (size_t)mmap_size;
	s->run = mmap(NULL, s->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->vcpu, 0);
	if (s->run == MAP_FAILED) {
		err = step_fail("mmap kvm_run");
		goto close_vcpu;
	}
	if (ioctl(s->vcpu, KVM_GET_SREGS, &sregs) < 0) {
		err = step_fail("KVM_GET_SREGS");
		goto unmap_run;
	}
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(s->vcpu, KVM_SET_SREGS, &sregs) < 0) {
		err = step_fail("KVM_SET_SREGS");
		goto unmap_run;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rip = GUEST_ADDR;
	regs.rflags = 0x2;
	if (ioctl(s->vcpu, KVM_SET_REGS, &regs) < 0) {
		err = step_fail("KVM_SET_REGS");
		goto unmap_run;
	}
	return 0;

unmap_run:
	munmap(s->run, s->run_size);
close_vcpu:
	close(s->vcpu);
unmap_mem:
	munmap(s->mem, GUEST_SIZE);
close_vm:
	close(s->vm);
close_kvm:
	close(s->kvm);
	return err;
}

static void smoke_teardown(struct smoke_vm *s)
{
	munmap(s->run, s->run_size);
	close(s->vcpu);
	munmap(s->mem, GUEST_SIZE);
	close(s->vm);
	close(s->kvm);
}

static int smoke_run(struct smoke_vm *s)
{
	struct kvm_run *run = s->run;
	uint8_t value;

	if (ioctl(s->vcpu, KVM_RUN, 0) < 0)
		return step_fail("first KVM_RUN");
	if (run->exit_reason != KVM_EXIT_IO) {
		fprintf(stderr, "kvm_smoke: FAILED at first exit: reason %u, want KVM_EXIT_IO (%u)"
			" (hardware_exit_reason 0x%llx)\n", run->exit_reason, KVM_EXIT_IO,
			(unsigned long long)run->hw.hardware_exit_reason);
		return -EIO;
	}
	value = *((uint8_t *)run + run->io.data_offset);
	if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != SMOKE_PORT ||
	    run->io.size != 1 || run->io.count != 1 || value != SMOKE_VALUE) {
		fprintf(stderr, "kvm_smoke: FAILED at I/O exit: dir %u port 0x%x size %u"
			" count %u value 0x%x, want out 0x%x size 1 count 1 value 0x%x\n",
			run->io.direction, run->io.port, run->io.size, run->io.count,
			value, SMOKE_PORT, SMOKE_VALUE);
		return -EIO;
	}
	printf("kvm_smoke: I/O exit: out 0x%x to port 0x%x\n", value, run->io.port);
	if (ioctl(s->vcpu, KVM_RUN, 0) < 0)
		return step_fail("second KVM_RUN");
	if (run->exit_reason != KVM_EXIT_HLT) {
		fprintf(stderr, "kvm_smoke: FAILED at second exit: reason %u, want KVM_EXIT_HLT (%u)\n",
			run->exit_reason, KVM_EXIT_HLT);
		return -EIO;
	}
	printf("kvm_smoke: HLT exit\n");
	return 0;
}

int main(void)
{
	struct smoke_vm s;
	double t0 = now_ms();
	int err;

	err = smoke_setup(&s);
	if (err)
		return 1;
	err = smoke_run(&s);
	smoke_teardown(&s);
	if (err)
		return 1;
	printf("kvm_smoke: ok (%.1f ms from open to HLT)\n", now_ms() - t0);
	return 0;
}

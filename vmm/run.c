/*
 * `vmm run`: from a parsed configuration to an exit status. Order matters:
 * every signal is blocked before the first thread exists (so every thread
 * inherits the full mask; the main loop takes SIGINT/SIGTERM/SIGHUP through a
 * signalfd, vCPUs take SIGUSR1 only inside KVM_RUN); input is checked before
 * anything is created; guest RAM (and its cache handler) exists before the
 * kernel is copied into it; the vCPUs are joined before guest RAM goes away,
 * and when one cannot be joined (blocked on a page the memory servers can no
 * longer serve) the region is left registered and the process exits, which
 * tears everything down at once.
 *
 * Exit statuses: 0 poweroff, reboot or API stop; 2 guest panic; 3 triple
 * fault; 4 KVM error; 5 memory error; 1 bad input and other errors; 128+N on
 * signal N.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ept/ept.h"
#include "vmm/vmm.h"

static struct termios saved_tty;
static bool tty_raw;

static void console_raw(void)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty) < 0)
		return;
	t = saved_tty;
	/* Raw input, but keep ISIG: Ctrl-C stops the VM, not a guest program. */
	t.c_iflag &= ~(unsigned)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(unsigned)(ECHO | ECHONL | ICANON | IEXTEN);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
		tty_raw = true;
}

static void console_restore(void)
{
	if (tty_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
	tty_raw = false;
}

static void on_ept_fatal(void *ctx, const char *message)
{
	vmm_request_exit(ctx, VMM_EXIT_MEMORY, "guest memory cannot be served: %s", message);
}

static int exit_status(enum vmm_exit_reason r, int sig)
{
	switch (r) {
	case VMM_EXIT_POWEROFF:
	case VMM_EXIT_REBOOT:
		return 0;
	case VMM_EXIT_STOPPED:
		return sig ? 128 + sig : 0;
	case VMM_EXIT_PANIC: return 2;
	case VMM_EXIT_TRIPLE_FAULT: return 3;
	case VMM_EXIT_KVM_ERROR: return 4;
	case VMM_EXIT_MEMORY: return 5;
	default: return 1;
	}
}

static void summary(struct vmm *vm)
{
	const struct vmm_config *cfg = vm->cfg;
	double secs = (double)(now_ns() - vm->start_ns) / 1e9;
	struct ept_stats s;

	if (!vm->mem.ept) {
		fprintf(stderr, "vmm: %s: %s after %.2f s; vcpus %u, mem %llu MiB local "
			"(--no-remote: no cache)\n", cfg->name, vm->exit_message, secs,
			vm->nvcpus, (unsigned long long)(cfg->mem_size >> 20));
		return;
	}
	ept_get_stats(vm->mem.ept, &s);
	fprintf(stderr, "vmm: %s: %s after %.2f s; vcpus %u, mem %llu MiB, cache %llu MiB; "
		"faults %llu (zero-fill %llu, remote %llu), pages fetched %llu, written back %llu, "
		"skipped clean %llu, skipped zero %llu, prefetched %llu, evictions %llu, "
		"resident peak %llu pages (%.1f MiB, capacity %llu)\n",
		cfg->name, vm->exit_message, secs, vm->nvcpus,
		(unsigned long long)(cfg->mem_size >> 20),
		(unsigned long long)(cfg->cache_size >> 20),
		(unsigned long long)(s.faults_missing + s.faults_wp),
		(unsigned long long)s.faults_zero_fill, (unsigned long long)s.faults_remote,
		(unsigned long long)s.pages_fetched, (unsigned long long)s.pages_written_back,
		(unsigned long long)s.skipped_clean, (unsigned long long)s.skipped_zero,
		(unsigned long long)s.prefetched, (unsigned long long)s.evictions,
		(unsigned long long)s.resident_peak,
		(double)s.resident_peak * EPT_PAGE_SIZE / (1 << 20),
		(unsigned long long)s.capacity_pages);
}

/* The main loop: console input, signals, exit requests. Returns the signal
 * number that stopped the VM, or 0. */
static int main_loop(struct vmm *vm, int sigfd)
{
	bool in_open = true;
	uint8_t buf[1024];
	int sig = 0;

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = vm->wake_fd, .events = POLLIN },
			{ .fd = sigfd, .events = POLLIN },
			{ .fd = STDIN_FILENO, .events = POLLIN },
		};
		size_t room = in_open ? vmm_console_room(vm) : 0;
		nfds_t n = room ? 3 : 2;
		enum vmm_exit_reason r;

		pthread_mutex_lock(&vm->lock);
		r = vm->exit_reason;
		pthread_mutex_unlock(&vm->lock);
		if (r != VMM_EXIT_NONE)
			return sig;
		if (poll(p, n, in_open && !room ? 50 : -1) < 0) {
			if (errno == EINTR)
				continue;
			vmm_request_exit(vm, VMM_EXIT_VMM_ERROR, "poll: %s", strerror(errno));
			continue;
		}
		if (p[0].revents) {
			uint64_t v;

			if (read(vm->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_debug("wake read: %s", strerror(errno));
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
				sig = (int)si.ssi_signo;
				vmm_request_exit(vm, VMM_EXIT_STOPPED, "stopped by %s",
						 strsignal(sig));
			}
		}
		if (n == 3 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t got = read(STDIN_FILENO, buf, MIN(room, sizeof(buf)));

			if (got > 0)
				vmm_console_input(vm, buf, (size_t)got);
			else if (got == 0 || (errno != EINTR && errno != EAGAIN))
				in_open = false;	/* end of input: keep running */
		}
	}
}

int vmm_run(const struct vmm_config *cfg_in)
{
	struct vmm_config cfg = *cfg_in;
	struct vmm_api *api = NULL;
	struct vmm *vm;
	sigset_t all, stop;
	char name[64];
	uint64_t entry;
	int rc, sigfd = -1, sig = 0, status = 1;
	bool stuck = false;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	if (!cfg.name) {
		snprintf(name, sizeof(name), "vm-%d", (int)getpid());
		cfg.name = name;
	}
	if (vmm_boot_check(&cfg))
		return 1;

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return 1;
	vm->cfg = &cfg;
	vm->nvcpus = cfg.vcpus;
	vm->kvm_fd = vm->vm_fd = -1;
	vm->console_out = STDOUT_FILENO;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	sigfd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
	if (vm->wake_fd < 0 || sigfd < 0 || vmm_bus_init(&vm->bus)) {
		fprintf(stderr, "vmm: out of file descriptors\n");
		goto out_free;
	}
	vm->start_ns = now_ns();
	if (vmm_mem_create(&cfg, on_ept_fatal, vm, &vm->mem))
		goto out_free;
	if (vmm_vm_create(vm) || vmm_devices_init(vm) || vmm_boot_load(vm, &entry) ||
	    vmm_vcpus_create(vm, entry))
		goto out_vm;
	if (cfg.api_sock && vmm_api_start(vm, cfg.api_sock, &api))
		goto out_vm;
	log_info("%s: booting %s with %u vcpus, %llu MiB", cfg.name, cfg.kernel, vm->nvcpus,
		 (unsigned long long)(cfg.mem_size >> 20));
	console_raw();
	if (vmm_vcpus_start(vm) == 0)
		sig = main_loop(vm, sigfd);
	if (vmm_vcpus_join(vm, vm->exit_reason == VMM_EXIT_MEMORY ? 2000 : 10000)) {
		fprintf(stderr, "vmm: %s: a vCPU stays blocked on guest memory; exiting without "
			"stopping it\n", cfg.name);
		stuck = true;
	}
	console_restore();
	if (api)
		vmm_api_stop(api);
	status = exit_status(vm->exit_reason, sig);
	if (status && vm->exit_reason != VMM_EXIT_STOPPED)
		fprintf(stderr, "vmm: %s: %s\n", cfg.name, vm->exit_message);
	summary(vm);
	if (stuck) {
		fflush(NULL);
		_exit(status);	/* never unregister guest RAM under a running vCPU */
	}
out_vm:
	vmm_devices_fini(vm);
	if (vm->device_stuck) {
		fprintf(stderr, "vmm: %s: a device thread stays blocked on guest memory; exiting "
			"without stopping it\n", cfg.name);
		fflush(NULL);
		_exit(status);	/* as for a stuck vCPU: guest RAM stays registered */
	}
	vmm_vm_destroy(vm);
	vmm_mem_destroy(&vm->mem);
out_free:
	rc = status;
	if (sigfd >= 0)
		close(sigfd);
	if (vm->wake_fd >= 0)
		close(vm->wake_fd);
	vmm_bus_fini(&vm->bus);
	free(vm);
	return rc;
}

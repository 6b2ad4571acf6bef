/*
 * vmm: the legato KVM virtual machine monitor, as a library (libvmm.a) under
 * the thin vmm/main.c. One process runs one VM. This header is the VMM's
 * internal map: the configuration parsed from the command line, the VM object
 * shared by every thread, guest memory, the port/MMIO bus, devices, boot and
 * ACPI builders (pure functions over buffers, unit-tested), vCPUs and the API.
 *
 * Threads: the main thread builds the VM, loads the guest and then runs an
 * event loop (signals through a signalfd, console input, exit requests); one
 * thread per vCPU; the API thread (libmicrohttpd) when --api-sock is given;
 * ept's handler thread when guest RAM is the virtual cache. Every thread
 * blocks every signal; vCPU threads let SIGUSR1 through only inside KVM_RUN
 * (KVM_SET_SIGNAL_MASK), which is how they are kicked out of the guest. The
 * API thread never touches guest memory.
 */
#ifndef LEGATO_VMM_VMM_H
#define LEGATO_VMM_VMM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_key;
struct ept;
struct kvm_run;

#define VMM_MAX_VCPUS 64
#define VMM_MAX_MEMSERVERS 16

/* Guest-physical layout (docs/vmm.md). */
#define VMM_GDT_ADDR 0x500ull
#define VMM_BOOT_PARAMS_ADDR 0x7000ull
#define VMM_BOOT_STACK_ADDR 0x8ff0ull
#define VMM_PML4_ADDR 0x9000ull		/* + PDPT 0xa000, 4 PDs 0xb000..0xefff */
#define VMM_CMDLINE_ADDR 0x20000ull
#define VMM_CMDLINE_MAX 0x10000u
#define VMM_LOW_RAM_END 0x9fc00ull	/* usable RAM below 640 KiB */
#define VMM_ACPI_ADDR 0xe0000ull	/* RSDP and tables, e820-reserved */
#define VMM_ACPI_SIZE 0x20000u
#define VMM_HIGH_RAM_START 0x100000ull
#define VMM_MMIO_HOLE_START 0xc0000000ull	/* 3 GiB .. 4 GiB: no RAM */
#define VMM_MMIO_HOLE_END 0x100000000ull
#define VMM_PCI_MMIO_START 0xc0000000ull	/* BARs are placed from here */
#define VMM_IOAPIC_ADDR 0xfec00000ull
#define VMM_LAPIC_ADDR 0xfee00000ull
#define VMM_TSS_ADDR 0xfffbd000ull		/* Intel only; harmless elsewhere */
#define VMM_IDENTITY_MAP_ADDR 0xfffbc000ull

/* ACPI fixed hardware (I/O ports) and the reset register. */
#define VMM_PM1A_EVT_PORT 0x600
#define VMM_PM1A_CNT_PORT 0x604
#define VMM_PM_TMR_PORT 0x608
#define VMM_RESET_PORT 0x60c
#define VMM_RESET_VALUE 0x01
#define VMM_SCI_IRQ 9

enum vmm_mode { VMM_MODE_NO_REMOTE, VMM_MODE_LOCAL, VMM_MODE_REMOTE };

/* Everything `vmm run` is told. Strings point into argv. */
#define VMM_MAX_DISKS 8
#define VMM_MAX_NETS 4

struct vmm_config {
	enum vmm_mode mode;
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint64_t mem_size;
	uint64_t cache_size;		/* 0: not given */
	unsigned vcpus;
	const char *memservers[VMM_MAX_MEMSERVERS];
	unsigned nmemservers;
	const char *policy;
	bool prefetch;
	const char *api_sock;
	const char *name;
	const char *key_file;
	const char *memserver_bin;	/* --local: the daemon to spawn */
	struct vmm_disk_config {
		const char *path;
		bool ro;
	} disks[VMM_MAX_DISKS];		/* --disk PATH[,ro]: virtio-blk */
	unsigned ndisks;
	struct vmm_net_config {
		const char *tap;	/* TAP interface name (created if missing) */
		uint8_t mac[6];
		bool mac_set;		/* else one is derived from the name */
	} nets[VMM_MAX_NETS];		/* --net tap=NAME[,mac=MAC]: virtio-net */
	unsigned nnets;
};

/*
 * Parses `vmm run` options (argv[0] is "run"). Prints --help and returns 1
 * when asked; on bad input prints one line "vmm: ..." and returns -EINVAL.
 * Returns 0 when cfg is complete and consistent (sizes checked against each
 * other; the kernel file is checked later, when loaded).
 */
int vmm_cli_parse_run(int argc, char **argv, struct vmm_config *cfg);
void vmm_cli_usage(void);
void vmm_cli_run_usage(void);

/* ------------------------------------------------------------ guest memory */

/* One KVM memory slot: guest-physical [gpa, gpa + size) is host memory at
 * base + offset. */
struct vmm_slot {
	uint64_t gpa;
	uint64_t size;
	uint64_t offset;
};

struct vmm_mem {
	enum vmm_mode mode;
	uint8_t *base;			/* guest RAM: mem_size bytes */
	uint64_t size;
	struct vmm_slot slots[2];
	unsigned nslots;
	struct ept *ept;		/* NULL with --no-remote */
	const struct auth_key *key;	/* for the memory servers, or NULL */
	int spawned_pid;		/* --local: the private memory server */
	char spawn_dir[64];
	/* Regions this VMM created (deleted at exit). */
	unsigned nregions;
	char *region_urls[VMM_MAX_MEMSERVERS];
	uint64_t region_ids[VMM_MAX_MEMSERVERS];
	uint8_t region_tokens[VMM_MAX_MEMSERVERS][32];
};

/* Splits [0, mem_size) into at most two slots around the MMIO hole below
 * 4 GiB. Returns the number of slots. */
unsigned vmm_mem_layout(uint64_t mem_size, struct vmm_slot slots[2]);

/*
 * Creates guest RAM for cfg->mode: plain anonymous memory, or an ept region
 * on the given (or a spawned) memory servers, created here with the client
 * library. on_fatal is handed to ept. Returns 0 or -errno (logged, one line).
 */
int vmm_mem_create(const struct vmm_config *cfg, void (*on_fatal)(void *, const char *),
		   void *fatal_ctx, struct vmm_mem *mem);
/* Call only once no thread can touch guest memory. */
void vmm_mem_destroy(struct vmm_mem *mem);

/* Host address of guest-physical [gpa, gpa + len), or NULL when the range is
 * not RAM. */
void *vmm_gpa(const struct vmm_mem *mem, uint64_t gpa, uint64_t len);

/* --------------------------------------------------------- the I/O bus */

enum vmm_space { VMM_PIO, VMM_MMIO };

/* A handler is called from vCPU threads; it serialises itself. data holds
 * len (1, 2, 4 or 8) bytes, little-endian; offset is from the range base. */
typedef void (*vmm_io_fn)(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
			  bool is_write);

struct vmm_io_range {
	enum vmm_space space;
	uint64_t base;
	uint64_t len;
	vmm_io_fn fn;
	void *opaque;
	const char *name;
	bool enabled;
};

#define VMM_IO_MAX_RANGES 32

struct vmm_bus {
	pthread_rwlock_t lock;
	struct vmm_io_range ranges[VMM_IO_MAX_RANGES];
	unsigned nranges;
	uint8_t pio_logged[65536 / 8];	/* unknown ports already logged */
	unsigned mmio_logged;
};

int vmm_bus_init(struct vmm_bus *bus);
void vmm_bus_fini(struct vmm_bus *bus);
/* Returns a handle (>= 0) or -ENOSPC / -EEXIST (overlap). */
int vmm_bus_register(struct vmm_bus *bus, enum vmm_space space, uint64_t base, uint64_t len,
		     vmm_io_fn fn, void *opaque, const char *name);
/* Moves or (en|dis)ables a registered range (PCI BAR programming). */
void vmm_bus_move(struct vmm_bus *bus, int handle, uint64_t base, bool enabled);
/* Dispatches one access; unknown reads return all-ones, unknown writes are
 * dropped, each logged once at debug level. */
void vmm_bus_access(struct vmm_bus *bus, enum vmm_space space, uint64_t addr, uint8_t *data,
		    unsigned len, bool is_write);

/* ------------------------------------------------------------------ VM */

enum vmm_exit_reason {
	VMM_EXIT_NONE,
	VMM_EXIT_POWEROFF,
	VMM_EXIT_REBOOT,
	VMM_EXIT_STOPPED,	/* API /vm/stop or a signal */
	VMM_EXIT_PANIC,
	VMM_EXIT_TRIPLE_FAULT,
	VMM_EXIT_KVM_ERROR,
	VMM_EXIT_MEMORY,	/* ept fatal */
	VMM_EXIT_VMM_ERROR,
};

enum vmm_state { VMM_STATE_CREATED, VMM_STATE_RUNNING, VMM_STATE_PAUSED, VMM_STATE_STOPPING };

struct vmm_vcpu {
	struct vmm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	bool paused;		/* acknowledged a pause */
};

struct vmm_pci;
struct vmm_msi;

struct vmm {
	const struct vmm_config *cfg;
	int kvm_fd;
	int vm_fd;
	size_t run_size;
	struct vmm_mem mem;
	struct vmm_bus bus;
	struct vmm_pci *pci;
	struct vmm_msi *msi;	/* GSI routing for MSI (vmm/msi.c) */
	void *console;		/* the UART that takes console input */
	void *dev_state[16];
	unsigned ndev;
	unsigned nvcpus;
	struct vmm_vcpu vcpus[VMM_MAX_VCPUS];
	uint64_t start_ns;

	pthread_mutex_t lock;	/* state, pause, exit */
	pthread_cond_t cond;
	enum vmm_state state;
	bool pause_requested;
	enum vmm_exit_reason exit_reason;
	char exit_message[512];
	int wake_fd;		/* eventfd: the main loop has something to do */
	int console_out;	/* fd the UART writes to */
	/* A device's init failed and it already printed the one-line error
	 * (bad --disk or --net): vmm_devices_init adds nothing. */
	bool init_error_reported;
	/* A device's back-end thread did not stop at teardown (blocked on a
	 * guest page nobody serves): guest RAM must not be unregistered under
	 * it (it would read zeros and could write them to a disk). */
	bool device_stuck;
};

/* Opens /dev/kvm, creates the VM (irqchip, PIT, TSS) and its memory slots
 * over vm->mem (already created). Returns 0 or -errno (logged). */
int vmm_vm_create(struct vmm *vm);
void vmm_vm_destroy(struct vmm *vm);
/* Creates the vCPUs: CPUID, MSRs; vCPU 0 gets the 64-bit boot state with
 * rip = entry, rsi = boot params. Returns 0 or -errno. */
int vmm_vcpus_create(struct vmm *vm, uint64_t entry);
int vmm_vcpus_start(struct vmm *vm);
/* Kicks every vCPU out of the guest and joins its thread (bounded by
 * timeout_ms; returns -ETIMEDOUT when one stays blocked, e.g. on a fault the
 * memory servers can no longer serve). */
int vmm_vcpus_join(struct vmm *vm, int timeout_ms);
/* Pause: returns once every vCPU is outside the guest (waits for outstanding
 * faults), or -ETIMEDOUT. Resume undoes it. Both return -EINVAL in a state
 * where they do not apply. */
int vmm_pause(struct vmm *vm, int timeout_ms);
int vmm_resume(struct vmm *vm);
/* Records why the VM ends (the first reason wins), stops the vCPUs and wakes
 * the main loop. Safe from any thread. */
void vmm_request_exit(struct vmm *vm, enum vmm_exit_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Writes one line with the registers of vcpu to stderr. */
void vmm_vcpu_dump(struct vmm_vcpu *vcpu);
/* Asserts (level 1) or deasserts an ISA/IOAPIC interrupt line. */
void vmm_irq_line(struct vmm *vm, unsigned irq, int level);
/*
 * vmm/msi.c: interrupts and notifications that bypass the vCPU threads.
 * vmm_msi_init sets KVM's routing table to its defaults (after the irqchip
 * exists); vmm_msi_route_add returns a new GSI (>= 24) for one MSI vector,
 * not delivered until vmm_msi_route_set programs its address and data (the
 * driver's MSI-X table entry). vmm_irqfd ties an eventfd to a GSI: a write to
 * the eventfd injects the route. vmm_ioeventfd makes a guest write of len
 * bytes (0: any length) to MMIO addr signal efd inside KVM. All return 0 (a
 * GSI for route_add) or -errno, logged; thread-safe.
 */
int vmm_msi_init(struct vmm *vm);
void vmm_msi_fini(struct vmm *vm);
int vmm_msi_route_add(struct vmm *vm);
int vmm_msi_route_set(struct vmm *vm, unsigned gsi, uint64_t addr, uint32_t data);
int vmm_irqfd(struct vmm *vm, unsigned gsi, int efd, bool assign);
int vmm_ioeventfd(struct vmm *vm, uint64_t addr, unsigned len, int efd, bool assign);
const char *vmm_state_name(enum vmm_state s);
const char *vmm_exit_name(enum vmm_exit_reason r);

/* CPUID fix-ups applied to KVM's supported list for vCPU index of n
 * (pure; unit-tested): hypervisor bit, no SVM/VMX, APIC IDs, topology. */
struct kvm_cpuid2;
void vmm_cpuid_fixup(struct kvm_cpuid2 *cpuid, unsigned index, unsigned n);

/* ------------------------------------------------------------- boot */

struct vmm_bzimage {
	uint16_t version;		/* boot protocol */
	uint8_t setup_sects;
	uint32_t setup_size;		/* bytes before the protected-mode kernel */
	uint64_t kernel_offset;		/* in the file */
	uint64_t kernel_size;
	uint64_t load_addr;		/* where we put it */
	uint64_t init_size;
	uint32_t cmdline_size;		/* max length, without the NUL */
	uint32_t initrd_addr_max;
	uint16_t xloadflags;
};

/* Checks a bzImage's setup header (the whole file is in img). Returns 0,
 * or -ENOEXEC with a reason in why ("not a bzImage: ..."). */
int vmm_bzimage_parse(const uint8_t *img, size_t len, struct vmm_bzimage *out, char *why,
		      size_t why_len);
/* The least guest RAM this kernel can boot with (load address + init_size,
 * plus the initrd). */
uint64_t vmm_boot_min_mem(const struct vmm_bzimage *bz, uint64_t initrd_size);

struct vmm_e820 {
	uint64_t addr;
	uint64_t size;
	uint32_t type;		/* 1 RAM, 2 reserved, 3 ACPI */
};
/* The guest's memory map for mem_size bytes of RAM. Returns the entry count. */
unsigned vmm_e820_build(uint64_t mem_size, struct vmm_e820 *out, unsigned max);

/* Fills the 4 KiB zero page bp: the image's setup header, loader fields,
 * command line pointer, initrd, e820, RSDP. */
void vmm_boot_params_build(uint8_t *bp, const uint8_t *img, const struct vmm_bzimage *bz,
			   uint64_t cmdline_gpa, uint64_t initrd_gpa, uint64_t initrd_size,
			   uint64_t mem_size, uint64_t rsdp_gpa);

/* Checks the kernel (a bzImage) and initrd (readable) against cfg (--mem
 * large enough) before anything is created. One-line errors; 0 or -errno. */
int vmm_boot_check(const struct vmm_config *cfg);

/* Reads the kernel and initrd, checks them against cfg, and writes kernel,
 * initrd, command line, zero page, page tables, GDT and ACPI into guest RAM.
 * Sets *entry (64-bit entry point). Errors are one line on stderr; returns
 * 0 or -errno. */
int vmm_boot_load(struct vmm *vm, uint64_t *entry);

/* ------------------------------------------------------------- ACPI */

/* Builds RSDP, XSDT, FADT, FACS, DSDT and MADT for ncpus into buf (size at
 * least VMM_ACPI_SIZE), as they will sit at guest-physical gpa. Returns the
 * bytes used, or -ENOSPC. The RSDP is at offset 0. */
int vmm_acpi_build(uint8_t *buf, size_t size, uint64_t gpa, unsigned ncpus);
/* The byte that makes len bytes sum to zero. */
uint8_t vmm_acpi_checksum(const uint8_t *p, size_t len);

/* ---------------------------------------------------------- devices */

struct vmm_device_ops {
	const char *name;
	/* Creates the device's state and registers its ports/MMIO. */
	int (*init)(struct vmm *vm, void **state);
	void (*fini)(void *state);
};

/* Every device, in creation order (vmm/devices/devices.c). */
extern const struct vmm_device_ops *const vmm_devices[];

int vmm_devices_init(struct vmm *vm);
void vmm_devices_fini(struct vmm *vm);
/* Console input: queue bytes for the UART (any thread). Returns how many
 * were taken (the rest: try again later). */
size_t vmm_console_input(struct vmm *vm, const uint8_t *buf, size_t len);
/* Room left in the console input queue. */
size_t vmm_console_room(struct vmm *vm);

/* ---------------------------------------------------------------- API */

struct vmm_api;
int vmm_api_start(struct vmm *vm, const char *path, struct vmm_api **out);
void vmm_api_stop(struct vmm_api *api);

/* `vmm run` from parsed configuration to exit status. */
int vmm_run(const struct vmm_config *cfg);
/* The whole CLI: vmm_main(argc, argv) is vmm/main.c's main. */
int vmm_main(int argc, char **argv);

#endif

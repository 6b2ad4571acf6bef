/*
 * Linux x86 64-bit boot protocol (Documentation/arch/x86/boot.rst) for a stock
 * bzImage: setup header checks, the guest memory map (e820), the zero page
 * (boot_params), and loading kernel, initrd, command line, identity page
 * tables, GDT and ACPI tables into guest RAM. The pure builders
 * (vmm_bzimage_parse, vmm_e820_build, vmm_boot_params_build) are unit-tested.
 *
 * Every write to guest RAM is an ordinary store into the guest RAM mapping, so
 * with the virtual cache it faults through ept like any guest access; files are
 * read into private buffers first, never read(2) straight into guest RAM.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "vmm/vmm.h"

/* Setup header fields (offsets in the image and in boot_params alike). */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP 0x200
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_CODE32_START 0x214
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE 0x234
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
/* boot_params outside the header. */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128

#define LOADED_HIGH 0x01
#define CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

int vmm_bzimage_parse(const uint8_t *img, size_t len, struct vmm_bzimage *out, char *why,
		      size_t why_len)
{
	uint64_t pref, align;

	memset(out, 0, sizeof(*out));
	if (len < 0x1000 || get16(img + HDR_BOOT_FLAG) != 0xaa55 ||
	    memcmp(img + HDR_MAGIC, "HdrS", 4)) {
		snprintf(why, why_len, "not a bzImage (no Linux setup header)");
		return -ENOEXEC;
	}
	out->version = get16(img + HDR_VERSION);
	if (out->version < 0x020c) {
		snprintf(why, why_len, "boot protocol %u.%02u is too old (2.12 needed)",
			 out->version >> 8, out->version & 0xff);
		return -ENOEXEC;
	}
	if (!(img[HDR_LOADFLAGS] & LOADED_HIGH)) {
		snprintf(why, why_len, "not a bzImage (zImage loads low)");
		return -ENOEXEC;
	}
	out->xloadflags = get16(img + HDR_XLOADFLAGS);
	if (!(out->xloadflags & XLF_KERNEL_64)) {
		snprintf(why, why_len, "kernel has no 64-bit entry point");
		return -ENOEXEC;
	}
	out->setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	out->setup_size = (out->setup_sects + 1u) * 512u;
	if (out->setup_size >= len) {
		snprintf(why, why_len, "truncated bzImage");
		return -ENOEXEC;
	}
	out->kernel_offset = out->setup_size;
	out->kernel_size = len - out->setup_size;
	out->init_size = get32(img + HDR_INIT_SIZE);
	out->cmdline_size = get32(img + HDR_CMDLINE_SIZE);
	out->initrd_addr_max = get32(img + HDR_INITRD_ADDR_MAX);
	pref = get64(img + HDR_PREF_ADDRESS);
	align = get32(img + HDR_KERNEL_ALIGNMENT);
	if (!img[HDR_RELOCATABLE] || pref < VMM_HIGH_RAM_START || (align && pref % align))
		pref = pref >= VMM_HIGH_RAM_START ? pref : 0x1000000;
	out->load_addr = pref;
	if (out->init_size < out->kernel_size)
		out->init_size = out->kernel_size;
	return 0;
}

uint64_t vmm_boot_min_mem(const struct vmm_bzimage *bz, uint64_t initrd_size)
{
	return bz->load_addr + ((bz->init_size + 0xfff) & ~0xfffull) +
	       ((initrd_size + 0xfff) & ~0xfffull);
}

unsigned vmm_mem_layout(uint64_t mem_size, struct vmm_slot slots[2])
{
	uint64_t low = MIN(mem_size, VMM_MMIO_HOLE_START);

	slots[0] = (struct vmm_slot){ .gpa = 0, .size = low, .offset = 0 };
	if (mem_size <= VMM_MMIO_HOLE_START)
		return 1;
	slots[1] = (struct vmm_slot){ .gpa = VMM_MMIO_HOLE_END, .size = mem_size - low,
				      .offset = low };
	return 2;
}

unsigned vmm_e820_build(uint64_t mem_size, struct vmm_e820 *out, unsigned max)
{
	struct vmm_slot slots[2];
	unsigned n = 0, nslots = vmm_mem_layout(mem_size, slots);
	struct vmm_e820 all[5] = {
		{ 0, VMM_LOW_RAM_END, 1 },
		{ VMM_LOW_RAM_END, 0xa0000 - VMM_LOW_RAM_END, 2 },
		{ VMM_ACPI_ADDR, VMM_HIGH_RAM_START - VMM_ACPI_ADDR, 2 },
		{ VMM_HIGH_RAM_START, slots[0].size - VMM_HIGH_RAM_START, 1 },
		{ 0, 0, 1 },
	};

	if (nslots == 2)
		all[4] = (struct vmm_e820){ slots[1].gpa, slots[1].size, 1 };
	for (unsigned i = 0; i < ARRAY_SIZE(all) && n < max; i++)
		if (all[i].size)
			out[n++] = all[i];
	return n;
}

void vmm_boot_params_build(uint8_t *bp, const uint8_t *img, const struct vmm_bzimage *bz,
			   uint64_t cmdline_gpa, uint64_t initrd_gpa, uint64_t initrd_size,
			   uint64_t mem_size, uint64_t rsdp_gpa)
{
	struct vmm_e820 e820[BP_E820_MAX];
	unsigned hdr_end = HDR_MAGIC + img[HDR_JUMP + 1], n;

	memset(bp, 0, 4096);
	memcpy(bp + HDR_SETUP_SECTS, img + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
	bp[HDR_TYPE_OF_LOADER] = 0xff;	/* undefined loader */
	bp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	put16(bp + HDR_HEAP_END_PTR, 0xfe00);
	put32(bp + HDR_CODE32_START, (uint32_t)bz->load_addr);
	put32(bp + HDR_CMD_LINE_PTR, (uint32_t)cmdline_gpa);
	put32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(cmdline_gpa >> 32));
	put32(bp + HDR_RAMDISK_IMAGE, (uint32_t)initrd_gpa);
	put32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd_gpa >> 32));
	put32(bp + HDR_RAMDISK_SIZE, (uint32_t)initrd_size);
	put32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(initrd_size >> 32));
	put64(bp + BP_ACPI_RSDP_ADDR, rsdp_gpa);
	n = vmm_e820_build(mem_size, e820, BP_E820_MAX);
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = bp + BP_E820_TABLE + 20 * i;

		put64(e, e820[i].addr);
		put64(e + 8, e820[i].size);
		put32(e + 16, e820[i].type);
	}
}

/* Maps a whole file read-only; one-line error on failure. Mapped, not read
 * into the heap: the images are needed only while they are copied into guest
 * RAM, and a freed 10 MiB heap buffer would stay in the VMM's RSS (glibc
 * raises its mmap and trim thresholds after the first large free). */
static int load_file(const char *what, const char *path, uint8_t **buf, size_t *len)
{
	static uint8_t empty[1];
	struct stat st;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		fprintf(stderr, "vmm: cannot open %s '%s': %s\n", what, path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "vmm: %s '%s' is not a regular file\n", what, path);
		close(fd);
		return -EINVAL;
	}
	*len = (size_t)st.st_size;
	*buf = empty;
	if (*len) {
		void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);

		if (p == MAP_FAILED) {
			rc = -errno;
			fprintf(stderr, "vmm: cannot read %s '%s': %s\n", what, path, strerror(-rc));
			*buf = NULL;
		} else {
			*buf = p;
		}
	}
	close(fd);
	return rc;
}

static void unload_file(uint8_t *buf, size_t len)
{
	if (buf && len)
		munmap(buf, len);
}

int vmm_boot_check(const struct vmm_config *cfg)
{
	struct vmm_bzimage bz;
	uint64_t initrd_size = 0, min_mem;
	struct stat st;
	uint8_t *img;
	size_t len;
	char why[128];
	int rc;

	rc = load_file("kernel", cfg->kernel, &img, &len);
	if (rc)
		return rc;
	rc = vmm_bzimage_parse(img, len, &bz, why, sizeof(why));
	unload_file(img, len);
	if (rc) {
		fprintf(stderr, "vmm: kernel '%s': %s\n", cfg->kernel, why);
		return rc;
	}
	if (cfg->initrd) {
		if (stat(cfg->initrd, &st) < 0 || access(cfg->initrd, R_OK) < 0) {
			rc = -errno;
			fprintf(stderr, "vmm: cannot open initrd '%s': %s\n", cfg->initrd,
				strerror(-rc));
			return rc;
		}
		initrd_size = (uint64_t)st.st_size;
	}
	min_mem = vmm_boot_min_mem(&bz, initrd_size);
	if (cfg->mem_size < min_mem) {
		fprintf(stderr, "vmm: --mem %llu MiB is too small for this kernel: it needs at "
			"least %llu MiB (load address + init_size %llu MiB%s)\n",
			(unsigned long long)(cfg->mem_size >> 20),
			(unsigned long long)((min_mem + (1 << 20) - 1) >> 20),
			(unsigned long long)(bz.init_size >> 20), initrd_size ? " + initrd" : "");
		return -EINVAL;
	}
	return 0;
}

static int guest_write(struct vmm *vm, uint64_t gpa, const void *src, size_t len)
{
	void *dst = vmm_gpa(&vm->mem, gpa, len);

	if (!dst) {
		fprintf(stderr, "vmm: internal error: [0x%llx, +0x%zx) is not guest RAM\n",
			(unsigned long long)gpa, len);
		return -EFAULT;
	}
	memcpy(dst, src, len);
	return 0;
}

/* Identity map of the first 4 GiB with 2 MiB pages, and the boot GDT. */
static int write_page_tables(struct vmm *vm)
{
	static uint64_t pt[6 * 512];
	uint64_t gdt[4] = { 0, 0, 0x00af9b000000ffffull, 0x00cf93000000ffffull };

	memset(pt, 0, sizeof(pt));
	pt[0] = (VMM_PML4_ADDR + 0x1000) | 0x03;
	for (unsigned i = 0; i < 4; i++)
		pt[512 + i] = (VMM_PML4_ADDR + 0x2000 + 0x1000ull * i) | 0x03;
	for (unsigned i = 0; i < 4 * 512; i++)
		pt[1024 + i] = ((uint64_t)i << 21) | 0x83;
	if (guest_write(vm, VMM_PML4_ADDR, pt, sizeof(pt)))
		return -EFAULT;
	return guest_write(vm, VMM_GDT_ADDR, gdt, sizeof(gdt));
}

int vmm_boot_load(struct vmm *vm, uint64_t *entry)
{
	const struct vmm_config *cfg = vm->cfg;
	uint8_t *img = NULL, *initrd = NULL, *acpi = NULL;
	size_t img_len = 0, initrd_len = 0, cmd_len = strlen(cfg->cmdline);
	uint64_t initrd_gpa = 0, top, min_mem;
	struct vmm_bzimage bz;
	uint8_t bp[4096];
	char why[128];
	int rc, n;

	rc = load_file("kernel", cfg->kernel, &img, &img_len);
	if (rc)
		return rc;
	rc = vmm_bzimage_parse(img, img_len, &bz, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "vmm: kernel '%s': %s\n", cfg->kernel, why);
		goto out;
	}
	if (cfg->initrd) {
		rc = load_file("initrd", cfg->initrd, &initrd, &initrd_len);
		if (rc)
			goto out;
	}
	min_mem = vmm_boot_min_mem(&bz, initrd_len);
	if (cfg->mem_size < min_mem) {
		fprintf(stderr, "vmm: --mem %llu MiB is too small for this kernel: it needs at "
			"least %llu MiB (load address + init_size %llu MiB%s)\n",
			(unsigned long long)(cfg->mem_size >> 20),
			(unsigned long long)((min_mem + (1 << 20) - 1) >> 20),
			(unsigned long long)(bz.init_size >> 20),
			initrd_len ? " + initrd" : "");
		rc = -EINVAL;
		goto out;
	}
	if (bz.cmdline_size && cmd_len > bz.cmdline_size) {
		fprintf(stderr, "vmm: --cmdline is %zu bytes; this kernel takes at most %u\n",
			cmd_len, bz.cmdline_size);
		rc = -EINVAL;
		goto out;
	}
	if (cmd_len >= VMM_CMDLINE_MAX) {
		fprintf(stderr, "vmm: --cmdline is too long (%zu bytes)\n", cmd_len);
		rc = -EINVAL;
		goto out;
	}

	/* The protected-mode kernel at its preferred address; it decompresses
	 * in place within init_size. */
	rc = guest_write(vm, bz.load_addr, img + bz.kernel_offset, bz.kernel_size);
	if (rc)
		goto out;
	/* The initrd as high as allowed in low RAM, above the kernel's buffer. */
	if (initrd_len) {
		top = MIN(vm->mem.slots[0].size, (uint64_t)bz.initrd_addr_max + 1);
		initrd_gpa = (top - initrd_len) & ~0xfffull;
		if (top < initrd_len || initrd_gpa < bz.load_addr + bz.init_size) {
			fprintf(stderr, "vmm: initrd '%s' (%zu MiB) does not fit below 0x%llx "
				"above the kernel; add --mem\n", cfg->initrd, initrd_len >> 20,
				(unsigned long long)top);
			rc = -EINVAL;
			goto out;
		}
		rc = guest_write(vm, initrd_gpa, initrd, initrd_len);
		if (rc)
			goto out;
	}
	rc = guest_write(vm, VMM_CMDLINE_ADDR, cfg->cmdline, cmd_len + 1);
	if (rc)
		goto out;
	acpi = calloc(1, VMM_ACPI_SIZE);
	if (!acpi) {
		rc = -ENOMEM;
		goto out;
	}
	n = vmm_acpi_build(acpi, VMM_ACPI_SIZE, VMM_ACPI_ADDR, vm->nvcpus);
	if (n < 0) {
		rc = n;
		goto out;
	}
	rc = guest_write(vm, VMM_ACPI_ADDR, acpi, (size_t)n);
	if (rc)
		goto out;
	vmm_boot_params_build(bp, img, &bz, VMM_CMDLINE_ADDR, initrd_gpa, initrd_len,
			      cfg->mem_size, VMM_ACPI_ADDR);
	rc = guest_write(vm, VMM_BOOT_PARAMS_ADDR, bp, sizeof(bp));
	if (rc)
		goto out;
	rc = write_page_tables(vm);
	if (rc)
		goto out;
	*entry = bz.load_addr + 0x200;
	log_info("kernel %s: boot protocol %u.%02u, %zu KiB at 0x%llx, init_size %llu MiB; "
		 "initrd %zu KiB at 0x%llx", cfg->kernel, bz.version >> 8, bz.version & 0xff,
		 img_len >> 10, (unsigned long long)bz.load_addr,
		 (unsigned long long)(bz.init_size >> 20), initrd_len >> 10,
		 (unsigned long long)initrd_gpa);
out:
	free(acpi);
	unload_file(initrd, initrd_len);
	unload_file(img, img_len);
	return rc;
}

/*
 * ACPI tables for the guest: RSDP (2.0) -> XSDT -> FADT (6.0) and MADT; the
 * FADT points at the FACS and the DSDT. The DSDT is AML encoded here by hand
 * (a few helpers for the encodings the ACPI spec section 20 defines): \_S5 so
 * that `poweroff` writes SLP_TYP 5 | SLP_EN to PM1a_CNT and ends the VM, and
 * \_SB.PCI0 (PNP0A03) with the bus, I/O and memory windows so the kernel scans
 * PCI bus 0 through the conf1 ports. Fixed hardware: PM1a event (0x600, 4
 * bytes), PM1a control (0x604, 2), PM timer (0x608, 4), the reset register
 * (I/O 0x60c, value 1), SCI on IRQ 9; no SMI command port (already in ACPI
 * mode), no 8042 and no VGA announced. Every table is checksummed.
 */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "vmm/vmm.h"

#define OEM_ID "LEGATO"
#define OEM_TABLE_ID "LEGATOVM"
#define ALIGN16(x) (((x) + 15u) & ~15u)

struct builder {
	uint8_t *buf;
	size_t size;
	size_t used;
	uint64_t gpa;
	int err;
};

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint8_t vmm_acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)(0x100 - sum);
}

/* Reserves len bytes aligned to align; returns the offset. */
static size_t alloc(struct builder *b, size_t len, size_t align)
{
	size_t off = (b->used + align - 1) & ~(align - 1);

	if (off + len > b->size) {
		b->err = -ENOSPC;
		return 0;
	}
	b->used = off + len;
	return off;
}

static void sdt_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put_le(t + 4, len, 4);
	t[8] = rev;
	memcpy(t + 10, OEM_ID, 6);
	memcpy(t + 16, OEM_TABLE_ID, 8);
	put_le(t + 24, 1, 4);
	memcpy(t + 28, "LGTO", 4);
	put_le(t + 32, 1, 4);
}

static void sdt_finish(uint8_t *t)
{
	uint32_t len = t[4] | t[5] << 8 | t[6] << 16 | (uint32_t)t[7] << 24;

	t[9] = 0;
	t[9] = vmm_acpi_checksum(t, len);
}

/* ------------------------------------------------------------ AML */

struct aml {
	uint8_t b[1024];
	size_t n;
};

static void aml_bytes(struct aml *a, const void *p, size_t len)
{
	if (a->n + len <= sizeof(a->b))
		memcpy(a->b + a->n, p, len);
	a->n += len;
}

static void aml_byte(struct aml *a, uint8_t v) { aml_bytes(a, &v, 1); }

/* PkgLength of a body of len bytes (the encoding counts itself). */
static void aml_pkglen(struct aml *a, size_t len)
{
	if (len + 1 < 0x40) {
		aml_byte(a, (uint8_t)(len + 1));
	} else if (len + 2 < 0x1000) {
		len += 2;
		aml_byte(a, (uint8_t)(0x40 | (len & 0xf)));
		aml_byte(a, (uint8_t)(len >> 4));
	} else {
		len += 3;
		aml_byte(a, (uint8_t)(0x80 | (len & 0xf)));
		aml_byte(a, (uint8_t)(len >> 4));
		aml_byte(a, (uint8_t)(len >> 12));
	}
}

/* Integer: the shortest encoding. */
static void aml_int(struct aml *a, uint64_t v)
{
	uint8_t le[8];

	put_le(le, v, 8);
	if (v == 0) {
		aml_byte(a, 0x00);
	} else if (v == 1) {
		aml_byte(a, 0x01);
	} else if (v <= 0xff) {
		aml_byte(a, 0x0a);
		aml_bytes(a, le, 1);
	} else if (v <= 0xffff) {
		aml_byte(a, 0x0b);
		aml_bytes(a, le, 2);
	} else if (v <= 0xffffffff) {
		aml_byte(a, 0x0c);
		aml_bytes(a, le, 4);
	} else {
		aml_byte(a, 0x0e);
		aml_bytes(a, le, 8);
	}
}

/* Name(seg, <value bytes>) */
static void aml_name(struct aml *a, const char seg[4], const struct aml *value)
{
	aml_byte(a, 0x08);
	aml_bytes(a, seg, 4);
	aml_bytes(a, value->b, value->n);
}

static void aml_name_int(struct aml *a, const char seg[4], uint64_t v)
{
	struct aml val = { .n = 0 };

	aml_int(&val, v);
	aml_name(a, seg, &val);
}

/* A block with a PkgLength: op bytes, pkglen, name, body. */
static void aml_block(struct aml *a, const uint8_t *op, size_t oplen, const char *name,
		      const struct aml *body)
{
	size_t nlen = strlen(name);

	aml_bytes(a, op, oplen);
	aml_pkglen(a, nlen + body->n);
	aml_bytes(a, name, nlen);
	aml_bytes(a, body->b, body->n);
}

/* EISA id "PNP0A03" as a DWord. */
static uint32_t eisa_id(const char *id)
{
	uint32_t v = (uint32_t)((id[0] - 0x40) << 26 | (id[1] - 0x40) << 21 |
				(id[2] - 0x40) << 16);
	unsigned hex;

	for (int i = 3; i < 7; i++) {
		hex = id[i] <= '9' ? (unsigned)(id[i] - '0') : (unsigned)(id[i] - 'A' + 10);
		v |= hex << (4 * (6 - i));
	}
	return (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
}

/* Word address space descriptor (bus number or I/O window). */
static void res_word(struct aml *r, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	uint8_t d[16] = { 0x88, 0x0d, 0x00, type, 0x0c, tflags };

	put_le(d + 8, min, 2);
	put_le(d + 10, max, 2);
	put_le(d + 14, (uint32_t)max - min + 1, 2);
	aml_bytes(r, d, sizeof(d));
}

static void build_dsdt_body(struct aml *a)
{
	struct aml pkg = { .n = 0 }, s5 = { .n = 0 }, res = { .n = 0 }, crs = { .n = 0 };
	struct aml dev = { .n = 0 }, sb = { .n = 0 }, tmp = { .n = 0 };
	static const uint8_t dev_op[] = { 0x5b, 0x82 }, scope_op[] = { 0x10 };
	uint8_t io_cf8[8] = { 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08 };
	uint8_t mem[26] = { 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01 };

	/* Name(_S5, Package(4) { 5, 5, 0, 0 }) */
	aml_byte(&pkg, 4);
	aml_int(&pkg, 5);
	aml_int(&pkg, 5);
	aml_int(&pkg, 0);
	aml_int(&pkg, 0);
	aml_byte(&s5, 0x12);
	aml_pkglen(&s5, pkg.n);
	aml_bytes(&s5, pkg.b, pkg.n);
	aml_name(a, "_S5_", &s5);

	/* \_SB.PCI0: host bridge, bus 0..255, conf1 ports, I/O and MMIO windows */
	res_word(&res, 2, 0, 0, 0xff);
	aml_bytes(&res, io_cf8, sizeof(io_cf8));
	res_word(&res, 1, 0x03, 0x0000, 0x0cf7);
	res_word(&res, 1, 0x03, 0x0d00, 0xffff);
	put_le(mem + 10, VMM_PCI_MMIO_START, 4);
	put_le(mem + 14, VMM_IOAPIC_ADDR - 1, 4);
	put_le(mem + 22, VMM_IOAPIC_ADDR - VMM_PCI_MMIO_START, 4);
	aml_bytes(&res, mem, sizeof(mem));
	aml_byte(&res, 0x79);	/* end tag */
	aml_byte(&res, 0x00);
	aml_int(&tmp, res.n);	/* Buffer(size) { descriptors } */
	aml_byte(&crs, 0x11);
	aml_pkglen(&crs, tmp.n + res.n);
	aml_bytes(&crs, tmp.b, tmp.n);
	aml_bytes(&crs, res.b, res.n);

	tmp.n = 0;
	aml_byte(&tmp, 0x0c);
	{
		uint8_t le[4];

		put_le(le, eisa_id("PNP0A03"), 4);
		aml_bytes(&tmp, le, 4);
	}
	aml_name(&dev, "_HID", &tmp);
	aml_name_int(&dev, "_ADR", 0);
	aml_name_int(&dev, "_UID", 0);
	aml_name_int(&dev, "_BBN", 0);
	aml_name_int(&dev, "_SEG", 0);
	aml_name(&dev, "_CRS", &crs);
	aml_block(&sb, dev_op, sizeof(dev_op), "PCI0", &dev);
	aml_block(a, scope_op, sizeof(scope_op), "\\_SB_", &sb);
}

/* Generic address structure: system I/O. */
static void gas_io(uint8_t *g, uint8_t bits, uint8_t access, uint64_t port)
{
	g[0] = 1;
	g[1] = bits;
	g[2] = 0;
	g[3] = access;
	put_le(g + 4, port, 8);
}

int vmm_acpi_build(uint8_t *buf, size_t size, uint64_t gpa, unsigned ncpus)
{
	struct builder b = { .buf = buf, .size = size, .used = 0, .gpa = gpa };
	struct aml dsdt_body = { .n = 0 };
	size_t rsdp, xsdt, fadt, facs, dsdt, madt, madt_len, off;
	uint8_t *t;

	memset(buf, 0, size);
	build_dsdt_body(&dsdt_body);
	if (dsdt_body.n > sizeof(dsdt_body.b) || ncpus == 0 || ncpus > 255)
		return -EINVAL;
	rsdp = alloc(&b, 36, 16);
	xsdt = alloc(&b, 36 + 2 * 8, 16);
	fadt = alloc(&b, 276, 16);
	facs = alloc(&b, 64, 64);
	dsdt = alloc(&b, 36 + dsdt_body.n, 16);
	madt_len = 44 + 8 * ncpus + 12 + 10 + 6;
	madt = alloc(&b, madt_len, 16);
	if (b.err)
		return b.err;

	/* DSDT */
	t = buf + dsdt;
	sdt_header(t, "DSDT", (uint32_t)(36 + dsdt_body.n), 2);
	memcpy(t + 36, dsdt_body.b, dsdt_body.n);
	sdt_finish(t);

	/* FACS (no checksum) */
	t = buf + facs;
	memcpy(t, "FACS", 4);
	put_le(t + 4, 64, 4);
	t[32] = 2;

	/* FADT 6.0 */
	t = buf + fadt;
	sdt_header(t, "FACP", 276, 6);
	put_le(t + 46, VMM_SCI_IRQ, 2);
	put_le(t + 56, VMM_PM1A_EVT_PORT, 4);
	put_le(t + 64, VMM_PM1A_CNT_PORT, 4);
	put_le(t + 76, VMM_PM_TMR_PORT, 4);
	t[88] = 4;		/* PM1_EVT_LEN */
	t[89] = 2;		/* PM1_CNT_LEN */
	t[91] = 4;		/* PM_TMR_LEN */
	put_le(t + 96, 101, 2);	/* P_LVL2_LAT > 100: no C2 */
	put_le(t + 98, 1001, 2);	/* P_LVL3_LAT > 1000: no C3 */
	t[108] = 0x32;		/* CENTURY in CMOS */
	put_le(t + 109, 1u << 2, 2);	/* IAPC_BOOT_ARCH: no VGA; no 8042 */
	/* WBINVD, PROC_C1, PWR_BUTTON and SLP_BUTTON absent (control
	 * method / none), TMR_VAL_EXT, RESET_REG_SUP */
	put_le(t + 112, 1u << 0 | 1u << 2 | 1u << 4 | 1u << 5 | 1u << 8 | 1u << 10, 4);
	gas_io(t + 116, 8, 1, VMM_RESET_PORT);
	t[128] = VMM_RESET_VALUE;
	put_le(t + 132, gpa + facs, 8);	/* X_FIRMWARE_CTRL */
	put_le(t + 140, gpa + dsdt, 8);	/* X_DSDT */
	gas_io(t + 148, 32, 0, VMM_PM1A_EVT_PORT);
	gas_io(t + 172, 16, 0, VMM_PM1A_CNT_PORT);
	gas_io(t + 208, 32, 0, VMM_PM_TMR_PORT);
	memcpy(t + 268, "LEGATO\0\0", 8);
	sdt_finish(t);

	/* MADT */
	t = buf + madt;
	sdt_header(t, "APIC", (uint32_t)madt_len, 4);
	put_le(t + 36, VMM_LAPIC_ADDR, 4);
	put_le(t + 40, 1, 4);	/* PCAT_COMPAT: 8259s present (masked by the OS) */
	off = 44;
	for (unsigned i = 0; i < ncpus; i++, off += 8) {
		t[off] = 0;
		t[off + 1] = 8;
		t[off + 2] = (uint8_t)i;	/* ACPI processor UID */
		t[off + 3] = (uint8_t)i;	/* APIC ID */
		put_le(t + off + 4, 1, 4);	/* enabled */
	}
	t[off] = 1;		/* I/O APIC */
	t[off + 1] = 12;
	t[off + 2] = 0;
	put_le(t + off + 4, VMM_IOAPIC_ADDR, 4);
	put_le(t + off + 8, 0, 4);
	off += 12;
	t[off] = 2;		/* ISA override: SCI, level, active high */
	t[off + 1] = 10;
	t[off + 2] = 0;
	t[off + 3] = VMM_SCI_IRQ;
	put_le(t + off + 4, VMM_SCI_IRQ, 4);
	put_le(t + off + 8, 0x000d, 2);
	off += 10;
	t[off] = 4;		/* local APIC NMI on LINT1 of every CPU */
	t[off + 1] = 6;
	t[off + 2] = 0xff;
	put_le(t + off + 3, 0, 2);
	t[off + 5] = 1;
	sdt_finish(t);

	/* XSDT */
	t = buf + xsdt;
	sdt_header(t, "XSDT", 36 + 2 * 8, 1);
	put_le(t + 36, gpa + fadt, 8);
	put_le(t + 44, gpa + madt, 8);
	sdt_finish(t);

	/* RSDP 2.0 */
	t = buf + rsdp;
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + 9, OEM_ID, 6);
	t[15] = 2;
	put_le(t + 20, 36, 4);
	put_le(t + 24, gpa + xsdt, 8);
	t[8] = vmm_acpi_checksum(t, 20);
	t[32] = vmm_acpi_checksum(t, 36);
	return (int)ALIGN16(b.used);
}

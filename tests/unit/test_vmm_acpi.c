/*
 * Unit tests of the VMM's ACPI tables (vmm/acpi.c): the RSDP/XSDT/FADT/MADT/
 * DSDT chain as the guest walks it from the RSDP, every checksum, one local
 * APIC per vCPU with distinct IDs, the FADT's fixed hardware and reset
 * register, and the \_S5 and PCI0 objects in the DSDT's AML.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vmm.h"

#define GPA 0xe0000ull

static uint8_t buf[VMM_ACPI_SIZE];

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static const uint8_t *at(uint64_t gpa)
{
	ck_assert_uint_ge(gpa, GPA);
	ck_assert_uint_lt(gpa, GPA + sizeof(buf));
	return buf + (gpa - GPA);
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

static const uint8_t *table(uint64_t gpa, const char *sig)
{
	const uint8_t *t = at(gpa);

	ck_assert_mem_eq(t, sig, 4);
	ck_assert_uint_eq(sum(t, rd32(t + 4)), 0);
	return t;
}

static const uint8_t *memfind(const uint8_t *h, size_t hl, const void *n, size_t nl)
{
	for (size_t i = 0; i + nl <= hl; i++)
		if (!memcmp(h + i, n, nl))
			return h + i;
	return NULL;
}

START_TEST(chain_and_checksums)
{
	const uint8_t *rsdp, *xsdt, *fadt, *madt, *dsdt, *facs;
	unsigned ncpus = (unsigned)_i + 1, lapics = 0, off;
	int used = vmm_acpi_build(buf, sizeof(buf), GPA, ncpus);

	ck_assert_int_gt(used, 0);
	rsdp = buf;
	ck_assert_mem_eq(rsdp, "RSD PTR ", 8);
	ck_assert_uint_eq(sum(rsdp, 20), 0);
	ck_assert_uint_eq(sum(rsdp, 36), 0);
	ck_assert_uint_eq(rsdp[15], 2);
	xsdt = table(rd64(rsdp + 24), "XSDT");
	ck_assert_uint_eq(rd32(xsdt + 4), 36 + 16);
	fadt = table(rd64(xsdt + 36), "FACP");
	madt = table(rd64(xsdt + 44), "APIC");
	dsdt = table(rd64(fadt + 140), "DSDT");
	facs = at(rd64(fadt + 132));
	ck_assert_mem_eq(facs, "FACS", 4);
	ck_assert_uint_eq(rd64(fadt + 132) % 64, 0);

	/* FADT fixed hardware */
	ck_assert_uint_eq(rd32(fadt + 56), VMM_PM1A_EVT_PORT);
	ck_assert_uint_eq(rd32(fadt + 64), VMM_PM1A_CNT_PORT);
	ck_assert_uint_eq(fadt[88], 4);
	ck_assert_uint_eq(fadt[89], 2);
	ck_assert_uint_eq(rd32(fadt + 112) & (1u << 10), 1u << 10);	/* RESET_REG_SUP */
	ck_assert_uint_eq(fadt[116], 1);				/* system I/O */
	ck_assert_uint_eq(rd64(fadt + 120), VMM_RESET_PORT);
	ck_assert_uint_eq(fadt[128], VMM_RESET_VALUE);
	ck_assert_uint_eq(fadt[46], VMM_SCI_IRQ);

	/* MADT: one enabled LAPIC per vCPU with distinct IDs, one IOAPIC */
	ck_assert_uint_eq(rd32(madt + 36), 0xfee00000);
	for (off = 44; off < rd32(madt + 4); off += madt[off + 1]) {
		ck_assert_uint_gt(madt[off + 1], 0);
		if (madt[off] == 0) {
			ck_assert_uint_eq(madt[off + 3], lapics);	/* APIC ID */
			ck_assert_uint_eq(rd32(madt + off + 4) & 1, 1);
			lapics++;
		} else if (madt[off] == 1) {
			ck_assert_uint_eq(rd32(madt + off + 4), 0xfec00000);
		}
	}
	ck_assert_uint_eq(off, rd32(madt + 4));
	ck_assert_uint_eq(lapics, ncpus);

	/* DSDT: Name(_S5, Package(4) { 5, 5, 0, 0 }) and PCI0 = PNP0A03 */
	{
		static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
					      0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00 };
		static const uint8_t hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
		size_t dl = rd32(dsdt + 4);

		ck_assert_ptr_nonnull(memfind(dsdt + 36, dl - 36, s5, sizeof(s5)));
		ck_assert_ptr_nonnull(memfind(dsdt + 36, dl - 36, "PCI0", 4));
		ck_assert_ptr_nonnull(memfind(dsdt + 36, dl - 36, hid, sizeof(hid)));
	}
}
END_TEST

START_TEST(checksum_helper)
{
	uint8_t b[5] = { 1, 2, 3, 250, 0 };

	b[4] = vmm_acpi_checksum(b, 4);
	ck_assert_uint_eq(sum(b, 5), 0);
	ck_assert_int_eq(vmm_acpi_build(buf, 64, GPA, 1), -ENOSPC);
	ck_assert_int_lt(vmm_acpi_build(buf, sizeof(buf), GPA, 0), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmm_acpi");
	TCase *tc = tcase_create("acpi");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, chain_and_checksums, 0, 8);	/* 1..8 vCPUs */
	tcase_add_test(tc, checksum_helper);
	tcase_set_timeout(tc, 10);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

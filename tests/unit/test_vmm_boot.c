/*
 * Unit tests of the VMM's boot-protocol builders (vmm/boot.c): setup-header
 * checks on synthetic images, the guest memory layout and e820 map, and the
 * zero page (header copy, loader fields, command line, initrd, e820, RSDP).
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vmm.h"

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }

/* A minimal image that passes as a 2.15 relocatable 64-bit bzImage. */
static uint8_t *fake_bzimage(size_t len)
{
	uint8_t *img = calloc(1, len);

	img[0x1f1] = 27;			/* setup_sects */
	wr16(img + 0x1fe, 0xaa55);
	img[0x201] = 0x6a;			/* jump: header ends at 0x26c */
	memcpy(img + 0x202, "HdrS", 4);
	wr16(img + 0x206, 0x020f);
	img[0x211] = 0x01;			/* LOADED_HIGH */
	wr32(img + 0x22c, 0x7fffffff);		/* initrd_addr_max */
	wr32(img + 0x230, 0x200000);		/* kernel_alignment */
	img[0x234] = 1;				/* relocatable */
	wr16(img + 0x236, 0x7f);		/* xloadflags: 64-bit entry */
	wr32(img + 0x238, 2047);		/* cmdline_size */
	wr32(img + 0x258, 0x1000000);		/* pref_address */
	wr32(img + 0x25c, 0);
	wr32(img + 0x260, 48u << 20);		/* init_size */
	return img;
}

START_TEST(bzimage_ok)
{
	uint8_t *img = fake_bzimage(1 << 20);
	struct vmm_bzimage bz;
	char why[128];

	ck_assert_int_eq(vmm_bzimage_parse(img, 1 << 20, &bz, why, sizeof(why)), 0);
	ck_assert_uint_eq(bz.version, 0x020f);
	ck_assert_uint_eq(bz.setup_size, 28 * 512);
	ck_assert_uint_eq(bz.kernel_offset, 28 * 512);
	ck_assert_uint_eq(bz.kernel_size, (1 << 20) - 28 * 512);
	ck_assert_uint_eq(bz.load_addr, 0x1000000);
	ck_assert_uint_eq(bz.init_size, 48u << 20);
	ck_assert_uint_eq(vmm_boot_min_mem(&bz, 0), 0x1000000 + (48u << 20));
	ck_assert_uint_eq(vmm_boot_min_mem(&bz, 1), 0x1000000 + (48u << 20) + 4096);
	free(img);
}
END_TEST

START_TEST(bzimage_rejects)
{
	uint8_t *img = fake_bzimage(1 << 20);
	struct vmm_bzimage bz;
	char why[128];

	/* Not an image at all. */
	ck_assert_int_eq(vmm_bzimage_parse(img, 100, &bz, why, sizeof(why)), -ENOEXEC);
	memcpy(img + 0x202, "HdrX", 4);
	ck_assert_int_eq(vmm_bzimage_parse(img, 1 << 20, &bz, why, sizeof(why)), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(why, "not a bzImage"));
	memcpy(img + 0x202, "HdrS", 4);
	/* Too old a protocol. */
	wr16(img + 0x206, 0x0206);
	ck_assert_int_eq(vmm_bzimage_parse(img, 1 << 20, &bz, why, sizeof(why)), -ENOEXEC);
	wr16(img + 0x206, 0x020f);
	/* zImage (loads low). */
	img[0x211] = 0;
	ck_assert_int_eq(vmm_bzimage_parse(img, 1 << 20, &bz, why, sizeof(why)), -ENOEXEC);
	img[0x211] = 1;
	/* No 64-bit entry. */
	wr16(img + 0x236, 0);
	ck_assert_int_eq(vmm_bzimage_parse(img, 1 << 20, &bz, why, sizeof(why)), -ENOEXEC);
	free(img);
}
END_TEST

START_TEST(layout_and_e820)
{
	struct vmm_slot slots[2];
	struct vmm_e820 e[8];
	unsigned n;

	ck_assert_uint_eq(vmm_mem_layout(256ull << 20, slots), 1);
	ck_assert_uint_eq(slots[0].size, 256ull << 20);
	n = vmm_e820_build(256ull << 20, e, 8);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(e[0].addr, 0);
	ck_assert_uint_eq(e[0].size, 0x9fc00);
	ck_assert_uint_eq(e[0].type, 1);
	ck_assert_uint_eq(e[1].type, 2);
	ck_assert_uint_eq(e[2].addr, 0xe0000);	/* ACPI tables: reserved */
	ck_assert_uint_eq(e[2].type, 2);
	ck_assert_uint_eq(e[3].addr, 0x100000);
	ck_assert_uint_eq(e[3].addr + e[3].size, 256ull << 20);

	/* 6 GiB: 3 GiB below the hole, 3 GiB from 4 GiB. */
	ck_assert_uint_eq(vmm_mem_layout(6ull << 30, slots), 2);
	ck_assert_uint_eq(slots[0].size, 3ull << 30);
	ck_assert_uint_eq(slots[1].gpa, 4ull << 30);
	ck_assert_uint_eq(slots[1].size, 3ull << 30);
	ck_assert_uint_eq(slots[1].offset, 3ull << 30);
	n = vmm_e820_build(6ull << 30, e, 8);
	ck_assert_uint_eq(n, 5);
	ck_assert_uint_eq(e[3].addr + e[3].size, 3ull << 30);
	ck_assert_uint_eq(e[4].addr, 4ull << 30);
	ck_assert_uint_eq(e[4].size, 3ull << 30);
	/* Exactly 3 GiB still fits below the hole. */
	ck_assert_uint_eq(vmm_mem_layout(3ull << 30, slots), 1);
}
END_TEST

START_TEST(gpa_lookup)
{
	static uint8_t base[1];
	struct vmm_mem m = { .base = base };

	m.nslots = vmm_mem_layout(6ull << 30, m.slots);
	ck_assert_ptr_eq(vmm_gpa(&m, 0, 4096), base);
	ck_assert_ptr_eq(vmm_gpa(&m, 4ull << 30, 8), base + (3ull << 30));
	ck_assert_ptr_null(vmm_gpa(&m, 3ull << 30, 1));		/* the hole */
	ck_assert_ptr_null(vmm_gpa(&m, (3ull << 30) - 4, 8));	/* straddles it */
	ck_assert_ptr_null(vmm_gpa(&m, 7ull << 30, 1));		/* past the end */
}
END_TEST

START_TEST(zero_page)
{
	uint8_t *img = fake_bzimage(1 << 20), bp[4096];
	struct vmm_bzimage bz;
	char why[128];
	unsigned n;

	ck_assert_int_eq(vmm_bzimage_parse(img, 1 << 20, &bz, why, sizeof(why)), 0);
	memset(img + 0x26c, 0xee, 16);		/* beyond the header: not copied */
	vmm_boot_params_build(bp, img, &bz, 0x20000, 0x7000000, 0x123456, 256ull << 20, 0xe0000);
	ck_assert_mem_eq(bp + 0x202, "HdrS", 4);
	ck_assert_uint_eq(rd16(bp + 0x1fe), 0xaa55);
	ck_assert_uint_eq(bp[0x26c], 0);
	ck_assert_uint_eq(bp[0x210], 0xff);			/* type_of_loader */
	ck_assert_uint_eq(bp[0x211], 0x81);			/* LOADED_HIGH|CAN_USE_HEAP */
	ck_assert_uint_eq(rd16(bp + 0x224), 0xfe00);
	ck_assert_uint_eq(rd32(bp + 0x228), 0x20000);		/* cmd_line_ptr */
	ck_assert_uint_eq(rd32(bp + 0x218), 0x7000000);		/* ramdisk_image */
	ck_assert_uint_eq(rd32(bp + 0x21c), 0x123456);
	ck_assert_uint_eq(rd64(bp + 0x070), 0xe0000);		/* acpi_rsdp_addr */
	n = bp[0x1e8];
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(rd64(bp + 0x2d0 + 20 * 3), 0x100000);
	ck_assert_uint_eq(rd64(bp + 0x2d0 + 20 * 3 + 8), (256ull << 20) - 0x100000);
	ck_assert_uint_eq(rd32(bp + 0x2d0 + 20 * 3 + 16), 1);
	free(img);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmm_boot");
	TCase *tc = tcase_create("boot");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, bzimage_ok);
	tcase_add_test(tc, bzimage_rejects);
	tcase_add_test(tc, layout_and_e820);
	tcase_add_test(tc, gpa_lookup);
	tcase_add_test(tc, zero_page);
	tcase_set_timeout(tc, 10);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

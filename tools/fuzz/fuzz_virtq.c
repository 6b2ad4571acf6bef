/*
 * libFuzzer target for the split virtqueue (vmm/virtq.c): the input is a
 * guest. Its first HDR_LEN bytes configure the queue, the rest is the image
 * of a 64 KiB guest RAM at guest-physical 0 (zero-filled past the input), in
 * which the fuzzer lays out rings, descriptor tables and buffers as it likes.
 * The target then acts as a device: pop, check the chain, read every
 * readable byte and (when asked) write every writable one, which may rewrite
 * the rings under the queue's feet, push, decide on interrupts, toggle
 * notifications, for a bounded number of rounds until nothing is left or the
 * queue is broken. ASan catches any access outside the image; a broken
 * invariant traps.
 *
 * Header: [0] log2 of the size (mod 13: 1..4096 entries fit in RAM),
 * [1] bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 start from the indices in
 * [8..11] (refused unless last_avail - used <= size), bit 3 disable notifications before each round, bit 4 write the writable
 * buffers, bit 5 reset and re-enable halfway, bit 6 plumbed (below);
 * [2..7] desc, avail, used ring offsets (le16, any alignment); [8..9]
 * last_avail, [10..11] used index; [12] iovec room - 1 (mod 64); [13]
 * plumbed: how many heads are available.
 *
 * Plumbed inputs get help to reach deep chains: the rings are laid out back
 * to back from 0, avail->idx and the heads are made valid, and the main
 * table's descriptors point into RAM (addr mod 64 KiB, len mod 4 KiB), so
 * the fuzzer's bytes go to flags, next, lengths and indirect tables.
 */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vmm/virtq.h"

#define HDR_LEN 16
#define RAM_SIZE 65536u
#define MAX_IOV 64
#define MAX_ROUNDS 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));

static void *flat_gpa(void *ctx, uint64_t gpa, uint64_t len)
{
	(void)ctx;
	if (len > RAM_SIZE || gpa > RAM_SIZE - len)
		return NULL;
	return ram + gpa;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Bit 6: makes the layout in cfg and the image consistent (see above). */
static void plumb(struct vmm_virtq_config *cfg, unsigned navail)
{
	struct vmm_virtq_desc *d = (struct vmm_virtq_desc *)ram;
	struct vmm_virtq_avail *avail;

	cfg->desc = 0;
	cfg->avail = VMM_VIRTQ_DESC_BYTES(cfg->size);
	cfg->used = (cfg->avail + VMM_VIRTQ_AVAIL_BYTES(cfg->size) + 3) & ~3ull;
	if (cfg->used + VMM_VIRTQ_USED_BYTES(cfg->size) > RAM_SIZE)
		return;		/* too big to fit: enable will refuse it */
	for (unsigned i = 0; i < cfg->size; i++) {
		d[i].addr = htole64(le64toh(d[i].addr) % RAM_SIZE);
		d[i].len = htole32(le32toh(d[i].len) % 4096);
	}
	avail = (struct vmm_virtq_avail *)(ram + cfg->avail);
	avail->idx = htole16((uint16_t)(navail % (cfg->size + 1)));
	for (unsigned i = 0; i < cfg->size; i++)
		avail->ring[i] = htole16(le16toh(avail->ring[i]) & (cfg->size - 1));
}

/* Checks a popped chain and does the device's I/O on it. Returns the bytes
 * "written" into its writable part. */
static uint32_t serve(const struct vmm_virtq_chain *c, const struct iovec *iov, unsigned max,
		      unsigned qsize, bool write)
{
	uint64_t out = 0, in = 0;
	volatile uint8_t sink = 0;

	if (c->head >= qsize || c->nout + c->nin > max)
		__builtin_trap();
	for (unsigned i = 0; i < c->nout + c->nin; i++) {
		const uint8_t *b = iov[i].iov_base;
		size_t len = iov[i].iov_len;

		if (len == 0 || b < ram || len > RAM_SIZE || (size_t)(b - ram) > RAM_SIZE - len)
			__builtin_trap();
		if (i < c->nout) {
			out += len;
			sink ^= b[0];
			sink ^= b[len - 1];
		} else {
			in += len;
			if (write)
				memset(iov[i].iov_base, 0xa5 ^ (int)i, len);
		}
	}
	(void)sink;
	if (out != c->out_len || in != c->in_len || out + in > UINT32_MAX)
		__builtin_trap();
	return c->in_len;
}

/* One round: pop and serve a chain, or look again once notifications are
 * back on. Returns false when the device would go to sleep. */
static bool round_once(struct vmm_virtq *vq, unsigned max, unsigned qsize, bool write)
{
	struct iovec iov[MAX_IOV];
	struct vmm_virtq_chain c;
	uint16_t la, u0, u1;
	int r;

	r = vmm_virtq_pop(vq, iov, max, &c);
	if (r == -EIO) {
		if (!vmm_virtq_broken(vq) || vmm_virtq_push(vq, 0, 0) != -EIO ||
		    vmm_virtq_pop(vq, iov, max, &c) != -EIO || vmm_virtq_need_interrupt(vq))
			__builtin_trap();
		return false;
	}
	if (r == 0)
		return vmm_virtq_enable_notify(vq);
	if (r != 1)
		__builtin_trap();
	vmm_virtq_get_indices(vq, &la, &u0);
	if (vmm_virtq_push(vq, c.head, serve(&c, iov, max, qsize, write)))
		__builtin_trap();
	vmm_virtq_get_indices(vq, &la, &u1);
	if (u1 != (uint16_t)(u0 + 1))
		__builtin_trap();
	(void)vmm_virtq_need_interrupt(vq);
	return true;
}

static void run(struct vmm_virtq *vq, const struct vmm_virtq_config *cfg, const uint8_t *hdr)
{
	unsigned max = hdr[12] % MAX_IOV + 1;
	bool write = hdr[1] & 16;

	if (vmm_virtq_enable(vq, cfg))
		return;
	if (hdr[1] & 4) {
		uint16_t la = get16(hdr + 8), u = get16(hdr + 10);
		int want = (uint16_t)(la - u) <= cfg->size ? 0 : -EINVAL;

		if (vmm_virtq_set_indices(vq, la, u) != want)
			__builtin_trap();
	}
	for (unsigned i = 0; i < MAX_ROUNDS; i++) {
		if (hdr[1] & 8)
			vmm_virtq_disable_notify(vq);
		if (i == MAX_ROUNDS / 2 && (hdr[1] & 32)) {
			vmm_virtq_reset(vq);
			if (vmm_virtq_enable(vq, cfg))
				__builtin_trap();
		}
		if (!round_once(vq, max, cfg->size, write))
			break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmm_virtq_config cfg = { 0 };
	struct vmm_virtq vq;
	size_t n;

	if (size < HDR_LEN)
		return 0;
	n = size - HDR_LEN < RAM_SIZE ? size - HDR_LEN : RAM_SIZE;
	memcpy(ram, data + HDR_LEN, n);
	memset(ram + n, 0, RAM_SIZE - n);
	cfg.size = 1u << (data[0] % 13);
	cfg.features = (data[1] & 1 ? 1ull << VIRTIO_F_EVENT_IDX : 0) |
		       (data[1] & 2 ? 1ull << VIRTIO_F_INDIRECT_DESC : 0);
	cfg.desc = get16(data + 2);
	cfg.avail = get16(data + 4);
	cfg.used = get16(data + 6);
	if (data[1] & 64)
		plumb(&cfg, data[13]);
	vmm_virtq_init(&vq, flat_gpa, NULL);
	run(&vq, &cfg, data);
	return 0;
}

/*
 * Writes the seed corpus for fuzz_frame: one file per request kind, each a
 * mode byte followed by well-formed frames, so the fuzzer starts from inputs
 * that reach deep into every handler.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"
#include "memserver/proto.h"

static uint8_t frame[MS_MAX_FRAME + 64];

static size_t hdr(uint8_t *p, uint8_t op, uint32_t count, size_t body)
{
	struct ms_hdr h = { .len = (uint32_t)(MS_HDR_LEN + body), .version = MS_PROTO_VERSION,
			    .op = op, .id = 7, .count = count };

	ms_hdr_encode(p, &h);
	return h.len;
}

static size_t reply(uint8_t *p, uint64_t id, uint8_t op, uint32_t count, size_t body)
{
	struct ms_hdr h = { .len = (uint32_t)(MS_HDR_LEN + body), .version = MS_PROTO_VERSION,
			    .op = (uint8_t)(op | MS_REPLY), .id = id, .count = count };

	memset(p + MS_HDR_LEN, 0, body);
	ms_hdr_encode(p, &h);
	return h.len;
}

static void emit(const char *dir, const char *name, uint8_t mode, const uint8_t *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputc(mode, f);
	fwrite(p, 1, n, f);
	fclose(f);
}

/* Replies to fuzz_reply's requests: ids 1..8 = READ x3, READ x1, WRITE,
 * CREATE, OPEN, STAT, PING, DELETE. The reply fuzzer skips the mode byte. */
static void emit_replies(const char *dir)
{
	static struct ms_stat stat;
	uint8_t page[MS_PAGE_SIZE], *p = frame;
	size_t n;

	memset(page, 0x5a, sizeof(page));
	n = reply(p, 1, MS_OP_READ, 3, 48 + MS_PAGE_SIZE);
	put_le32(p + 24 + 8, MS_PAGE_ZERO);
	put_le64(p + 24 + 16, ms_page_sum(page));
	put_le32(p + 24 + 40, MS_PAGE_ZERO);
	memcpy(p + 24 + 48, page, MS_PAGE_SIZE);
	p += n;
	p += reply(p, 3, MS_OP_WRITE, 1, 0);
	n = reply(p, 4, MS_OP_REGION_CREATE, 0, MS_TOKEN_LEN);
	p += n;
	n = reply(p, 5, MS_OP_REGION_OPEN, 0, 16);
	put_le64(p + 24, 1);
	p += n;
	n = reply(p, 6, MS_OP_STAT, 0, MS_STAT_WIRE_LEN);
	ms_stat_encode(&stat, p + 24);
	p += n;
	p += reply(p, 7, MS_OP_PING, 0, 0);
	emit(dir, "replies", 0, frame, (size_t)(p - frame));
}

int main(int argc, char **argv)
{
	uint8_t *p = frame, page[MS_PAGE_SIZE];
	size_t n;

	if (argc != 3) {
		fprintf(stderr, "usage: mkseeds FRAME_DIR REPLY_DIR\n");
		return 1;
	}
	memset(page, 0xab, sizeof(page));

	/* HELLO then STAT, PING, CREATE on an open server. */
	n = hdr(p, MS_OP_HELLO, 0, 40);
	put_le16(p + 24, 1);
	put_le16(p + 26, 1);
	memset(p + 32, 1, 32);
	p += n;
	p += hdr(p, MS_OP_STAT, 0, 0);
	n = hdr(p, MS_OP_PING, 0, 8);
	put_le32(p + 24, 0);
	p += n;
	n = hdr(p, MS_OP_REGION_CREATE, 0, 16);
	put_le64(p + 24, 2);
	put_le64(p + 32, 65536);
	p += n;
	emit(argv[1], "hello-stat-create", 0, frame, (size_t)(p - frame));

	/* Pre-opened region 1 at epoch 1: WRITE two pages, READ them back. */
	p = frame;
	n = hdr(p, MS_OP_WRITE, 2, 16 + 2 * (16 + MS_PAGE_SIZE));
	put_le64(p + 24, 1);
	put_le64(p + 32, 1);
	for (int i = 0; i < 2; i++) {
		put_le64(p + 40 + 16 * i, (uint64_t)i * 3);
		put_le64(p + 48 + 16 * i, ms_page_sum(page));
		memcpy(p + 72 + i * MS_PAGE_SIZE, page, MS_PAGE_SIZE);
	}
	p += n;
	n = hdr(p, MS_OP_READ, 3, 16 + 3 * 8);
	put_le64(p + 24, 1);
	put_le64(p + 32, 1);
	put_le64(p + 40, 0);
	put_le64(p + 48, 1);
	put_le64(p + 56, 3);
	p += n;
	n = hdr(p, MS_OP_DEBUG_CORRUPT, 0, 16);
	put_le64(p + 24, 1);
	put_le64(p + 32, 3);
	p += n;
	n = hdr(p, MS_OP_READ, 1, 16 + 8);
	put_le64(p + 24, 1);
	put_le64(p + 32, 1);
	put_le64(p + 40, 3);
	p += n;
	emit(argv[1], "write-read-corrupt", 2 | 4, frame, (size_t)(p - frame));

	/* Keyed server: HELLO then a (wrong) AUTH. */
	p = frame;
	n = hdr(p, MS_OP_HELLO, 0, 40);
	put_le16(p + 24, 1);
	put_le16(p + 26, 1);
	p += n;
	p += hdr(p, MS_OP_AUTH, 0, 32);
	emit(argv[1], "hello-auth", 1, frame, (size_t)(p - frame));

	/* OPEN and DELETE with a wrong token. */
	p = frame;
	n = hdr(p, MS_OP_REGION_OPEN, 0, 40);
	put_le64(p + 24, 1);
	p += n;
	n = hdr(p, MS_OP_REGION_DELETE, 0, 40);
	put_le64(p + 24, 1);
	p += n;
	emit(argv[1], "open-delete", 2, frame, (size_t)(p - frame));
	emit_replies(argv[2]);
	return 0;
}

/*
 * libFuzzer target for the client library's reply decoder: a detached TCP
 * client with one request of every kind in flight (ids 1..8) is fed the input
 * as if the server had sent it. Whatever arrives, the client must either
 * complete requests with sane results or declare itself dead, and never write
 * outside the caller's buffers.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "memserver/client_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t readbuf[2][3 * MS_PAGE_SIZE], zero[3], wbuf[MS_PAGE_SIZE];
	static struct ms_stat stat;
	uint64_t pages[3] = { 0, 1, 2 };
	struct ms_io ios[8], *done[8];
	struct ms_client *c;
	int n;

	/* The first byte is the frame fuzzer's mode byte; corpora share a tool. */
	if (size < 1 || ms_client_tcp_detached(&c))
		return 0;
	data++;
	size--;
	memset(ios, 0, sizeof(ios));
	ios[0] = (struct ms_io){ .op = MS_OP_READ, .npages = 3, .pages = pages,
				 .buf = readbuf[0], .zero = zero };
	ios[1] = (struct ms_io){ .op = MS_OP_READ, .npages = 1, .pages = pages,
				 .buf = readbuf[1] };
	ios[2] = (struct ms_io){ .op = MS_OP_WRITE, .npages = 1, .pages = pages, .buf = wbuf };
	ios[3] = (struct ms_io){ .op = MS_OP_REGION_CREATE, .arg = 4096 };
	ios[4] = (struct ms_io){ .op = MS_OP_REGION_OPEN };
	ios[5] = (struct ms_io){ .op = MS_OP_STAT, .stat = &stat };
	ios[6] = (struct ms_io){ .op = MS_OP_PING };
	ios[7] = (struct ms_io){ .op = MS_OP_REGION_DELETE };
	for (int i = 0; i < 8; i++)
		if (ms_client_submit(c, &ios[i]))
			__builtin_trap();
	/* Feed in two pieces so partial frames are exercised too. */
	ms_client_tcp_feed(c, data, size / 2);
	ms_client_tcp_feed(c, data + size / 2, size - size / 2);
	n = ms_client_poll(c, done, 8, 0);
	for (int i = 0; i < n; i++)
		if (done[i]->result > 0)
			__builtin_trap();
	ms_client_close(c);
	return 0;
}

/*
 * libFuzzer target for the memory server's request path: the bytes a client
 * sends are cut into frames exactly as the TCP front end does (server.c,
 * conn_process) and executed by a session over a fresh in-memory store. The
 * first input byte picks the session set-up, so the fuzzer reaches every stage:
 * bit 0 configures a cluster key (so AUTH must succeed first), bit 1 starts the
 * session authenticated with region 1 (1 MiB) already open at epoch 1, bit 2
 * enables test hooks. Any crash, leak, sanitizer report or unbounded output is
 * a bug.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/auth.h"
#include "common/buf.h"
#include "common/log.h"
#include "memserver/proto.h"
#include "memserver/session.h"
#include "memserver/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct auth_key fuzz_key = { .len = 16, .bytes = "0123456789abcdef" };

static void run_frames(struct ms_session *s, const uint8_t *data, size_t size,
		       struct buf *out)
{
	while (size >= MS_HDR_LEN) {
		struct ms_hdr hdr;
		uint32_t delay = 0;
		enum ms_verdict v;

		if (ms_hdr_decode(data, size, &hdr)) {
			ms_reply_status(out, &hdr, MS_ST_PROTO);
			return;
		}
		if (size < hdr.len)
			return;
		v = ms_session_handle(s, data, hdr.len, out, &delay);
		if (v == MS_V_DEFER && (delay == 0 || delay > MS_MAX_PING_DELAY_US))
			__builtin_trap();
		if (v == MS_V_CLOSE)
			return;
		/* Every reply is a well-formed frame no larger than the maximum. */
		while (buf_len(out) >= MS_HDR_LEN) {
			struct ms_hdr rh;

			if (ms_hdr_decode(buf_head(out), buf_len(out), &rh) ||
			    rh.len > buf_len(out) || rh.id != hdr.id)
				__builtin_trap();
			buf_consume(out, rh.len);
		}
		data += hdr.len;
		size -= hdr.len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_op_stats stats[MS_OP_MAX];
	struct ms_service svc = { 0 };
	struct ms_session s;
	struct buf out = { 0 };
	uint8_t mode, token[MS_TOKEN_LEN];

	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	log_current_level = LOG_ERROR - 1; /* silence */
	if (ms_store_create(64 << 20, &svc.store))
		return 0;
	svc.key = mode & 1 ? &fuzz_key : NULL;
	svc.test_hooks = mode & 4;
	memset(stats, 0, sizeof(stats));
	ms_session_init(&s, &svc, stats);
	if (mode & 2) {
		uint64_t epoch, rsize;

		if (ms_store_region_create(svc.store, 1, 1 << 20, token) ||
		    ms_store_region_open(svc.store, 1, token, &s.opens[0].region, &epoch, &rsize))
			__builtin_trap();
		s.opens[0].epoch = epoch;
		s.nopens = 1;
		s.authenticated = true;
	}
	run_frames(&s, data, size, &out);
	ms_session_release(&s);
	buf_free(&out);
	ms_store_destroy(svc.store);
	return 0;
}

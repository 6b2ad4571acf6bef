/*
 * The memory-server wire protocol, version 1: constants, frame header, request
 * decoding and reply encoding shared by the server, the client library and the
 * fuzzer. docs/protocol.md is the prose specification; this header is the
 * normative layout. Everything is little-endian; every frame starts with the
 * same 24-byte header and carries its own total length.
 *
 *   client                                   server
 *     | HELLO {versions, client nonce}  -->    |
 *     |  <--  HELLO reply {version, auth mode, server nonce}
 *     | AUTH {HMAC(key, "legato-ms-c" | sn | cn)} -->   (only when auth mode 1)
 *     |  <--  AUTH reply {HMAC(key, "legato-ms-s" | cn | sn)}
 *     | REGION_CREATE {id, size}        -->    |   reserves capacity
 *     |  <--  {token}                          |
 *     | REGION_OPEN {id, token}         -->    |   fences older openers
 *     |  <--  {epoch, size}                    |
 *     | READ {id, epoch, pages...}      -->    |   pipelined: many in flight,
 *     | WRITE {id, epoch, pages, data}  -->    |   matched by request id
 *     |  <--  replies, in any order            |
 *
 * Frame header (24 bytes):
 *   0  u32 length    whole frame, header included: MS_HDR_LEN..MS_MAX_FRAME
 *   4  u16 magic     MS_MAGIC
 *   6  u8  version   MS_PROTO_VERSION
 *   7  u8  opcode    request opcode; a reply echoes it with MS_REPLY set
 *   8  u64 id        chosen by the client, echoed in the reply
 *  16  u32 status    replies: MS_ST_*; requests: 0
 *  20  u32 count     READ/WRITE: number of pages (1..MS_MAX_BATCH); else 0
 */
#ifndef LEGATO_MEMSERVER_PROTO_H
#define LEGATO_MEMSERVER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/hist.h"

#define MS_PROTO_VERSION 1
#define MS_MAGIC 0x534d /* bytes 'M' 'S' */
#define MS_PAGE_SIZE 4096u
#define MS_PAGE_SHIFT 12
#define MS_HDR_LEN 24u
#define MS_MAX_BATCH 64u
#define MS_TOKEN_LEN 32u
#define MS_NONCE_LEN 32u
#define MS_MAC_LEN 32u
#define MS_REPLY 0x80u
/* The largest frame either side may send: a full WRITE batch. */
#define MS_MAX_FRAME (MS_HDR_LEN + 16u + MS_MAX_BATCH * (16u + MS_PAGE_SIZE))
/* Regions are at most 1 TiB: page numbers stay far from overflow. */
#define MS_MAX_REGION_SIZE (1ull << 40)
/* WRITTEN answers for at most this many pages (a 128 KiB bitmap). */
#define MS_MAX_WRITTEN_PAGES (1u << 20)
/* A PING may ask for its reply to be delayed (to exercise clients). */
#define MS_MAX_PING_DELAY_US 1000000u

enum ms_op {
	MS_OP_HELLO = 1,
	MS_OP_AUTH = 2,
	MS_OP_REGION_CREATE = 3,
	MS_OP_REGION_OPEN = 4,
	MS_OP_REGION_DELETE = 5,
	MS_OP_READ = 6,
	MS_OP_WRITE = 7,
	MS_OP_STAT = 8,
	MS_OP_PING = 9,
	MS_OP_DEBUG_CORRUPT = 10, /* only with --test-hooks */
	MS_OP_WRITTEN = 11,	  /* which pages hold data (a bitmap) */
	MS_OP_MAX
};

enum ms_status {
	MS_ST_OK = 0,
	MS_ST_PROTO = 1,	/* malformed frame or body */
	MS_ST_VERSION = 2,	/* no common protocol version */
	MS_ST_AUTH = 3,		/* not authenticated, or bad MAC */
	MS_ST_NOENT = 4,	/* no such region */
	MS_ST_EXIST = 5,	/* region id already exists */
	MS_ST_NOSPC = 6,	/* capacity cannot be reserved */
	MS_ST_ACCESS = 7,	/* wrong capability token */
	MS_ST_FENCED = 8,	/* a newer open owns the region */
	MS_ST_RANGE = 9,	/* page beyond the region */
	MS_ST_CHECKSUM = 10,	/* stored or sent page fails its checksum */
	MS_ST_INVAL = 11,	/* bad argument (size, count, delay) */
	MS_ST_NOTOPEN = 12,	/* region not opened on this connection */
	MS_ST_OPNOTSUPP = 13,	/* unknown or disabled opcode */
	MS_ST_TOOBIG = 14,	/* frame longer than MS_MAX_FRAME */
	MS_ST_INTERNAL = 15,	/* server out of memory or similar */
	MS_ST_MAX
};

/* READ reply per-page flag: the page was never written; no data follows. */
#define MS_PAGE_ZERO 1u

/* HELLO reply auth modes. */
#define MS_AUTH_NONE 0
#define MS_AUTH_HMAC_SHA256 1

struct ms_hdr {
	uint32_t len;
	uint8_t version;
	uint8_t op;
	uint64_t id;
	uint32_t status;
	uint32_t count;
};

/* A decoded request. Pointers refer into the frame, which must outlive it. */
struct ms_request {
	struct ms_hdr hdr;
	union {
		struct {
			uint16_t min_version, max_version;
			uint32_t flags;
			uint8_t nonce[MS_NONCE_LEN];
		} hello;
		struct {
			uint8_t mac[MS_MAC_LEN];
		} auth;
		struct {
			uint64_t region;
			uint64_t size;
		} create;
		struct {
			uint64_t region;
			uint8_t token[MS_TOKEN_LEN];
		} open; /* REGION_OPEN and REGION_DELETE */
		struct {
			uint64_t region;
			uint64_t epoch;
			/* READ: count x u64 page; WRITE: count x {u64 page, u64 sum} */
			const uint8_t *descs;
			const uint8_t *data; /* WRITE: count x MS_PAGE_SIZE */
		} io;
		struct {
			uint32_t delay_us;
		} ping;
		struct {
			uint64_t region;
			uint64_t page;
		} corrupt;
		struct {
			uint64_t region, epoch, first_page;
			uint32_t npages;
		} written;
	};
};

/* Per-operation counters the server keeps and STAT returns. */
struct ms_op_stats {
	uint64_t count;
	uint64_t errors;
	uint64_t bytes_in;
	uint64_t bytes_out;
	struct hist latency; /* service time in ns, decode to reply encoded */
};

struct ms_stat {
	uint64_t capacity;	/* bytes the server may reserve */
	uint64_t reserved;	/* bytes reserved by existing regions */
	uint64_t resident;	/* bytes of pages ever written (RAM in use) */
	uint64_t regions;
	uint64_t connections;
	uint64_t uptime_ns;
	struct ms_op_stats ops[MS_OP_MAX];
};

/* Size of an encoded ms_stat. */
#define MS_STAT_WIRE_LEN (8u + 6u * 8u + MS_OP_MAX * (4u * 8u + HIST_BUCKETS * 8u))

/*
 * Decodes a frame header from the first avail bytes of buf.
 * Returns 0, -EAGAIN when fewer than MS_HDR_LEN bytes are present, -EPROTO for a
 * bad magic or a length below the header, -EPROTONOSUPPORT for another version,
 * -EMSGSIZE for a length above MS_MAX_FRAME. h is filled whenever at least the
 * header bytes are present, so an error reply can echo the id.
 */
int ms_hdr_decode(const void *buf, size_t avail, struct ms_hdr *h);

/* Encodes h into the first MS_HDR_LEN bytes of buf. */
void ms_hdr_encode(void *buf, const struct ms_hdr *h);

/*
 * Decodes a whole request frame (len bytes, header included and valid).
 * Returns MS_ST_OK or the status to reply with (MS_ST_PROTO, MS_ST_OPNOTSUPP,
 * MS_ST_INVAL). Never reads outside frame[0..len).
 */
enum ms_status ms_request_decode(const uint8_t *frame, size_t len, struct ms_request *req);

/* Encodes/decodes the STAT reply body. encode returns MS_STAT_WIRE_LEN;
 * decode returns 0 or -EPROTO. */
size_t ms_stat_encode(const struct ms_stat *s, uint8_t *buf);
int ms_stat_decode(const uint8_t *buf, size_t len, struct ms_stat *s);

const char *ms_op_name(unsigned op);
const char *ms_status_name(unsigned status);

/* Maps a reply status to the -errno the client library returns. */
int ms_status_to_errno(unsigned status);

/* The checksum stored with and sent alongside every page: XXH3-64 with bit 0
 * set, so it is never 0 and a stored 0 means "never written" (what an RDMA
 * reader, who sees only the stored sum, relies on). */
uint64_t ms_page_sum(const void *page);

/*
 * rdma:// (docs/protocol.md, "RDMA"): an RC connection made with librdmacm.
 * The connect request and the accept carry struct ms_rdma_priv as private
 * data; after that the same byte stream as over TCP (every frame above)
 * travels in SEND messages of at most MS_RDMA_MSG bytes, any frame split
 * over as many messages as it needs, and each side keeps MS_RDMA_RECV_DEPTH
 * receives posted (the QP retries an RNR NAK for ever: a busy receiver
 * slows its sender down, as a full TCP window does). Page reads and writes
 * are one-sided instead: a REGION_OPEN reply over rdma:// carries
 * MS_RDMA_OPEN_EXTRA more bytes, the region's registrations in this
 * connection's protection domain:
 *
 *   0 u64 epoch   8 u64 size   (as over TCP)
 *  16 u64 slots_addr   page p's slot at slots_addr + p * slot_size:
 *                      the page (MS_PAGE_SIZE), then its stored sum (le64)
 *  24 u32 rkey        28 u32 slot_size (MS_SLOT_SIZE)
 *
 * READ: one RDMA READ of the slot (of a run of slots); sum 0: never written
 * (zeros); else ms_page_sum(page) must equal it. WRITE: one RDMA WRITE of
 * the page and its sum, the slot's bytes in order.
 */
#define MS_RDMA_MAGIC 0x4c474d53u	/* "LGMS" */
#define MS_RDMA_MSG 16384u
#define MS_RDMA_RECV_DEPTH 32u
#define MS_RDMA_PRIV_LEN 16u
#define MS_RDMA_OPEN_EXTRA 16u
/* A stored page and its checksum, adjacent (the store's layout, which
 * rdma:// exposes): a multiple of 8, so every sum is aligned. */
#define MS_SLOT_SIZE (MS_PAGE_SIZE + 8u)

/* Connect and accept private data (little-endian on the wire). */
struct ms_rdma_priv {
	uint32_t magic;		/* MS_RDMA_MAGIC */
	uint16_t version;	/* MS_PROTO_VERSION */
	uint16_t flags;		/* 0 */
	uint32_t msg_size;	/* MS_RDMA_MSG */
	uint32_t recv_depth;	/* MS_RDMA_RECV_DEPTH */
};

/* Encodes p into buf (MS_RDMA_PRIV_LEN bytes). */
void ms_rdma_priv_encode(const struct ms_rdma_priv *p, uint8_t *buf);
/* Decodes len bytes of private data; returns 0, or -EPROTO unless they hold
 * MS_RDMA_PRIV_LEN bytes with our magic, version, message size and depth. */
int ms_rdma_priv_decode(const uint8_t *buf, size_t len, struct ms_rdma_priv *p);

#endif

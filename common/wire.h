/*
 * Little-endian encoding helpers for the wire protocols. Every multi-byte field
 * on the wire is little-endian and unaligned; these read and write through
 * memcpy so the compiler emits plain loads and stores on x86 and correct code
 * elsewhere. A cursor type keeps bounds checks in one place for decoders.
 */
#ifndef LEGATO_COMMON_WIRE_H
#define LEGATO_COMMON_WIRE_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void put_le16(void *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static inline void put_le32(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline void put_le64(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static inline uint16_t get_le16(const void *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static inline uint32_t get_le32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t get_le64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

/*
 * A read cursor over an untrusted buffer. Every get advances only if the bytes
 * are there; once a read falls short, ok becomes false and stays false, and
 * later reads yield zeros. Decoders check ok once at the end.
 */
struct wire_reader {
	const uint8_t *p;
	size_t left;
	bool ok;
};

static inline void wire_reader_init(struct wire_reader *r, const void *buf, size_t len)
{
	r->p = buf;
	r->left = len;
	r->ok = true;
}

static inline const uint8_t *wire_take(struct wire_reader *r, size_t n)
{
	const uint8_t *p = r->p;

	if (!r->ok || r->left < n) {
		r->ok = false;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static inline uint16_t wire_get16(struct wire_reader *r)
{
	const uint8_t *p = wire_take(r, 2);

	return p ? get_le16(p) : 0;
}

static inline uint32_t wire_get32(struct wire_reader *r)
{
	const uint8_t *p = wire_take(r, 4);

	return p ? get_le32(p) : 0;
}

static inline uint64_t wire_get64(struct wire_reader *r)
{
	const uint8_t *p = wire_take(r, 8);

	return p ? get_le64(p) : 0;
}

static inline void wire_get_bytes(struct wire_reader *r, void *out, size_t n)
{
	const uint8_t *p = wire_take(r, n);

	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

#endif

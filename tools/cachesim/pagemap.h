/*
 * A growable open-addressing hash map from 64-bit page numbers to dense ids
 * 0..n-1 in order of first insertion, for the trace tools (cachesim,
 * lackey2trace). Header-only; linear probing; the table doubles at 50% load.
 */
#ifndef LEGATO_TOOLS_CACHESIM_PAGEMAP_H
#define LEGATO_TOOLS_CACHESIM_PAGEMAP_H

#include <stdint.h>
#include <stdlib.h>

struct pagemap {
	uint64_t *keys;
	uint32_t *vals;		/* UINT32_MAX: empty slot */
	uint64_t mask;
	uint32_t n;
};

static inline uint64_t pagemap_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	return k ^ (k >> 33);
}

static inline int pagemap_init(struct pagemap *m, uint64_t cap)
{
	uint64_t size = 1024;

	while (size < cap * 2)
		size <<= 1;
	m->keys = malloc(size * sizeof(*m->keys));
	m->vals = malloc(size * sizeof(*m->vals));
	if (!m->keys || !m->vals) {
		free(m->keys);
		free(m->vals);
		return -1;
	}
	for (uint64_t i = 0; i < size; i++)
		m->vals[i] = UINT32_MAX;
	m->mask = size - 1;
	m->n = 0;
	return 0;
}

static inline void pagemap_free(struct pagemap *m)
{
	free(m->keys);
	free(m->vals);
}

static inline int pagemap_grow(struct pagemap *m)
{
	struct pagemap bigger;

	if (pagemap_init(&bigger, (m->mask + 1)))
		return -1;
	for (uint64_t i = 0; i <= m->mask; i++) {
		if (m->vals[i] == UINT32_MAX)
			continue;
		uint64_t j = pagemap_hash(m->keys[i]) & bigger.mask;

		while (bigger.vals[j] != UINT32_MAX)
			j = (j + 1) & bigger.mask;
		bigger.keys[j] = m->keys[i];
		bigger.vals[j] = m->vals[i];
	}
	bigger.n = m->n;
	pagemap_free(m);
	*m = bigger;
	return 0;
}

/* The id of page k, assigning the next one when k is new; UINT32_MAX when out
 * of memory (or of ids). *fresh tells whether k was new. */
static inline uint32_t pagemap_get(struct pagemap *m, uint64_t k, int *fresh)
{
	uint64_t j;

	if ((uint64_t)(m->n + 1) * 2 > m->mask + 1 && pagemap_grow(m))
		return UINT32_MAX;
	j = pagemap_hash(k) & m->mask;
	while (m->vals[j] != UINT32_MAX) {
		if (m->keys[j] == k) {
			*fresh = 0;
			return m->vals[j];
		}
		j = (j + 1) & m->mask;
	}
	if (m->n == UINT32_MAX - 1)
		return UINT32_MAX;
	m->keys[j] = k;
	m->vals[j] = m->n;
	*fresh = 1;
	return m->n++;
}

#endif

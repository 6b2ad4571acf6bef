/*
 * Growable byte buffer (see buf.h). Capacity doubles; consumed bytes are
 * reclaimed by sliding the live bytes to the front before growing.
 */
#include "common/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

uint8_t *buf_reserve(struct buf *b, size_t n)
{
	size_t live = buf_len(b), cap;
	uint8_t *p;

	if (b->data && b->cap - b->end >= n)
		return b->data + b->end;
	if (b->start && b->cap - live >= n) {
		memmove(b->data, b->data + b->start, live);
		b->start = 0;
		b->end = live;
		return b->data + b->end;
	}
	if (n > SIZE_MAX / 4 - live)
		return NULL;
	cap = b->cap ? b->cap : 4096;
	while (cap - live < n)
		cap *= 2;
	p = malloc(cap);
	if (!p)
		return NULL;
	if (live)
		memcpy(p, b->data + b->start, live);
	free(b->data);
	b->data = p;
	b->cap = cap;
	b->start = 0;
	b->end = live;
	return b->data + b->end;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	uint8_t *dst = buf_reserve(b, n);

	if (!dst)
		return -ENOMEM;
	memcpy(dst, p, n);
	b->end += n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	b->start += n;
	if (b->start >= b->end)
		b->start = b->end = 0;
}

void buf_shrink(struct buf *b, size_t keep)
{
	if (buf_len(b) == 0 && b->cap > keep) {
		free(b->data);
		b->data = NULL;
		b->cap = b->start = b->end = 0;
	}
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->cap = b->start = b->end = 0;
}

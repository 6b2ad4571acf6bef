/*
 * A growable byte buffer with a consumed prefix, used for connection input and
 * output queues. Appending never moves data that was handed out as a pointer
 * during the same call; callers re-derive pointers after any growth.
 */
#ifndef LEGATO_COMMON_BUF_H
#define LEGATO_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t start;	/* first unconsumed byte */
	size_t end;	/* one past the last byte */
	size_t cap;
};

/* Bytes waiting between start and end. */
static inline size_t buf_len(const struct buf *b)
{
	return b->end - b->start;
}

static inline uint8_t *buf_head(const struct buf *b)
{
	return b->data + b->start;
}

/*
 * Makes room for n more bytes after end (compacting or growing) and returns a
 * pointer to them; the caller fills them and calls buf_commit. Returns NULL
 * when memory runs out.
 */
uint8_t *buf_reserve(struct buf *b, size_t n);

static inline void buf_commit(struct buf *b, size_t n)
{
	b->end += n;
}

/* Appends n bytes. Returns 0 or -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Drops n bytes from the front; resets offsets when the buffer empties. */
void buf_consume(struct buf *b, size_t n);

/* Frees the storage when empty and larger than keep bytes, so an idle
 * connection that once carried a large frame does not pin it. */
void buf_shrink(struct buf *b, size_t keep);

void buf_free(struct buf *b);

#endif

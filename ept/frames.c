/*
 * Frame table, page hash and buffer pool (see frames.h). The hash has twice as
 * many slots as frames, so probes stay short; deletion shifts later entries
 * back instead of leaving tombstones, so lookups never degrade over time.
 */
#include "ept/frames.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "memserver/proto.h"

static uint64_t hash_page(uint64_t page)
{
	page ^= page >> 33;
	page *= 0xff51afd7ed558ccdull;
	page ^= page >> 33;
	return page;
}

int ept_frames_init(struct ept_frames *t, uint32_t nframes, uint64_t npages)
{
	uint64_t slots = 16;

	memset(t, 0, sizeof(*t));
	while (slots < 2ull * nframes)
		slots *= 2;
	t->nframes = nframes;
	t->npages = npages;
	t->hash_mask = slots - 1;
	t->frames = calloc(nframes, sizeof(*t->frames));
	t->keys = calloc(slots, sizeof(*t->keys));
	t->vals = calloc(slots, sizeof(*t->vals));
	t->nbufs = EPT_BUFS_PER_FRAME * nframes;
	t->buf_free = calloc(t->nbufs, sizeof(*t->buf_free));
	t->remote = calloc((npages + 63) / 64, sizeof(*t->remote));
	/* Buffers are committed only once used; LIFO reuse keeps the committed
	 * set as small as the peak number of pages held off the region. */
	t->pool = mmap(NULL, (size_t)t->nbufs * MS_PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (t->pool == MAP_FAILED)
		t->pool = NULL;
	if (!t->frames || !t->keys || !t->vals || !t->buf_free || !t->remote || !t->pool) {
		ept_frames_free(t);
		return -ENOMEM;
	}
	madvise(t->pool, (size_t)t->nbufs * MS_PAGE_SIZE, MADV_NOHUGEPAGE);
	for (uint32_t i = 0; i < nframes; i++)
		t->frames[i].next_free = i + 1 < nframes ? (int32_t)(i + 1) : -1;
	for (uint32_t i = 0; i < t->nbufs; i++)
		t->buf_free[i] = t->pool + (size_t)(t->nbufs - 1 - i) * MS_PAGE_SIZE;
	t->free_head = 0;
	t->nfree = nframes;
	t->nbuf_free = t->nbufs;
	return 0;
}

void ept_frames_free(struct ept_frames *t)
{
	if (t->pool)
		munmap(t->pool, (size_t)t->nbufs * MS_PAGE_SIZE);
	free(t->frames);
	free(t->keys);
	free(t->vals);
	free(t->buf_free);
	free(t->remote);
	memset(t, 0, sizeof(*t));
}

int32_t ept_frames_lookup(const struct ept_frames *t, uint64_t page)
{
	for (uint64_t i = hash_page(page) & t->hash_mask;; i = (i + 1) & t->hash_mask) {
		if (t->keys[i] == 0)
			return -1;
		if (t->keys[i] == page + 1)
			return (int32_t)t->vals[i];
	}
}

int32_t ept_frames_take(struct ept_frames *t, uint64_t page)
{
	int32_t f = t->free_head;
	uint64_t i;

	if (f < 0)
		return -1;
	t->free_head = t->frames[f].next_free;
	t->nfree--;
	for (i = hash_page(page) & t->hash_mask; t->keys[i]; i = (i + 1) & t->hash_mask)
		;
	t->keys[i] = page + 1;
	t->vals[i] = (uint32_t)f;
	t->frames[f].page = page;
	t->frames[f].flags = 0;
	t->frames[f].t0 = 0;
	t->frames[f].buf = NULL;
	t->frames[f].wb = NULL;
	t->frames[f].pending = NULL;
	t->frames[f].gen++;
	return f;
}

/* Removes key at slot i, shifting back later entries of the same cluster. */
static void hash_delete(struct ept_frames *t, uint64_t i)
{
	uint64_t j = i;

	t->keys[i] = 0;
	for (;;) {
		uint64_t home;

		j = (j + 1) & t->hash_mask;
		if (t->keys[j] == 0)
			return;
		home = hash_page(t->keys[j] - 1) & t->hash_mask;
		/* Leave j alone if its home lies cyclically in (i, j]. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		t->keys[i] = t->keys[j];
		t->vals[i] = t->vals[j];
		t->keys[j] = 0;
		i = j;
	}
}

void ept_frames_release(struct ept_frames *t, uint32_t f)
{
	struct ept_frame *fr = &t->frames[f];
	uint64_t i;

	for (i = hash_page(fr->page) & t->hash_mask; t->keys[i] != fr->page + 1;
	     i = (i + 1) & t->hash_mask)
		;
	hash_delete(t, i);
	fr->state = FR_FREE;
	fr->flags = 0;
	fr->gen++;
	fr->next_free = t->free_head;
	t->free_head = (int32_t)f;
	t->nfree++;
}

uint8_t *ept_buf_get(struct ept_frames *t)
{
	if (!t->nbuf_free)
		abort(); /* EPT_BUFS_PER_FRAME per frame: cannot run out */
	return t->buf_free[--t->nbuf_free];
}

void ept_buf_put(struct ept_frames *t, uint8_t *buf)
{
	t->buf_free[t->nbuf_free++] = buf;
}

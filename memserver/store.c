/*
 * Region table and page storage for the memory server (see store.h for the
 * invariants and locking). Each region owns one lazily committed anonymous
 * mapping of MS_SLOT_SIZE slots, page p's slot holding the page and then its
 * le64 checksum: adjacent, so an RDMA reader fetches both with one READ
 * (docs/protocol.md). A checksum is never 0 (ms_page_sum sets bit 0), so a
 * stored 0 is "never written": the one record of written-ness, which RDMA
 * writers (who store page and sum themselves, with no server CPU involved)
 * keep up to date as well as the TCP path. Slots are 8-byte aligned
 * (MS_SLOT_SIZE is a multiple of 8), so the sums are read atomically.
 *
 * The price of the adjacency: a page straddles two host pages, so a lone
 * write over tcp:// commits 8 KiB, not 4 (neighbouring writes share them).
 * A region served over rdma:// is pinned whole anyway.
 */
#include "memserver/store.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/auth.h"
#include "common/log.h"

#define STORE_BUCKETS 4096u

struct ms_region {
	uint64_t id;
	uint64_t size;
	uint64_t npages;
	uint8_t token[MS_TOKEN_LEN];
	uint64_t epoch;		/* current owner's epoch; 0 = never opened */
	bool deleted;
	uint8_t *slots;		/* npages * MS_SLOT_SIZE: page, then le64 sum (0: never written) */
	size_t slots_len;
	uint64_t resident;	/* pages written through the store (atomic) */
	bool pinned;		/* registered for RDMA once: all resident */
	struct ms_region_lease *leases;	/* under lock, exclusively */
	pthread_rwlock_t lock;
	unsigned refs;		/* table membership + open handles; under table mutex */
	struct ms_store *store;
	struct ms_region *next;	/* hash chain */
};

struct ms_store {
	pthread_mutex_t mutex;
	uint64_t capacity;
	uint64_t reserved;
	uint64_t regions;
	uint64_t resident_pages; /* atomic */
	struct ms_region *buckets[STORE_BUCKETS];
};

static unsigned bucket_of(uint64_t id)
{
	return (unsigned)((id * 0x9e3779b97f4a7c15ull) >> 52) % STORE_BUCKETS;
}

int ms_store_create(uint64_t capacity, struct ms_store **out)
{
	struct ms_store *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->mutex, NULL);
	st->capacity = capacity;
	*out = st;
	return 0;
}

/* Maps len bytes of lazily committed, never-huge, never-dumped memory. */
static void *lazy_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* Stock Debian kernels default THP to "always": one 4 KiB write would
	 * commit 2 MiB. */
	madvise(p, len, MADV_NOHUGEPAGE);
	madvise(p, len, MADV_DONTDUMP);
	return p;
}

static void region_unmap(struct ms_region *r)
{
	if (r->slots)
		munmap(r->slots, r->slots_len);
	r->slots = NULL;
}

/* Pages of r in RAM: every page once pinned for RDMA, else those written. */
static uint64_t region_resident(const struct ms_region *r)
{
	return r->pinned ? r->npages : __atomic_load_n(&r->resident, __ATOMIC_RELAXED);
}

/* Revokes every lease (region lock held exclusively). */
static void region_revoke_leases(struct ms_region *r)
{
	while (r->leases) {
		struct ms_region_lease *l = r->leases;

		r->leases = l->next;
		l->next = NULL;
		l->revoked = true;
		l->revoke(l);
	}
}

static void region_free(struct ms_region *r)
{
	region_unmap(r);
	pthread_rwlock_destroy(&r->lock);
	free(r);
}

void ms_store_destroy(struct ms_store *st)
{
	if (!st)
		return;
	for (unsigned b = 0; b < STORE_BUCKETS; b++) {
		struct ms_region *r = st->buckets[b], *next;

		for (; r; r = next) {
			next = r->next;
			region_free(r);
		}
	}
	pthread_mutex_destroy(&st->mutex);
	free(st);
}

void ms_store_stat(struct ms_store *st, struct ms_stat *out)
{
	pthread_mutex_lock(&st->mutex);
	out->capacity = st->capacity;
	out->reserved = st->reserved;
	out->regions = st->regions;
	pthread_mutex_unlock(&st->mutex);
	out->resident = __atomic_load_n(&st->resident_pages, __ATOMIC_RELAXED) * MS_PAGE_SIZE;
}

static struct ms_region *lookup_locked(struct ms_store *st, uint64_t id)
{
	struct ms_region *r = st->buckets[bucket_of(id)];

	while (r && r->id != id)
		r = r->next;
	return r;
}

static int region_alloc(uint64_t id, uint64_t size, struct ms_region **out)
{
	struct ms_region *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->id = id;
	r->size = size;
	r->npages = size / MS_PAGE_SIZE;
	r->slots_len = r->npages * MS_SLOT_SIZE;
	r->slots = lazy_map(r->slots_len);
	if (!r->slots)
		goto unmap;
	if (auth_random(r->token, MS_TOKEN_LEN))
		goto unmap;
	pthread_rwlock_init(&r->lock, NULL);
	r->refs = 1;
	*out = r;
	return 0;

unmap:
	region_unmap(r);
	free(r);
	return -ENOMEM;
}

int ms_store_region_create(struct ms_store *st, uint64_t id, uint64_t size,
			   uint8_t token[MS_TOKEN_LEN])
{
	struct ms_region *r;
	unsigned b = bucket_of(id);
	int ret;

	if (size == 0 || size % MS_PAGE_SIZE || size > MS_MAX_REGION_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&st->mutex);
	if (lookup_locked(st, id)) {
		ret = -EEXIST;
		goto unlock;
	}
	if (size > st->capacity - st->reserved) {
		ret = -ENOSPC;
		goto unlock;
	}
	ret = region_alloc(id, size, &r);
	if (ret)
		goto unlock;
	r->store = st;
	r->next = st->buckets[b];
	st->buckets[b] = r;
	st->reserved += size;
	st->regions++;
	memcpy(token, r->token, MS_TOKEN_LEN);
unlock:
	pthread_mutex_unlock(&st->mutex);
	return ret;
}

int ms_store_region_open(struct ms_store *st, uint64_t id, const uint8_t token[MS_TOKEN_LEN],
			 struct ms_region **out, uint64_t *epoch, uint64_t *size)
{
	struct ms_region *r;

	pthread_mutex_lock(&st->mutex);
	r = lookup_locked(st, id);
	if (!r) {
		pthread_mutex_unlock(&st->mutex);
		return -ENOENT;
	}
	if (!auth_equal(r->token, token, MS_TOKEN_LEN)) {
		pthread_mutex_unlock(&st->mutex);
		return -EACCES;
	}
	r->refs++;
	pthread_mutex_unlock(&st->mutex);

	/* Exclusive: waits for any batch of the previous owner to finish, so
	 * nothing it sends after this point can land; its RDMA registrations
	 * go before the new epoch is handed out. */
	pthread_rwlock_wrlock(&r->lock);
	region_revoke_leases(r);
	*epoch = ++r->epoch;
	pthread_rwlock_unlock(&r->lock);
	*size = r->size;
	*out = r;
	return 0;
}

int ms_store_region_delete(struct ms_store *st, uint64_t id, const uint8_t token[MS_TOKEN_LEN])
{
	struct ms_region **pp, *r;
	uint64_t pages;

	pthread_mutex_lock(&st->mutex);
	for (pp = &st->buckets[bucket_of(id)]; *pp && (*pp)->id != id; pp = &(*pp)->next)
		;
	r = *pp;
	if (!r) {
		pthread_mutex_unlock(&st->mutex);
		return -ENOENT;
	}
	if (!auth_equal(r->token, token, MS_TOKEN_LEN)) {
		pthread_mutex_unlock(&st->mutex);
		return -EACCES;
	}
	*pp = r->next;
	st->reserved -= r->size;
	st->regions--;

	pthread_rwlock_wrlock(&r->lock);
	r->deleted = true;
	region_revoke_leases(r);	/* no registration may outlive the mapping */
	pages = region_resident(r);
	region_unmap(r);
	pthread_rwlock_unlock(&r->lock);
	__atomic_fetch_sub(&st->resident_pages, pages, __ATOMIC_RELAXED);

	if (--r->refs == 0)
		region_free(r);
	pthread_mutex_unlock(&st->mutex);
	return 0;
}

void ms_region_put(struct ms_region *r)
{
	struct ms_store *st = r->store;
	bool last;

	pthread_mutex_lock(&st->mutex);
	last = --r->refs == 0;
	pthread_mutex_unlock(&st->mutex);
	if (last)
		region_free(r);
}

uint64_t ms_region_id(const struct ms_region *r)
{
	return r->id;
}

int ms_region_io_begin(struct ms_region *r, uint64_t epoch)
{
	pthread_rwlock_rdlock(&r->lock);
	if (r->deleted) {
		pthread_rwlock_unlock(&r->lock);
		return -ENOENT;
	}
	if (r->epoch != epoch) {
		pthread_rwlock_unlock(&r->lock);
		return -ESTALE;
	}
	return 0;
}

void ms_region_io_end(struct ms_region *r)
{
	pthread_rwlock_unlock(&r->lock);
}

bool ms_region_page_valid(const struct ms_region *r, uint64_t page)
{
	return page < r->npages;
}

static uint8_t *slot_page(const struct ms_region *r, uint64_t page)
{
	return r->slots + page * MS_SLOT_SIZE;
}

static uint64_t *slot_sum(const struct ms_region *r, uint64_t page)
{
	return (uint64_t *)(void *)(slot_page(r, page) + MS_PAGE_SIZE);
}

static bool page_written(const struct ms_region *r, uint64_t page)
{
	return __atomic_load_n(slot_sum(r, page), __ATOMIC_ACQUIRE) != 0;
}

int ms_region_read_page(struct ms_region *r, uint64_t page, void *dst, uint64_t *sum,
			bool *zero)
{
	const uint8_t *src = slot_page(r, page);

	if (!page_written(r, page)) {
		*zero = true;
		*sum = 0;
		return 0;
	}
	*zero = false;
	memcpy(dst, src, MS_PAGE_SIZE);
	*sum = le64toh(__atomic_load_n(slot_sum(r, page), __ATOMIC_RELAXED));
	/* Verify the copy we send, not the source: what leaves is what was
	 * checked. */
	if (ms_page_sum(dst) != *sum) {
		log_err("region %llu page %llu: stored checksum mismatch",
			(unsigned long long)r->id, (unsigned long long)page);
		return -EBADMSG;
	}
	return 0;
}

void ms_region_write_page(struct ms_region *r, uint64_t page, const void *src, uint64_t sum)
{
	uint64_t old;

	memcpy(slot_page(r, page), src, MS_PAGE_SIZE);
	/* The sum goes last (release): whoever sees it non-zero sees the page. */
	old = __atomic_exchange_n(slot_sum(r, page), htole64(sum), __ATOMIC_RELEASE);
	if (!old && !r->pinned) {
		__atomic_fetch_add(&r->resident, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&r->store->resident_pages, 1, __ATOMIC_RELAXED);
	}
}

int ms_region_written_map(struct ms_region *r, uint64_t first, uint32_t n, uint8_t *bitmap)
{
	if (first >= r->npages || n > r->npages - first)
		return -ERANGE;
	memset(bitmap, 0, (n + 7) / 8);
	for (uint32_t i = 0; i < n; i++)
		if (page_written(r, first + i))
			bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
	return 0;
}

int ms_store_debug_corrupt(struct ms_store *st, uint64_t id, uint64_t page)
{
	struct ms_region *r;
	int ret = 0;

	pthread_mutex_lock(&st->mutex);
	r = lookup_locked(st, id);
	if (!r)
		ret = -ENOENT;
	else if (page >= r->npages)
		ret = -ERANGE;
	if (ret)
		goto unlock;
	pthread_rwlock_wrlock(&r->lock);
	if (!page_written(r, page))
		ret = -ENODATA;
	else
		slot_page(r, page)[123] ^= 0x10;
	pthread_rwlock_unlock(&r->lock);
unlock:
	pthread_mutex_unlock(&st->mutex);
	return ret;
}

int ms_region_lease_add(struct ms_region *r, uint64_t epoch, struct ms_region_lease *l)
{
	uint64_t pages;
	int ret;

	pthread_rwlock_wrlock(&r->lock);
	if (r->deleted || r->epoch != epoch) {
		ret = r->deleted ? -ENOENT : -ESTALE;
		goto unlock;
	}
	ret = l->expose(l, r->slots, r->slots_len);
	if (ret)
		goto unlock;
	l->revoked = false;
	l->next = r->leases;
	r->leases = l;
	if (!r->pinned) {
		/* Registration faulted in every page. */
		pages = r->npages - __atomic_load_n(&r->resident, __ATOMIC_RELAXED);
		r->pinned = true;
		__atomic_fetch_add(&r->store->resident_pages, pages, __ATOMIC_RELAXED);
	}
unlock:
	pthread_rwlock_unlock(&r->lock);
	return ret;
}

void ms_region_lease_drop(struct ms_region *r, struct ms_region_lease *l)
{
	struct ms_region_lease **pp;

	pthread_rwlock_wrlock(&r->lock);
	for (pp = &r->leases; *pp && *pp != l; pp = &(*pp)->next)
		;
	if (*pp) {
		*pp = l->next;
		l->next = NULL;
		l->revoked = true;
		l->revoke(l);
	}
	pthread_rwlock_unlock(&r->lock);
}

uint64_t ms_region_size(const struct ms_region *r)
{
	return r->size;
}

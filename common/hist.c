/*
 * Log-linear histogram (see hist.h). Bucket i < HIST_SUB holds exactly value i;
 * above that, bucket (e - HIST_SUB_BITS + 1) * HIST_SUB + s holds the values
 * whose highest set bit is e and whose next HIST_SUB_BITS bits are s.
 */
#include "common/hist.h"

unsigned hist_bucket(uint64_t v)
{
	unsigned e, s, i;

	if (v < HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	s = (unsigned)(v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
	i = (e - HIST_SUB_BITS + 1) * HIST_SUB + s;
	return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

uint64_t hist_bucket_low(unsigned i)
{
	unsigned e, s;

	if (i < HIST_SUB)
		return i;
	e = i / HIST_SUB + HIST_SUB_BITS - 1;
	s = i % HIST_SUB;
	return (1ull << e) | ((uint64_t)s << (e - HIST_SUB_BITS));
}

void hist_add(struct hist *h, uint64_t v)
{
	unsigned i = hist_bucket(v);

	__atomic_store_n(&h->count[i], h->count[i] + 1, __ATOMIC_RELAXED);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->count[i] += __atomic_load_n(&src->count[i], __ATOMIC_RELAXED);
}

uint64_t hist_total(const struct hist *h)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		n += __atomic_load_n(&h->count[i], __ATOMIC_RELAXED);
	return n;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t total = hist_total(h), seen = 0, rank;

	if (!total)
		return 0;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	rank = (uint64_t)(q * (double)(total - 1)) + 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += __atomic_load_n(&h->count[i], __ATOMIC_RELAXED);
		if (seen >= rank) {
			uint64_t lo = hist_bucket_low(i);
			uint64_t hi = i + 1 < HIST_BUCKETS ? hist_bucket_low(i + 1) : lo;

			return lo + (hi - lo) / 2;
		}
	}
	return hist_bucket_low(HIST_BUCKETS - 1);
}

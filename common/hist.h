/*
 * Latency histograms with bounded relative error: values (nanoseconds) fall in
 * power-of-two ranges split into HIST_SUB linear sub-buckets, so any reported
 * percentile is within 1/HIST_SUB of the truth, in constant memory. A
 * histogram has one writer; readers may sample it from other threads (counts
 * are read with relaxed atomics and may be momentarily inconsistent).
 */
#ifndef LEGATO_COMMON_HIST_H
#define LEGATO_COMMON_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 2
#define HIST_SUB (1u << HIST_SUB_BITS)
/* Covers 0 .. 2^37 ns (~137 s); larger values land in the last bucket. */
#define HIST_BUCKETS (36 * HIST_SUB)

struct hist {
	uint64_t count[HIST_BUCKETS];
};

/* Bucket index of value v. */
unsigned hist_bucket(uint64_t v);

/* Smallest value that falls in bucket i. */
uint64_t hist_bucket_low(unsigned i);

/* Records one value; single writer. */
void hist_add(struct hist *h, uint64_t v);

/* Adds every count of src into dst (dst owned by the caller). */
void hist_merge(struct hist *dst, const struct hist *src);

/* Total number of recorded values. */
uint64_t hist_total(const struct hist *h);

/* Value at quantile q (0..1), the midpoint of its bucket; 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif

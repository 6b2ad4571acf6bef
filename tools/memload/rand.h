/*
 * Small, fast, deterministic random number generation for the workload
 * drivers: xoshiro256** seeded through splitmix64, and a Zipf sampler by
 * rejection-inversion (Hormann and Derflinger, "Rejection-inversion to
 * generate variates from monotone discrete distributions", 1996): O(1) memory
 * and a handful of floating-point operations per sample, for any number of
 * elements and any exponent > 0.
 */
#ifndef LEGATO_TOOLS_MEMLOAD_RAND_H
#define LEGATO_TOOLS_MEMLOAD_RAND_H

#include <stdint.h>

struct rng {
	uint64_t s[4];
};

static inline uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A stateless 64-bit mix (the splitmix64 finalizer). */
static inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t x = s[1] * 5;
	uint64_t result = ((x << 7) | (x >> 57)) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return result;
}

/* Uniform in [0, 1). */
static inline double rng_double(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n > 0 (Lemire's multiply-shift; the bias is below 2^-32
 * for any n this tool uses). */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

struct zipf {
	uint64_t n;
	double s;
	double h_x1, h_n, sv;
};

/* Ranks 1..n with P(k) proportional to k^-s; s > 0. */
void zipf_init(struct zipf *z, uint64_t n, double s);
/* A rank in [0, n): 0 is the most popular. */
uint64_t zipf_next(const struct zipf *z, struct rng *r);

#endif

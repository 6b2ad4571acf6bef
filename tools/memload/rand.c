/*
 * Rejection-inversion Zipf sampling (see rand.h). H is an integral of
 * h(x) = x^-s; a uniform point under H's range is inverted to x, rounded to the
 * nearest rank k, and accepted unless it falls in the sliver between the
 * integral and the histogram bar of k (rare: a few percent at most).
 */
#include "tools/memload/rand.h"

#include <math.h>

/* log1p(x)/x and expm1(x)/x, accurate near 0. */
static double helper1(double x)
{
	if (fabs(x) > 1e-8)
		return log1p(x) / x;
	return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

static double helper2(double x)
{
	if (fabs(x) > 1e-8)
		return expm1(x) / x;
	return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

static double h_integral(const struct zipf *z, double x)
{
	double lx = log(x);

	return helper2((1.0 - z->s) * lx) * lx;
}

static double h(const struct zipf *z, double x)
{
	return exp(-z->s * log(x));
}

static double h_integral_inverse(const struct zipf *z, double x)
{
	double t = x * (1.0 - z->s);

	if (t < -1.0)
		t = -1.0;
	return exp(helper1(t) * x);
}

void zipf_init(struct zipf *z, uint64_t n, double s)
{
	z->n = n;
	z->s = s;
	z->h_x1 = h_integral(z, 1.5) - 1.0;
	z->h_n = h_integral(z, (double)n + 0.5);
	z->sv = 2.0 - h_integral_inverse(z, h_integral(z, 2.5) - h(z, 2.0));
}

uint64_t zipf_next(const struct zipf *z, struct rng *r)
{
	for (;;) {
		double u = z->h_n + rng_double(r) * (z->h_x1 - z->h_n);
		double x = h_integral_inverse(z, u);
		double kd = floor(x + 0.5);
		uint64_t k;

		if (kd < 1.0)
			kd = 1.0;
		else if (kd > (double)z->n)
			kd = (double)z->n;
		k = (uint64_t)kd;
		if (kd - x <= z->sv || u >= h_integral(z, kd + 0.5) - h(z, kd))
			return k - 1;
	}
}

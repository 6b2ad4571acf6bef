/*
 * Helpers every benchmark driver shares: latency samples and their quantiles,
 * the machine description, ratio objects and writing the JSON report in the
 * shape tools/bench/README.md documents.
 */
#ifndef LEGATO_TOOLS_BENCH_BENCHUTIL_H
#define LEGATO_TOOLS_BENCH_BENCHUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct bench_samples {
	uint64_t *v; /* nanoseconds */
	size_t n, cap;
	int sorted;
};

void bench_samples_add(struct bench_samples *s, uint64_t ns);
void bench_samples_sort(struct bench_samples *s);
/* Nearest-rank quantile in microseconds (sorts if needed); 0 when empty. */
double bench_quantile_us(const struct bench_samples *s, double q);
double bench_mean_us(const struct bench_samples *s);
/* {"samples", "p50_us", "p90_us", "p99_us", "mean_us"} */
json_t *bench_samples_json(struct bench_samples *s);
void bench_samples_free(struct bench_samples *s);

/* Rounds to 3 decimals for readable JSON. */
double bench_round3(double x);

/* {"cpus", "cpu_model", "kernel", "arch", "mem_total_mib", "loadavg_1min"} */
json_t *bench_machine_json(void);

/* {"value", "goal" (when goal), "met" (when met >= 0), "description"} */
json_t *bench_ratio_json(double value, const char *goal, int met, const char *what);

/* Now, UTC, as 2026-01-31T12:00:00Z, into buf; returns buf. */
char *bench_iso_date(char *buf, size_t len);

/* Adds "date" and writes obj to dir/name (exits with a message on error). */
void bench_write_json(json_t *obj, const char *dir, const char *name);

#endif

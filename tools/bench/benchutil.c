/*
 * Shared benchmark helpers (see benchutil.h).
 */
#include "tools/bench/benchutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

void bench_samples_add(struct bench_samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4096;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			die("out of memory");
	}
	s->v[s->n++] = ns;
	s->sorted = 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void bench_samples_sort(struct bench_samples *s)
{
	if (!s->sorted)
		qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	s->sorted = 1;
}

double bench_quantile_us(const struct bench_samples *s, double q)
{
	size_t i;

	if (!s->n)
		return 0;
	/* Sorting does not change the set the caller passed as const. */
	bench_samples_sort((struct bench_samples *)s);
	i = (size_t)ceil(q * (double)s->n);
	i = i ? i - 1 : 0;
	if (i >= s->n)
		i = s->n - 1;
	return (double)s->v[i] / 1000.0;
}

double bench_mean_us(const struct bench_samples *s)
{
	double sum = 0;

	for (size_t i = 0; i < s->n; i++)
		sum += (double)s->v[i];
	return s->n ? sum / (double)s->n / 1000.0 : 0;
}

double bench_round3(double x)
{
	return round(x * 1000.0) / 1000.0;
}

json_t *bench_samples_json(struct bench_samples *s)
{
	return json_pack("{s:I,s:f,s:f,s:f,s:f}", "samples", (json_int_t)s->n, "p50_us",
			 bench_round3(bench_quantile_us(s, 0.5)), "p90_us",
			 bench_round3(bench_quantile_us(s, 0.9)), "p99_us",
			 bench_round3(bench_quantile_us(s, 0.99)), "mean_us",
			 bench_round3(bench_mean_us(s)));
}

void bench_samples_free(struct bench_samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

json_t *bench_machine_json(void)
{
	struct utsname u;
	char line[512], model[256] = "unknown";
	double load[3] = { 0 };
	long mem_kib = 0;
	FILE *f;

	uname(&u);
	f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && colon) {
			snprintf(model, sizeof(model), "%s", colon + 2);
			model[strcspn(model, "\n")] = 0;
			break;
		}
	}
	if (f)
		fclose(f);
	f = fopen("/proc/meminfo", "r");
	if (f) {
		if (fscanf(f, "MemTotal: %ld kB", &mem_kib) != 1)
			mem_kib = 0;
		fclose(f);
	}
	if (getloadavg(load, 3) < 0)
		load[0] = 0;
	return json_pack("{s:i,s:s,s:s,s:s,s:I,s:f}", "cpus", (int)sysconf(_SC_NPROCESSORS_ONLN),
			 "cpu_model", model, "kernel", u.release, "arch", u.machine,
			 "mem_total_mib", (json_int_t)(mem_kib / 1024), "loadavg_1min",
			 bench_round3(load[0]));
}

json_t *bench_ratio_json(double value, const char *goal, int met, const char *what)
{
	json_t *r = json_pack("{s:f}", "value", bench_round3(value));

	if (goal)
		json_object_set_new(r, "goal", json_string(goal));
	if (met >= 0)
		json_object_set_new(r, "met", json_boolean(met));
	json_object_set_new(r, "description", json_string(what));
	return r;
}

char *bench_iso_date(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

void bench_write_json(json_t *obj, const char *dir, const char *name)
{
	char path[4096], date[64];

	json_object_set_new(obj, "date", json_string(bench_iso_date(date, sizeof(date))));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (json_dump_file(obj, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER))
		die("cannot write %s: %s", path, strerror(errno));
}

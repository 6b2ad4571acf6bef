/*
 * memcheck: the guest memory workload. Fills SIZE bytes of anonymous memory
 * with a known pattern from several threads (each owns an interleaved set of
 * 1 MiB chunks), re-reads all of it (each thread reading chunks another thread
 * wrote), and prints one parseable line:
 *
 *   legato-memcheck: size=268435456 threads=2 checksum=0x... expected=0x... errors=0 result=ok
 *
 * The checksum is a function of SIZE alone (the sum of every 64-bit word read),
 * so a test can compare it with `memcheck --expect SIZE` computed anywhere. The
 * expected value is computed without touching memory. Built static, without
 * -march=native: it runs in the guest's busybox initramfs.
 *
 * Usage: memcheck SIZE[K|M|G] [THREADS]   |   memcheck --expect SIZE
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define SEED 0x6c656761746f2121ull

static uint8_t *mem;
static uint64_t mem_size;
static unsigned nthreads;

struct worker {
	pthread_t tid;
	unsigned index;
	uint64_t sum;
	uint64_t errors;
};

static inline uint64_t pattern(uint64_t word)
{
	uint64_t z = word * 0x9e3779b97f4a7c15ull + SEED;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t nchunks(void)
{
	return (mem_size + CHUNK - 1) / CHUNK;
}

static void chunk_range(uint64_t c, uint64_t *first, uint64_t *end)
{
	*first = c * CHUNK / 8;
	*end = (c + 1) * CHUNK > mem_size ? mem_size / 8 : (c + 1) * CHUNK / 8;
}

static void *fill(void *arg)
{
	struct worker *w = arg;
	uint64_t *words = (uint64_t *)mem;

	for (uint64_t c = w->index; c < nchunks(); c += nthreads) {
		uint64_t i, end;

		chunk_range(c, &i, &end);
		for (; i < end; i++)
			words[i] = pattern(i);
	}
	return NULL;
}

static void *check(void *arg)
{
	struct worker *w = arg;
	const volatile uint64_t *words = (const volatile uint64_t *)mem;

	/* Shifted by one: each thread reads chunks another thread wrote. */
	for (uint64_t c = (w->index + 1) % nthreads; c < nchunks(); c += nthreads) {
		uint64_t i, end;

		chunk_range(c, &i, &end);
		for (; i < end; i++) {
			uint64_t v = words[i];

			w->sum += v;
			if (v != pattern(i)) {
				if (w->errors++ < 5)
					printf("legato-memcheck: mismatch at offset 0x%llx: 0x%016llx != 0x%016llx\n",
					       (unsigned long long)(i * 8), (unsigned long long)v,
					       (unsigned long long)pattern(i));
			}
		}
	}
	return NULL;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end || v == 0 || v % 8)
		return -1;
	*out = v;
	return 0;
}

static uint64_t expected(void)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < mem_size / 8; i++)
		sum += pattern(i);
	return sum;
}

static int run_phase(struct worker *w, void *(*fn)(void *))
{
	for (unsigned t = 0; t < nthreads; t++)
		if (pthread_create(&w[t].tid, NULL, fn, &w[t]))
			return -1;
	for (unsigned t = 0; t < nthreads; t++)
		pthread_join(w[t].tid, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	struct worker *w;
	uint64_t sum = 0, errors = 0, want;

	if (argc == 3 && !strcmp(argv[1], "--expect")) {
		if (parse_size(argv[2], &mem_size))
			goto usage;
		printf("0x%016llx\n", (unsigned long long)expected());
		return 0;
	}
	if (argc < 2 || argc > 3 || parse_size(argv[1], &mem_size))
		goto usage;
	nthreads = argc == 3 ? (unsigned)atoi(argv[2]) : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (nthreads < 2)
		nthreads = 2;	/* several threads even on one vCPU */
	if (nthreads > 64)
		nthreads = 64;
	mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		printf("legato-memcheck: mmap %llu bytes: %s result=fail\n",
		       (unsigned long long)mem_size, strerror(errno));
		return 1;
	}
	w = calloc(nthreads, sizeof(*w));
	if (!w)
		return 1;
	for (unsigned t = 0; t < nthreads; t++)
		w[t].index = t;
	printf("legato-memcheck: filling %llu MiB with %u threads\n",
	       (unsigned long long)(mem_size >> 20), nthreads);
	fflush(stdout);
	if (run_phase(w, fill) || run_phase(w, check)) {
		printf("legato-memcheck: pthread_create failed result=fail\n");
		return 1;
	}
	for (unsigned t = 0; t < nthreads; t++) {
		sum += w[t].sum;
		errors += w[t].errors;
	}
	want = expected();
	printf("legato-memcheck: size=%llu threads=%u checksum=0x%016llx expected=0x%016llx errors=%llu result=%s\n",
	       (unsigned long long)mem_size, nthreads, (unsigned long long)sum,
	       (unsigned long long)want, (unsigned long long)errors,
	       !errors && sum == want ? "ok" : "fail");
	return !errors && sum == want ? 0 : 1;
usage:
	fprintf(stderr, "usage: memcheck SIZE[K|M|G] [THREADS] | memcheck --expect SIZE\n");
	return 2;
}

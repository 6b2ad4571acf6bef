/*
 * bench-memserver, part 3 (see bench_memserver.c): the RSS of the real memory
 * server daemon, started from its binary, with regions created but untouched
 * and then after writing to one of them (lazy allocation).
 */
#include "tools/bench/bench_memserver.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memserver/client.h"

extern char **environ;

/* ------------------------------------------------------------------ */
/* Part 3: daemon RSS                                                   */

/* A "Name:  N kB" line of /proc/PID/status, in MiB (-1 when absent). */
static double proc_status_mib(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t fl = strlen(field);
	double kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, fl) && line[fl] == ':') {
			kib = strtod(line + fl + 1, NULL);
			break;
		}
	}
	fclose(f);
	return kib < 0 ? -1 : kib / 1024.0;
}

static double vm_rss_mib(pid_t pid)
{
	return proc_status_mib(pid, "VmRSS");
}

static void rss_fail(struct rss_result *rr, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void rss_fail(struct rss_result *rr, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rr->error, sizeof(rr->error), fmt, ap);
	va_end(ap);
	rr->ok = false;
}

/* Waits for the daemon's ready file; returns 0 with url filled, or -1. */
static int wait_ready(pid_t pid, const char *file, char *url, size_t len)
{
	for (int i = 0; i < 1000; i++) {
		FILE *f = fopen(file, "r");
		int status;

		if (f) {
			bool got = fgets(url, (int)len, f) != NULL;

			fclose(f);
			if (got) {
				url[strcspn(url, "\r\n")] = 0;
				return 0;
			}
		}
		if (waitpid(pid, &status, WNOHANG) == pid)
			return -1;
		usleep(10000);
	}
	return -1;
}

void run_rss(struct options *o, struct rss_result *rr)
{
	char dir[] = "/tmp/legato-bench-XXXXXX", ready[64], url[300];
	const uint64_t region_size = 64ull << 20;
	posix_spawn_file_actions_t fa;
	struct ms_client *cl = NULL;
	uint8_t token[MS_TOKEN_LEN], *buf = NULL;
	uint64_t epoch, pages[MS_MAX_BATCH];
	struct ms_stat st;
	pid_t pid = 0;
	int ret, status;

	rr->ok = true;
	if (!mkdtemp(dir)) {
		rss_fail(rr, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(ready, sizeof(ready), "%s/ready", dir);
	{
		char *argv[] = { (char *)o->memserver, "--listen", "tcp://127.0.0.1:0",
				 "--capacity", "2G", "--ready-file", ready,
				 "--log-level", "error", NULL };

		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		ret = posix_spawn(&pid, o->memserver, &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
	}
	if (ret) {
		rss_fail(rr, "cannot start %s: %s", o->memserver, strerror(ret));
		pid = 0;
		goto out;
	}
	if (wait_ready(pid, ready, url, sizeof(url))) {
		rss_fail(rr, "%s did not become ready", o->memserver);
		goto out;
	}
	rr->idle_mib = vm_rss_mib(pid);
	ret = ms_client_connect(url, NULL, 10000, &cl);
	if (ret) {
		rss_fail(rr, "connect %s: %s", url, strerror(-ret));
		goto out;
	}
	for (unsigned i = 0; i < o->rss_regions; i++) {
		uint8_t other[MS_TOKEN_LEN];

		ret = ms_client_create(cl, 100 + i, region_size, i == 0 ? token : other);
		if (ret) {
			rss_fail(rr, "create region: %s", strerror(-ret));
			goto out;
		}
		rr->created_bytes += region_size;
	}
	usleep(20000);
	rr->untouched_mib = vm_rss_mib(pid);
	rr->untouched_anon_mib = proc_status_mib(pid, "RssAnon");
	rr->untouched_file_mib = proc_status_mib(pid, "RssFile");

	/* Lazy allocation: writing W MiB should cost about W MiB. */
	ret = ms_client_open(cl, 100, token, &epoch, NULL);
	buf = malloc(MS_MAX_BATCH * MS_PAGE_SIZE);
	if (ret || !buf) {
		rss_fail(rr, "open region: %s", strerror(ret ? -ret : ENOMEM));
		goto out;
	}
	for (size_t i = 0; i < MS_MAX_BATCH * MS_PAGE_SIZE; i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (uint64_t p = 0; p < ((uint64_t)o->rss_write_mib << 20) / MS_PAGE_SIZE;
	     p += MS_MAX_BATCH) {
		for (unsigned i = 0; i < MS_MAX_BATCH; i++)
			pages[i] = p + i;
		ret = ms_client_write(cl, 100, epoch, pages, MS_MAX_BATCH, buf);
		if (ret) {
			rss_fail(rr, "write: %s", strerror(-ret));
			goto out;
		}
		rr->written_bytes += MS_MAX_BATCH * MS_PAGE_SIZE;
	}
	usleep(20000);
	rr->written_mib = vm_rss_mib(pid);
	if (ms_client_stat(cl, &st) == 0)
		rr->stat_resident = st.resident;
out:
	free(buf);
	ms_client_close(cl);
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
	}
	unlink(ready);
	rmdir(dir);
}

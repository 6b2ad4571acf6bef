/*
 * bench-vmm-run: runs one VM (vmm or QEMU, any command) and times what its
 * console prints, for tools/bench/vmm.sh.
 *
 *   bench-vmm-run [--mark NAME=TEXT]... [--rss-at NAME [--rss-delay-ms N]
 *                 [--guest-size BYTES]...] [--kill-after NAME] [--timeout S]
 *                 [--log FILE] -- COMMAND [ARGS...]
 *
 * The command's stdout and stderr go through one pipe; every line is copied to
 * --log and searched for each mark's TEXT (a plain substring): the first match
 * records the mark's time since the command was spawned. --rss-at samples the
 * command's memory --rss-delay-ms after that mark, the way Firecracker counts
 * VMM overhead: the Rss of every mapping in /proc/PID/smaps except guest RAM,
 * recognised as mappings at least --guest-size bytes and at most 4 MiB more
 * (QEMU adds an alignment margin). --kill-after sends SIGTERM once that mark
 * (and the RSS sample, if any) is done. Prints one JSON object:
 *   {"status": S, "exit_s": T, "timed_out": false, "marks": {"NAME": T, ...},
 *    "rss": {"total_kib": K, "guest_kib": K, "other_kib": K}}
 * status is the exit status, or 128+signal. Exit 0 when the command ran
 * (whatever its status), 1 on bad usage or when it could not be started.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "common/util.h"

extern char **environ;

#define MAX_MARKS 16
#define MAX_GUEST_SIZES 4

struct mark {
	const char *name;
	const char *text;
	double at;	/* seconds, < 0 until seen */
};

struct run_opts {
	struct mark marks[MAX_MARKS];
	unsigned nmarks;
	const char *rss_at;
	unsigned rss_delay_ms;
	uint64_t guest_sizes[MAX_GUEST_SIZES];
	unsigned nguest_sizes;
	const char *kill_after;
	unsigned timeout_s;
	FILE *log;
};

struct rss {
	bool taken;
	uint64_t total_kib, guest_kib;
};

static void usage(void)
{
	fprintf(stderr, "usage: bench-vmm-run [--mark NAME=TEXT]... [--rss-at NAME] "
		"[--rss-delay-ms N] [--guest-size BYTES]... [--kill-after NAME] "
		"[--timeout S] [--log FILE] -- COMMAND [ARGS...]\n");
	exit(1);
}

static bool is_guest_ram(const struct run_opts *o, uint64_t size)
{
	for (unsigned i = 0; i < o->nguest_sizes; i++)
		if (size >= o->guest_sizes[i] && size <= o->guest_sizes[i] + (4u << 20))
			return true;
	return false;
}

/* Sums Rss over /proc/PID/smaps, guest RAM apart. Returns 0 or -errno. */
static int sample_rss(const struct run_opts *o, pid_t pid, struct rss *r)
{
	char path[64], line[512];
	uint64_t size = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	*r = (struct rss){ .taken = true };
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, kib;

		if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			size = hi - lo;
		else if (sscanf(line, "Rss: %llu kB", &kib) == 1) {
			r->total_kib += kib;
			if (is_guest_ram(o, size))
				r->guest_kib += kib;
		}
	}
	fclose(f);
	return 0;
}

static struct mark *find_mark(struct run_opts *o, const char *name)
{
	for (unsigned i = 0; name && i < o->nmarks; i++)
		if (!strcmp(o->marks[i].name, name))
			return &o->marks[i];
	return NULL;
}

static void scan_line(struct run_opts *o, const char *line, double t)
{
	for (unsigned i = 0; i < o->nmarks; i++)
		if (o->marks[i].at < 0 && strstr(line, o->marks[i].text))
			o->marks[i].at = t;
	if (o->log)
		fprintf(o->log, "%s\n", line);
}

static pid_t spawn(char **argv, int out_fd)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc) {
		fprintf(stderr, "bench-vmm-run: cannot run %s: %s\n", argv[0], strerror(rc));
		return -1;
	}
	return pid;
}

static double since(uint64_t t0)
{
	return (double)(now_ns() - t0) / 1e9;
}

/* Reads the command's output to its end, sampling and killing on cue. */
static void follow(struct run_opts *o, pid_t pid, int fd, uint64_t t0, struct rss *rss,
		   bool *timed_out)
{
	struct mark *rss_mark = find_mark(o, o->rss_at), *kill_mark = find_mark(o, o->kill_after);
	char buf[8192], line[4096];
	size_t len = 0;
	bool killed = false;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		double t = since(t0);
		int timeout = 200;
		ssize_t n;

		if (o->timeout_s && t > o->timeout_s && !*timed_out) {
			*timed_out = true;
			kill(pid, SIGKILL);
		}
		if (rss_mark && rss_mark->at >= 0 && !rss->taken) {
			double due = rss_mark->at + o->rss_delay_ms / 1e3;

			if (t >= due)
				sample_rss(o, pid, rss);
			else
				timeout = (int)((due - t) * 1e3) + 1;
		}
		if (kill_mark && kill_mark->at >= 0 && !killed && (!rss_mark || rss->taken)) {
			kill(pid, SIGTERM);
			killed = true;
		}
		if (poll(&p, 1, timeout) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\r')
				continue;
			if (buf[i] == '\n' || len == sizeof(line) - 1) {
				line[len] = '\0';
				scan_line(o, line, since(t0));
				len = 0;
				if (buf[i] == '\n')
					continue;
			}
			line[len++] = buf[i];
		}
	}
	if (len) {
		line[len] = '\0';
		scan_line(o, line, since(t0));
	}
}

static void parse_args(int argc, char **argv, struct run_opts *o)
{
	static const struct option longopts[] = {
		{ "mark", required_argument, NULL, 'm' },
		{ "rss-at", required_argument, NULL, 'r' },
		{ "rss-delay-ms", required_argument, NULL, 'd' },
		{ "guest-size", required_argument, NULL, 'g' },
		{ "kill-after", required_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 't' },
		{ "log", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': {
			char *eq = strchr(optarg, '=');

			if (!eq || eq == optarg || !eq[1] || o->nmarks == MAX_MARKS)
				usage();
			*eq = '\0';
			o->marks[o->nmarks++] = (struct mark){ optarg, eq + 1, -1 };
			break;
		}
		case 'r': o->rss_at = optarg; break;
		case 'd':
			if (parse_u64(optarg, &v) || v > 600000)
				usage();
			o->rss_delay_ms = (unsigned)v;
			break;
		case 'g':
			if (parse_size(optarg, &v) || o->nguest_sizes == MAX_GUEST_SIZES)
				usage();
			o->guest_sizes[o->nguest_sizes++] = v;
			break;
		case 'k': o->kill_after = optarg; break;
		case 't':
			if (parse_u64(optarg, &v) || v > 86400)
				usage();
			o->timeout_s = (unsigned)v;
			break;
		case 'l':
			o->log = fopen(optarg, "we");
			if (!o->log) {
				fprintf(stderr, "bench-vmm-run: %s: %s\n", optarg, strerror(errno));
				exit(1);
			}
			break;
		default: usage();
		}
	}
	if (optind >= argc || (o->rss_at && !find_mark(o, o->rss_at)) ||
	    (o->kill_after && !find_mark(o, o->kill_after)))
		usage();
}

int main(int argc, char **argv)
{
	struct run_opts o = { .rss_delay_ms = 1000 };
	struct rss rss = { 0 };
	bool timed_out = false;
	json_t *out, *marks;
	int fds[2], wst, status;
	uint64_t t0;
	pid_t pid;

	parse_args(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	if (pipe2(fds, O_CLOEXEC)) {
		perror("bench-vmm-run: pipe");
		return 1;
	}
	t0 = now_ns();
	pid = spawn(argv + optind, fds[1]);
	close(fds[1]);
	if (pid < 0)
		return 1;
	follow(&o, pid, fds[0], t0, &rss, &timed_out);
	while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
		;
	status = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);

	marks = json_object();
	for (unsigned i = 0; i < o.nmarks; i++)
		json_object_set_new(marks, o.marks[i].name,
				    o.marks[i].at < 0 ? json_null() : json_real(o.marks[i].at));
	out = json_pack("{s:i, s:f, s:b, s:o}", "status", status, "exit_s", since(t0),
			"timed_out", timed_out, "marks", marks);
	if (rss.taken)
		json_object_set_new(out, "rss", json_pack("{s:I, s:I, s:I}",
			"total_kib", (json_int_t)rss.total_kib, "guest_kib", (json_int_t)rss.guest_kib,
			"other_kib", (json_int_t)(rss.total_kib - rss.guest_kib)));
	json_dumpf(out, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
	putchar('\n');
	json_decref(out);
	if (o.log)
		fclose(o.log);
	return 0;
}

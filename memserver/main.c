/*
 * memserver: the memory-server daemon. Parses the command line, builds a
 * server (server.h) and waits for SIGTERM/SIGINT to stop it cleanly. Signals
 * are blocked in every thread and taken synchronously here with sigwait.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/log.h"
#include "common/util.h"
#include "common/version.h"
#include "memserver/server.h"

static const char usage[] =
	"usage: memserver --listen tcp://ADDR:PORT|rdma://ADDR:PORT --capacity SIZE [options]\n"
	"\n"
	"Serves regions of 4 KiB pages to processor hosts.\n"
	"\n"
	"  -l, --listen URL          address to serve, e.g. tcp://0.0.0.0:7000 (port 0: any);\n"
	"                            twice for both tcp:// and rdma:// (RDMA: one-sided page\n"
	"                            reads and writes; needs an RDMA device and CAP_IPC_LOCK)\n"
	"  -c, --capacity SIZE       bytes of regions to offer (K/M/G/T suffixes), e.g. 16G\n"
	"  -k, --auth-key-file FILE  shared cluster key; clients must prove it (HMAC-SHA256)\n"
	"  -t, --threads N           worker threads (default 2)\n"
	"  -L, --log-level LEVEL     error, warn, info (default) or debug\n"
	"  -r, --ready-file FILE     write the bound URLs (one per line) to FILE once serving\n"
	"      --test-hooks          allow the DEBUG_CORRUPT request (tests only)\n"
	"  -h, --help                this text\n"
	"  -V, --version             print the version\n"
	"\n"
	"example: memserver --listen tcp://127.0.0.1:7000 --capacity 8G --auth-key-file /etc/legato/key\n";

struct options {
	const char *listen, *listen2;
	uint64_t capacity;
	const char *key_file;
	unsigned threads;
	const char *ready_file;
	bool test_hooks;
};

static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "capacity", required_argument, NULL, 'c' },
		{ "auth-key-file", required_argument, NULL, 'k' },
		{ "threads", required_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "test-hooks", no_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	enum log_level level = LOG_INFO;
	bool have_capacity = false;
	uint64_t v;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":l:c:k:t:L:r:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (o->listen2)
				die("--listen given more than twice (one tcp:// and one rdma://)");
			*(o->listen ? &o->listen2 : &o->listen) = optarg;
			break;
		case 'c':
			if (parse_size(optarg, &o->capacity))
				die("invalid --capacity '%s' (expected e.g. 512M or 16G)", optarg);
			have_capacity = true;
			break;
		case 'k':
			o->key_file = optarg;
			break;
		case 't':
			if (parse_u64(optarg, &v) || v < 1 || v > 256)
				die("invalid --threads '%s' (expected 1..256)", optarg);
			o->threads = (unsigned)v;
			break;
		case 'L':
			if (log_parse_level(optarg, &level))
				die("invalid --log-level '%s' (error, warn, info, debug)", optarg);
			break;
		case 'r':
			o->ready_file = optarg;
			break;
		case 'T':
			o->test_hooks = true;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		case 'V':
			printf("memserver %s\n", LEGATO_VERSION);
			exit(0);
		case ':':
			die("option %s needs an argument (see --help)", argv[optind - 1]);
		default:
			die("unknown option '%s' (see --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die("unexpected argument '%s' (see --help)", argv[optind]);
	if (!o->listen)
		die("--listen is required (see --help)");
	if (!have_capacity)
		die("--capacity is required (see --help)");
	log_current_level = level;
}

static int write_ready_file(const char *path, const char *url, const char *url2)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%s\n", url);
	if (url2)
		fprintf(f, "%s\n", url2);
	if (fclose(f))
		return -errno;
	return rename(tmp, path) ? -errno : 0;
}

int main(int argc, char **argv)
{
	struct options o = { .threads = 2 };
	struct ms_server_config cfg;
	static struct auth_key key;
	struct ms_server *srv;
	sigset_t stop;
	int sig, ret;

	log_init("memserver", LOG_INFO);
	parse_args(argc, argv, &o);
	if (o.key_file)
		auth_key_load_or_die(o.key_file, &key);
	cfg = (struct ms_server_config){
		.listen = o.listen,
		.listen2 = o.listen2,
		.capacity = o.capacity,
		.key = o.key_file ? &key : NULL,
		.threads = o.threads,
		.test_hooks = o.test_hooks,
	};

	/* Block the stop signals before any thread exists so all inherit it. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	ret = ms_server_create(&cfg, &srv);
	if (ret == -EINVAL && o.listen2)
		die("invalid --listen '%s' and '%s' (expected one tcp://ADDR:PORT and one "
		    "rdma://ADDR:PORT)", o.listen, o.listen2);
	if (ret == -EINVAL)
		die("invalid --listen '%s' (expected tcp://ADDR:PORT or rdma://ADDR:PORT)",
		    o.listen);
	if (ret == -ENODEV)
		die("cannot listen on rdma://: no RDMA device serves that address (with no RDMA "
		    "NIC: modprobe rdma_rxe; rdma link add rxe0 type rxe netdev ETH)");
	if (ret)
		die("cannot listen on %s%s%s: %s", o.listen, o.listen2 ? " and " : "",
		    o.listen2 ? o.listen2 : "", strerror(-ret));
	ret = ms_server_start(srv);
	if (ret)
		die("cannot start workers: %s", strerror(-ret));
	/* The ready file is the last thing that can fail: written before any
	 * other output so a bad path is reported alone. */
	if (o.ready_file) {
		ret = write_ready_file(o.ready_file, ms_server_url(srv), ms_server_url2(srv));
		if (ret) {
			ms_server_destroy(srv);
			die("cannot write --ready-file %s: %s", o.ready_file, strerror(-ret));
		}
	}
	if (!o.key_file)
		log_warn("no --auth-key-file: ANY client that can connect may create, read and "
			 "write regions");
	if (o.test_hooks)
		log_warn("--test-hooks: clients may corrupt stored pages on request");
	log_info("serving %s%s%s with %llu MiB capacity, %u threads", ms_server_url(srv),
		 ms_server_url2(srv) ? " and " : "", ms_server_url2(srv) ? ms_server_url2(srv) : "",
		 (unsigned long long)(o.capacity >> 20), o.threads);

	do {
		ret = sigwait(&stop, &sig);
	} while (ret == EINTR);
	log_info("%s: stopping", strsignal(sig));
	ms_server_destroy(srv);
	if (o.ready_file)
		unlink(o.ready_file);
	return 0;
}

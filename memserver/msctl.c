/*
 * msctl: operator tool for memory servers, a thin command line over the client
 * library. Page data moves through stdin/stdout as raw 4 KiB pages; figures
 * print as text for people or, with --json, as one JSON object (jansson).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/auth.h"
#include "common/log.h"
#include "common/util.h"
#include "common/version.h"
#include "memserver/client.h"

static const char usage[] =
	"usage: msctl -s URL [options] COMMAND [ARGS]\n"
	"\n"
	"commands:\n"
	"  stat                      capacity, usage and per-operation counters\n"
	"  create ID SIZE            create region ID of SIZE bytes; prints its token\n"
	"  write ID PAGE < FILE      write FILE (padded to whole pages) from PAGE on\n"
	"  read ID PAGE NPAGES > FILE  read NPAGES pages from PAGE on\n"
	"  delete ID                 delete region ID\n"
	"  ping                      round trip to the server\n"
	"\n"
	"options:\n"
	"  -s, --server URL          memory server, e.g. tcp://127.0.0.1:7000\n"
	"  -k, --key-file FILE       cluster key, when the server requires one\n"
	"  -t, --token HEX           region token (write, read, delete)\n"
	"  -j, --json                machine-readable output\n"
	"  -T, --timeout MS          per-request timeout (default 10000)\n"
	"  -h, --help, -V, --version\n"
	"\n"
	"example: T=$(msctl -s tcp://127.0.0.1:7000 create 1 64M)\n"
	"         msctl -s tcp://127.0.0.1:7000 -t $T read 1 0 16 > pages.bin\n";

struct options {
	const char *server;
	const char *key_file;
	const char *token_hex;
	bool json;
	int timeout_ms;
};

static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "token", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	uint64_t v;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:s:k:t:jT:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->server = optarg;
			break;
		case 'k':
			o->key_file = optarg;
			break;
		case 't':
			o->token_hex = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'T':
			if (parse_u64(optarg, &v) || v == 0 || v > 3600000)
				die("invalid --timeout '%s' (milliseconds, 1..3600000)", optarg);
			o->timeout_ms = (int)v;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		case 'V':
			printf("msctl %s\n", LEGATO_VERSION);
			exit(0);
		case ':':
			die("option %s needs an argument (see --help)", argv[optind - 1]);
		default:
			die("unknown option '%s' (see --help)", argv[optind - 1]);
		}
	}
	if (!o->server)
		die("--server URL is required (see --help)");
}

static uint64_t arg_u64(const char *what, const char *s)
{
	uint64_t v;

	if (parse_u64(s, &v))
		die("invalid %s '%s'", what, s);
	return v;
}

static void need_args(int have, int want, const char *cmd)
{
	if (have != want)
		die("'%s' takes %d argument%s (see --help)", cmd, want, want == 1 ? "" : "s");
}

static void get_token(const struct options *o, uint8_t token[MS_TOKEN_LEN])
{
	if (!o->token_hex)
		die("--token is required for this command");
	if (hex_decode(o->token_hex, token, MS_TOKEN_LEN))
		die("invalid --token (expected %u hex digits)", MS_TOKEN_LEN * 2);
}

static void check(int ret, const char *what, const struct options *o)
{
	if (ret)
		die("%s on %s failed: %s", what, o->server, strerror(-ret));
}

static json_t *op_json(const struct ms_op_stats *s)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "count", (json_int_t)s->count, "errors",
			 (json_int_t)s->errors, "bytes_in", (json_int_t)s->bytes_in, "bytes_out",
			 (json_int_t)s->bytes_out, "p50_ns",
			 (json_int_t)hist_quantile(&s->latency, 0.5), "p99_ns",
			 (json_int_t)hist_quantile(&s->latency, 0.99));
}

static void print_stat(const struct ms_stat *s, bool json)
{
	if (json) {
		json_t *ops = json_object(), *root;

		for (unsigned op = 1; op < MS_OP_MAX; op++)
			json_object_set_new(ops, ms_op_name(op), op_json(&s->ops[op]));
		root = json_pack("{s:I,s:I,s:I,s:I,s:I,s:f,s:o}", "capacity",
				 (json_int_t)s->capacity, "reserved", (json_int_t)s->reserved,
				 "resident", (json_int_t)s->resident, "regions",
				 (json_int_t)s->regions, "connections",
				 (json_int_t)s->connections, "uptime_s", s->uptime_ns / 1e9,
				 "ops", ops);
		json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(root);
		return;
	}
	printf("capacity     %llu MiB\n", (unsigned long long)(s->capacity >> 20));
	printf("reserved     %llu MiB\n", (unsigned long long)(s->reserved >> 20));
	printf("resident     %llu KiB\n", (unsigned long long)(s->resident >> 10));
	printf("regions      %llu\n", (unsigned long long)s->regions);
	printf("connections  %llu\n", (unsigned long long)s->connections);
	printf("uptime       %.1f s\n", s->uptime_ns / 1e9);
	printf("\n%-14s %10s %8s %10s %10s\n", "operation", "count", "errors", "p50 us", "p99 us");
	for (unsigned op = 1; op < MS_OP_MAX; op++) {
		const struct ms_op_stats *o = &s->ops[op];

		if (!o->count)
			continue;
		printf("%-14s %10llu %8llu %10.1f %10.1f\n", ms_op_name(op),
		       (unsigned long long)o->count, (unsigned long long)o->errors,
		       hist_quantile(&o->latency, 0.5) / 1e3, hist_quantile(&o->latency, 0.99) / 1e3);
	}
}

static int cmd_write(struct ms_client *c, const struct options *o, uint64_t id, uint64_t page)
{
	uint8_t token[MS_TOKEN_LEN], *buf = NULL;
	uint64_t epoch, *pages;
	size_t len = 0, cap = 0;
	ssize_t n;
	unsigned npages;
	int ret;

	get_token(o, token);
	for (;;) {
		if (cap - len < MS_PAGE_SIZE) {
			cap = cap ? cap * 2 : 1 << 20;
			buf = realloc(buf, cap);
			if (!buf)
				die("out of memory reading stdin");
		}
		n = read_upto(STDIN_FILENO, buf + len, cap - len);
		if (n < 0)
			die("cannot read stdin: %s", strerror((int)-n));
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == 0)
		die("nothing to write: stdin is empty");
	npages = (unsigned)((len + MS_PAGE_SIZE - 1) / MS_PAGE_SIZE);
	memset(buf + len, 0, (size_t)npages * MS_PAGE_SIZE - len);
	pages = malloc(npages * sizeof(*pages));
	if (!pages)
		die("out of memory");
	for (unsigned i = 0; i < npages; i++)
		pages[i] = page + i;
	check(ms_client_open(c, id, token, &epoch, NULL), "open", o);
	ret = ms_client_write(c, id, epoch, pages, npages, buf);
	check(ret, "write", o);
	if (o->json)
		printf("{\"pages_written\": %u}\n", npages);
	free(pages);
	free(buf);
	return 0;
}

static int cmd_read(struct ms_client *c, const struct options *o, uint64_t id, uint64_t page,
		    uint64_t npages)
{
	uint8_t token[MS_TOKEN_LEN], *buf;
	uint64_t epoch, *pages;

	get_token(o, token);
	if (npages == 0 || npages > (1u << 20))
		die("invalid NPAGES %llu (1..1048576)", (unsigned long long)npages);
	buf = malloc(npages * MS_PAGE_SIZE);
	pages = malloc(npages * sizeof(*pages));
	if (!buf || !pages)
		die("out of memory");
	for (uint64_t i = 0; i < npages; i++)
		pages[i] = page + i;
	check(ms_client_open(c, id, token, &epoch, NULL), "open", o);
	check(ms_client_read(c, id, epoch, pages, (unsigned)npages, buf, NULL), "read", o);
	if (write_full(STDOUT_FILENO, buf, npages * MS_PAGE_SIZE))
		die("cannot write stdout: %s", strerror(errno));
	free(pages);
	free(buf);
	return 0;
}

static int run(struct ms_client *c, const struct options *o, int argc, char **argv)
{
	const char *cmd = argv[0];
	uint8_t token[MS_TOKEN_LEN];
	char hex[2 * MS_TOKEN_LEN + 1];

	if (strcmp(cmd, "stat") == 0) {
		static struct ms_stat s;

		need_args(argc - 1, 0, cmd);
		check(ms_client_stat(c, &s), "stat", o);
		print_stat(&s, o->json);
	} else if (strcmp(cmd, "create") == 0) {
		uint64_t id, size;

		need_args(argc - 1, 2, cmd);
		id = arg_u64("region ID", argv[1]);
		if (parse_size(argv[2], &size) || size == 0 || size % MS_PAGE_SIZE)
			die("invalid SIZE '%s' (a non-zero multiple of 4K, e.g. 64M)", argv[2]);
		check(ms_client_create(c, id, size, token), "create", o);
		hex_encode(token, MS_TOKEN_LEN, hex);
		if (o->json)
			printf("{\"region\": %llu, \"size\": %llu, \"token\": \"%s\"}\n",
			       (unsigned long long)id, (unsigned long long)size, hex);
		else
			printf("%s\n", hex);
	} else if (strcmp(cmd, "write") == 0) {
		need_args(argc - 1, 2, cmd);
		return cmd_write(c, o, arg_u64("region ID", argv[1]), arg_u64("PAGE", argv[2]));
	} else if (strcmp(cmd, "read") == 0) {
		need_args(argc - 1, 3, cmd);
		return cmd_read(c, o, arg_u64("region ID", argv[1]), arg_u64("PAGE", argv[2]),
				arg_u64("NPAGES", argv[3]));
	} else if (strcmp(cmd, "delete") == 0) {
		need_args(argc - 1, 1, cmd);
		get_token(o, token);
		check(ms_client_delete(c, arg_u64("region ID", argv[1]), token), "delete", o);
	} else if (strcmp(cmd, "ping") == 0) {
		uint64_t t0 = now_ns();

		need_args(argc - 1, 0, cmd);
		check(ms_client_ping(c, 0), "ping", o);
		printf("%s: %.1f us\n", o->server, (now_ns() - t0) / 1e3);
	} else {
		die("unknown command '%s' (see --help)", cmd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = { .timeout_ms = 10000 };
	static struct auth_key key;
	struct ms_client *c;
	int ret;

	log_init("msctl", LOG_WARN);
	parse_args(argc, argv, &o);
	if (optind >= argc)
		die("a command is required: stat, create, write, read, delete, ping (see --help)");
	if (o.key_file)
		auth_key_load_or_die(o.key_file, &key);
	ret = ms_client_connect(o.server, o.key_file ? &key : NULL, o.timeout_ms, &c);
	if (ret == -EINVAL)
		die("invalid server URL '%s' (expected tcp://HOST:PORT)", o.server);
	if (ret == -EPERM)
		die("%s: authentication failed (%s)", o.server,
		    o.key_file ? "wrong key" : "the server requires --key-file");
	if (ret)
		die("cannot connect to %s: %s", o.server, strerror(-ret));
	ret = run(c, &o, argc - optind, argv + optind);
	ms_client_close(c);
	return ret ? 1 : 0;
}

/*
 * memload's command line: the usage text, parsing every option into struct
 * ml_opts, and checking the combination (a missing --mem or --cache, more
 * replicas than servers, an unknown policy...). Every error exits with
 * status 2 and a one-line message.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "ept/ept.h"
#include "tools/memload/memload.h"

static const char usage[] =
	"usage: memload (--memserver tcp://H:P ... | --local) --mem SIZE --cache SIZE [options]\n"
	"\n"
	"Runs a memory workload on the virtual cache (ept) backed by memory servers,\n"
	"or on plain local memory (--local), and reports throughput and cache stats.\n"
	"\n"
	"  -s, --memserver URL     a memory server (repeat for several; the region is\n"
	"                          split into one contiguous extent per server)\n"
	"  -m, --mem SIZE          region size (K/M/G suffixes), multiple of 4 KiB\n"
	"  -c, --cache SIZE        local cache size (at least 256K)\n"
	"  -t, --threads N         worker threads (default 1)\n"
	"  -p, --pattern P         seq | uniform (default) | zipf[:THETA] (default 0.99) |\n"
	"                          graph | trace:FILE\n"
	"  -n, --ops N             accesses in total over all threads (default 1000000;\n"
	"                          trace: its length; graph: edge visits, default 3 iterations)\n"
	"  -w, --write-ratio R     fraction of accesses that write a whole page (default 0)\n"
	"      --zero-ratio R      fraction of those writes that store an all-zero page\n"
	"  -P, --policy NAME       replacement policy (default: the engine's)\n"
	"      --prefetch on|off   stream prefetch (default on)\n"
	"  -v, --verify            check every read page, then the whole region through the\n"
	"                          cache and straight from the servers; exit 1 on a mismatch\n"
	"  -l, --local             plain anonymous memory (MADV_NOHUGEPAGE): the baseline\n"
	"  -j, --json              one JSON object on stdout\n"
	"  -k, --key-file F        cluster key for the memory servers\n"
	"  -r, --replicas R        copies of each extent on distinct servers (default 1)\n"
	"  -S, --seed S            workload seed (default 1)\n"
	"      --test-delay-us N   engine test hook: delay each completion by 0..N us\n"
	"      --timeout SEC       give up (exit 2, progress on stderr) after SEC seconds\n"
	"  -h, --help              this text\n"
	"\n"
	"example: memload --memserver tcp://127.0.0.1:7000 --mem 64M --cache 8M --threads 4 \\\n"
	"             --pattern uniform --write-ratio 0.5 --verify --ops 200000\n";

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("memload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see memload --help)\n", stderr);
	exit(2);
}

static double parse_ratio(const char *opt, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.0 && v <= 1.0))
		usage_error("invalid %s '%s' (expected a number from 0 to 1)", opt, s);
	return v;
}

static uint64_t parse_count(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	uint64_t v;

	if (parse_u64(s, &v) || v < min || v > max)
		usage_error("invalid %s '%s' (expected an integer from %" PRIu64 " to %" PRIu64 ")",
			    opt, s, min, max);
	return v;
}

static void parse_pattern(struct ml_opts *o, const char *s)
{
	o->pattern_text = s;
	if (strcmp(s, "seq") == 0) {
		o->pattern = PAT_SEQ;
	} else if (strcmp(s, "uniform") == 0) {
		o->pattern = PAT_UNIFORM;
	} else if (strcmp(s, "graph") == 0) {
		o->pattern = PAT_GRAPH;
	} else if (strncmp(s, "zipf", 4) == 0 && (s[4] == '\0' || s[4] == ':')) {
		o->pattern = PAT_ZIPF;
		o->theta = 0.99;
		if (s[4] == ':') {
			char *end;

			errno = 0;
			o->theta = strtod(s + 5, &end);
			if (errno || end == s + 5 || *end || !(o->theta > 0.0 && o->theta <= 10.0))
				usage_error("invalid zipf exponent in '%s' (expected 0 < THETA <= 10)", s);
		}
	} else if (strncmp(s, "trace:", 6) == 0 && s[6]) {
		o->pattern = PAT_TRACE;
		o->trace_file = s + 6;
	} else {
		usage_error("unknown pattern '%s' (seq, uniform, zipf[:THETA], graph, trace:FILE)", s);
	}
}

void ml_parse_args(int argc, char **argv, struct ml_opts *o)
{
	enum { OPT_PREFETCH = 256, OPT_TEST_DELAY, OPT_ZERO_RATIO, OPT_TIMEOUT };
	static const struct option longopts[] = {
		{ "memserver", required_argument, NULL, 's' },
		{ "mem", required_argument, NULL, 'm' },
		{ "cache", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "ops", required_argument, NULL, 'n' },
		{ "write-ratio", required_argument, NULL, 'w' },
		{ "zero-ratio", required_argument, NULL, OPT_ZERO_RATIO },
		{ "policy", required_argument, NULL, 'P' },
		{ "prefetch", required_argument, NULL, OPT_PREFETCH },
		{ "verify", no_argument, NULL, 'v' },
		{ "local", no_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "replicas", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 'S' },
		{ "test-delay-us", required_argument, NULL, OPT_TEST_DELAY },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool have_mem = false, have_cache = false;
	int c;

	*o = (struct ml_opts){ .threads = 1, .pattern = PAT_UNIFORM, .pattern_text = "uniform",
			       .prefetch = true, .replicas = 1, .seed = 1 };
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:m:c:t:p:n:w:P:vljk:r:S:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (o->nservers == ARRAY_SIZE(o->servers))
				usage_error("too many --memserver (at most %zu)", ARRAY_SIZE(o->servers));
			if (strncmp(optarg, "tcp://", 6) && strncmp(optarg, "rdma://", 7))
				usage_error("invalid --memserver '%s' (expected tcp://HOST:PORT)", optarg);
			for (unsigned i = 0; i < o->nservers; i++)
				if (strcmp(o->servers[i], optarg) == 0)
					usage_error("--memserver '%s' given twice", optarg);
			o->servers[o->nservers++] = optarg;
			break;
		case 'm':
			if (parse_size(optarg, &o->mem) || o->mem == 0 || o->mem % ML_PAGE)
				usage_error("invalid --mem '%s' (expected a non-zero multiple of 4K, "
					    "e.g. 64M)", optarg);
			have_mem = true;
			break;
		case 'c':
			if (parse_size(optarg, &o->cache) || o->cache % ML_PAGE)
				usage_error("invalid --cache '%s' (expected a multiple of 4K, e.g. 8M)",
					    optarg);
			have_cache = true;
			break;
		case 't':
			o->threads = (unsigned)parse_count("--threads", optarg, 1, 1024);
			break;
		case 'p':
			parse_pattern(o, optarg);
			break;
		case 'n':
			o->ops = parse_count("--ops", optarg, 1, UINT64_MAX / 4);
			break;
		case 'w':
			o->write_ratio = parse_ratio("--write-ratio", optarg);
			break;
		case OPT_ZERO_RATIO:
			o->zero_ratio = parse_ratio("--zero-ratio", optarg);
			break;
		case 'P':
			o->policy = optarg;
			break;
		case OPT_PREFETCH:
			if (strcmp(optarg, "on") == 0)
				o->prefetch = true;
			else if (strcmp(optarg, "off") == 0)
				o->prefetch = false;
			else
				usage_error("invalid --prefetch '%s' (on or off)", optarg);
			break;
		case 'v':
			o->verify = true;
			break;
		case 'l':
			o->local = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'k':
			o->key_file = optarg;
			break;
		case 'r':
			o->replicas = (unsigned)parse_count("--replicas", optarg, 1, EPT_MAX_REPLICAS);
			break;
		case 'S':
			o->seed = parse_count("--seed", optarg, 0, UINT64_MAX);
			break;
		case OPT_TEST_DELAY:
			o->test_delay_us = (unsigned)parse_count("--test-delay-us", optarg, 0, 10000000);
			break;
		case OPT_TIMEOUT:
			o->timeout_s = (unsigned)parse_count("--timeout", optarg, 1, 1000000);
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		case ':':
			usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!have_mem)
		usage_error("--mem is required");
	if (o->local) {
		if (o->nservers)
			usage_error("--local runs without memory servers: drop --memserver");
	} else {
		if (!o->nservers)
			usage_error("--memserver is required (or --local for plain memory)");
		if (!have_cache)
			usage_error("--cache is required");
		if (o->cache < 64 * ML_PAGE)
			usage_error("--cache must be at least 256K (64 pages)");
		if (o->replicas > o->nservers)
			usage_error("--replicas %u needs at least %u distinct --memserver", o->replicas,
				    o->replicas);
		if (o->policy) {
			bool known = false;

			for (unsigned i = 0; ept_policy_names[i]; i++)
				known |= strcmp(ept_policy_names[i], o->policy) == 0;
			if (!known) {
				char names[256] = "";

				for (unsigned i = 0; ept_policy_names[i]; i++)
					snprintf(names + strlen(names), sizeof(names) - strlen(names),
						 "%s%s", i ? ", " : "", ept_policy_names[i]);
				usage_error("unknown policy '%s' (known: %s)", o->policy, names);
			}
		}
		if (o->mem / ML_PAGE < o->nservers)
			usage_error("--mem is smaller than one page per server");
	}
	if (o->mem / ML_PAGE < o->threads)
		usage_error("--mem is smaller than one page per thread");
}

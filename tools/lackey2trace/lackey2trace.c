/*
 * lackey2trace: converts `valgrind --tool=lackey --trace-mem=yes` output into
 * the page-trace format of memload and cachesim ("PAGE R|W" per line). See
 * tools/lackey2trace/README.md.
 *
 * Lackey lines: "I  ADDR,SIZE" (instruction fetch), " L ADDR,SIZE" (load),
 * " S ADDR,SIZE" (store), " M ADDR,SIZE" (modify: load then store), addresses
 * in hex. Loads become R, stores and modifies W, instruction fetches are
 * skipped unless --with-instr (then R). An access that straddles a page
 * boundary yields one line per page it touches. Anything else (valgrind's
 * "==PID==" banner, program output) is ignored.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cachesim/pagemap.h"

static const char usage[] =
	"usage: valgrind --tool=lackey --trace-mem=yes PROG 2>&1 | lackey2trace [options] > TRACE\n"
	"\n"
	"Converts lackey's memory trace on stdin into \"PAGE R|W\" lines (page = address >> 12).\n"
	"\n"
	"  --with-instr     include instruction fetches (as R)\n"
	"  --dedup          collapse consecutive accesses to the same page with the same op\n"
	"  --compact        number pages densely, 0..K-1 in order of first use (default)\n"
	"  --no-compact     keep the raw page numbers (address >> 12)\n"
	"  -h, --help       this text\n";

static inline int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Parses " L 0402a250,8"-style lines. Returns the op ('I', 'L', 'S', 'M') or 0
 * when the line is not an access. */
static int parse_line(const char *s, uint64_t *addr, uint64_t *size)
{
	int op;
	uint64_t a = 0, z = 0;
	int digits = 0, v;

	if (s[0] == 'I' && s[1] == ' ') {
		op = 'I';
		s += 1;
	} else if (s[0] == ' ' && (s[1] == 'L' || s[1] == 'S' || s[1] == 'M') && s[2] == ' ') {
		op = s[1];
		s += 2;
	} else {
		return 0;
	}
	while (*s == ' ')
		s++;
	while ((v = hexval((unsigned char)*s)) >= 0 && digits <= 16) {
		a = (a << 4) | (uint64_t)v;
		s++;
		digits++;
	}
	if (!digits || digits > 16 || *s != ',')
		return 0;
	s++;
	digits = 0;
	while (*s >= '0' && *s <= '9' && digits < 10) {
		z = z * 10 + (uint64_t)(*s - '0');
		s++;
		digits++;
	}
	if (!digits)
		return 0;
	*addr = a;
	*size = z ? z : 1;
	return op;
}

int main(int argc, char **argv)
{
	enum { OPT_INSTR = 256, OPT_DEDUP, OPT_COMPACT, OPT_NO_COMPACT };
	static const struct option longopts[] = {
		{ "with-instr", no_argument, NULL, OPT_INSTR },
		{ "dedup", no_argument, NULL, OPT_DEDUP },
		{ "compact", no_argument, NULL, OPT_COMPACT },
		{ "no-compact", no_argument, NULL, OPT_NO_COMPACT },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool with_instr = false, dedup = false, compact = true, have_last = false;
	uint64_t last_page = 0;
	char last_op = 0;
	struct pagemap m = { 0 };
	char line[512];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_INSTR:
			with_instr = true;
			break;
		case OPT_DEDUP:
			dedup = true;
			break;
		case OPT_COMPACT:
			compact = true;
			break;
		case OPT_NO_COMPACT:
			compact = false;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fprintf(stderr, "lackey2trace: unknown option '%s' (see lackey2trace --help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lackey2trace: unexpected argument '%s' (the trace comes on stdin)\n",
			argv[optind]);
		return 2;
	}
	if (compact && pagemap_init(&m, 1 << 16)) {
		fprintf(stderr, "lackey2trace: out of memory\n");
		return 1;
	}
	while (fgets(line, sizeof(line), stdin)) {
		uint64_t addr, size, first, last;
		int op = parse_line(line, &addr, &size);
		char rw;

		/* An over-long line: skip its rest. */
		if (!strchr(line, '\n') && !feof(stdin)) {
			int ch;

			while ((ch = getchar()) != EOF && ch != '\n')
				;
		}
		if (!op || (op == 'I' && !with_instr))
			continue;
		rw = op == 'S' || op == 'M' ? 'W' : 'R';
		first = addr >> 12;
		last = (addr + size - 1) >> 12;
		if (last < first) /* wrapped past the top of the address space */
			last = first;
		for (uint64_t pg = first; pg <= last; pg++) {
			uint64_t id = pg;

			if (compact) {
				int fresh;
				uint32_t v = pagemap_get(&m, pg, &fresh);

				if (v == UINT32_MAX) {
					fprintf(stderr, "lackey2trace: out of memory\n");
					return 1;
				}
				id = v;
			}
			if (dedup && have_last && id == last_page && rw == last_op)
				continue;
			have_last = true;
			last_page = id;
			last_op = rw;
			printf("%" PRIu64 " %c\n", id, rw);
		}
	}
	if (ferror(stdin)) {
		fprintf(stderr, "lackey2trace: reading stdin: %s\n", strerror(errno));
		return 1;
	}
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "lackey2trace: writing: %s\n", strerror(errno));
		return 1;
	}
	if (compact)
		pagemap_free(&m);
	return 0;
}

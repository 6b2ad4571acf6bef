/*
 * bench-report: regenerates docs/bench/README.md from every JSON file in
 * docs/bench, drawing the plots each one names with gnuplot first. It knows nothing about
 * any particular benchmark: a new one drops its JSON (and, optionally, data
 * files and a gnuplot script) in and appears in the report.
 *
 * The JSON convention (also printed at the top of the README it writes and in
 * tools/bench/README.md):
 *
 *   {
 *     "benchmark": "memserver",           name; defaults to the file's stem
 *     "title": "...", "description": "...",
 *     "date": "2024-01-01T00:00:00Z",     when the run ended (UTC)
 *     "machine": { "cpus": 2, ... },      free-form key/values, shown on one line
 *     "config": { ... },                  free-form, shown under details
 *     "ratios": {                         the headline figures
 *       "read_latency_p50_ratio": { "value": 1.08, "goal": "<= 1.25", "met": true,
 *                                   "description": "what over what" }
 *     },
 *     "figures": { ... },                 headline figures that are not ratios, same
 *                                         shape, optional "unit" (e.g. an RSS in MiB)
 *     "results": { ... },                 raw figures, any nesting; shown under details
 *     "notes": [ "..." ],                 optional remarks, shown as a list
 *     "plots": [ { "file": "x.png", "title": "...",
 *                  "script": "tools/bench/x.gp" } ]
 *   }
 *
 * Headline rows are every member of "ratios" and "figures", plus any member
 * anywhere else whose key contains "ratio"; each is a number or an object with
 * a numeric "value". "goal" is "<= X", "< X", ">= X", "> X" or "== X"; when
 * "met" is absent the report evaluates the goal itself.
 *
 * A plot's script runs as
 *   gnuplot -e "term='pngcairo'; datadir='DIR'; outfile='DIR/FILE'" SCRIPT
 * from the current directory (the repository root under make); term is png
 * when this gnuplot has no pngcairo, svg for a .svg file. Images in DIR named
 * after the benchmark but not listed are embedded too.
 */
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

extern char **environ;

struct options {
	const char *dir;
	const char *out;
	bool plots;
};

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("bench-report: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void warn(const char *fmt, ...)
{
	va_list ap;

	fputs("bench-report: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* Formatting                                                           */

/* Markdown table cells: no pipes or newlines. */
static void put_cell(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '|')
			fputs("\\|", f);
		else if (*s == '\n')
			fputc(' ', f);
		else
			fputc(*s, f);
	}
}

static void fmt_num(char *buf, size_t len, double x)
{
	double a = fabs(x);

	if (a >= 1000 || (a >= 10 && x == floor(x)))
		snprintf(buf, len, "%.0f", x);
	else if (a >= 10)
		snprintf(buf, len, "%.1f", x);
	else if (x == floor(x))
		snprintf(buf, len, "%.0f", x);
	else
		snprintf(buf, len, "%.3f", x);
}

/* A scalar or small array as text; false for anything else. */
static bool fmt_value(char *buf, size_t len, json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_INTEGER:
	case JSON_REAL:
		fmt_num(buf, len, json_number_value(v));
		return true;
	case JSON_STRING:
		snprintf(buf, len, "%s", json_string_value(v));
		return true;
	case JSON_TRUE:
	case JSON_FALSE:
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
		return true;
	case JSON_NULL:
		snprintf(buf, len, "null");
		return true;
	case JSON_ARRAY: {
		size_t i, off = 0;
		json_t *e;

		if (json_array_size(v) > 16)
			return false;
		off += (size_t)snprintf(buf + off, len - off, "[");
		json_array_foreach(v, i, e) {
			char one[64];

			if (!json_is_number(e) && !json_is_string(e))
				return false;
			fmt_value(one, sizeof(one), e);
			if (off < len)
				off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
							one);
		}
		if (off < len)
			snprintf(buf + off, len - off, "]");
		return true;
	}
	default:
		return false;
	}
}

/* ------------------------------------------------------------------ */
/* Headline figures                                                     */

struct row {
	char name[256];
	double value;
	const char *unit, *goal, *description;
	int met; /* 1, 0, or -1: no goal */
};

struct rows {
	struct row *v;
	size_t n, cap;
};

/* Evaluates "<= 1.25" and friends; -1 when goal is not understood. */
static int goal_met(const char *goal, double x)
{
	char op[3] = { 0 };
	double g;
	const char *p = goal;
	char *end;

	while (*p == ' ')
		p++;
	for (int i = 0; i < 2 && strchr("<>=!", *p); i++)
		op[i] = *p++;
	g = strtod(p, &end);
	if (end == p)
		return -1;
	if (!strcmp(op, "<="))
		return x <= g;
	if (!strcmp(op, "<"))
		return x < g;
	if (!strcmp(op, ">="))
		return x >= g;
	if (!strcmp(op, ">"))
		return x > g;
	if (!strcmp(op, "==") || !strcmp(op, "="))
		return x == g;
	return -1;
}

static void add_row(struct rows *rows, const char *name, json_t *v)
{
	struct row r = { .met = -1 };
	json_t *val = json_is_object(v) ? json_object_get(v, "value") : v;

	if (!json_is_number(val))
		return;
	snprintf(r.name, sizeof(r.name), "%s", name);
	r.value = json_number_value(val);
	if (json_is_object(v)) {
		json_t *met = json_object_get(v, "met");

		r.unit = json_string_value(json_object_get(v, "unit"));
		r.goal = json_string_value(json_object_get(v, "goal"));
		r.description = json_string_value(json_object_get(v, "description"));
		if (json_is_boolean(met))
			r.met = json_is_true(met);
		else if (r.goal)
			r.met = goal_met(r.goal, r.value);
	}
	if (rows->n == rows->cap) {
		rows->cap = rows->cap ? rows->cap * 2 : 16;
		rows->v = realloc(rows->v, rows->cap * sizeof(*rows->v));
		if (!rows->v)
			fail("out of memory");
	}
	rows->v[rows->n++] = r;
}

static bool is_headline_value(json_t *v)
{
	return json_is_number(v) || (json_is_object(v) && json_is_number(json_object_get(v, "value")));
}

/* Members whose key contains "ratio", anywhere below obj. */
static void collect_ratios(json_t *obj, const char *path, struct rows *rows)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		char sub[256];

		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
		if (strcasestr(key, "ratio") && is_headline_value(v))
			add_row(rows, sub, v);
		else if (json_is_object(v))
			collect_ratios(v, sub, rows);
	}
}

static void collect_rows(json_t *root, struct rows *rows)
{
	static const char *const sections[] = { "ratios", "figures" };
	const char *key;
	json_t *v;

	for (size_t i = 0; i < 2; i++) {
		json_t *sec = json_object_get(root, sections[i]);

		json_object_foreach(sec, key, v) {
			if (is_headline_value(v))
				add_row(rows, key, v);
		}
	}
	json_object_foreach(root, key, v) {
		if (!strcmp(key, "ratios") || !strcmp(key, "figures") || !strcmp(key, "machine") ||
		    !strcmp(key, "plots"))
			continue;
		if (strcasestr(key, "ratio") && is_headline_value(v))
			add_row(rows, key, v);
		else if (json_is_object(v))
			collect_ratios(v, key, rows);
	}
}

/* ------------------------------------------------------------------ */
/* Plots                                                                */

static const char *png_term; /* NULL: no gnuplot */

static void detect_gnuplot(void)
{
	FILE *p = popen("gnuplot -e 'set terminal' 2>&1", "r");
	char line[256];
	bool any = false, cairo = false;

	if (!p)
		return;
	while (fgets(line, sizeof(line), p)) {
		if (strstr(line, "pngcairo"))
			cairo = true;
		if (strstr(line, " png "))
			any = true;
	}
	if (pclose(p) != 0 || (!any && !cairo)) {
		warn("gnuplot with a png terminal not found: plots are not redrawn");
		return;
	}
	png_term = cairo ? "pngcairo" : "png";
}

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void render_plot(const struct options *o, const char *script, const char *file)
{
	char vars[8192], out[4096];
	const char *term = png_term;
	size_t fl = strlen(file);
	pid_t pid;
	int status, ret;

	if (!png_term)
		return;
	if (fl > 4 && !strcmp(file + fl - 4, ".svg"))
		term = "svg";
	if (strchr(o->dir, '\'') || strchr(file, '\'') || strchr(file, '/')) {
		warn("plot %s: unsupported file name", file);
		return;
	}
	if (!file_exists(script)) {
		warn("plot %s: script %s not found", file, script);
		return;
	}
	snprintf(out, sizeof(out), "%s/%s", o->dir, file);
	snprintf(vars, sizeof(vars), "term='%s'; datadir='%s'; outfile='%s'", term, o->dir, out);
	{
		char *argv[] = { "gnuplot", "-e", vars, (char *)script, NULL };

		ret = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
	}
	if (ret) {
		warn("cannot run gnuplot: %s", strerror(ret));
		return;
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		warn("gnuplot %s failed for %s", script, file);
}

static bool is_image(const char *name)
{
	size_t l = strlen(name);

	return l > 4 && (!strcmp(name + l - 4, ".png") || !strcmp(name + l - 4, ".svg"));
}

/* ------------------------------------------------------------------ */
/* The README                                                           */

struct bench {
	char file[4096];
	char name[256];
	json_t *root;
	struct rows rows;
};

static const char convention[] =
	"## How to read this, and how to add a benchmark\n"
	"\n"
	"The machines these run on are shared and noisy (a thread wake-up costs tens of\n"
	"microseconds), so absolute times mean little: every headline figure is a ratio\n"
	"against a floor measured **in the same run** (raw transport, thread ping-pong,\n"
	"all-local memory...), with alternating rounds so noise hits both sides, or an\n"
	"absolute figure with a goal (e.g. memory use).\n"
	"\n"
	"`make bench` runs every target in the Makefile variable `BENCH_TARGETS` one after\n"
	"another and then `build/bench-report`, which draws the plots and writes this file\n"
	"from every `docs/bench/*.json`. To add a benchmark: append `bench-NAME` to\n"
	"`BENCH_TARGETS` in your `module.mk`, have it write `docs/bench/NAME.json` in the\n"
	"shape below (plus any data files its plots read), and optionally a gnuplot script.\n"
	"\n"
	"```\n"
	"{\n"
	"  \"benchmark\": \"NAME\", \"title\": \"...\", \"description\": \"...\",\n"
	"  \"date\": \"2024-01-01T00:00:00Z\",\n"
	"  \"machine\": { \"cpus\": 2, \"cpu_model\": \"...\", \"kernel\": \"...\" },\n"
	"  \"config\": { ... },\n"
	"  \"ratios\":  { \"x_p50_ratio\": { \"value\": 1.08, \"goal\": \"<= 1.25\", \"met\": true,\n"
	"                                 \"description\": \"what / what\" } },\n"
	"  \"figures\": { \"rss_mib\": { \"value\": 3.1, \"unit\": \"MiB\", \"goal\": \"< 8\" } },\n"
	"  \"results\": { ...raw figures, any nesting... },\n"
	"  \"notes\": [ \"...\" ],\n"
	"  \"plots\": [ { \"file\": \"NAME-x.png\", \"title\": \"...\",\n"
	"               \"script\": \"tools/bench/NAME-x.gp\" } ]\n"
	"}\n"
	"```\n"
	"\n"
	"Headline rows: every member of `ratios` and `figures`, and any member elsewhere\n"
	"whose key contains `ratio`; a number or an object with a numeric `value`. `goal` is\n"
	"`<= X`, `< X`, `>= X`, `> X` or `== X`; without `met` the generator evaluates it.\n"
	"A plot script runs as `gnuplot -e \"term='pngcairo'; datadir='docs/bench';\n"
	"outfile='docs/bench/FILE'\" SCRIPT` from the repository root (`term` is `png` when\n"
	"gnuplot lacks cairo). Images named `NAME*.png` not listed in `plots` are shown too.\n";

static void write_machine(FILE *f, json_t *m)
{
	const char *key;
	json_t *v;
	bool first = true;

	json_object_foreach(m, key, v) {
		char val[512];

		if (!fmt_value(val, sizeof(val), v))
			continue;
		fprintf(f, "%s%s: %s", first ? "" : ", ", key, val);
		first = false;
	}
}

/* Scalars of a nested object as "a.b.c | value" rows. */
static void write_flat(FILE *f, json_t *obj, const char *path)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		char sub[512], val[2048];

		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
		if (json_is_object(v)) {
			write_flat(f, v, sub);
			continue;
		}
		if (!fmt_value(val, sizeof(val), v))
			snprintf(val, sizeof(val), "(%zu values)", json_array_size(v));
		fputs("| ", f);
		put_cell(f, sub);
		fputs(" | ", f);
		put_cell(f, val);
		fputs(" |\n", f);
	}
}

static const char *met_text(int met)
{
	return met < 0 ? "" : met ? "yes" : "**NO**";
}

static void write_value(FILE *f, const struct row *r)
{
	char num[64];

	fmt_num(num, sizeof(num), r->value);
	fprintf(f, "%s%s%s", num, r->unit ? " " : "", r->unit ? r->unit : "");
}

static void write_bench(FILE *f, const struct options *o, struct bench *b)
{
	json_t *root = b->root, *plots = json_object_get(root, "plots"), *v;
	const char *title = json_string_value(json_object_get(root, "title"));
	const char *desc = json_string_value(json_object_get(root, "description"));
	const char *date = json_string_value(json_object_get(root, "date"));
	char pattern[4096];
	glob_t g;
	size_t i;

	fprintf(f, "## %s%s%s\n\n", b->name, title ? ": " : "", title ? title : "");
	fprintf(f, "_`%s`", strrchr(b->file, '/') ? strrchr(b->file, '/') + 1 : b->file);
	if (date)
		fprintf(f, ", run %s", date);
	if (json_is_object(json_object_get(root, "machine"))) {
		fputs(", on ", f);
		write_machine(f, json_object_get(root, "machine"));
	}
	fputs("_\n\n", f);
	if (desc)
		fprintf(f, "%s\n\n", desc);
	if (b->rows.n) {
		fputs("| figure | value | goal | met | what |\n|---|---:|---|---|---|\n", f);
		for (i = 0; i < b->rows.n; i++) {
			const struct row *r = &b->rows.v[i];

			fputs("| ", f);
			put_cell(f, r->name);
			fputs(" | ", f);
			write_value(f, r);
			fputs(" | ", f);
			put_cell(f, r->goal ? r->goal : "");
			fprintf(f, " | %s | ", met_text(r->met));
			put_cell(f, r->description ? r->description : "");
			fputs(" |\n", f);
		}
		fputc('\n', f);
	}
	json_array_foreach(json_object_get(root, "notes"), i, v) {
		if (json_is_string(v))
			fprintf(f, "- %s\n%s", json_string_value(v),
				i + 1 == json_array_size(json_object_get(root, "notes")) ? "\n" : "");
	}

	/* Plots: the listed ones, then other images named after the benchmark. */
	json_array_foreach(plots, i, v) {
		const char *file = json_string_value(json_object_get(v, "file"));
		const char *ptitle = json_string_value(json_object_get(v, "title"));
		char path[8192];

		if (!file)
			continue;
		snprintf(path, sizeof(path), "%s/%s", o->dir, file);
		if (file_exists(path))
			fprintf(f, "![%s](%s)\n\n", ptitle ? ptitle : file, file);
		else
			fprintf(f, "_(plot %s missing: gnuplot not available?)_\n\n", file);
	}
	snprintf(pattern, sizeof(pattern), "%s/%s*", o->dir, b->name);
	if (glob(pattern, 0, NULL, &g) == 0) {
		for (size_t k = 0; k < g.gl_pathc; k++) {
			const char *base = strrchr(g.gl_pathv[k], '/') + 1;
			bool listed = false;

			if (!is_image(base))
				continue;
			json_array_foreach(plots, i, v) {
				const char *file = json_string_value(json_object_get(v, "file"));

				if (file && !strcmp(file, base))
					listed = true;
			}
			if (!listed)
				fprintf(f, "![%s](%s)\n\n", base, base);
		}
		globfree(&g);
	}

	fputs("<details><summary>All figures</summary>\n\n| key | value |\n|---|---|\n", f);
	if (json_is_object(json_object_get(root, "config")))
		write_flat(f, json_object_get(root, "config"), "config");
	if (json_is_object(json_object_get(root, "results")))
		write_flat(f, json_object_get(root, "results"), "results");
	fputs("\n</details>\n\n", f);
}

static void write_readme(const struct options *o, struct bench *b, size_t n)
{
	char tmp[4096];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", o->out) >= sizeof(tmp))
		fail("path too long: %s", o->out);
	f = fopen(tmp, "w");
	if (!f)
		fail("cannot write %s: %s", tmp, strerror(errno));
	fputs("# Benchmarks\n\n"
	      "<!-- Generated by build/bench-report (`make bench`) from docs/bench/*.json. "
	      "Do not edit: your changes would be overwritten. -->\n\n",
	      f);
	fputs(convention, f);
	fputs("\n## Summary\n\n", f);
	if (!n) {
		fputs("No results yet: run `make bench`.\n\n", f);
	} else {
		fputs("| benchmark | figure | value | goal | met |\n|---|---|---:|---|---|\n", f);
		for (size_t i = 0; i < n; i++) {
			for (size_t k = 0; k < b[i].rows.n; k++) {
				const struct row *r = &b[i].rows.v[k];

				fprintf(f, "| [%s](#%s) | ", b[i].name, b[i].name);
				put_cell(f, r->name);
				fputs(" | ", f);
				write_value(f, r);
				fputs(" | ", f);
				put_cell(f, r->goal ? r->goal : "");
				fprintf(f, " | %s |\n", met_text(r->met));
			}
			if (!b[i].rows.n)
				fprintf(f, "| %s | (no headline figures) | | | |\n", b[i].name);
		}
		fputc('\n', f);
	}
	for (size_t i = 0; i < n; i++)
		write_bench(f, o, &b[i]);
	if (fclose(f))
		fail("cannot write %s: %s", tmp, strerror(errno));
	if (rename(tmp, o->out))
		fail("cannot rename %s: %s", tmp, strerror(errno));
}

static void usage_exit(int code) __attribute__((noreturn));

static void usage_exit(int code)
{
	fputs("usage: bench-report [--dir DIR] [--out FILE] [--no-plots]\n"
	      "\n"
	      "Draws the plots named by every DIR/*.json (gnuplot) and writes a Markdown\n"
	      "report of their headline figures and plots (default DIR docs/bench, FILE\n"
	      "DIR/README.md). The JSON convention is described in the report itself.\n",
	      code ? stderr : stdout);
	exit(code);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ "no-plots", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct options o = { .dir = "docs/bench", .plots = true };
	char pattern[4096], outbuf[4096];
	struct bench *b;
	size_t n = 0;
	glob_t g;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "d:o:nh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o.dir = optarg;
			break;
		case 'o':
			o.out = optarg;
			break;
		case 'n':
			o.plots = false;
			break;
		case 'h':
			usage_exit(0);
		default:
			usage_exit(2);
		}
	}
	if (optind != argc)
		usage_exit(2);
	if (!o.out) {
		snprintf(outbuf, sizeof(outbuf), "%s/README.md", o.dir);
		o.out = outbuf;
	}
	if (o.plots)
		detect_gnuplot();

	snprintf(pattern, sizeof(pattern), "%s/*.json", o.dir);
	ret = glob(pattern, 0, NULL, &g);
	if (ret && ret != GLOB_NOMATCH)
		fail("cannot list %s", pattern);
	b = calloc(ret ? 1 : g.gl_pathc, sizeof(*b));
	if (!b)
		fail("out of memory");
	for (size_t i = 0; !ret && i < g.gl_pathc; i++) {
		struct bench *x = &b[n];
		json_error_t err;
		const char *name, *base = strrchr(g.gl_pathv[i], '/');
		json_t *v;
		size_t k;

		base = base ? base + 1 : g.gl_pathv[i];
		snprintf(x->file, sizeof(x->file), "%s", g.gl_pathv[i]);
		x->root = json_load_file(x->file, 0, &err);
		if (!json_is_object(x->root)) {
			warn("%s:%d: %s: skipped", x->file, err.line, err.text);
			json_decref(x->root);
			continue;
		}
		name = json_string_value(json_object_get(x->root, "benchmark"));
		if (name)
			snprintf(x->name, sizeof(x->name), "%s", name);
		else
			snprintf(x->name, sizeof(x->name), "%.*s", (int)(strlen(base) - 5), base);
		collect_rows(x->root, &x->rows);
		if (o.plots) {
			json_array_foreach(json_object_get(x->root, "plots"), k, v) {
				const char *file = json_string_value(json_object_get(v, "file"));
				const char *script = json_string_value(json_object_get(v, "script"));

				if (file && script)
					render_plot(&o, script, file);
			}
		}
		n++;
	}
	write_readme(&o, b, n);
	printf("bench-report: %s: %zu benchmark%s\n", o.out, n, n == 1 ? "" : "s");
	for (size_t i = 0; i < n; i++) {
		json_decref(b[i].root);
		free(b[i].rows.v);
	}
	free(b);
	if (!ret)
		globfree(&g);
	return 0;
}

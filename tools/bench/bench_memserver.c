/*
 * bench-memserver: the memory server over loopback TCP, judged against the raw
 * transport measured in the same run (docs/bench/README.md explains why only
 * such ratios mean anything on shared machines).
 *
 *  1. Latency of one outstanding 4 KiB READ (ms_client_read, 1 page) against a
 *     raw TCP ping-pong of the same sizes (48-byte request, 24+16+4096-byte
 *     response) between two threads of this process; also PING against a
 *     32/24-byte ping-pong, which isolates the per-request cost from the
 *     per-page cost. Rounds alternate raw and memserver (and which goes first)
 *     so machine noise hits both.
 *  2. Pages per second at 1 and 32 outstanding 1-page READs, and at 32
 *     outstanding 1-page WRITEs, against a raw server thread answering
 *     pipelined requests of the same sizes. Interleaved the same way.
 *  3. RSS of the real daemon (build/memserver) with 1 GiB of regions created
 *     but untouched, then after writing 64 MiB (lazy allocation).
 *
 * The in-process memory server and the raw server each run on one thread, and
 * the client side is this process's main thread in both cases.
 *
 * Writes DIR/memserver.json (convention: tools/bench/README.md) and the data
 * files the gnuplot scripts tools/bench/memserver-*.gp read; bench-report
 * draws the plots and the README.
 *
 * This file owns the command line, the set-up and the report (JSON, plot
 * data, summary); bench_memserver_run.c runs parts 1 and 2 and
 * bench_memserver_rss.c part 3.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "memserver/client.h"
#include "memserver/server.h"
#include "tools/bench/bench_memserver.h"
#include "tools/bench/benchutil.h"
#include "tools/bench/rawtcp.h"

#define LAT_GOAL 1.25		/* memserver p50 / raw p50 */
#define RSS_GOAL_MIB 8.0	/* daemon RSS with 1 GiB of untouched regions */
#define RSS_GROWTH_GOAL 1.10	/* RSS growth / bytes written */

/* ------------------------------------------------------------------ */
/* Samples and percentiles                                              */

static double median_d(double *v, unsigned n)
{
	double t[64];

	if (!n)
		return 0;
	memcpy(t, v, n * sizeof(*v));
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j && t[j - 1] > t[j]; j--) {
			double x = t[j];

			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* ------------------------------------------------------------------ */
/* Report                                                               */

static json_t *lat_json(const struct bench_samples *s, const double *p50s, unsigned rounds)
{
	json_t *per_round = json_array();

	for (unsigned r = 0; r < rounds; r++)
		json_array_append_new(per_round, json_real(bench_round3(p50s[r])));
	return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:o}", "samples", (json_int_t)s->n, "p50_us",
			 bench_round3(bench_quantile_us(s, 0.50)), "p90_us", bench_round3(bench_quantile_us(s, 0.90)),
			 "p99_us", bench_round3(bench_quantile_us(s, 0.99)), "p999_us",
			 bench_round3(bench_quantile_us(s, 0.999)), "mean_us", bench_round3(bench_mean_us(s)),
			 "round_p50_us", per_round);
}

static double tput_pps(uint64_t pages, uint64_t ns)
{
	return ns ? (double)pages * 1e9 / (double)ns : 0;
}

static FILE *open_out(const struct options *o, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", o->outdir, name);
	f = fopen(path, "w");
	if (!f)
		die("cannot write %s: %s", path, strerror(errno));
	return f;
}

static void write_data_files(const struct options *o, const struct lat_result *lr,
			     const struct tput_case *tc, unsigned ntc)
{
	FILE *f = open_out(o, "memserver-latency.dat");

	/* Latency CDF of the 4 KiB round trips: one line per quantile, a raw and
	 * a memserver column per placement (zeros where not measured). */
	fprintf(f, "# quantile");
	for (unsigned p = 0; p < PL_COUNT; p++)
		fprintf(f, " %s_raw_us %s_memserver_us", placement_name[p], placement_name[p]);
	fputc('\n', f);
	for (unsigned i = 1; i <= 999; i++) {
		double q = i / 1000.0;

		fprintf(f, "%.3f", q);
		for (unsigned p = 0; p < PL_COUNT; p++)
			fprintf(f, " %.3f %.3f", bench_quantile_us(&lr[p].all[LAT_RAW_READ], q),
				bench_quantile_us(&lr[p].all[LAT_MS_READ], q));
		fputc('\n', f);
	}
	fclose(f);

	f = open_out(o, "memserver-rounds.dat");
	fprintf(f, "# round, then per placement: raw_p50_us memserver_p50_us\n");
	for (unsigned r = 0; r < o->rounds; r++) {
		fprintf(f, "%u", r + 1);
		for (unsigned p = 0; p < PL_COUNT; p++)
			fprintf(f, " %.3f %.3f", lr[p].round_p50[LAT_RAW_READ][r],
				lr[p].round_p50[LAT_MS_READ][r]);
		fputc('\n', f);
	}
	fclose(f);

	f = open_out(o, "memserver-throughput.dat");
	fprintf(f, "# case raw_kpages_per_s memserver_kpages_per_s\n");
	for (unsigned i = 0; i < ntc; i++)
		fprintf(f, "%s %.3f %.3f\n", tc[i].name,
			tput_pps(tc[i].raw_pages, tc[i].raw_ns) / 1000.0,
			tput_pps(tc[i].ms_pages, tc[i].ms_ns) / 1000.0);
	fclose(f);
}

static void usage_exit(int code) __attribute__((noreturn));

static void usage_exit(int code)
{
	fputs("usage: bench-memserver [--out DIR] [--memserver PATH] [--quick]\n"
	      "\n"
	      "Measures the memory server against raw loopback TCP in the same run and\n"
	      "writes DIR/memserver.json plus plot data (default DIR: docs/bench).\n"
	      "\n"
	      "  -o, --out DIR         where to write the results\n"
	      "  -m, --memserver PATH  daemon for the RSS figures (default build/memserver)\n"
	      "  -q, --quick           a tiny run (smoke test; the figures mean nothing)\n"
	      "  -h, --help\n",
	      code ? stderr : stdout);
	exit(code);
}

static double p_ratio(const struct lat_result *lr, enum lat_mode ms, enum lat_mode raw, double q)
{
	double r = bench_quantile_us(&lr->all[raw], q);

	return r > 0 ? bench_quantile_us(&lr->all[ms], q) / r : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "memserver", required_argument, NULL, 'm' },
		{ "quick", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct options o = { .outdir = "docs/bench", .memserver = "build/memserver" };
	struct tput_case tc[] = {
		{ .name = "read-depth1", .op = MS_OP_READ, .depth = 1,
		  .req_len = READ_REQ_LEN, .resp_len = READ_RESP_LEN },
		{ .name = "read-depth32", .op = MS_OP_READ, .depth = 32,
		  .req_len = READ_REQ_LEN, .resp_len = READ_RESP_LEN },
		{ .name = "write-depth32", .op = MS_OP_WRITE, .depth = 32,
		  .req_len = WRITE_REQ_LEN, .resp_len = WRITE_RESP_LEN },
	};
	static const char *const tput_key[] = { "read_pages_per_s_depth1_ratio",
						"read_pages_per_s_depth32_ratio",
						"write_pages_per_s_depth32_ratio" };
	static struct lat_result lr[PL_COUNT];
	struct rss_result rr = { 0 };
	struct ms_server_config cfg = { .listen = "tcp://127.0.0.1:0", .capacity = 1ull << 30,
					.threads = 1 };
	struct ctx c = { .o = &o, .region = 1 };
	uint8_t token[MS_TOKEN_LEN];
	uint64_t wpages[MS_MAX_BATCH], t_start = now_ns();
	double lat_ratio, tput_ratio[ARRAY_SIZE(tc)], rss_growth = 0;
	enum placement hp;
	const struct lat_result *h;
	char date[32], text[512];
	json_t *root, *ratios, *results, *lat, *tput, *plots, *figures, *notes;
	int opt, ret;

	log_init("bench-memserver", LOG_WARN);
	while ((opt = getopt_long(argc, argv, "o:m:qh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			o.outdir = optarg;
			break;
		case 'm':
			o.memserver = optarg;
			break;
		case 'q':
			o.quick = true;
			break;
		case 'h':
			usage_exit(0);
		default:
			usage_exit(2);
		}
	}
	if (optind != argc)
		usage_exit(2);
	o.rounds = o.quick ? 2 : 10;
	o.lat_iters = o.quick ? 50 : 1500;
	o.tput_ms = o.quick ? 20 : 150;
	o.rss_regions = 16;
	o.rss_write_mib = o.quick ? 4 : 64;
	if (mkdir(o.outdir, 0777) && errno != EEXIST)
		die("cannot create %s: %s", o.outdir, strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	placement_init();
	hp = headline_placement();
	h = &lr[hp];

	/* The in-process server: one worker, like the raw server's one thread. */
	ret = ms_server_create(&cfg, &c.srv);
	if (ret || (ret = ms_server_start(c.srv)))
		die("cannot start the memory server: %s", strerror(-ret));
	ret = ms_client_connect(ms_server_url(c.srv), NULL, 10000, &c.cl);
	if (ret)
		die("cannot connect to %s: %s", ms_server_url(c.srv), strerror(-ret));
	if ((ret = ms_client_create(c.cl, c.region, 64ull << 20, token)) ||
	    (ret = ms_client_open(c.cl, c.region, token, &c.epoch, NULL)))
		die("cannot set up the region: %s", strerror(-ret));
	c.pages = malloc((size_t)MS_MAX_BATCH * MS_PAGE_SIZE);
	c.raw_req = calloc(MAX_DEPTH, WRITE_REQ_LEN);
	c.raw_rx = malloc(RAW_RX);
	if (!c.pages || !c.raw_req || !c.raw_rx)
		die("out of memory");
	/* Pages hold data (never-written pages would come back as flags only). */
	for (size_t i = 0; i < (size_t)MS_MAX_BATCH * MS_PAGE_SIZE; i++)
		c.pages[i] = (uint8_t)(i * 2654435761u >> 13);
	for (unsigned p = 0; p < BENCH_PAGES; p += MS_MAX_BATCH) {
		for (unsigned i = 0; i < MS_MAX_BATCH; i++)
			wpages[i] = p + i;
		ret = ms_client_write(c.cl, c.region, c.epoch, wpages, MS_MAX_BATCH, c.pages);
		if (ret)
			die("cannot fill the region: %s", strerror(-ret));
	}
	raw_server_start(&c.raw);

	for (unsigned p = 0; p < PL_COUNT; p++) {
		if (!placement_possible(p))
			continue;
		fprintf(stderr, "bench-memserver: latency, %s (%u rounds x %u round trips per mode)...\n",
			placement_name[p], o.rounds, o.lat_iters);
		run_latency(&c, &lr[p], p);
	}
	for (unsigned i = 0; i < ARRAY_SIZE(tc); i++) {
		fprintf(stderr, "bench-memserver: throughput %s, %s (%u rounds x %u ms per mode)...\n",
			tc[i].name, placement_name[hp], o.rounds, o.tput_ms);
		run_tput(&c, &tc[i]);
	}
	place(PL_FREE);
	ms_client_close(c.cl);
	ms_server_destroy(c.srv);
	raw_server_stop(&c.raw);
	fprintf(stderr, "bench-memserver: daemon RSS (%u x 64 MiB regions)...\n", o.rss_regions);
	run_rss(&o, &rr);

	/* Figures. */
	lat_ratio = p_ratio(h, LAT_MS_READ, LAT_RAW_READ, 0.5);
	for (unsigned i = 0; i < ARRAY_SIZE(tc); i++)
		tput_ratio[i] = tput_pps(tc[i].ms_pages, tc[i].ms_ns) /
				tput_pps(tc[i].raw_pages, tc[i].raw_ns);
	if (rr.ok && rr.written_bytes)
		rss_growth = (rr.written_mib - rr.untouched_mib) /
			     ((double)rr.written_bytes / (1 << 20));

	ratios = json_object();
	snprintf(text, sizeof(text),
		 "memserver 4 KiB READ p50 / raw TCP ping-pong p50, 1 outstanding, %s",
		 placement_text[hp]);
	json_object_set_new(ratios, "read_latency_p50_ratio",
			    bench_ratio_json(lat_ratio, "<= 1.25", lat_ratio <= LAT_GOAL, text));
	json_object_set_new(ratios, "read_latency_p99_ratio",
			    bench_ratio_json(p_ratio(h, LAT_MS_READ, LAT_RAW_READ, 0.99), NULL, -1,
				       "the same at p99"));
	json_object_set_new(ratios, "ping_latency_p50_ratio",
			    bench_ratio_json(p_ratio(h, LAT_MS_PING, LAT_RAW_PING, 0.5), NULL, -1,
				       "memserver PING p50 / raw 32-byte ping-pong p50: the "
				       "per-request cost without the page"));
	for (unsigned p = 0; p < PL_COUNT; p++) {
		char key[96];

		/* Unpinned figures are in results only: which side the scheduler
		 * happens to split across CPUs decides them (see the notes). */
		if (p == hp || p == PL_FREE || !placement_possible(p))
			continue;
		snprintf(key, sizeof(key), "read_latency_p50_%s_ratio", placement_name[p]);
		snprintf(text, sizeof(text), "READ p50 ratio with %s", placement_text[p]);
		json_object_set_new(ratios, key,
				    bench_ratio_json(p_ratio(&lr[p], LAT_MS_READ, LAT_RAW_READ, 0.5),
					       NULL, -1, text));
	}
	for (unsigned i = 0; i < ARRAY_SIZE(tc); i++) {
		snprintf(text, sizeof(text),
			 "memserver %s pages/s / raw pages/s, %u outstanding 1-page requests",
			 ms_op_name(tc[i].op), tc[i].depth);
		json_object_set_new(ratios, tput_key[i], bench_ratio_json(tput_ratio[i], NULL, -1, text));
	}
	if (rr.ok)
		json_object_set_new(ratios, "rss_growth_per_written_byte_ratio",
				    bench_ratio_json(rss_growth, "<= 1.1", rss_growth <= RSS_GROWTH_GOAL,
					       "daemon RSS growth / bytes written (lazy allocation: ~1)"));

	figures = json_object();
	if (rr.ok)
		json_object_set_new(
			figures, "daemon_rss_untouched_mib",
			json_pack("{s:f,s:s,s:s,s:b,s:s}", "value", bench_round3(rr.untouched_mib),
				  "unit", "MiB", "goal", "< 8", "met",
				  rr.untouched_mib < RSS_GOAL_MIB, "description",
				  "memserver daemon VmRSS with 16 x 64 MiB regions created, untouched"));
	json_object_set_new(figures, "raw_tcp_4k_p50_us",
			    json_pack("{s:f,s:s,s:s}", "value",
				      bench_round3(bench_quantile_us(&h->all[LAT_RAW_READ], 0.5)), "unit", "us",
				      "description",
				      "the floor: raw loopback TCP 48 B / 4136 B round trip (absolute "
				      "times are only context)"));
	json_object_set_new(figures, "memserver_read_p50_us",
			    json_pack("{s:f,s:s,s:s}", "value",
				      bench_round3(bench_quantile_us(&h->all[LAT_MS_READ], 0.5)), "unit", "us",
				      "description", "memserver 1-page READ round trip"));

	results = json_object();
	lat = json_object();
	for (unsigned p = 0; p < PL_COUNT; p++) {
		json_t *one = json_object();

		if (!placement_possible(p))
			continue;
		for (unsigned m = 0; m < LAT_MODES; m++)
			json_object_set_new(one, lat_mode_name[m],
					    lat_json(&lr[p].all[m], lr[p].round_p50[m], o.rounds));
		json_object_set_new(lat, placement_name[p], one);
	}
	json_object_set_new(results, "latency", lat);
	tput = json_object();
	for (unsigned i = 0; i < ARRAY_SIZE(tc); i++) {
		json_t *raw_r = json_array(), *ms_r = json_array();

		for (unsigned r = 0; r < o.rounds; r++) {
			json_array_append_new(raw_r, json_real(round(tc[i].raw_pps[r])));
			json_array_append_new(ms_r, json_real(round(tc[i].ms_pps[r])));
		}
		json_object_set_new(
			tput, tc[i].name,
			json_pack("{s:s,s:i,s:i,s:i,s:f,s:f,s:f,s:f,s:o,s:o}", "op",
				  ms_op_name(tc[i].op), "depth", tc[i].depth, "request_bytes",
				  tc[i].req_len, "response_bytes", tc[i].resp_len,
				  "raw_pages_per_s", round(tput_pps(tc[i].raw_pages, tc[i].raw_ns)),
				  "memserver_pages_per_s",
				  round(tput_pps(tc[i].ms_pages, tc[i].ms_ns)),
				  "raw_median_round_pages_per_s", round(median_d(tc[i].raw_pps, o.rounds)),
				  "memserver_median_round_pages_per_s",
				  round(median_d(tc[i].ms_pps, o.rounds)), "raw_round_pages_per_s",
				  raw_r, "memserver_round_pages_per_s", ms_r));
	}
	json_object_set_new(results, "throughput", tput);
	if (rr.ok)
		json_object_set_new(
			results, "daemon_rss",
			json_pack("{s:f,s:f,s:f,s:f,s:f,s:I,s:I,s:I,s:i}", "idle_mib",
				  bench_round3(rr.idle_mib), "regions_untouched_mib", bench_round3(rr.untouched_mib),
				  "regions_untouched_anon_mib", bench_round3(rr.untouched_anon_mib),
				  "regions_untouched_file_mib", bench_round3(rr.untouched_file_mib),
				  "after_write_mib", bench_round3(rr.written_mib), "regions_bytes",
				  (json_int_t)rr.created_bytes, "written_bytes",
				  (json_int_t)rr.written_bytes, "stat_resident_bytes",
				  (json_int_t)rr.stat_resident, "regions", o.rss_regions));
	else
		json_object_set_new(results, "daemon_rss", json_pack("{s:s}", "error", rr.error));

	plots = json_pack(
		"[{s:s,s:s,s:s},{s:s,s:s,s:s}]", "file", "memserver-latency.png", "script",
		"tools/bench/memserver-latency.gp", "title",
		"4 KiB READ round trip vs raw TCP: distribution and p50 of each interleaved round",
		"file", "memserver-throughput.png", "script", "tools/bench/memserver-throughput.gp",
		"title", "Pages per second, raw TCP vs memory server");
	notes = json_array();
	snprintf(text, sizeof(text),
		 "Headline latency and throughput: %s (as between two machines). Left to the "
		 "scheduler, a round trip flips between ~12 us (both threads on one CPU) and "
		 "~50 us (a cross-CPU wake-up) for hundreds of milliseconds at a time, whichever "
		 "side is measured: see the unpinned rounds in the plot; their ratio "
		 "(results.latency.unpinned) measures the scheduler, not the server.",
		 placement_text[hp]);
	json_array_append_new(notes, json_string(text));
	if (o.quick)
		json_array_append_new(notes, json_string("--quick run: the figures mean nothing."));

	root = json_pack(
		"{s:s,s:s,s:s,s:s,s:o,s:{s:s,s:b,s:i,s:i,s:i,s:i,s:i,s:s,s:s},s:o,s:o,s:o,s:o,s:o}",
		"benchmark", "memserver", "title", "Memory server over loopback TCP", "description",
		"Memory-server requests against a raw TCP ping-pong of the same sizes between two "
		"threads of the same process, interleaved in alternating rounds of one run. The "
		"in-process server has one worker thread, like the raw server. RSS figures are "
		"of the real memserver daemon.",
		"date", bench_iso_date(date, sizeof(date)), "machine", bench_machine_json(), "config",
		"transport", "tcp://127.0.0.1", "quick", o.quick, "rounds", o.rounds,
		"latency_round_trips_per_round", o.lat_iters, "throughput_ms_per_round", o.tput_ms,
		"server_threads", 1, "pages_cycled", BENCH_PAGES, "headline_placement",
		placement_name[hp], "runtime", "", "ratios", ratios, "figures", figures, "results",
		results, "notes", notes, "plots", plots);
	snprintf(text, sizeof(text), "%.1f s", (double)(now_ns() - t_start) / 1e9);
	json_object_set_new(json_object_get(root, "config"), "runtime", json_string(text));
	write_data_files(&o, lr, tc, ARRAY_SIZE(tc));
	snprintf(text, sizeof(text), "%s/memserver.json", o.outdir);
	if (json_dump_file(root, text, JSON_INDENT(2) | JSON_REAL_PRECISION(10)))
		die("cannot write %s", text);

	/* Human summary. */
	printf("memserver vs raw loopback TCP (same run, %u interleaved rounds)%s\n", o.rounds,
	       o.quick ? "  [--quick: figures mean nothing]" : "");
	printf("  %-34s %10s %10s %7s\n", "", "raw", "memserver", "ratio");
	for (unsigned p = 0; p < PL_COUNT; p++) {
		if (!placement_possible(p))
			continue;
		for (unsigned k = 0; k < 3; k++) {
			enum lat_mode ms = k < 2 ? LAT_MS_READ : LAT_MS_PING;
			enum lat_mode raw = k < 2 ? LAT_RAW_READ : LAT_RAW_PING;
			double q = k == 1 ? 0.99 : 0.5;

			snprintf(text, sizeof(text), "%s %s, %s", k < 2 ? "READ 4K" : "PING",
				 k == 1 ? "p99" : "p50", placement_name[p]);
			printf("  %-34s %8.1fus %8.1fus %7.3f%s\n", text,
			       bench_quantile_us(&lr[p].all[raw], q), bench_quantile_us(&lr[p].all[ms], q),
			       p_ratio(&lr[p], ms, raw, q),
			       p == hp && k == 0 ? (lat_ratio <= LAT_GOAL ? "  goal <= 1.25: met"
									: "  goal <= 1.25: NOT met")
						 : "");
		}
	}
	for (unsigned i = 0; i < ARRAY_SIZE(tc); i++) {
		snprintf(text, sizeof(text), "%s depth %u pages/s, %s",
			 tc[i].op == MS_OP_READ ? "READ" : "WRITE", tc[i].depth, placement_name[hp]);
		printf("  %-34s %10.0f %10.0f %7.3f\n", text, tput_pps(tc[i].raw_pages, tc[i].raw_ns),
		       tput_pps(tc[i].ms_pages, tc[i].ms_ns), tput_ratio[i]);
	}
	if (rr.ok) {
		printf("  daemon RSS: %.1f MiB idle, %.1f MiB with %u MiB of regions untouched "
		       "(goal < %.0f MiB: %s),\n"
		       "              %.1f MiB after writing %llu MiB (growth/written %.3f)\n",
		       rr.idle_mib, rr.untouched_mib, (unsigned)(rr.created_bytes >> 20), RSS_GOAL_MIB,
		       rr.untouched_mib < RSS_GOAL_MIB ? "met" : "NOT met", rr.written_mib,
		       (unsigned long long)(rr.written_bytes >> 20), rss_growth);
	} else {
		printf("  daemon RSS: not measured: %s\n", rr.error);
	}
	printf("  wrote %s/memserver.json (%.1f s)\n", o.outdir,
	       (double)(now_ns() - t_start) / 1e9);

	json_decref(root);
	for (unsigned p = 0; p < PL_COUNT; p++)
		for (unsigned m = 0; m < LAT_MODES; m++)
			free(lr[p].all[m].v);
	free(c.pages);
	free(c.raw_req);
	free(c.raw_rx);
	return 0;
}

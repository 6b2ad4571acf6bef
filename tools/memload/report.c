/*
 * memload's report: the configuration, throughput, the engine's statistics
 * and latency histograms, residency and the verification results of a run,
 * as text for people or as one JSON object for scripts (--json).
 */
#include "tools/memload/report.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hist.h"

static const char *pattern_name(const struct ml_opts *o)
{
	static const char *const names[] = { "seq", "uniform", "zipf", "graph", "trace" };

	return names[o->pattern];
}

static void print_hist(const char *name, const struct hist *h)
{
	if (!hist_total(h))
		return;
	printf("  %-13s n=%" PRIu64 " p50=%.1fus p90=%.1fus p99=%.1fus\n", name, hist_total(h),
	       hist_quantile(h, 0.5) / 1e3, hist_quantile(h, 0.9) / 1e3,
	       hist_quantile(h, 0.99) / 1e3);
}

void ml_print_json(const struct ml_opts *o, const struct ml_run *r, const struct ml_report *rp)
{
	json_t *root = json_object(), *cfg = json_object(), *servers = json_array(), *stats;
	uint64_t gv, ge, gi;
	char *text;

	for (unsigned i = 0; i < o->nservers; i++)
		json_array_append_new(servers, json_string(o->servers[i]));
	json_object_set_new(cfg, "mem_bytes", json_integer((json_int_t)o->mem));
	json_object_set_new(cfg, "cache_bytes", json_integer((json_int_t)o->cache));
	json_object_set_new(cfg, "threads", json_integer(o->threads));
	json_object_set_new(cfg, "pattern", json_string(pattern_name(o)));
	if (o->pattern == PAT_ZIPF)
		json_object_set_new(cfg, "theta", json_real(o->theta));
	if (o->trace_file)
		json_object_set_new(cfg, "trace", json_string(o->trace_file));
	json_object_set_new(cfg, "ops", json_integer((json_int_t)(o->ops ? o->ops : r->ops_total)));
	json_object_set_new(cfg, "write_ratio", json_real(o->write_ratio));
	json_object_set_new(cfg, "zero_ratio", json_real(o->zero_ratio));
	json_object_set_new(cfg, "policy", o->local ? json_null()
						      : json_string(o->policy ? o->policy : "default"));
	json_object_set_new(cfg, "prefetch", json_boolean(o->prefetch));
	json_object_set_new(cfg, "verify", json_boolean(o->verify));
	json_object_set_new(cfg, "local", json_boolean(o->local));
	json_object_set_new(cfg, "replicas", json_integer(o->replicas));
	json_object_set_new(cfg, "memservers", servers);
	json_object_set_new(cfg, "seed", json_integer((json_int_t)o->seed));
	json_object_set_new(cfg, "test_delay_us", json_integer(o->test_delay_us));
	json_object_set_new(root, "config", cfg);
	if (ml_graph_info(r, &gv, &ge, &gi))
		json_object_set_new(root, "graph",
				    json_pack("{s:I,s:I,s:I}", "vertices", (json_int_t)gv, "edges",
					      (json_int_t)ge, "iterations", (json_int_t)gi));
	json_object_set_new(root, "setup_seconds", json_real(rp->setup_s));
	json_object_set_new(root, "elapsed_seconds", json_real(rp->elapsed_s));
	json_object_set_new(root, "ops", json_integer((json_int_t)rp->ops));
	json_object_set_new(root, "ops_per_second",
			    json_real(rp->elapsed_s > 0 ? (double)rp->ops / rp->elapsed_s : 0));
	json_object_set_new(root, "reads", json_integer((json_int_t)rp->reads));
	json_object_set_new(root, "writes", json_integer((json_int_t)rp->writes));
	stats = json_null();
	if (rp->have_stats) {
		char *s = ept_stats_json(&rp->st);

		if (s) {
			json_t *parsed = json_loads(s, 0, NULL);

			if (parsed) {
				json_decref(stats);
				stats = parsed;
			}
			free(s);
		}
	}
	json_object_set_new(root, "ept", stats);
	json_object_set_new(root, "resident_peak_pages",
			    rp->have_stats ? json_integer((json_int_t)rp->resident_peak) : json_null());
	json_object_set_new(root, "capacity_pages",
			    rp->have_stats ? json_integer((json_int_t)rp->capacity_pages) : json_null());
	json_object_set_new(root, "smaps_rss_peak_kb", json_integer((json_int_t)rp->smaps_peak_kb));
	json_object_set_new(root, "verify_mismatches",
			    o->verify ? json_integer((json_int_t)(rp->read_mismatches +
								  rp->sweep_mismatches))
				      : json_null());
	json_object_set_new(root, "verify_read_mismatches",
			    o->verify ? json_integer((json_int_t)rp->read_mismatches) : json_null());
	json_object_set_new(root, "verify_sweep_mismatches",
			    o->verify ? json_integer((json_int_t)rp->sweep_mismatches) : json_null());
	json_object_set_new(root, "server_mismatches",
			    rp->server_checked && !rp->server_failed
				    ? json_integer((json_int_t)rp->server_mismatches)
				    : json_null());
	json_object_set_new(root, "server_check_failed", json_boolean(rp->server_failed));
	json_object_set_new(root, "flush_result", json_integer(rp->flush_result));
	text = json_dumps(root, JSON_COMPACT);
	if (text)
		puts(text);
	free(text);
	json_decref(root);
}

void ml_print_text(const struct ml_opts *o, const struct ml_run *r, const struct ml_report *rp)
{
	uint64_t gv, ge, gi;

	printf("memload: %s, %u thread%s, mem %" PRIu64 " KiB, %s\n", o->pattern_text, o->threads,
	       o->threads == 1 ? "" : "s", o->mem >> 10,
	       o->local ? "local memory" : "virtual cache");
	if (!o->local)
		printf("  cache %" PRIu64 " KiB, %u server%s x %u replica%s, policy %s, prefetch %s\n",
		       o->cache >> 10, o->nservers, o->nservers == 1 ? "" : "s", o->replicas,
		       o->replicas == 1 ? "" : "s", o->policy ? o->policy : "default",
		       o->prefetch ? "on" : "off");
	if (ml_graph_info(r, &gv, &ge, &gi))
		printf("  graph: %" PRIu64 " vertices, %" PRIu64 " edges, %" PRIu64 " iterations\n", gv,
		       ge, gi);
	printf("  setup %.3f s; %" PRIu64 " accesses in %.3f s: %.0f ops/s (reads %" PRIu64
	       ", writes %" PRIu64 ")\n",
	       rp->setup_s, rp->ops, rp->elapsed_s,
	       rp->elapsed_s > 0 ? (double)rp->ops / rp->elapsed_s : 0.0, rp->reads, rp->writes);
	if (rp->have_stats) {
		const struct ept_stats *s = &rp->st;

		printf("  faults: missing %" PRIu64 ", wp %" PRIu64 ", zero-fill %" PRIu64
		       ", remote %" PRIu64 ", wb-hit %" PRIu64 ", inactive-hit %" PRIu64
		       ", in-flight %" PRIu64 "\n",
		       s->faults_missing, s->faults_wp, s->faults_zero_fill, s->faults_remote,
		       s->faults_wb_hit, s->faults_inactive_hit, s->faults_in_flight);
		printf("  pages: fetched %" PRIu64 ", written back %" PRIu64 ", skipped clean %" PRIu64
		       ", skipped zero %" PRIu64 ", prefetched %" PRIu64 " (hits %" PRIu64
		       "), evictions %" PRIu64 "\n",
		       s->pages_fetched, s->pages_written_back, s->skipped_clean, s->skipped_zero,
		       s->prefetched, s->prefetch_hits, s->evictions);
		print_hist("zero-fill", &s->lat_zero_fill);
		print_hist("remote", &s->lat_remote);
		print_hist("wb-hit", &s->lat_wb_hit);
		print_hist("inactive-hit", &s->lat_inactive_hit);
		printf("  resident peak %" PRIu64 " of %" PRIu64 " pages\n", rp->resident_peak,
		       rp->capacity_pages);
	}
	printf("  smaps Rss peak %" PRIu64 " kB\n", rp->smaps_peak_kb);
	if (o->verify) {
		printf("  verify: read mismatches %" PRIu64 ", sweep mismatches %" PRIu64, rp->read_mismatches,
		       rp->sweep_mismatches);
		if (rp->server_checked && !rp->server_failed)
			printf(", server mismatches %" PRIu64, rp->server_mismatches);
		else if (rp->server_failed)
			printf(", server check FAILED");
		if (rp->flush_result)
			printf(", flush FAILED (%s)", strerror(-rp->flush_result));
		putchar('\n');
	}
}

#!/bin/sh
# bench-ept-policy: miss ratio of the engine's replacement policies against
# FIFO, exact LRU and Belady's OPT on the same traces, with tools/cachesim
# (which runs the engine's own policy code from libept.a).
#
# Traces (page granularity, "PAGE R|W"):
#   zipf   memload's zipf:0.99 pattern, one thread, 64 MiB (bench-ept-tracegen:
#          memload's own generator and seed)
#   graph  memload's graph pattern, one PageRank thread over an 8 MiB graph,
#          two iterations: memload's own graph code builds the graph, and
#          bench-ept-tracegen emits the pages of every load and store of the
#          PageRank loop (consecutive repeats of a page collapsed)
#   sort   a real program: valgrind --tool=lackey --trace-mem=yes on GNU sort
#          of generated lines (data accesses only), through lackey2trace --dedup
#
# Cache sizes are fractions of each trace's distinct pages. Headline per trace
# and size: ept:clock misses / LRU misses (goal <= 1.1), FIFO / LRU, and the
# share of the LRU-to-OPT gap the best ept policy closes.
#
# usage: ept-policy.sh [--out DIR] [--build DIR] [--quick]
# Writes DIR/ept-policy.json and DIR/ept-policy.dat (tools/bench/ept-policy.gp).
set -eu
. "$(dirname "$0")/ept-lib.sh"
ept_parse_args "$@"

if [ "$EPT_QUICK" = 1 ]; then
	ZIPF_PAGES=1024 ZIPF_OPS=50000 GRAPH_MEM=1M GRAPH_ITERS=1 SORT_LINES=300
else
	ZIPF_PAGES=16384 ZIPF_OPS=2000000 GRAPH_MEM=8M GRAPH_ITERS=2 SORT_LINES=20000
fi
HEADLINE_PCTS="5 10 25"
PLOT_PCTS="2 5 10 25 50"
GOAL=1.1
TRACES="zipf graph sort"
gen=$EPT_BUILD/bench-ept-tracegen

# Traces.
"$gen" zipf --pages "$ZIPF_PAGES" --ops "$ZIPF_OPS" --theta 0.99 --seed 1 \
	>"$EPT_TMP/zipf.trace" 2>"$EPT_TMP/zipf.gen"
"$gen" graph --mem "$GRAPH_MEM" --iters "$GRAPH_ITERS" --seed 1 \
	>"$EPT_TMP/graph.trace" 2>"$EPT_TMP/graph.gen"
command -v valgrind >/dev/null || { echo "$0: valgrind is needed (make deps)" >&2; exit 1; }
awk -v n="$SORT_LINES" 'BEGIN { srand(7); for (i = 0; i < n; i++)
	printf "%08d %s\n", int(rand() * 1e8), substr("abcdefghijklmnopqrstuvwxyz", 1 + int(rand() * 20)) }' \
	>"$EPT_TMP/sort.in"
sort_bin=$(command -v sort)
# valgrind's trace goes to stderr (the pipe), sort's output to /dev/null.
LC_ALL=C valgrind --tool=lackey --trace-mem=yes "$sort_bin" --parallel=1 "$EPT_TMP/sort.in" \
	2>&1 >/dev/null | "$EPT_BUILD/lackey2trace" --dedup >"$EPT_TMP/sort.trace"
sort_version=$("$sort_bin" --version | head -n 1)
valgrind_version=$(valgrind --version)

# Simulations.
: >"$EPT_TMP/sims.jsonl"
for t in $TRACES; do
	distinct=$("$EPT_BUILD/cachesim" --trace "$EPT_TMP/$t.trace" --cache 1 --json | jq .distinct_pages)
	sizes=
	for pct in $PLOT_PCTS; do
		c=$((distinct * pct / 100))
		[ "$c" -ge 1 ] || c=1
		sizes=${sizes:+$sizes,}$c
	done
	"$EPT_BUILD/cachesim" --trace "$EPT_TMP/$t.trace" --cache "$sizes" --json |
		jq -c --arg t "$t" --arg pcts "$PLOT_PCTS" '
		($pcts | split(" ") | map(tonumber)) as $p |
		{trace: $t, accesses, distinct_pages,
		 rows: [range(0; .results | length) as $i | .results[$i] + {cache_pct: $p[$i]}]}' \
		>>"$EPT_TMP/sims.jsonl"
	echo "ept-policy: $t done" >&2
done

# The plot's data: one block per trace (zipf, graph, sort), a line per size.
jq -r -s '
	.[] | "# \(.trace): \(.accesses) accesses, \(.distinct_pages) distinct pages",
	"# cache_pct cache_pages FIFO LRU OPT ept:clock ept:fifo (miss ratio)",
	(.rows[] | [.cache_pct, .cache_pages, .policies.FIFO.miss_ratio, .policies.LRU.miss_ratio,
		    .policies.OPT.miss_ratio, .policies["ept:clock"].miss_ratio,
		    .policies["ept:fifo"].miss_ratio] | map(tostring) | join(" ")),
	"", ""' "$EPT_TMP/sims.jsonl" >"$EPT_OUT/ept-policy.dat"

machine=$(ept_machine_json)
jq -s --argjson machine "$machine" --arg date "$(ept_date)" \
	--arg heads "$HEADLINE_PCTS" --argjson goal "$GOAL" --argjson quick "$EPT_QUICK" \
	--arg zipf_gen "$(tail -n 1 "$EPT_TMP/zipf.gen")" --arg graph_gen "$(cat "$EPT_TMP/graph.gen")" \
	--arg sortv "$sort_version" --arg vgv "$valgrind_version" --argjson sort_lines "$SORT_LINES" \
	--argjson zpages "$ZIPF_PAGES" --argjson zops "$ZIPF_OPS" --arg gmem "$GRAPH_MEM" \
	--argjson giters "$GRAPH_ITERS" "$EPT_JQ_DEFS"'
	($heads | split(" ") | map(tonumber)) as $h |
	. as $sims |
	[ $sims[] | .trace as $t | .rows[] | select(.cache_pct as $c | $h | index($c)) |
	  .policies as $p | {
	    t: $t, pct: .cache_pct, pages: .cache_pages,
	    clock: ($p["ept:clock"].misses / $p.LRU.misses),
	    fifo: ($p.FIFO.misses / $p.LRU.misses),
	    gap: .lru_opt_gap_closed, best: .best_ept } ] as $cells |
	{
	  benchmark: "ept-policy",
	  title: "Virtual cache: replacement policies against exact LRU and OPT",
	  description: ("Misses of the engine'"'"'s policies (cachesim runs their code from libept.a) "
	    + "against FIFO, exact LRU and Belady'"'"'s OPT on the same traces"),
	  date: $date,
	  machine: $machine,
	  config: {
	    headline_cache_pcts: $h, plotted_cache_pcts: ($sims[0].rows | map(.cache_pct)),
	    cache_sizes: "percent of the trace'"'"'s distinct pages", quick: ($quick == 1)
	  },
	  ratios: ([ $cells[] |
	    {key: "\(.t)_cache\(.pct)pct_clock_lru_ratio",
	     value: {value: (.clock | r4), goal: "<= \($goal)",
	             description: "\(.t), cache \(.pct)% of distinct pages (\(.pages)): ept:clock misses / LRU misses"}},
	    {key: "\(.t)_cache\(.pct)pct_fifo_lru_ratio",
	     value: {value: (.fifo | r4),
	             description: "\(.t), cache \(.pct)%: FIFO misses / LRU misses"}} ] | from_entries),
	  figures: ([ $cells[] |
	    {key: "\(.t)_cache\(.pct)pct_lru_opt_gap_closed",
	     value: {value: (.gap | r4),
	             description: "\(.t), cache \(.pct)%: (LRU - best ept) / (LRU - OPT) misses, best = \(.best); 1 = OPT, 0 = LRU, < 0 worse than LRU"}} ]
	    | from_entries),
	  results: {
	    traces: [ $sims[] | {trace, accesses, distinct_pages,
	      sizes: [ .rows[] | {cache_pct, cache_pages, best_ept, lru_opt_gap_closed,
	        policies: (.policies | to_entries | map({name: .key, misses: .value.misses,
	          miss_fraction: (.value.miss_ratio | r6), sampling_faults: .value.sampling_faults}))} ] } ],
	    generators: {
	      zipf: "bench-ept-tracegen zipf --pages \($zpages) --ops \($zops) --theta 0.99 --seed 1 (\($zipf_gen))",
	      graph: "bench-ept-tracegen graph --mem \($gmem) --iters \($giters) --seed 1 (\($graph_gen | gsub("\n"; "; ")))",
	      sort: "\($vgv) --tool=lackey --trace-mem=yes sort --parallel=1 on \($sort_lines) generated lines (\($sortv)), LC_ALL=C, | lackey2trace --dedup"
	    }
	  },
	  notes: [
	    "Miss ratio = misses / accesses, compulsory misses included; ratios between policies are on the same trace and cache size.",
	    "zipf is memload'"'"'s zipf:0.99 access sequence (one thread, its generator and seed); graph replays the page of every load and store of memload'"'"'s PageRank loop on its own generated graph; sort is a lackey trace of a real program (data loads and stores, instruction fetches skipped). graph and sort collapse consecutive accesses to one page, which changes no policy'"'"'s misses.",
	    "cachesim models the engine'"'"'s policies frame for frame but not its prefetching, its free-frame reserve or write-back (tools/cachesim/README.md); ept:clock'"'"'s sampling faults (minor faults that a touch of a deactivated page costs) are in the results."
	  ],
	  plots: [ { file: "ept-policy.png", title: "Miss ratio against cache size, per policy and trace",
	             script: "tools/bench/ept-policy.gp" } ]
	}' "$EPT_TMP/sims.jsonl" >"$EPT_OUT/ept-policy.json"

jq -r '.ratios | to_entries[] | "\(.key) \(.value.value)"' "$EPT_OUT/ept-policy.json"
jq -r '.figures | to_entries[] | "\(.key) \(.value.value)"' "$EPT_OUT/ept-policy.json"

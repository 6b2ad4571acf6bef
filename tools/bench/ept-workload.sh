#!/bin/sh
# bench-ept-workload: workload time on the virtual cache against the same
# workload on all-local memory, same run.
#
# For each pattern (seq, uniform, zipf:0.99, graph) and cache size (100%, 50%
# and 25% of the working set), memload runs against one memory server on
# loopback and, right before or after it (the order alternates), with --local:
# same pattern, ops, threads and seed. The headline per cell is the median over
# the rounds of cached time / local time (each round's pair measured back to
# back). Fault and traffic counts are the engine's (ept_stats), medians.
#
# seq, uniform and zipf write half of their accesses (a write fills the whole
# page), so most pages live on the server after their first write; the pages
# read before any write are served as local zero pages (faults_zero_fill in
# the results). graph builds its graph in the region first (setup, not timed),
# so every page of it is on the server or in the cache when PageRank starts.
#
# usage: ept-workload.sh [--out DIR] [--build DIR] [--quick]
# Writes DIR/ept-workload.json and DIR/ept-workload.dat (tools/bench/ept-workload.gp).
set -eu
. "$(dirname "$0")/ept-lib.sh"
ept_parse_args "$@"

if [ "$EPT_QUICK" = 1 ]; then
	MEM_MIB=4 ROUNDS=1 ACCESSES_PER_PAGE=2 GRAPH_OPS=200000
else
	MEM_MIB=64 ROUNDS=3 ACCESSES_PER_PAGE=8 GRAPH_OPS=0 # 0: memload's default, 3 iterations
fi
THREADS=2 WRITES=0.5 SEED=1
PATTERNS="seq uniform zipf:0.99 graph"
CACHE_PCTS="100 50 25"
PAGES=$((MEM_MIB * 256))
SYN_OPS=$((PAGES * ACCESSES_PER_PAGE))

ept_start_memserver "$((MEM_MIB * 2))M"
: >"$EPT_TMP/runs.jsonl"

n=0
for round in $(seq 1 "$ROUNDS"); do
	for pat in $PATTERNS; do
		if [ "$pat" = graph ]; then
			set -- --pattern graph
			[ "$GRAPH_OPS" = 0 ] || set -- "$@" --ops "$GRAPH_OPS"
		else
			set -- --pattern "$pat" --ops "$SYN_OPS" --write-ratio "$WRITES"
		fi
		set -- "$@" --mem "${MEM_MIB}M" --threads "$THREADS" --seed "$SEED"
		for pct in $CACHE_PCTS; do
			cache_kib=$((MEM_MIB * 1024 * pct / 100))
			tag="{\"pattern\":\"$pat\",\"cache_pct\":$pct,\"round\":$round"
			n=$((n + 1))
			for side in $(if [ $((n % 2)) = 0 ]; then echo local cached; else echo cached local; fi); do
				if [ "$side" = local ]; then
					ept_memload "$tag,\"side\":\"local\"}" --local --cache "${cache_kib}K" "$@"
				else
					ept_memload "$tag,\"side\":\"cached\"}" --memserver "$EPT_MS_URL" \
						--cache "${cache_kib}K" "$@"
				fi
			done
		done
	done
	echo "ept-workload: round $round of $ROUNDS done" >&2
done

# One row per cell: medians over the rounds.
jq -s "$EPT_JQ_DEFS"'
	group_by(.pattern + "/" + (.cache_pct | tostring)) | map(
	  (map(select(.side == "local"))) as $l | (map(select(.side == "cached"))) as $c |
	  ($l | sort_by(.round)) as $l | ($c | sort_by(.round)) as $c |
	  {
	    pattern: $c[0].pattern, cache_pct: $c[0].cache_pct,
	    cached_over_local: ([range(0; $c | length)] | map($c[.].elapsed / $l[.].elapsed) | median | r3),
	    per_round: [range(0; $c | length)] | map($c[.].elapsed / $l[.].elapsed | r3),
	    local_seconds: ($l | map(.elapsed) | median | r6),
	    cached_seconds: ($c | map(.elapsed) | median | r6),
	    cached_setup_seconds: ($c | map(.setup) | median | r6),
	    ops: $c[0].ops,
	    faults_missing: ($c | map(.ept.faults_missing) | median),
	    faults_remote: ($c | map(.ept.faults_remote) | median),
	    faults_zero_fill: ($c | map(.ept.faults_zero_fill) | median),
	    faults_inactive_hit: ($c | map(.ept.faults_inactive_hit) | median),
	    faults_in_flight: ($c | map(.ept.faults_in_flight) | median),
	    faults_wb_hit: ($c | map(.ept.faults_wb_hit) | median),
	    pages_fetched: ($c | map(.ept.pages_fetched) | median),
	    pages_written_back: ($c | map(.ept.pages_written_back) | median),
	    prefetched: ($c | map(.ept.prefetched) | median),
	    prefetch_hits: ($c | map(.ept.prefetch_hits) | median),
	    evictions: ($c | map(.ept.evictions) | median),
	    remote_fault_p50_us: ($c | map(.ept.latency_remote.p50_ns / 1000) | median | r3),
	    graph: $c[0].graph
	  }) | sort_by(.pattern as $p | (["seq", "uniform", "zipf:0.99", "graph"] | index($p)) as $i | [$i, -.cache_pct])' "$EPT_TMP/runs.jsonl" >"$EPT_TMP/cells.json"

# The plot's data: one line per pattern, the ratio at each cache size.
{
	echo "# pattern  cached/local time at cache = 100% 50% 25% of the working set (medians)"
	jq -r --arg pcts "$CACHE_PCTS" '
		($pcts | split(" ") | map(tonumber)) as $p |
		(map(.pattern) | unique) as $pats |
		["seq", "uniform", "zipf:0.99", "graph"] as $order |
		($order | map(select(. as $x | $pats | index($x)))) as $o |
		. as $cells |
		$o[] | . as $pat |
		[$pat] + ($p | map(. as $pc | $cells[] | select(.pattern == $pat and .cache_pct == $pc) |
			.cached_over_local)) | map(tostring) | join(" ")' "$EPT_TMP/cells.json"
} >"$EPT_OUT/ept-workload.dat"

machine=$(ept_machine_json)
jq --argjson machine "$machine" --arg date "$(ept_date)" --argjson mem "$MEM_MIB" \
	--argjson threads "$THREADS" --argjson writes "$WRITES" --argjson seed "$SEED" \
	--argjson rounds "$ROUNDS" --argjson synops "$SYN_OPS" --argjson quick "$EPT_QUICK" '
	def key: (.pattern | sub(":.*"; "")) + "_cache" + (.cache_pct | tostring) + "pct_time_ratio";
	{
	  benchmark: "ept-workload",
	  title: "Virtual cache: workload time against all-local memory",
	  description: ("memload on the virtual cache (one memory server on loopback) against the same "
	    + "workload on local memory, same run; cache = 100%, 50%, 25% of the working set"),
	  date: $date,
	  machine: $machine,
	  config: {
	    working_set_mib: $mem, threads: $threads, seed: $seed, rounds: $rounds,
	    synthetic_ops: $synops, synthetic_write_fraction: $writes,
	    graph_ops: "memload default (3 PageRank iterations)",
	    policy: "engine default (clock)", prefetch: true, quick: ($quick == 1)
	  },
	  ratios: (map({key: key, value: {
	      value: .cached_over_local,
	      description: ("\(.pattern), cache \(.cache_pct)% of \($mem) MiB: time on the cache / time on local memory (median of \($rounds) paired rounds)")
	    }}) | from_entries),
	  results: { cells: . },
	  notes: [
	    "Absolute times are context only: each cell is the median over rounds of (cached / local), the two runs of a round back to back in alternating order.",
	    "seq, uniform and zipf: \($synops) accesses over \($mem * 256) pages by \($threads) threads, half of them writes of a whole page; a page read before it was ever written is a local zero-page fault (faults_zero_fill), afterwards it lives on the server. graph: the region holds the graph (built in setup, not timed) and PageRank runs 3 iterations.",
    "Local memory serves a load in nanoseconds and the cache serves a miss in tens of microseconds, so a cell whose working set does not fit is dominated by faults_missing x the fault service time (docs/bench: ept.json)."
	  ],
	  plots: [ { file: "ept-workload.png", title: "Workload time on the virtual cache / on local memory",
	             script: "tools/bench/ept-workload.gp" } ]
	}' "$EPT_TMP/cells.json" >"$EPT_OUT/ept-workload.json"

jq -r '.results.cells[] | "\(.pattern) cache \(.cache_pct)%: cached/local \(.cached_over_local) (\(.cached_seconds) s / \(.local_seconds) s), faults \(.faults_missing) (remote \(.faults_remote), zero \(.faults_zero_fill)), fetched \(.pages_fetched), written \(.pages_written_back)"' \
	"$EPT_OUT/ept-workload.json"

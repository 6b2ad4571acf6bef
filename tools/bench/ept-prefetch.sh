#!/bin/sh
# bench-ept-prefetch: how many of a sequential scan's faults the prefetcher
# avoids, with the cache at 25% of the scanned memory, prefetch on against off
# in the same run (the two alternate in every round).
#
#   written  the scan reads pages that were written earlier, so they live on
#            the memory server. memload replays (--pattern trace:) the
#            sequence of memload --pattern seq --threads 1: one pass writing
#            every page, then two passes reading them; a second run replays
#            the writing pass alone, and the reading passes' faults are the
#            difference. avoided = 1 - faults(on) / faults(off) over the
#            reading passes (goal >= 0.9).
#   zero     memload --pattern seq --threads 1, two reading passes over pages
#            never written (served as local zero pages).
#
# Faults are the engine's faults_missing: every missing-page fault a thread
# took, whether served by a fetch, by joining one in flight, from a sampled
# (inactive) copy or from a write-back buffer. Round 1 also repeats the written
# case with --policy fifo (diagnostic, in the results).
#
# usage: ept-prefetch.sh [--out DIR] [--build DIR] [--quick]
# Writes DIR/ept-prefetch.json and DIR/ept-prefetch.dat (tools/bench/ept-prefetch.gp).
set -eu
. "$(dirname "$0")/ept-lib.sh"
ept_parse_args "$@"

if [ "$EPT_QUICK" = 1 ]; then
	MEM_MIB=4 ROUNDS=1
else
	MEM_MIB=64 ROUNDS=3
fi
CACHE_PCT=25 GOAL=0.9
PAGES=$((MEM_MIB * 256))
CACHE_KIB=$((MEM_MIB * 1024 * CACHE_PCT / 100))

"$EPT_BUILD/bench-ept-tracegen" seqwr --pages "$PAGES" --passes 2 >"$EPT_TMP/scan.trace" \
	2>/dev/null
"$EPT_BUILD/bench-ept-tracegen" seqwr --pages "$PAGES" --passes 0 >"$EPT_TMP/write.trace" \
	2>/dev/null
ept_start_memserver "$((MEM_MIB * 2))M"
: >"$EPT_TMP/runs.jsonl"

common="--memserver $EPT_MS_URL --mem ${MEM_MIB}M --cache ${CACHE_KIB}K --threads 1 --seed 1"
n=0
for round in $(seq 1 "$ROUNDS"); do
	policies=clock
	[ "$round" != 1 ] || policies="clock fifo"
	for pol in $policies; do
		for what in scan write zero; do
			[ "$pol" = clock ] || [ "$what" != zero ] || continue
			n=$((n + 1))
			for pf in $(if [ $((n % 2)) = 0 ]; then echo on off; else echo off on; fi); do
				tag="{\"round\":$round,\"policy\":\"$pol\",\"run\":\"$what\",\"prefetch\":\"$pf\"}"
				if [ "$what" = zero ]; then
					# shellcheck disable=SC2086
					ept_memload "$tag" $common --policy "$pol" --prefetch "$pf" \
						--pattern seq --ops $((PAGES * 2))
				else
					# shellcheck disable=SC2086
					ept_memload "$tag" $common --policy "$pol" --prefetch "$pf" \
						--pattern "trace:$EPT_TMP/$what.trace"
				fi
			done
		done
	done
	echo "ept-prefetch: round $round of $ROUNDS done" >&2
done

# Per round and policy: the reading passes' counts (the scan run minus the
# writing-pass run; fetches, joins and write-back hits only happen in reading
# passes) and the zero case. Avoided fractions are medians over the rounds of
# each round's figure; the fault breakdowns are those of the median round.
jq -s "$EPT_JQ_DEFS"'
	def counts: .ept | {faults_missing, faults_remote, faults_zero_fill, faults_in_flight,
		faults_inactive_hit, faults_wb_hit, prefetched, prefetch_hits, pages_fetched,
		pages_written_back, evictions};
	def minus($b): with_entries(.value -= $b[.key]) | del(.faults_zero_fill);
	def medround(f): sort_by(f) | .[(length - 1) / 2 | floor];
	def pick($r; $pol; $what; $pf): map(select(.round == $r and .policy == $pol and .run == $what
		and .prefetch == $pf))[0];
	. as $runs |
	[ $runs[] | {round, policy} ] | unique | map(. as $k |
	  ["on", "off"] | map(. as $pf |
	    ($runs | pick($k.round; $k.policy; "scan"; $pf)) as $scan |
	    ($runs | pick($k.round; $k.policy; "write"; $pf)) as $write |
	    ($runs | pick($k.round; $k.policy; "zero"; $pf)) as $zero |
	    {key: $pf, value: {
	      written: (($scan | counts) | minus($write | counts)
	                | . + {seconds: (($scan.elapsed - $write.elapsed) | r6)}),
	      zero: (if $zero then ($zero | counts) + {seconds: ($zero.elapsed | r6)} else null end)
	  }}) | from_entries | . + $k) |
	group_by(.policy) | map({key: .[0].policy, value: {
	  rounds: length,
	  written_avoided: (map(1 - .on.written.faults_missing / .off.written.faults_missing) | median | r4),
	  written_fetch_waits_avoided: (map(1 - (.on.written.faults_remote + .on.written.faults_in_flight)
	      / .off.written.faults_remote) | median | r4),
	  written_time_on_off: (map(.on.written.seconds / .off.written.seconds) | median | r4),
	  zero_avoided: (map(select(.on.zero) | 1 - .on.zero.faults_missing / .off.zero.faults_missing)
	      | median | r4),
	  zero_time_on_off: (map(select(.on.zero) | .on.zero.seconds / .off.zero.seconds) | median | r4),
	  on: {written: (map(.on.written) | medround(.faults_missing)),
	       zero: (map(.on.zero | select(.)) | medround(.faults_missing))},
	  off: {written: (map(.off.written) | medround(.faults_missing)),
	        zero: (map(.off.zero | select(.)) | medround(.faults_missing))}
	}}) | from_entries' "$EPT_TMP/runs.jsonl" >"$EPT_TMP/summary.json"

# The plot's data: the reading passes' faults by how they were served (the
# median round's; in the written case the sampled-copy count is a difference
# of two runs, so the parts may not add up to faults_missing exactly).
{
	echo "# case  served-by-fetch-or-zero-page  joined-in-flight  sampled-copy(inactive)  write-back-buffer  (faults_missing)"
	jq -r '
		def row($name; $c): [$name, ($c.faults_remote + ($c.faults_zero_fill // 0)),
			$c.faults_in_flight, $c.faults_inactive_hit, $c.faults_wb_hit, $c.faults_missing]
			| map(tostring) | join(" ");
		row("written,off"; .clock.off.written), row("written,on"; .clock.on.written),
		row("zero,off"; .clock.off.zero), row("zero,on"; .clock.on.zero),
		(if .fifo then row("fifo:written,off"; .fifo.off.written), row("fifo:written,on"; .fifo.on.written)
		 else empty end)' "$EPT_TMP/summary.json"
} >"$EPT_OUT/ept-prefetch.dat"


machine=$(ept_machine_json)
jq --argjson machine "$machine" --arg date "$(ept_date)" --argjson mem "$MEM_MIB" \
	--argjson pct "$CACHE_PCT" --argjson goal "$GOAL" --argjson rounds "$ROUNDS" \
	--argjson pages "$PAGES" --argjson quick "$EPT_QUICK" "$EPT_JQ_DEFS"'
	. as $s |
	{
	  benchmark: "ept-prefetch",
	  title: "Virtual cache: prefetch on a sequential scan",
	  description: ("Faults of a one-thread sequential scan with the cache at \($pct)% of the scanned "
	    + "memory, prefetch on against off, same run"),
	  date: $date,
	  machine: $machine,
	  config: { scanned_mib: $mem, pages: $pages, cache_pct: $pct, threads: 1, rounds: $rounds,
	            reading_passes: 2, policy: "clock (engine default); fifo once, diagnostic",
	            quick: ($quick == 1) },
	  ratios: {
	    seq_written_faults_avoided_ratio: { value: ($s.clock.written_avoided | r4), goal: ">= \($goal)",
	      description: "pages written earlier (on the server): 1 - faults with prefetch / faults without, two reading passes" },
	    seq_zero_faults_avoided_ratio: { value: ($s.clock.zero_avoided | r4), goal: ">= \($goal)",
	      description: "pages never written (local zero pages): 1 - faults with prefetch / faults without" },
	    seq_written_fetch_waits_avoided_ratio: { value: ($s.clock.written_fetch_waits_avoided | r4),
	      description: "pages written earlier: 1 - (faults that waited for a fetch, own or joined) with prefetch / without" },
	    seq_written_time_on_off_ratio: { value: ($s.clock.written_time_on_off | r3),
	      description: "pages written earlier: time of the reading passes, prefetch on / off" }
	  },
	  results: $s,
	  notes: [
	    "Fractions avoided are medians over \($rounds) rounds of each round'"'"'s figure; fault counts are the engine'"'"'s statistics in the median round; faults_missing counts every missing-page fault a thread took, whatever served it (fetch, fetch in flight, sampled local copy, write-back buffer, zero page).",
	    "The written case replays memload --pattern seq --threads 1 as a trace (one writing pass, then two reading passes) and subtracts a run of the writing pass alone, since memload'"'"'s seq pattern cannot start from pages already on the server.",
	    "fifo (round 1 only) is a diagnostic: prefetch may only displace a victim the policy calls cold, which fifo never does."
	  ],
	  plots: [ { file: "ept-prefetch.png", title: "Faults of the reading passes by how they were served",
	             script: "tools/bench/ept-prefetch.gp" } ]
	}' "$EPT_TMP/summary.json" >"$EPT_OUT/ept-prefetch.json"

jq -r '.ratios | to_entries[] | "\(.key) \(.value.value)"' "$EPT_OUT/ept-prefetch.json"

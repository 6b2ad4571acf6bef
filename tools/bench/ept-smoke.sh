#!/bin/sh
# check-ept-bench-smoke: the virtual cache's benchmark drivers (ept-workload.sh,
# ept-policy.sh, ept-prefetch.sh) run --quick, write their JSON and data files,
# the JSON parses and has its headline rows, and the report generator takes
# them. Nothing here looks at a figure: those of a quick run mean nothing.
#
# usage: ept-smoke.sh DIR BUILD
set -eu

dir=$1 build=$2
here=$(dirname "$0")
fail() {
	echo "check-ept-bench-smoke: FAIL: $*" >&2
	exit 1
}

rm -rf "$dir"
mkdir -p "$dir"
for b in workload policy prefetch; do
	sh "$here/ept-$b.sh" --quick --out "$dir" --build "$build" >"$dir/$b.out" 2>"$dir/$b.err" ||
		{ cat "$dir/$b.err" >&2; fail "ept-$b.sh --quick exited with $?"; }
	test -s "$dir/ept-$b.json" || fail "ept-$b.json not written"
	test -s "$dir/ept-$b.dat" || fail "ept-$b.dat not written"
	jq -e --arg b "ept-$b" '.benchmark == $b and (.ratios | length > 0) and
		all(.ratios[]; .value | type == "number") and (.plots | length == 1)' \
		"$dir/ept-$b.json" >/dev/null || fail "ept-$b.json lacks its benchmark name or ratios"
done
jq -e '.results.cells | length == 12' "$dir/ept-workload.json" >/dev/null ||
	fail "ept-workload.json: not 4 patterns x 3 cache sizes"
jq -e '.ratios | has("zipf_cache5pct_clock_lru_ratio") and has("graph_cache25pct_clock_lru_ratio")
	and has("sort_cache10pct_clock_lru_ratio")' "$dir/ept-policy.json" >/dev/null ||
	fail "ept-policy.json: clock/LRU rows missing"
jq -e '.ratios.seq_written_faults_avoided_ratio.goal == ">= 0.9"' "$dir/ept-prefetch.json" \
	>/dev/null || fail "ept-prefetch.json: headline row missing"

"$build/bench-report" --dir "$dir" >"$dir/report.out" 2>"$dir/report.err" ||
	{ cat "$dir/report.err" >&2; fail "bench-report exited with $?"; }
for b in workload policy prefetch; do
	grep -q "^## ept-$b" "$dir/README.md" || fail "ept-$b section missing from the report"
done
grep -q '| seq_written_faults_avoided_ratio | ' "$dir/README.md" || fail "prefetch headline row missing"
if gnuplot -e 'set terminal' 2>&1 | grep -q png; then
	for b in workload policy prefetch; do
		test -s "$dir/ept-$b.png" || fail "ept-$b.png not drawn"
	done
	if grep -q -i 'warning\|error' "$dir/report.err"; then
		cat "$dir/report.err" >&2
		fail "gnuplot complained"
	fi
fi
echo "check-ept-bench-smoke: ok ($dir/README.md)"

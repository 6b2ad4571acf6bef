#!/bin/sh
# check-bench-smoke: the benchmark builds, runs (a tiny --quick run) and
# produces a report, and the report generator is generic (it picks up a
# hand-written JSON of another shape and survives a broken one). Nothing
# here looks at a timing: the figures of a quick run mean nothing.
#
# usage: smoke.sh DIR BENCH_MEMSERVER MEMSERVER BENCH_REPORT
set -eu

dir=$1 bench=$2 memserver=$3 report=$4
fail() {
	echo "check-bench-smoke: FAIL: $*" >&2
	exit 1
}

rm -rf "$dir"
mkdir -p "$dir"
"$bench" --quick --out "$dir" --memserver "$memserver" >"$dir/summary.txt" 2>"$dir/bench.err" ||
	{ cat "$dir/bench.err" >&2; fail "bench-memserver --quick exited with $?"; }
grep -q 'READ 4K p50' "$dir/summary.txt" || fail "no summary on stdout"
for f in memserver.json memserver-latency.dat memserver-rounds.dat memserver-throughput.dat; do
	test -s "$dir/$f" || fail "$f not written"
done

cat >"$dir/zz-example.json" <<'JSON'
{
  "benchmark": "zz-example",
  "title": "Generator self-test",
  "ratios": { "plain_ratio": 2.5 },
  "figures": { "thing_mib": { "value": 3, "unit": "MiB", "goal": "< 8" } },
  "results": { "nested": { "deep_ratio": { "value": 0.5, "goal": ">= 1" } }, "n": 7 }
}
JSON
printf '{ broken' >"$dir/zz-broken.json"

"$report" --dir "$dir" >"$dir/report.out" 2>"$dir/report.err" ||
	{ cat "$dir/report.err" >&2; fail "bench-report exited with $?"; }
readme=$dir/README.md
test -s "$readme" || fail "no README.md"
grep -q '^## memserver' "$readme" || fail "memserver section missing"
grep -q '| read_latency_p50_ratio | [0-9.]* | <= 1.25 | \(yes\|\*\*NO\*\*\) |' "$readme" ||
	fail "headline latency ratio row missing"
grep -q '| daemon_rss_untouched_mib | [0-9.]* MiB | < 8 |' "$readme" || fail "RSS row missing"
grep -q '^## zz-example' "$readme" || fail "hand-written JSON not reported"
grep -q '| plain_ratio | 2.500 |' "$readme" || fail "bare-number ratio not reported"
grep -q '| results.nested.deep_ratio | 0.500 | >= 1 | \*\*NO\*\* |' "$readme" ||
	fail "nested ratio or goal evaluation wrong"
grep -q '| thing_mib | 3 MiB | < 8 | yes |' "$readme" || fail "figure with unit wrong"
grep -q 'zz-broken.json' "$dir/report.err" || fail "broken JSON not warned about"
grep -q '^## zz-broken' "$readme" && fail "broken JSON reported"
if gnuplot -e 'set terminal' 2>&1 | grep -q png; then
	for f in memserver-latency.png memserver-throughput.png; do
		test -s "$dir/$f" || fail "$f not drawn"
		grep -q "($f)" "$readme" || fail "$f not embedded"
	done
fi
echo "check-bench-smoke: ok ($dir/README.md)"

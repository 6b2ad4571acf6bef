#!/bin/sh
# Self-checks of the trace and load tools (make check-tools): cachesim on tiny
# traces whose FIFO/LRU/OPT miss counts are known by hand, lackey2trace on a
# handcrafted lackey snippet, and memload on local memory (no servers needed).
# Usage: check.sh BUILD_DIR
set -u
B=${1:-build}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
pass=0

ok() { pass=$((pass + 1)); }
bad() { echo "check-tools: FAIL: $*" >&2; fail=$((fail + 1)); }
expect_eq() { # what got want
	if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; fi
}

# misses TRACE CACHE POLICY: the miss count cachesim prints for POLICY.
misses() {
	"$B/cachesim" --trace "$1" --cache "$2" | awk -v p="$3" '$1 == p { print $2 }'
}
sampling() {
	"$B/cachesim" --trace "$1" --cache "$2" | awk -v p="$3" '$1 == p { print $4 }'
}
ept_policies() {
	"$B/cachesim" --trace "$1" --cache "$2" | awk '$1 ~ /^ept:/ { print $1 }'
}

# --- cachesim ---------------------------------------------------------------

# Cyclic scan of 9 pages, 20 times, in a cache of 8: LRU and FIFO always miss;
# OPT misses 30 times.
i=0; : > "$T/cyc"
while [ $i -lt 180 ]; do echo "$((i % 9)) R" >> "$T/cyc"; i=$((i + 1)); done
expect_eq "cyclic FIFO" "$(misses "$T/cyc" 8 FIFO)" 180
expect_eq "cyclic LRU" "$(misses "$T/cyc" 8 LRU)" 180
expect_eq "cyclic OPT" "$(misses "$T/cyc" 8 OPT)" 30
expect_eq "cyclic ept:fifo" "$(misses "$T/cyc" 8 ept:fifo)" 180

# Three pages in a cache of four: only the compulsory misses, for everyone.
for p in 0 1 2 1 0 2 2 1 0 0 1 2 0 1 2; do echo "$p W"; done > "$T/three"
for pol in FIFO LRU OPT $(ept_policies "$T/three" 4); do
	expect_eq "three pages $pol" "$(misses "$T/three" 4 "$pol")" 3
done

# The textbook string (Silberschatz) with 3 frames: FIFO 15, LRU 12, OPT 9.
for p in 7 0 1 2 0 3 0 4 2 3 0 3 2 1 2 0 1 7 0 1; do echo "$p R"; done > "$T/tb"
expect_eq "textbook FIFO" "$(misses "$T/tb" 3 FIFO)" 15
expect_eq "textbook LRU" "$(misses "$T/tb" 3 LRU)" 12
expect_eq "textbook OPT" "$(misses "$T/tb" 3 OPT)" 9
expect_eq "textbook ept:fifo" "$(misses "$T/tb" 3 ept:fifo)" 15

# Belady's anomaly: FIFO misses more with 4 frames (10) than with 3 (9).
for p in 1 2 3 4 1 2 5 1 2 3 4 5; do echo "$p R"; done > "$T/bel"
expect_eq "belady FIFO 3" "$(misses "$T/bel" 3 FIFO)" 9
expect_eq "belady FIFO 4" "$(misses "$T/bel" 4 FIFO)" 10
expect_eq "belady LRU 3" "$(misses "$T/bel" 3 LRU)" 10
expect_eq "belady LRU 4" "$(misses "$T/bel" 4 LRU)" 8
expect_eq "belady OPT 3" "$(misses "$T/bel" 3 OPT)" 7
expect_eq "belady OPT 4" "$(misses "$T/bel" 4 OPT)" 6

# Sanity on a random trace: OPT <= every policy <= accesses; ept:fifo == FIFO;
# several sizes at once give the same answers as one at a time.
awk 'BEGIN { srand(7); for (i = 0; i < 20000; i++) {
	r = rand(); p = (r < 0.8) ? int(rand() * 50) : int(rand() * 2000);
	print p, (rand() < 0.3 ? "W" : "R") } }' > "$T/rand"
opt=$(misses "$T/rand" 100 OPT)
for pol in FIFO LRU $(ept_policies "$T/rand" 100); do
	m=$(misses "$T/rand" 100 "$pol")
	if [ -n "$m" ] && [ "$m" -ge "$opt" ] && [ "$m" -le 20000 ]; then ok
	else bad "random $pol misses '$m' not within [OPT=$opt, 20000]"; fi
done
expect_eq "random ept:fifo = FIFO" "$(misses "$T/rand" 100 ept:fifo)" "$(misses "$T/rand" 100 FIFO)"
multi=$("$B/cachesim" --trace "$T/rand" --cache 50,100 | awk '$1 == "LRU" { print $2 }' | tail -n 1)
expect_eq "multi-size LRU" "$multi" "$(misses "$T/rand" 100 LRU)"
"$B/cachesim" --trace "$T/rand" --cache 100 --json | grep -q '"lru_opt_gap_closed"' && ok ||
	bad "cachesim --json lacks lru_opt_gap_closed"
"$B/cachesim" --trace "$T/missing" --cache 4 2>/dev/null && bad "missing trace accepted" || ok
"$B/cachesim" --trace "$T/rand" --cache 0 2>/dev/null && bad "cache 0 accepted" || ok

# --- lackey2trace -----------------------------------------------------------

cat > "$T/lackey" <<'LACKEY'
==4242== Lackey, an example Valgrind tool
==4242== Command: ./a.out
==4242==
I  04000bd0,3
 S 1ffefffd78,8
I  04000bd3,5
 L 04022e10,8
 M 0402a258,4
 L 0402a250,8
 L 0402aff9,8
hello from the program
 S 1ffefffd70,8
 S 1ffefffd70,8
==4242== Counted 1 call to main()
LACKEY
printf '0 W\n1 R\n2 W\n2 R\n2 R\n3 R\n0 W\n0 W\n' > "$T/want.default"
printf '0 W\n1 R\n2 W\n2 R\n3 R\n0 W\n' > "$T/want.dedup"
printf '0 R\n1 W\n0 R\n2 R\n3 W\n3 R\n3 R\n4 R\n1 W\n1 W\n' > "$T/want.instr"
printf '33550335 W\n16418 R\n16426 W\n16426 R\n16426 R\n16427 R\n33550335 W\n33550335 W\n' \
	> "$T/want.raw"
for v in default:"" dedup:--dedup instr:--with-instr raw:--no-compact; do
	name=${v%%:*}; opt=${v#*:}
	# shellcheck disable=SC2086
	"$B/lackey2trace" $opt < "$T/lackey" > "$T/got.$name"
	if cmp -s "$T/got.$name" "$T/want.$name"; then ok
	else bad "lackey2trace $opt:"; diff "$T/want.$name" "$T/got.$name" >&2; fi
done
"$B/lackey2trace" --bogus < /dev/null 2>/dev/null && bad "lackey2trace took --bogus" || ok

# --- memload on local memory --------------------------------------------------

ml() { # expected-status args...
	want=$1; shift
	"$B/memload" "$@" > "$T/ml.out" 2> "$T/ml.err"
	st=$?
	if [ "$st" = "$want" ]; then ok
	else bad "memload $*: status $st, want $want"; cat "$T/ml.err" >&2; fi
}
for p in seq uniform zipf zipf:0.6; do
	ml 0 --local --mem 4M --threads 3 --pattern $p --write-ratio 0.4 --zero-ratio 0.2 \
		--ops 30000 --verify --json
	grep -q '"verify_mismatches":0' "$T/ml.out" && ok || bad "memload $p: no verify_mismatches 0"
done
ml 0 --local --mem 4M --threads 2 --pattern graph --verify
ml 0 --local --mem 4M --threads 2 --pattern graph --ops 12345 --verify --json
grep -q '"ops":12345' "$T/ml.out" && ok || bad "memload graph: --ops 12345 not honoured"
printf '0 W\n5 R\n0 R\n1 W\n3 W\n3 R\n5 W\n0 R\n' > "$T/tr"
ml 0 --local --mem 1M --threads 2 --pattern "trace:$T/tr" --verify --ops 20 --json
grep -q '"reads":10,"writes":10' "$T/ml.out" && ok || bad "memload trace: wrong read/write counts"
ml 2 --mem 4M --cache 1M --pattern uniform
ml 2 --local --mem 4M --pattern nope
ml 2 --local --mem 4X
ml 2 --memserver tcp://127.0.0.1:1 --mem 4M --cache 1M --policy nope
ml 2 --local --mem 4M --write-ratio 1.5
printf '0 R\n99999 W\n' > "$T/far"
ml 1 --local --mem 1M --pattern "trace:$T/far"
[ "$(wc -l < "$T/ml.err")" = 1 ] && ok || bad "memload error is not one line"

echo "check-tools: $pass passed, $fail failed"
[ "$fail" = 0 ]

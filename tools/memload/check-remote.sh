#!/bin/sh
# memload --verify against real memory servers on loopback (make
# check-memload-remote): every read, a final sweep through the cache, and every
# replica read straight from its server must match the shadow, and the
# residency must stay within the cache. Needs userfaultfd (root, or
# vm.unprivileged_userfaultfd=1). Usage: check-remote.sh BUILD_DIR MEMSERVER
set -u
B=${1:-build}
MS=${2:-$B/memserver}
T=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
fail=0
pass=0

urls=""
for i in 1 2 3; do
	"$MS" --listen tcp://127.0.0.1:0 --capacity 1G --ready-file "$T/ready$i" \
		--log-level warn 2> "$T/ms$i.log" &
	pids="$pids $!"
done
for i in 1 2 3; do
	n=0
	while [ ! -s "$T/ready$i" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
	[ -s "$T/ready$i" ] || { echo "check-memload-remote: memory server $i did not start" >&2; exit 1; }
	urls="$urls $(cat "$T/ready$i")"
done
set -- $urls
M1=$1; M2=$2; M3=$3

# Pages the mapping may hold beyond the cache while installs are in flight
# (the engine's bound is at most one batch).
RSS_SLACK_PAGES=64

# run NAME memload-args...: must exit 0 with zero mismatches of every kind and
# a resident peak within the cache.
run() {
	name=$1; shift
	"$B/memload" --json --verify --timeout 300 "$@" > "$T/out" 2> "$T/err"
	st=$?
	if [ "$st" = 0 ]; then
		num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$T/out"; }
		rss=$(num smaps_rss_peak_kb); peak=$(num resident_peak_pages)
		cap=$(num capacity_pages)
		if ! grep -q '"verify_mismatches":0' "$T/out" ||
		   ! grep -q '"server_mismatches":0' "$T/out"; then
			fail=$((fail + 1)); echo "FAIL $name: mismatch counts missing"
		elif [ "$peak" -gt "$cap" ] || [ "$rss" -gt $(( (cap + RSS_SLACK_PAGES) * 4 )) ]; then
			fail=$((fail + 1))
			echo "FAIL $name: residency: peak $peak pages, smaps Rss $rss kB, cache $cap pages"
		else
			pass=$((pass + 1)); echo "ok   $name (peak $peak/$cap pages, Rss $rss kB)"
		fi
	else
		fail=$((fail + 1)); echo "FAIL $name (status $st):"; head -n 12 "$T/err" | sed 's/^/    /'
	fi
}

run uniform-rw --memserver "$M1" --mem 64M --cache 8M --threads 4 --pattern uniform \
	--write-ratio 0.5 --ops 200000
run zipf-3servers-2replicas --memserver "$M1" --memserver "$M2" --memserver "$M3" --replicas 2 \
	--mem 32M --cache 2M --threads 3 --pattern zipf --write-ratio 0.3 --ops 100000
run seq-prefetch --memserver "$M1" --mem 32M --cache 2M --threads 2 --pattern seq \
	--write-ratio 0.2 --ops 60000
run fifo-delayed --memserver "$M1" --memserver "$M2" --mem 16M --cache 1M --threads 4 \
	--pattern uniform --write-ratio 0.5 --ops 20000 --policy fifo --test-delay-us 2000
run zero-writes --memserver "$M1" --mem 16M --cache 1M --threads 2 --pattern uniform \
	--write-ratio 0.5 --zero-ratio 0.3 --ops 40000
run graph --memserver "$M1" --memserver "$M2" --mem 8M --cache 2M --threads 2 --pattern graph \
	--ops 2000000

echo "check-memload-remote: $pass passed, $fail failed"
[ "$fail" = 0 ]

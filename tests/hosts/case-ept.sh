#!/bin/bash
# Case: the virtual cache's integrity runs on the test hosts' kernel (Debian
# 6.1, the kernel production hosts run), not only on the development kernel:
# userfaultfd missing + write-protect faults, eviction by write-protect / copy
# / zap / wake, content-hash dirtiness. memload (tools/memload) on h2 drives 4
# threads with 50% writes over a region 8x its cache, verifies every read, then
# flushes and compares every page on the servers with its shadow; the two
# memory servers run on h1 (across the bridge) and on h2 itself. Once with
# each policy, once with random delays of every fetch and write-back.
set -u
. "$(dirname "$0")/../../tools/testhost/lib.sh"
: "${TESTHOST_BUILD:=$TH_TOP/build}"
th_need_hosts h1 h2 || exit 1

ml=$TESTHOST_BUILD/memload
log=$TESTHOST_RUN/case-ept
mkdir -p "$log"

th_run -n -t 20 h2 -- uname -r
# Servers: one per host, stopped at the end.
trap 'th_memserver_stop h1 h2' EXIT
th_memserver h1 tcp://0.0.0.0:7100 --capacity 1G || { echo "case-ept: FAIL memserver on h1"; exit 1; }
th_memserver h2 tcp://127.0.0.1:7100 --capacity 1G || { echo "case-ept: FAIL memserver on h2"; exit 1; }

fail=0
run() {
	local name=$1; shift
	if th_run -n -t 220 h2 -- "$ml" --memserver "tcp://$(th_ip h1):7100" \
		--memserver tcp://127.0.0.1:7100 --mem 16M --cache 2M --threads 4 \
		--write-ratio 0.5 --verify --timeout 200 "$@" >"$log/$name.out" 2>&1; then
		echo "case-ept: ok $name: $(grep -o 'mismatches[^,]*' "$log/$name.out" | head -3 | tr '\n' ' ')"
	else
		echo "case-ept: FAIL $name:"
		tail -20 "$log/$name.out"
		fail=1
	fi
}
run uniform-clock --pattern uniform --policy clock --ops 30000
run zipf-fifo --pattern zipf:0.99 --policy fifo --ops 30000
run uniform-delays --pattern uniform --policy clock --ops 10000 --test-delay-us 2000
exit $fail

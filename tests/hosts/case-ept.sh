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

ms=$TESTHOST_BUILD/memserver
ml=$TESTHOST_BUILD/memload
log=$TESTHOST_RUN/case-ept
mkdir -p "$log"

th_run -n -t 20 h2 -- uname -r
# Servers: started in the background through the agent, stopped at the end.
th_run -n -t 300 h1 -- "$ms" --listen tcp://0.0.0.0:7100 --capacity 1G >"$log/h1.log" 2>&1 &
s1=$!
th_run -n -t 300 h2 -- "$ms" --listen tcp://127.0.0.1:7100 --capacity 1G >"$log/h2.log" 2>&1 &
s2=$!
stop_servers() {
	th_run -n -t 20 h1 -- pkill -TERM -x memserver >/dev/null 2>&1
	th_run -n -t 20 h2 -- pkill -TERM -x memserver >/dev/null 2>&1
	wait "$s1" "$s2" 2>/dev/null
}
trap stop_servers EXIT
for _ in $(seq 50); do
	th_run -n -t 20 h2 -- "$TESTHOST_BUILD/msctl" -s "tcp://$(th_ip h1):7100" ping >/dev/null 2>&1 &&
		th_run -n -t 20 h2 -- "$TESTHOST_BUILD/msctl" -s tcp://127.0.0.1:7100 ping >/dev/null 2>&1 &&
		break
	sleep 0.2
done

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

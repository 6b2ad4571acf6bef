#!/bin/bash
# Case: the memory server over rdma:// (Soft-RoCE, rxe0 on eth0 of h1). The
# integration suites of the memory server and the virtual cache
# (tests/integration: every operation, fencing, deletion, capacity, checksums,
# authentication, robustness, the cache's integrity, write-back, failure and
# life cycle) run inside h1 with LEGATO_TEST_RDMA_ADDR set, so each daemon
# also listens on rdma:// and every client connects there: page reads and
# writes go one-sided, control over SEND (raw-socket checks stay on TCP; the
# few expectations that differ, such as a whole region resident once
# registered, are the suites' own). This case runs the memory server's
# suites on h1; case-ept-suites-rdma runs the cache's on h2 through it
# (RDMA_SUITES, RDMA_HOST, CASE), each within the per-case time limit.
set -u
. "$(dirname "$0")/../../tools/testhost/lib.sh"
: "${TESTHOST_BUILD:=$TH_TOP/build}"
: "${RDMA_SUITES:=test_ms_ops test_ms_auth test_ms_robust test_ms_protect}"
: "${RDMA_HOST:=h1}"
: "${CASE:=case-ms-rdma}"
th_need_hosts "$RDMA_HOST" || exit 1

th_run -n -t 20 "$RDMA_HOST" -- rdma link show rxe0/1 | grep -q 'state ACTIVE' || {
	echo "$CASE: rxe0 is not ACTIVE on $RDMA_HOST:"
	th_run -n -t 20 "$RDMA_HOST" -- rdma link
	exit 1
}
ip=$(th_ip "$RDMA_HOST")
fail=0
for t in $RDMA_SUITES; do
	bin=$TESTHOST_BUILD/tests/integration/$t
	[ -x "$bin" ] || { echo "$CASE: $bin missing (make check-integration builds it)"; exit 1; }
	out=$(th_run -n -t 220 "$RDMA_HOST" -- env LEGATO_TEST_RDMA_ADDR="$ip" CK_DEFAULT_TIMEOUT=60 "$bin" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "$CASE: ok $t over rdma://$ip: $(grep -o '[0-9]*%: Checks: [0-9]*.*' <<<"$out" | tail -1)"
	else
		echo "$CASE: FAIL $t over rdma://$ip (exit $rc):"
		grep -v '^ok ' <<<"$out" | tail -40
		fail=1
	fi
done
[ $fail = 0 ] || exit 1
echo "$CASE: ok"

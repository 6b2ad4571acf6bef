#!/bin/bash
# Case: the guest's RAM is the virtual cache, its pages on a memory server on
# ANOTHER test host. h2 runs memserver; on p1 the VMM boots the guest with 256
# MiB of RAM and a 32 MiB cache (smaller than the kernel's decompression
# footprint: slow, never wrong) on 2 vCPUs, and the guest's memcheck workload
# fills, re-reads and checksums MEMCHECK (default 64M) from two threads.
# Checked: the checksum equals `memcheck --expect` computed here, the summary
# line's resident peak is within the cache, and the control API answers
# (GET /vm, GET /vm/stats, PUT /vm/pause, /vm/resume) while the guest runs --
# and the guest goes on to the end after the resume. About a minute under TCG.
# It gets VMM_EPT_TIMEOUT seconds (default 220). VMM_EPT_SCHEME=rdma (what
# case-vmm-rdma sets) serves the pages over rdma:// (Soft-RoCE) instead of
# tcp://, and checks the server's CPU saw no page request.
set -u
. "$(dirname "$0")/../../tools/testhost/lib.sh"
: "${VMM_EPT_TIMEOUT:=220}"
: "${TESTHOST_BUILD:=$TH_TOP/build}"
: "${MEMCHECK:=64M}"
: "${VMM_EPT_SCHEME:=tcp}"
: "${CASE:=case-vmm-ept}"
vmm=$TESTHOST_BUILD/vmm
kernel=$TESTHOST_BUILD/guest/bzImage
initrd=$TESTHOST_BUILD/guest/initramfs.cpio
memcheck=$TESTHOST_BUILD/guest/memcheck
for f in "$vmm" "$kernel" "$initrd" "$memcheck" "$TESTHOST_BUILD/memserver"; do
	[ -f "$f" ] || { echo "$CASE: $f missing (make vmm memserver guest)"; exit 1; }
done
# The VMM runs on its own host, p1. Under TCG that host gets one CPU: with two,
# the emulated nested SVM (KVM inside TCG) breaks under this much paging --
# guests triple-fault and the host kernel itself double-faults (docs/vmm.md).
if th_accel_args | grep -q tcg; then
	TESTHOST_SMP=1 th_need_hosts p1 || exit 1
else
	th_need_hosts p1 || exit 1
fi
th_need_hosts h2 || exit 1
fail() { echo "$CASE: FAIL: $*"; exit 1; }

out=$(mktemp -d)
# The server goes with the case: a later case must not find it on h2.
trap 'th_memserver_stop h2; rm -rf "$out"' EXIT
url=$VMM_EPT_SCHEME://$(th_ip h2):7100
th_memserver h2 "$url" --capacity 1G || fail "memserver did not start on h2"
want=$("$memcheck" --expect "$MEMCHECK")

t0=$SECONDS
th_run -n -t "$VMM_EPT_TIMEOUT" p1 -- "$vmm" run --memserver "$url" --cache 32M --mem 256M --vcpus 2 \
	--kernel "$kernel" --initrd "$initrd" --api-sock /tmp/vmm.sock --name ept-test \
	--cmdline "console=ttyS0 loglevel=4 transparent_hugepage=madvise legato.run=memcheck:$MEMCHECK" \
	>"$out/raw" 2>&1 &
vpid=$!

# The API while it runs (the API thread never touches guest memory, so it
# answers even while vCPUs wait for pages).
api() { th_run -n -t 20 p1 -- curl -sf --unix-socket /tmp/vmm.sock -X "$1" "http://vm$2"; }
for i in $(seq 150); do
	api GET /vm >"$out/vm" 2>/dev/null && break
	kill -0 $vpid 2>/dev/null || break	# vmm is gone: its log says why
	sleep 0.3
done
grep -q '"name":"ept-test"' "$out/vm" ||
	{ tail -20 "$out/raw"; fail "GET /vm: '$(cat "$out/vm")' after $((SECONDS - t0)) s"; }
grep -q '"state":"running"' "$out/vm" || fail "GET /vm not running: $(cat "$out/vm")"
api GET /vm/stats >"$out/stats" || fail "GET /vm/stats failed"
grep -qE '"capacity_pages": ?8192' "$out/stats" || fail "GET /vm/stats: $(cat "$out/stats")"
api PUT /vm/pause | grep -q '"state":"paused"' || fail "PUT /vm/pause"
api PUT /vm/resume | grep -q '"state":"running"' || fail "PUT /vm/resume"
echo "$CASE: API ok: $(cat "$out/vm")"

# A guest that stops making progress must still leave evidence: shortly
# before the limit, while vmm is still alive, record what its engine and
# the RDMA devices say (the agent's kill would leave only a partial log).
diag() {
	echo "$CASE: no exit after $((SECONDS - t0)) s; diagnostics:"
	api GET /vm/stats; echo
	th_sh -n -t 10 h2 "tail -5 /tmp/memserver.log"
	for h in p1 h2; do
		th_sh -n -t 10 $h "cd /sys/class/infiniband 2>/dev/null && grep -r . */ports/1/hw_counters 2>/dev/null |
			grep -v ':0\$' | sed 's/^/$h: /'"
	done
	tr -d '\r' <"$out/raw" | tail -25
}
while kill -0 $vpid 2>/dev/null; do
	if [ $((SECONDS - t0)) -ge $((VMM_EPT_TIMEOUT - 12)) ]; then
		diag
		break
	fi
	sleep 2
done
wait $vpid
rc=$?
tr -d '\r' <"$out/raw" >"$out/log"
echo "$CASE: vmm exit $rc after $((SECONDS - t0)) s"
grep -E '^legato-memcheck: size|^vmm:' "$out/log"
[ $rc -eq 0 ] || { tail -30 "$out/log"; fail "vmm exit status $rc"; }
grep -q '^legato-guest: init' "$out/log" || fail "no init marker"
grep -q "^legato-memcheck: .*checksum=$want .*result=ok" "$out/log" ||
	fail "memcheck checksum is not $want"
peak=$(sed -n 's/.*resident peak \([0-9]*\) pages.*capacity \([0-9]*\)).*/\1 \2/p' "$out/log")
[ -n "$peak" ] || fail "no resident peak in the summary"
set -- $peak
[ "$1" -le "$2" ] || fail "resident peak $1 pages above the cache's $2"
if [ "$VMM_EPT_SCHEME" = rdma ]; then
	n=$(th_run -n -t 20 p1 -- "$TESTHOST_BUILD/msctl" -s "$url" -j stat |
		jq -r '[.ops.read.count, .ops.write.count] | add')
	[ "$n" = 0 ] || fail "the server answered $n READ/WRITE requests itself (not one-sided?)"
fi
echo "$CASE: ok (checksum $want, resident peak $1 <= $2 pages, pages over $VMM_EPT_SCHEME://)"

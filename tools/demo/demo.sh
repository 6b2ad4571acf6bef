#!/bin/bash
# make demo: a stock Debian guest on disaggregated memory.
#
# Starts a memory server (HMAC-authenticated, free loopback port), boots the
# guest with DEMO_MEM of RAM (default 1 GiB) whose local virtual cache is only
# DEMO_CACHE (128 MiB) on 2 vCPUs, runs the guest's memcheck workload over
# DEMO_WORK (384 MiB: three times the cache, so pages go to the server and come
# back), shows the guest's console as it runs and, at the end, the cache's
# figures, and checks them: memcheck's checksum equals the one computed here
# and the resident peak never exceeded the cache.
#
# With a usable /dev/kvm (vmx or svm) it runs right here; without, it boots one
# emulated KVM test host (tools/testhost) and runs the same steps inside it
# (`demo.sh --here`). Under emulation the host gets one CPU (docs/vmm.md says
# why) and the run takes a minute or two.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${BUILD:-$TOP/build}" && pwd)
: "${DEMO_MEM:=1G}" "${DEMO_CACHE:=128M}" "${DEMO_WORK:=384M}" "${DEMO_VCPUS:=2}"
export BUILD DEMO_MEM DEMO_CACHE DEMO_WORK DEMO_VCPUS

step() { printf '\n== %s\n' "$*"; }
fail() { echo "demo: $*" >&2; exit 1; }

for f in vmm memserver guest/bzImage guest/initramfs.cpio guest/memcheck; do
	[ -f "$BUILD/$f" ] || fail "$BUILD/$f is missing (run: make demo)"
done

# The demo proper: memory server, guest, figures. Runs on a KVM machine.
ms_pid= work=
cleanup() {
	[ -z "$ms_pid" ] || kill "$ms_pid" 2>/dev/null || true
	[ -z "$work" ] || rm -rf "$work"
}

# num NAME: the number after NAME in vmm's summary line ($summary).
num() { sed -n "s/.*[ (]$1 \([0-9.]*\).*/\1/p" <<<"$summary"; }

demo_here() {
	local url want rc summary
	work=$(mktemp -d /tmp/legato-demo.XXXXXX)
	trap cleanup EXIT

	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/key"
	step "start a memory server (HMAC-authenticated, free loopback port)"
	"$BUILD/memserver" --listen tcp://127.0.0.1:0 --capacity "$DEMO_MEM" \
		--auth-key-file "$work/key" --ready-file "$work/ready" 2>"$work/memserver.log" &
	ms_pid=$!
	for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.05; done
	[ -s "$work/ready" ] || { cat "$work/memserver.log" >&2; fail "memserver did not start"; }
	url=$(cat "$work/ready")
	echo "memserver at $url (pid $ms_pid)"

	step "boot the guest: $DEMO_MEM of RAM, a $DEMO_CACHE cache, $DEMO_VCPUS vCPUs, memcheck over $DEMO_WORK"
	echo "vmm run --memserver $url --mem $DEMO_MEM --cache $DEMO_CACHE --vcpus $DEMO_VCPUS ..."
	echo "(every page the guest touches beyond the cache is written back to the"
	echo " memory server and fetched again on its next use)"
	echo
	set +e
	"$BUILD/vmm" run --memserver "$url" --key-file "$work/key" \
		--mem "$DEMO_MEM" --cache "$DEMO_CACHE" --vcpus "$DEMO_VCPUS" --name demo \
		--kernel "$BUILD/guest/bzImage" --initrd "$BUILD/guest/initramfs.cpio" \
		--cmdline "console=ttyS0 loglevel=4 transparent_hugepage=madvise legato.run=memcheck:$DEMO_WORK" \
		</dev/null 2>"$work/vmm.err" | tr -d '\r' | tee "$work/console"
	rc=${PIPESTATUS[0]}
	set -e
	grep -v '^vmm: .* after ' "$work/vmm.err" >&2 || true
	summary=$(grep '^vmm: .* after ' "$work/vmm.err" || true)
	[ $rc -eq 0 ] || fail "vmm exited with status $rc: ${summary:-no summary}"

	step "the virtual cache"
	printf '  %-16s %s s (%s)\n' "run time" "$(num after)" \
		"$(sed 's/^vmm: [^:]*: \(.*\) after .*/\1/' <<<"$summary")"
	printf '  %-16s %s: %s zero-filled locally, %s waited for the server\n' "faults" \
		"$(num faults)" "$(num zero-fill)" "$(num remote)"
	printf '  %-16s %s pages from the server\n' "fetched" "$(num 'pages fetched')"
	printf '  %-16s %s pages brought in ahead of use (zero or fetched)\n' "prefetched" \
		"$(num prefetched)"
	printf '  %-16s %s pages; %s dropped as clean, %s as zero (not sent)\n' \
		"written back" "$(num 'written back')" "$(num 'skipped clean')" "$(num 'skipped zero')"
	printf '  %-16s %s\n' "evictions" "$(num evictions)"
	printf '  %-16s %s pages (%s MiB) of a %s-page cache\n' "resident peak" \
		"$(num 'resident peak')" "$(sed -n 's/.*pages (\([0-9.]*\) MiB.*/\1/p' <<<"$summary")" \
		"$(num capacity)"
	want=$("$BUILD/guest/memcheck" --expect "$DEMO_WORK")
	grep -q "^legato-memcheck: .*checksum=$want .*result=ok" "$work/console" ||
		fail "the guest's memcheck checksum is not $want"
	echo "memcheck checksum $want: every page the guest wrote came back intact"
	local peak cap
	peak=$(num 'resident peak') cap=$(num capacity)
	[ -n "$peak" ] && [ -n "$cap" ] || fail "no resident figures in the summary"
	[ "$peak" -le "$cap" ] || fail "resident peak $peak pages above the cache's $cap"
	echo "resident peak $peak pages <= the cache's $cap: the guest ran in $DEMO_CACHE" \
		"of local memory"
}

kvm_usable() {
	[ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo
}

if [ "${1:-}" = --here ] || kvm_usable; then
	demo_here
	exit 0
fi

# No hardware virtualization: one emulated KVM host, the demo inside it.
. "$TOP/tools/testhost/lib.sh"
export TESTHOST_AGENT=${TESTHOST_AGENT:-$BUILD/testhost-agent}
step "no usable /dev/kvm here: booting an emulated KVM host (qemu, one CPU)"
TESTHOST_SMP=1 th_up demo || fail "the test host did not boot"
th_run -n -t 1800 demo -- env BUILD="$BUILD" DEMO_MEM="$DEMO_MEM" DEMO_CACHE="$DEMO_CACHE" \
	DEMO_WORK="$DEMO_WORK" DEMO_VCPUS="$DEMO_VCPUS" bash "$HERE/demo.sh" --here

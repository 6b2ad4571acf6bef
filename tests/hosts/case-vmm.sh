#!/bin/bash
# Case: the VMM boots the stock Debian guest (make guest) on plain local RAM
# (--no-remote) inside a test host. Three boots: a poweroff (init marker,
# command line and nproc as given, no ACPI/PCI complaints in the kernel log,
# status 0 and a summary line), a shell fed from vmm's stdin that ends with
# `reboot -f` (input reaches the guest; reboot is status 0), and a panic
# (non-zero, panic text visible). The first is paused and resumed through the
# API on its way. Plus the one-line errors for bad input.
set -u
. "$(dirname "$0")/../../tools/testhost/lib.sh"
: "${TESTHOST_BUILD:=$TH_TOP/build}"
vmm=$TESTHOST_BUILD/vmm
kernel=$TESTHOST_BUILD/guest/bzImage
initrd=$TESTHOST_BUILD/guest/initramfs.cpio
for f in "$vmm" "$kernel" "$initrd"; do
	[ -f "$f" ] || { echo "case-vmm: $f missing (make vmm guest)"; exit 1; }
done
th_need_hosts h1 || exit 1

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "case-vmm: FAIL: $*"; exit 1; }
boot() {	# boot NAME VCPUS CMDLINE-EXTRA [stdin file]: output in $out/NAME, status in $out/NAME.rc
	local name=$1 vcpus=$2 extra=$3 in=${4:-/dev/null} t0=$SECONDS
	th_run -t 120 h1 -- "$vmm" run --no-remote --kernel "$kernel" --initrd "$initrd" \
		--mem 256M --vcpus "$vcpus" ${BOOT_ARGS:-} \
		--cmdline "console=ttyS0 loglevel=4 transparent_hugepage=madvise $extra" \
		<"$in" 2>&1 | tr -d '\r' >"$out/$name"
	echo "${PIPESTATUS[0]}" >"$out/$name.rc"
	echo "case-vmm: $name: exit $(cat "$out/$name.rc") in $((SECONDS - t0)) s"
}

# 1. poweroff: marker, cmdline, nproc, clean log, status 0, summary; paused and
# resumed through the API on the way (the guest must go on to the end)
BOOT_ARGS="--api-sock /tmp/vmm-case.sock" boot poweroff 2 "legato.run=poweroff legato.check=xyzzy" &
bpid=$!
api() { th_run -n -t 20 h1 -- curl -sf --unix-socket /tmp/vmm-case.sock -X "$1" "http://vm$2"; }
for i in $(seq 100); do api GET /vm >"$out/vm" 2>/dev/null && break; sleep 0.2; done
grep -q '"state":"running"' "$out/vm" || fail "GET /vm: $(cat "$out/vm")"
api PUT /vm/pause | grep -q '"state":"paused"' || fail "PUT /vm/pause"
api GET /vm | grep -q '"state":"paused"' || fail "GET /vm after pause is not paused"
sleep 1
api PUT /vm/resume | grep -q '"state":"running"' || fail "PUT /vm/resume"
wait $bpid
log=$out/poweroff
[ "$(cat "$log.rc")" = 0 ] || { cat "$log"; fail "poweroff: status $(cat "$log.rc")"; }
grep -q '^legato-guest: init' "$log" || { cat "$log"; fail "no init marker"; }
grep -q '^legato-guest: cmdline=.*legato.check=xyzzy' "$log" || fail "command line not seen by the guest"
grep -q '^legato-guest: nproc=2$' "$log" || { grep nproc "$log"; fail "guest nproc is not 2"; }
grep -q '^legato-guest: pvpanic=1$' "$log" || fail "pvpanic-pci not bound in the guest"
if grep '^legato-guest: klog:' "$log"; then fail "ACPI/PCI complaints in the guest kernel log"; fi
grep -q 'vmm: .*guest powered off after' "$log" || { tail -3 "$log"; fail "no summary line"; }

# 2. shell on the console, then reboot typed into it
printf 'echo marker-$((6*7))\nreboot -f\n' >"$out/input"
boot shell 1 "legato.run=shell" "$out/input"
log=$out/shell
grep -q '^marker-42' "$log" || { tail -20 "$log"; fail "console input did not reach the guest shell"; }
[ "$(cat "$log.rc")" = 0 ] || { tail -5 "$log"; fail "reboot: status $(cat "$log.rc")"; }
grep -q 'vmm: .*rebooted' "$log" || { tail -3 "$log"; fail "reboot not reported"; }

# 3. panic: non-zero with the panic text
boot panic 1 "legato.run=panic"
log=$out/panic
[ "$(cat "$log.rc")" != 0 ] || { tail -10 "$log"; fail "a guest panic ended with status 0"; }
grep -q 'Kernel panic' "$log" || { tail -10 "$log"; fail "panic text not visible"; }
grep -q 'vmm: .*panicked' "$log" || { tail -3 "$log"; fail "panic not reported"; }

# 4. bad input: one line on stderr, non-zero, no crash
bad() {	# bad WHAT EXPECTED-REGEX ARGS...
	local what=$1 re=$2 rc lines
	shift 2
	th_run -n -t 30 h1 -- "$vmm" run "$@" >"$out/bad" 2>&1
	rc=$?
	lines=$(wc -l <"$out/bad")
	if [ $rc -eq 0 ] || [ $rc -ge 124 ] || [ "$lines" -ne 1 ] || ! grep -qE "$re" "$out/bad"; then
		cat "$out/bad"
		fail "bad input '$what': status $rc, $lines lines"
	fi
	echo "case-vmm: bad input '$what': $(cat "$out/bad")"
}
bad "missing kernel" "cannot open kernel" --no-remote --kernel /nonexistent --mem 256M
bad "not a bzImage" "not a bzImage" --no-remote --kernel "$initrd" --mem 256M
bad "cache > mem" "larger than --mem" --local --kernel "$kernel" --mem 256M --cache 512M
bad "mem too small" "too small for this kernel" --no-remote --kernel "$kernel" --mem 32M
bad "mem not 4 KiB" "multiple of 4 KiB" --no-remote --kernel "$kernel" --mem 1000000
bad "unreachable memory server" "memory server tcp://127.0.0.1:9: cannot connect" \
	--memserver tcp://127.0.0.1:9 --kernel "$kernel" --initrd "$initrd" --mem 256M --cache 32M
echo "case-vmm: ok"

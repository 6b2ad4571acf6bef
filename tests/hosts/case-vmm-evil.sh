#!/bin/bash
# Case: a hostile guest cannot crash the VMM through virtio-blk. On p1 (one
# CPU under TCG, as case-vmm-blk) the guest runs /bin/virtio_evil
# (guest-images/virtio_evil.c, legato.run=evil) on plain RAM (--no-remote,
# 256 MiB, one vCPU) with a 16 MiB disk file whose sector 0 starts with a
# known string: it takes the virtio-blk function from the kernel and feeds it
# bad descriptor chains (addresses and lengths outside RAM, loops, indices out
# of range, readable after writable, avail->idx jumping, reads past the end of
# the disk, requests without header or status byte, bad queue set-ups). Pass:
# vmm exits 0 (the guest powered off: the VMM survived), every attack line
# says result=ok (NEEDS_RESET, or an I/O error for a bad request), the valid
# read after a reset returned the disk's sector 0, and done failures=0.
set -u
. "$(dirname "$0")/../../tools/testhost/lib.sh"
: "${TESTHOST_BUILD:=$TH_TOP/build}"
vmm=$TESTHOST_BUILD/vmm
kernel=$TESTHOST_BUILD/guest/bzImage
initrd=$TESTHOST_BUILD/guest/initramfs.cpio
for f in "$vmm" "$kernel" "$initrd"; do
	[ -f "$f" ] || { echo "case-vmm-evil: $f missing (make vmm guest)"; exit 1; }
done
if th_accel_args | grep -q tcg; then
	TESTHOST_SMP=1 th_need_hosts p1 || exit 1
else
	th_need_hosts p1 || exit 1
fi
fail() { echo "case-vmm-evil: FAIL: $*"; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
magic=legato-evil-disk	# 16 bytes at the start of sector 0
magic_hex=$(printf %s "$magic" | od -An -tx1 | tr -d ' \n')

# Attacks that must be there (virtio_evil has a few more).
required="addr-outside-ram len-crosses-ram-end next-loop-self next-out-of-range
	head-out-of-range readable-after-writable avail-idx-jump read-past-end-of-disk
	no-status-byte"

th_sh -n -t 30 p1 "rm -f /tmp/evil.img && truncate -s 16M /tmp/evil.img &&
	printf %s '$magic' | dd of=/tmp/evil.img conv=notrunc 2>/dev/null" ||
	fail "cannot make the disk file"
t0=$SECONDS
th_run -n -t 200 p1 -- "$vmm" run --no-remote --mem 256M --vcpus 1 --disk /tmp/evil.img \
	--kernel "$kernel" --initrd "$initrd" \
	--cmdline "console=ttyS0 loglevel=4 legato.run=evil" \
	2>&1 | tr -d '\r' >"$out/console"
rc=${PIPESTATUS[0]}
echo "case-vmm-evil: exit $rc in $((SECONDS - t0)) s"

attack_re='^legato-evil: [a-z0-9-]* status=0x[0-9a-f][0-9a-f] used=[0-9]* result='
grep "$attack_re" "$out/console" | sed 's/^/case-vmm-evil: /'
[ "$rc" = 0 ] || { tail -40 "$out/console"; fail "vmm exited with status $rc"; }
grep -q '^legato-guest: done rc=0 action=poweroff' "$out/console" ||
	{ tail -40 "$out/console"; fail "the guest did not finish its workload cleanly"; }
bad=$(grep "$attack_re" "$out/console" | grep -v 'result=ok$')
[ -z "$bad" ] || { grep '^legato-evil:' "$out/console"; fail "attacks not caught: $(echo "$bad" | awk '{ print $2 }' | tr '\n' ' ')"; }
for a in $required; do
	grep -q "^legato-evil: $a status=0x[0-9a-f]* used=[0-9]* result=ok$" "$out/console" ||
		{ grep '^legato-evil:' "$out/console"; fail "no result=ok line for attack $a"; }
done
grep -q '^legato-evil: valid-read status=0 result=ok$' "$out/console" ||
	{ grep '^legato-evil:' "$out/console"; fail "no valid read after the attacks"; }
grep -q "^legato-evil: sector0 head=$magic_hex\$" "$out/console" ||
	{ grep '^legato-evil:' "$out/console"; fail "the valid read did not return the disk's sector 0"; }
grep -q '^legato-evil: done failures=0$' "$out/console" ||
	{ grep '^legato-evil:' "$out/console"; fail "virtio_evil reported failures"; }
n=$(grep -c "$attack_re" "$out/console")
echo "case-vmm-evil: ok ($n attacks caught, VMM survived, device usable after reset)"

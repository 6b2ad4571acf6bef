#!/bin/bash
# Case: two guests on two test hosts talk to each other across the hosts'
# network. Each host (p1, p2; one CPU under TCG, as the other VMM cases) puts
# its guest's TAP on a bridge with a VXLAN tunnel to the other host, so the
# guests share one Ethernet segment (10.97.0.0/24, MTU 1400 under the
# tunnel). The guest on p2 serves NET2_MIB (default 8) MiB of random data
# with nc; the guest on p1 pings it and fetches the data: the md5sums match.
set -u
. "$(dirname "$0")/../../tools/testhost/lib.sh"
: "${TESTHOST_BUILD:=$TH_TOP/build}"
: "${NET2_MIB:=8}"
vmm=$TESTHOST_BUILD/vmm
kernel=$TESTHOST_BUILD/guest/bzImage
initrd=$TESTHOST_BUILD/guest/initramfs.cpio
for f in "$vmm" "$kernel" "$initrd"; do
	[ -f "$f" ] || { echo "case-vmm-net2: $f missing (make vmm guest)"; exit 1; }
done
if th_accel_args | grep -q tcg; then
	TESTHOST_SMP=1 th_need_hosts p1 p2 || exit 1
else
	th_need_hosts p1 p2 || exit 1
fi
fail() { echo "case-vmm-net2: FAIL: $*"; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

segment() {	# segment HOST OTHER-IP: bridge gbr0 = TAP gtap0 + VXLAN to OTHER-IP
	th_sh -n -t 30 "$1" "ip link del gbr0 2>/dev/null; ip link del vx0 2>/dev/null
		ip link del gtap0 2>/dev/null
		ip link add gbr0 type bridge &&
		ip link add vx0 type vxlan id 42 remote $2 dstport 4789 dev eth0 &&
		ip tuntap add dev gtap0 mode tap &&
		ip link set vx0 master gbr0 && ip link set gtap0 master gbr0 &&
		ip link set vx0 up && ip link set gtap0 up && ip link set gbr0 up"
}
segment p1 "$(th_ip p2)" || fail "cannot set up the segment on p1"
segment p2 "$(th_ip p1)" || fail "cannot set up the segment on p2"

guest() {	# guest HOST IP WORKLOAD: console in $out/HOST
	th_run -n -t 200 "$1" -- "$vmm" run --no-remote --mem 256M --vcpus 1 \
		--net tap=gtap0 --kernel "$kernel" --initrd "$initrd" \
		--cmdline "console=ttyS0 loglevel=4 legato.ip=$2/24 legato.mtu=1400 legato.run=$3" \
		2>&1 | tr -d '\r' >"$out/$1"
	echo "${PIPESTATUS[0]}" >"$out/$1.rc"
}
t0=$SECONDS
guest p2 10.97.0.3 "net-serve:5000:$NET2_MIB" &
server=$!
guest p1 10.97.0.2 net-fetch:10.97.0.3:5000
wait $server
echo "case-vmm-net2: both guests done in $((SECONDS - t0)) s"
for h in p1 p2; do
	[ "$(cat "$out/$h.rc")" = 0 ] || { tail -20 "$out/$h"; fail "vmm on $h: status $(cat "$out/$h.rc")"; }
done
grep -q '^legato-net: ping rc=0' "$out/p1" || { tail -20 "$out/p1"; fail "guest on p1 could not ping the guest on p2"; }
served=$(sed -n 's/^legato-net: serving md5=//p' "$out/p2")
fetched=$(sed -n 's/^legato-net: fetched md5=//p' "$out/p1")
[ -n "$served" ] && [ "$served" = "$fetched" ] ||
	{ tail -20 "$out/p1"; tail -20 "$out/p2"; fail "served md5 '$served', fetched '$fetched'"; }
for h in p1 p2; do th_sh -n -t 30 "$h" "ip link del gbr0; ip link del vx0; ip link del gtap0"; done
echo "case-vmm-net2: ok (ping and $NET2_MIB MiB between guests on p1 and p2, md5 $served)"

#!/bin/bash
# Case: virtio-net. On p1 (one CPU under TCG, as case-vmm-blk) a TAP lgt0
# (10.99.0.1/24, up) and two busybox nc listeners: one on 5000 serving
# NET_MIB (default 64) MiB of random data, one on 5001 storing what it gets.
# A guest on plain RAM (256 MiB, 1 vCPU, --net tap=lgt0, 10.99.0.2/24) pings
# the host, receives from 5000 and prints the md5sum, then sends NET_MIB MiB
# of its own to 5001 and prints theirs: both sums must match the host's
# files, and vmm exit 0. The throughput each way (guest-measured) is printed,
# not checked. Then a second guest with a stream each way (listeners on
# 5002/5003) removes and reloads its virtio_net driver (a device reset with
# frames in flight on both queues) and must ping the host again, vmm exit 0,
# both resets logged. Also: a TAP name too long, an interface that is no TAP (lo)
# and a missing /dev/net/tun are errors naming the interface, status 1.
set -u
. "$(dirname "$0")/../../tools/testhost/lib.sh"
: "${TESTHOST_BUILD:=$TH_TOP/build}"
: "${NET_MIB:=64}"
vmm=$TESTHOST_BUILD/vmm
kernel=$TESTHOST_BUILD/guest/bzImage
initrd=$TESTHOST_BUILD/guest/initramfs.cpio
for f in "$vmm" "$kernel" "$initrd"; do
	[ -f "$f" ] || { echo "case-vmm-net: $f missing (make vmm guest)"; exit 1; }
done
if th_accel_args | grep -q tcg; then
	TESTHOST_SMP=1 th_need_hosts p1 || exit 1
else
	th_need_hosts p1 || exit 1
fi
fail() { echo "case-vmm-net: FAIL: $*"; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# On p1: the TAP, the listeners, the guest; then the host's view of the data.
# busybox nc half-closes when its stdin ends and exits when the socket does,
# so the receiving listener reads from a FIFO held open by a sleep (with
# </dev/null it would close on the guest before the data arrived).
# shellcheck disable=SC2016
host_script='
mib=$1 vmm=$2 kernel=$3 initrd=$4
d=/tmp/vmm-net
rm -rf "$d" && mkdir -p "$d" && cd "$d" || exit 3
ip link del lgt0 2>/dev/null
ip tuntap add dev lgt0 mode tap && ip addr add 10.99.0.1/24 dev lgt0 &&
	ip link set lgt0 up || { echo "host: cannot set up lgt0"; exit 3; }
head -c "${mib}M" /dev/urandom >tx.bin
busybox nc -l -p 5000 <tx.bin >/dev/null 2>nc5000.err &
l1=$!
mkfifo hold
sleep 3600 >hold 2>/dev/null &
hold=$!
busybox nc -l -p 5001 <hold >rx.bin 2>nc5001.err &
l2=$!
t0=$(date +%s)
timeout 130 "$vmm" run --no-remote --mem 256M --vcpus 1 --net tap=lgt0 --log-level info \
	--kernel "$kernel" --initrd "$initrd" \
	--cmdline "console=ttyS0 loglevel=4 transparent_hugepage=madvise legato.ip=10.99.0.2/24 legato.run=net-xfer:10.99.0.1:5000:$mib" \
	</dev/null 2>&1 | tr -d "\r"
rc=${PIPESTATUS[0]}
echo "host: vmm exit $rc in $(($(date +%s) - t0)) s"
kill $l1 $l2 $hold 2>/dev/null
echo "host: tx md5=$(md5sum <tx.bin | cut -c1-32)"
echo "host: rx md5=$(md5sum <rx.bin | cut -c1-32) bytes=$(stat -c %s rx.bin)"
cat nc5000.err nc5001.err | sed "s/^/host: nc: /"
ip -s link show lgt0 | sed "s/^/host: /"
# The reset: the listeners stream forever and swallow everything.
busybox nc -l -p 5002 </dev/zero >/dev/null 2>&1 &
l1=$!
busybox nc -l -p 5003 <hold >/dev/null 2>&1 &
l2=$!
sleep 3600 >hold 2>/dev/null &
hold=$!
timeout 90 "$vmm" run --no-remote --mem 256M --vcpus 1 --net tap=lgt0 --log-level info \
	--kernel "$kernel" --initrd "$initrd" \
	--cmdline "console=ttyS0 loglevel=4 transparent_hugepage=madvise legato.ip=10.99.0.2/24 legato.run=net-reset:10.99.0.1:5002" \
	</dev/null 2>&1 | tr -d "\r" | sed "s/^/reset: /"
echo "host: reset vmm exit ${PIPESTATUS[0]}"
kill $l1 $l2 $hold 2>/dev/null
ip link del lgt0
cd / && rm -rf "$d"
'
t0=$SECONDS
th_run -n -t 235 p1 -- /bin/bash -c "$host_script" sh "$NET_MIB" "$vmm" "$kernel" \
	"$initrd" >"$out/xfer" 2>&1
echo "case-vmm-net: xfer boot: exit $? in $((SECONDS - t0)) s"
grep -q '^host: vmm exit 0 ' "$out/xfer" || { tail -40 "$out/xfer"; fail "vmm did not exit 0"; }
grep -q '^legato-guest: net eth0 10.99.0.2/24 up' "$out/xfer" ||
	{ tail -40 "$out/xfer"; fail "the guest could not bring eth0 up"; }
grep -q '^legato-net: ping rc=0' "$out/xfer" || { tail -40 "$out/xfer"; fail "the guest could not ping the host"; }
field() { sed -n "s/^$1//p" "$out/xfer" | head -n 1; }
tx=$(field 'host: tx md5=')
rx=$(field 'host: rx md5=' | cut -d' ' -f1)
grecv=$(field 'legato-net: recv md5=')
gsent=$(field 'legato-net: sent md5=')
[ -n "$tx" ] && [ "$grecv" = "$tx" ] ||
	{ tail -40 "$out/xfer"; fail "host -> guest: the guest got md5 '$grecv', the host sent '$tx'"; }
[ -n "$gsent" ] && [ "$rx" = "$gsent" ] ||
	{ tail -40 "$out/xfer"; fail "guest -> host: the host got md5 '$rx', the guest sent '$gsent'"; }
grep -q '^legato-net: xfer rc=0' "$out/xfer" || { tail -40 "$out/xfer"; fail "the guest reported a failure"; }
rate() { awk -v m="$NET_MIB" -v s="$1" 'BEGIN { if (s > 0) printf "%.1f MiB/s", m / s; else print "?" }'; }
rs=$(field 'legato-net: recv seconds=')
ss=$(field 'legato-net: send seconds=')
echo "case-vmm-net: host -> guest $NET_MIB MiB in ${rs:-?} s ($(rate "${rs:-0}")), guest -> host $NET_MIB MiB in ${ss:-?} s ($(rate "${ss:-0}"))"
grep 'vmm info: virtio-net lgt0: rx' "$out/xfer" | sed 's/^.*vmm info: /case-vmm-net: /'
# The guest takes MRG_RXBUF and TSO: the host's 64 KiB frames must have
# landed spread over several of its small receive buffers.
read -r frames bufs < <(sed -n 's/^.*virtio-net lgt0: rx \([0-9]*\) frames in \([0-9]*\) buffers.*/\1 \2/p' \
	"$out/xfer" | head -n 1)
[ -n "${frames:-}" ] && [ "${bufs:-0}" -gt "$frames" ] ||
	fail "receive: ${frames:-?} frames in ${bufs:-?} buffers (mergeable buffers not used?)"

# The reset with frames in flight.
grep -q '^host: reset vmm exit 0$' "$out/xfer" || { grep '^reset: ' "$out/xfer" | tail -40; fail "reset: vmm did not exit 0"; }
read -r rxb txb < <(sed -n 's/^reset: legato-net: rmmod rc=0 rx_bytes=\([0-9]*\) tx_bytes=\([0-9]*\)$/\1 \2/p' \
	"$out/xfer")
[ "${rxb:-0}" -gt 1048576 ] && [ "${txb:-0}" -gt 1048576 ] ||
	{ grep '^reset: ' "$out/xfer" | tail -40; fail "reset: no streams in flight at rmmod (rx ${rxb:-?}, tx ${txb:-?} bytes)"; }
grep -q '^reset: legato-net: reset ping rc=0' "$out/xfer" ||
	{ grep '^reset: ' "$out/xfer" | tail -40; fail "reset: the reloaded driver could not ping the host"; }
[ "$(grep -c '^reset: .*vmm info: virtio-net lgt0: rx ' "$out/xfer")" -ge 2 ] ||
	{ grep '^reset: ' "$out/xfer" | tail -40; fail "reset: the device did not stop twice"; }
echo "case-vmm-net: reset: driver removed with $((rxb >> 20)) MiB in / $((txb >> 20)) MiB out flowing, reloaded, ping ok"

# Errors: one "vmm: --net tap=NAME: ..." line naming the interface, status 1.
bad() {	# bad NAME PATTERN CMD...
	local name=$1 pat=$2
	shift 2
	th_run -n -t 30 p1 -- "$@" >"$out/$name" 2>&1 && fail "$name: vmm accepted it"
	grep -q -- "$pat" "$out/$name" || { cat "$out/$name"; fail "$name: no error naming the interface"; }
	echo "case-vmm-net: $name: $(grep -- "$pat" "$out/$name" | head -n 1)"
}
bad too-long "tap=abcdefghijklmnop" "$vmm" run --no-remote --mem 256M \
	--net tap=abcdefghijklmnop --kernel "$kernel"
bad not-a-tap "^vmm: --net tap=lo: " "$vmm" run --no-remote --mem 256M --net tap=lo \
	--kernel "$kernel"
# shellcheck disable=SC2016
bad no-tun "^vmm: --net tap=lgt1: /dev/net/tun: " unshare -m /bin/sh -c \
	'mount -t tmpfs none /dev/net && exec "$0" run --no-remote --mem 256M --net tap=lgt1 --kernel "$1"' \
	"$vmm" "$kernel"
echo "case-vmm-net: ok ($NET_MIB MiB each way intact, ping, reset in flight, three bad --net refused)"

#!/bin/bash
# bench-blk: the virtio-blk device against QEMU's, same guest, same host, same
# run. Each round boots the stock guest twice, in an order that alternates:
#   qemu   qemu-system-x86_64 -accel kvm -machine pc, -drive file=IMG,
#          cache=writeback,aio=threads + virtio-blk-pci (no vhost exists for blk)
#   vmm    vmm run --local --cache = --mem (RAM on the virtual cache, every page
#          resident once touched) --disk IMG
# with 1 vCPU and 256 MiB. The guest (legato.run=blk-bench:MIB) first writes
# and reads the whole span once (guest buffers faulted in, host page cache
# warm), then times a sequential 1 MiB O_DIRECT write and read of MIB MiB with
# dd: the device path is what differs. MB/s per direction, medians, ratios
# vmm/qemu (goal >= 1.0).
#
# bench-net: virtio-net against QEMU's virtio-net-pci without vhost (vhost=off),
# both on a fresh TAP of the host (10.98.0.1/24, the guest 10.98.0.2): the
# guest (legato.run=net-xfer) receives MIB MiB from a listener on the host,
# then sends MIB MiB back, with netcopy at both ends (256 KiB system calls); TCP MB/s per direction as the
# guest times them, checksums compared, medians, ratios vmm/qemu.
#
# usage: virtio.sh blk|net [--out DIR] [--build DIR] [--quick] [--here]
# Writes DIR/blk.json or DIR/net.json. Without a usable /dev/kvm it runs inside one emulated
# KVM test host (tools/bench/inhost.sh).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
MODE=${1:-}
case $MODE in
blk|net) shift ;;
*) echo "usage: virtio.sh blk|net [--out DIR] [--build DIR] [--quick] [--here]" >&2; exit 1 ;;
esac
. "$HERE/inhost.sh"
bench_args virtio.sh "$@"
bench_need virtio.sh "bench-$MODE" vmm memserver guest/bzImage guest/initramfs.cpio guest/netcopy
BENCH_INSIDE=$INSIDE
if [ "$INSIDE" = 0 ] && ! bench_kvm_here; then
	q=; [ "$QUICK" = 1 ] && q=--quick
	bench_in_host "$MODE" "$OUT" "$HERE/virtio.sh" "$MODE" --build "$BUILD" $q || exit 1
	jq -r '.ratios | to_entries[] | "\(.key) = \(.value.value)"' "$OUT/$MODE.json"
	exit 0
fi

if [ "$QUICK" = 1 ]; then ROUNDS=1 MIB=16; elif [ "$MODE" = blk ]; then ROUNDS=3 MIB=512; else ROUNDS=5 MIB=64; fi
WHERE=native; [ "$INSIDE" = 1 ] && WHERE="emulated KVM test host (qemu TCG, nested SVM)"
KERNEL=$BUILD/guest/bzImage INITRD=$BUILD/guest/initramfs.cpio
TMP=$(mktemp -d /tmp/bench-virtio.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
IMG=$TMP/disk.img
[ "$MODE" = blk ] && truncate -s $((MIB + 16))M "$IMG"
CMDLINE="console=ttyS0 loglevel=4 transparent_hugepage=madvise legato.run=blk-bench:$MIB"
NET_ARGS=()
if [ "$MODE" = net ]; then
	CMDLINE="console=ttyS0 loglevel=4 transparent_hugepage=madvise legato.ip=10.98.0.2/24"
	CMDLINE+=" legato.run=net-xfer:10.98.0.1:5000:$MIB"
fi

run_vm() {	# run_vm KIND LOG
	local kind=$1 log=$2 dev=() vdev=()
	if [ "$MODE" = blk ]; then
		dev=(-drive file="$IMG",if=none,id=d0,format=raw,cache=writeback,aio=threads
		     -device virtio-blk-pci,drive=d0)
		vdev=(--disk "$IMG")
	else
		dev=(-netdev tap,id=n0,ifname=benchtap,script=no,downscript=no,vhost=off
		     -device virtio-net-pci,netdev=n0,mac=52:54:00:98:00:02)
		vdev=(--net tap=benchtap,mac=52:54:00:98:00:02)
	fi
	case $kind in
	qemu) timeout 900 qemu-system-x86_64 -accel kvm -cpu host -machine pc -smp 1 -m 256M \
		-nodefaults -no-user-config -display none -no-reboot -serial stdio \
		-kernel "$KERNEL" -initrd "$INITRD" -append "$CMDLINE" "${dev[@]}" \
		</dev/null >"$log" 2>&1 ;;
	vmm) timeout 900 "$BUILD/vmm" run --local --mem 256M --cache 256M --vcpus 1 \
		"${vdev[@]}" --kernel "$KERNEL" --initrd "$INITRD" --cmdline "$CMDLINE" \
		</dev/null >"$log" 2>&1 ;;
	esac
}

# net: a fresh TAP and the host's two ends of the transfer around one VM.
run_net_vm() {	# run_net_vm KIND LOG: sets TX_MD5 RX_MD5
	local kind=$1 log=$2 l1 l2
	ip link del benchtap 2>/dev/null || true
	ip tuntap add dev benchtap mode tap && ip addr add 10.98.0.1/24 dev benchtap &&
		ip link set benchtap up || { echo "bench-net: cannot set up benchtap" >&2; exit 1; }
	head -c "${MIB}M" /dev/urandom >"$TMP/tx.bin"
	"$BUILD/guest/netcopy" send :5000 <"$TMP/tx.bin" 2>/dev/null &
	l1=$!
	"$BUILD/guest/netcopy" recv :5001 >"$TMP/rx.bin" 2>/dev/null &
	l2=$!
	run_vm "$kind" "$log" || true
	kill $l1 $l2 2>/dev/null || true
	wait $l1 $l2 2>/dev/null || true
	TX_MD5=$(md5sum <"$TMP/tx.bin" | cut -c1-32)
	RX_MD5=$(md5sum <"$TMP/rx.bin" | cut -c1-32)
	ip link del benchtap
}

# One run: the two timings into A and B (blk: write, read; net: host->guest,
# guest->host), checked.
measure() {	# measure KIND
	local kind=$1 log=$TMP/$1.log
	if [ "$MODE" = blk ]; then
		run_vm "$kind" "$log" || true
		A=$(tr -d '\r' <"$log" | sed -n 's/^legato-blk: write mib=[0-9]* seconds=\([0-9.]*\).*/\1/p')
		B=$(tr -d '\r' <"$log" | sed -n 's/^legato-blk: read mib=[0-9]* seconds=\([0-9.]*\).*/\1/p')
	else
		run_net_vm "$kind" "$log"
		A=$(tr -d '\r' <"$log" | sed -n 's/^legato-net: recv seconds=\([0-9.]*\).*/\1/p')
		B=$(tr -d '\r' <"$log" | sed -n 's/^legato-net: send seconds=\([0-9.]*\).*/\1/p')
		if ! tr -d '\r' <"$log" | grep -q "^legato-net: recv md5=$TX_MD5" ||
		   ! tr -d '\r' <"$log" | grep -q "^legato-net: sent md5=$RX_MD5"; then
			tail -20 "$log" >&2
			echo "bench-net: $kind: the data did not arrive intact" >&2
			exit 1
		fi
	fi
	if [ -z "$A" ] || [ -z "$B" ]; then
		tail -20 "$log" >&2
		echo "bench-$MODE: $kind: no timings from the guest" >&2
		exit 1
	fi
}

: >"$TMP/runs.jsonl"
for round in $(seq "$ROUNDS"); do
	kinds="qemu vmm"; [ $((round % 2)) = 0 ] && kinds="vmm qemu"
	for kind in $kinds; do
		measure "$kind"
		jq -nc --arg k "$kind" --argjson round "$round" --argjson mib "$MIB" \
			--argjson a "$A" --argjson b "$B" \
			'{kind: $k, round: $round, a_s: $a, b_s: $b,
			  a_mbs: ($mib * 1.048576 / $a), b_mbs: ($mib * 1.048576 / $b)}' \
			>>"$TMP/runs.jsonl"
		echo "bench-$MODE: round $round $kind: $(tail -1 "$TMP/runs.jsonl")" >&2
	done
done

if [ "$MODE" = blk ]; then
	A_NAME=write B_NAME=read
	TITLE="virtio-blk against QEMU: sequential 1 MiB O_DIRECT write and read"
	DESC="A stock guest (1 vCPU, 256 MiB) writes then reads $MIB MiB of its disk with dd bs=1M oflag/iflag=direct after one warm-up pass, on a file of the host: QEMU (-machine pc, virtio-blk-pci, cache=writeback, aio=threads) against vmm --disk with RAM on the virtual cache, cache = mem."
else
	A_NAME=host_to_guest B_NAME=guest_to_host
	TITLE="virtio-net against QEMU (no vhost): TCP over TAP, each direction"
	DESC="A stock guest (1 vCPU, 256 MiB) on a TAP of its host receives $MIB MiB from the host then sends $MIB MiB back (netcopy at both ends: 256 KiB system calls; timed in the guest, data in tmpfs, checksums compared): QEMU (-machine pc, virtio-net-pci, vhost=off) against vmm --net with RAM on the virtual cache, cache = mem."
fi
jq -s --argjson mib "$MIB" --argjson rounds "$ROUNDS" --arg where "$WHERE" --arg mode "$MODE" \
	--arg an "$A_NAME" --arg bn "$B_NAME" --arg title "$TITLE" --arg desc "$DESC" \
	--arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg kernel "$(uname -r)" \
	--argjson cpus "$(nproc)" '
def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def med($k; $f): [.[] | select(.kind == $k) | .[$f]] | median;
def r3: . * 1000 | round / 1000;
. as $runs |
{
  benchmark: $mode, title: $title,
  description: ($desc + " Medians of \($rounds) rounds, order alternating."),
  date: $date,
  machine: { cpus: $cpus, kernel: $kernel, host: $where },
  config: { mib: $mib, rounds: $rounds, guest_vcpus: 1, guest_mem: "256M" },
  ratios: {
    ("\($mode)_\($an)_vs_qemu_ratio"): {
      value: ($runs | (med("vmm"; "a_mbs") / med("qemu"; "a_mbs")) | r3), goal: ">= 1.0",
      description: "vmm MB/s / QEMU MB/s, \($an)" },
    ("\($mode)_\($bn)_vs_qemu_ratio"): {
      value: ($runs | (med("vmm"; "b_mbs") / med("qemu"; "b_mbs")) | r3), goal: ">= 1.0",
      description: "vmm MB/s / QEMU MB/s, \($bn)" }
  },
  figures: {
    ("vmm_\($an)_mbs"): { value: ($runs | med("vmm"; "a_mbs") | r3), unit: "MB/s" },
    ("vmm_\($bn)_mbs"): { value: ($runs | med("vmm"; "b_mbs") | r3), unit: "MB/s" },
    ("qemu_\($an)_mbs"): { value: ($runs | med("qemu"; "a_mbs") | r3), unit: "MB/s" },
    ("qemu_\($bn)_mbs"): { value: ($runs | med("qemu"; "b_mbs") | r3), unit: "MB/s" }
  },
  results: { a: $an, b: $bn, runs: $runs },
  plots: [ { file: "\($mode).png", title: "vmm and QEMU, MB/s per direction",
             script: "tools/bench/virtio.gp" } ],
  notes: [ (if $where == "native" then "Measured natively with KVM." else
    "Measured in an emulated KVM test host (QEMU TCG running KVM with nested SVM, one CPU): absolute rates are far below native; the ratios are the result." end) ]
}' "$TMP/runs.jsonl" >"$TMP/$MODE.json"
jq -r '"\(.results.a) \(.figures["vmm_\(.results.a)_mbs"].value) \(.figures["qemu_\(.results.a)_mbs"].value)",
	"\(.results.b) \(.figures["vmm_\(.results.b)_mbs"].value) \(.figures["qemu_\(.results.b)_mbs"].value)"' \
	"$TMP/$MODE.json" >"$TMP/$MODE.dat"
bench_emit "$OUT" "$TMP/$MODE.json" "$TMP/$MODE.dat"
[ "$INSIDE" = 1 ] || jq -r '.ratios | to_entries[] | "\(.key) = \(.value.value)"' "$OUT/$MODE.json"

#!/bin/bash
# bench-vmm: the VMM against QEMU, and the virtual cache against local RAM, in
# one run on one (test) host.
#
#   boot      process start -> the guest init's first line ("legato-guest:
#             init"), same kernel, initrd, command line, vCPUs and RAM, for
#             qemu-system-x86_64 -accel kvm -machine microvm, vmm --no-remote,
#             and vmm with cache = mem and cache = mem/8 (a private memory server
#             on loopback, --local). The order rotates each round; medians.
#   overhead  1 s after the init line, the RSS of every mapping of the VMM
#             process except guest RAM (Firecracker's measure), for QEMU and
#             vmm --no-remote, and for vmm with a cache (where it includes the
#             cache's page-buffer pool).
#   workload  memcheck over WORK (fill from two threads, re-read, checksum) with
#             cache = mem and cache = mem/8: time from "filling" to the result
#             line, its ratio, and the cache's figures from vmm's summary.
#
# Without a usable /dev/kvm it boots one emulated KVM host (one CPU: see
# docs/vmm.md) and runs itself there with --here; figures under emulation are
# slow in absolute terms, the ratios are what to read.
#
# usage: vmm.sh [--out DIR] [--build DIR] [--quick] [--here]
# Writes DIR/vmm.json and DIR/vmm-boot.dat (tools/bench/vmm.gp draws vmm.png).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
. "$HERE/inhost.sh"
bench_args vmm.sh "$@"
bench_need vmm.sh bench-vmm vmm memserver bench-vmm-run guest/bzImage guest/initramfs.cpio \
	guest/memcheck
BENCH_INSIDE=$INSIDE
if [ "$INSIDE" = 0 ] && ! bench_kvm_here; then
	q=; [ "$QUICK" = 1 ] && q=--quick
	bench_in_host vmm "$OUT" "$HERE/vmm.sh" --build "$BUILD" $q || exit 1
	jq -e .ratios "$OUT/vmm.json" >/dev/null || { echo "bench-vmm: no results" >&2; exit 1; }
	jq -r '.ratios | to_entries[] | "\(.key) = \(.value.value)"' "$OUT/vmm.json"
	exit 0
fi

if [ "$QUICK" = 1 ]; then
	ROUNDS=1 MEM=512M MEM_MIB=512 WORK=64M
else
	ROUNDS=3 MEM=1G MEM_MIB=1024 WORK=384M
fi
VCPUS=2
WHERE=native; [ "$INSIDE" = 1 ] && WHERE="emulated KVM test host (qemu TCG, nested SVM)"
CACHE8=$((MEM_MIB / 8))M
KERNEL=$BUILD/guest/bzImage INITRD=$BUILD/guest/initramfs.cpio
CMD_BASE="console=ttyS0 loglevel=4 transparent_hugepage=madvise"
TMP=$(mktemp -d /tmp/bench-vmm.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
RUNNER=$BUILD/bench-vmm-run

# run_vm KIND CMDLINE-WORKLOAD JSON-OUT [extra marks...]: one VM, timed.
run_vm() {
	local kind=$1 run=$2 out=$3; shift 3
	local cmdline="$CMD_BASE legato.run=$run" vm=()
	case $kind in
	qemu) vm=(qemu-system-x86_64 -accel kvm -cpu host -machine microvm -smp "$VCPUS" -m "$MEM"
		  -nodefaults -no-user-config -display none -no-reboot -serial stdio
		  -kernel "$KERNEL" -initrd "$INITRD" -append "$cmdline") ;;
	no-remote) vm=("$BUILD/vmm" run --no-remote) ;;
	cache-full) vm=("$BUILD/vmm" run --local --cache "$MEM") ;;
	cache-8th) vm=("$BUILD/vmm" run --local --cache "$CACHE8") ;;
	esac
	[ "$kind" = qemu ] || vm+=(--mem "$MEM" --vcpus "$VCPUS" --kernel "$KERNEL"
				  --initrd "$INITRD" --cmdline "$cmdline")
	"$RUNNER" --timeout 1800 --log "$TMP/$kind.log" --mark init="legato-guest: init" "$@" \
		-- "${vm[@]}" >"$out"
	if [ "$(jq .marks.init "$out")" = null ]; then
		echo "bench-vmm: $kind never reached init:" >&2
		tail -20 "$TMP/$kind.log" >&2
		exit 1
	fi
}

summary_field() {	# summary_field LOG REGEX: the number after REGEX in vmm's summary line
	sed -n "s/.*vmm: .* after .*$2 \\([0-9]*\\).*/\\1/p" "$1" | tail -1
}

KINDS="qemu no-remote cache-full cache-8th"
: >"$TMP/boot.jsonl"
for round in $(seq "$ROUNDS"); do
	# Rotate the order so no configuration always runs first (cold caches).
	set -- $KINDS
	for _ in $(seq $(((round - 1) % 4))); do set -- "$@" "$1"; shift; done
	for kind in "$@"; do
		run_vm "$kind" idle:3 "$TMP/r.json" --rss-at init --rss-delay-ms 1000 \
			--guest-size "$MEM" --kill-after init
		jq -c --arg k "$kind" --argjson r "$round" '{kind: $k, round: $r,
			init_s: .marks.init, rss_other_kib: .rss.other_kib,
			rss_total_kib: .rss.total_kib}' "$TMP/r.json" >>"$TMP/boot.jsonl"
		echo "bench-vmm: boot round $round $kind: $(jq -c . "$TMP/r.json")" >&2
	done
done

: >"$TMP/work.jsonl"
want=$("$BUILD/guest/memcheck" --expect "$WORK")
for round in $(seq "$ROUNDS"); do
	kinds="cache-full cache-8th"; [ $((round % 2)) = 0 ] && kinds="cache-8th cache-full"
	for kind in $kinds; do
		run_vm "$kind" "memcheck:$WORK" "$TMP/r.json" \
			--mark fill="legato-memcheck: filling" --mark done="legato-memcheck: size="
		grep -q "checksum=$want .*result=ok" "$TMP/$kind.log" ||
			{ tail -20 "$TMP/$kind.log" >&2; echo "bench-vmm: $kind: wrong checksum" >&2; exit 1; }
		jq -c --arg k "$kind" --argjson r "$round" \
			--argjson faults "$(summary_field "$TMP/$kind.log" 'faults')" \
			--argjson fetched "$(summary_field "$TMP/$kind.log" 'pages fetched')" \
			--argjson written "$(summary_field "$TMP/$kind.log" 'written back')" \
			--argjson peak "$(summary_field "$TMP/$kind.log" 'resident peak')" \
			'{kind: $k, round: $r, work_s: (.marks.done - .marks.fill), total_s: .exit_s,
			  faults: $faults, pages_fetched: $fetched, pages_written_back: $written,
			  resident_peak_pages: $peak}' "$TMP/r.json" >>"$TMP/work.jsonl"
		echo "bench-vmm: workload round $round $kind: $(tail -1 "$TMP/work.jsonl")" >&2
	done
done

# Medians per kind, ratios, JSON in the docs/bench convention.
jq -s --arg mem "$MEM" --arg cache8 "$CACHE8" --arg worksize "$WORK" --argjson rounds "$ROUNDS" \
	--argjson vcpus "$VCPUS" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	--arg kernel "$(uname -r)" --argjson cpus "$(nproc)" --arg where "$WHERE" \
	--slurpfile work "$TMP/work.jsonl" '
def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def med($rows; $k; $f): [$rows[] | select(.kind == $k) | .[$f]] | median;
def r3: . * 1000 | round / 1000;
. as $boot | $work as $w |
{ qemu: med($boot; "qemu"; "init_s"), "no-remote": med($boot; "no-remote"; "init_s"),
  "cache-full": med($boot; "cache-full"; "init_s"), "cache-8th": med($boot; "cache-8th"; "init_s") }
  as $b |
{
  benchmark: "vmm",
  title: "VMM: boot time against QEMU microvm, memory overhead, workload on the cache",
  description: ("Process start to the guest init line (same kernel, initrd, command line, " +
    "\($vcpus) vCPUs, \($mem) RAM) for qemu-system-x86_64 -accel kvm -machine microvm, vmm " +
    "--no-remote, and vmm with cache = mem and cache = mem/8 (\($cache8)); RSS outside guest " +
    "RAM 1 s after init; memcheck over \($worksize) with cache = mem and mem/8. Medians of " +
    "\($rounds) rounds, order rotated each round."),
  date: $date,
  machine: { cpus: $cpus, kernel: $kernel, host: $where },
  config: { mem: $mem, cache_8th: $cache8, workload: "memcheck:\($worksize)", vcpus: $vcpus,
            rounds: $rounds },
  ratios: {
    boot_no_remote_vs_qemu_ratio: { value: ($b["no-remote"] / $b.qemu | r3), goal: "<= 1.0",
      description: "vmm --no-remote / QEMU microvm, process start to init" },
    boot_cache_full_vs_qemu_ratio: { value: ($b["cache-full"] / $b.qemu | r3),
      description: "vmm, cache = mem (local memory server) / QEMU microvm" },
    boot_cache_8th_vs_qemu_ratio: { value: ($b["cache-8th"] / $b.qemu | r3),
      description: "vmm, cache = mem/8 / QEMU microvm" },
    workload_cache_8th_vs_full_ratio: {
      value: (med($w; "cache-8th"; "work_s") / med($w; "cache-full"; "work_s") | r3),
      description: "memcheck time, cache = mem/8 over cache = mem" }
  },
  figures: {
    vmm_overhead_rss_mib: { value: (med($boot; "no-remote"; "rss_other_kib") / 1024 | r3),
      goal: "< 5", unit: "MiB", description: "vmm --no-remote: RSS outside guest RAM, booted" },
    qemu_overhead_rss_mib: { value: (med($boot; "qemu"; "rss_other_kib") / 1024 | r3),
      unit: "MiB", description: "QEMU microvm: RSS outside guest RAM, booted" },
    vmm_cache_overhead_rss_mib: { value: (med($boot; "cache-8th"; "rss_other_kib") / 1024 | r3),
      unit: "MiB", description: "vmm with cache = mem/8: RSS outside guest RAM (includes the cache page-buffer pool)" }
  },
  results: {
    boot_init_s: $b,
    workload: ([$w[] | .kind] | unique | map(. as $k | { key: $k, value: {
      work_s: med($w; $k; "work_s"), total_s: med($w; $k; "total_s"),
      faults: med($w; $k; "faults"), pages_fetched: med($w; $k; "pages_fetched"),
      pages_written_back: med($w; $k; "pages_written_back"),
      resident_peak_pages: med($w; $k; "resident_peak_pages") } }) | from_entries),
    boot_runs: $boot, workload_runs: $w
  },
  notes: [
    (if $where == "native" then "Measured natively with KVM." else
     "Measured in an emulated KVM test host (QEMU TCG running KVM with nested SVM, one CPU): absolute times are tens of times native; the ratios are the result." end),
    "Booting to init touches well under mem/8 of a 1 GiB guest, so cache = mem/8 boots about as fast as cache = mem; the boot-under-eviction stress is tests/hosts/case-vmm-ept.sh (256 MiB RAM, 32 MiB cache).",
    "The workload ratio is the cost of misses: each one is a userfaultfd round and a round trip to the memory server on loopback (emulated here); bench-ept measures fault service time on its own.",
    "With a cache, RSS outside guest RAM adds the cache metadata (about 130 bytes per cache frame: frame table, page hash, buffer free list, policy links) and the page buffers in use."
  ],
  plots: [ { file: "vmm.png", title: "Process start to guest init (median)",
             script: "tools/bench/vmm.gp" } ]
}' "$TMP/boot.jsonl" >"$TMP/vmm.json"
jq -r '.results.boot_init_s | to_entries[] | "\(.key) \(.value)"' "$TMP/vmm.json" >"$TMP/vmm-boot.dat"

bench_emit "$OUT" "$TMP/vmm.json" "$TMP/vmm-boot.dat"
[ "$INSIDE" = 1 ] || jq -r '.ratios | to_entries[] | "\(.key) = \(.value.value)"' "$OUT/vmm.json"

#!/bin/bash
# bench-rdma: the memory server's 4 KiB page READ over rdma:// (one-sided RDMA
# READ, Soft-RoCE) against perftest on the same rxe devices, and against
# tcp://, between the same two test hosts in one run. h1 runs the memory
# server (--listen tcp:// and rdma://) and the perftest servers; h2 runs every
# client:
#
#   ib_read_lat           perftest, 4 KiB RDMA READ, one outstanding, busy-polling
#   ib_read_lat -e        the same, sleeping on CQ events
#   ib_read_bw            4 KiB RDMA READs, 32 outstanding (-t 32 -Q 1): pages/s
#   rdma busy / event     bench-rdma (tools/bench/bench_rdma.c): synchronous
#                         1-page ms_client_read, one outstanding, p50/p99, with
#                         ms_client_set_busy_poll(true) and by default; then
#                         32 outstanding 1-page READs (submit/poll): pages/s
#   tcp                   the same client over tcp://
#   verbs                 bench-rdma --verbs against bench-rdma --verbs-serve
#                         on h1: bare verbs doing the client's work step by step
#                         on the store's slot layout (one 4 KiB READ, the former
#                         layout's READ pair page + sum, one 4104-byte READ of
#                         the slot, + checksum and copy), busy and event, to say
#                         where the gap to ib_read_lat comes from
#
# Each round runs all of them, pairs side by side, the order reversed every
# other round so drifting load hits both sides of a ratio alike. Latency
# figures are medians over the rounds of each round's p50 (p99); pages/s the
# median over rounds. Headline ratios are the medians of the per-round ratios.
#
# usage: rdma.sh [--out DIR] [--build DIR] [--quick]
# (11 rounds: one round swings by +-30% here; BENCH_RDMA_ROUNDS=N for another number; --quick: one short round)
# Writes DIR/rdma.json and DIR/rdma-{latency,tput,verbs}.dat (tools/bench/
# rdma.gp draws rdma.png). Needs root (test hosts), perftest installed on this
# machine (the hosts run the outer machine's programs; `make deps`).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
. "$HERE/inhost.sh"
bench_args rdma.sh "$@"
[ "$INSIDE" = 0 ] || { echo "rdma.sh: --here is not supported (it boots its own hosts)" >&2; exit 1; }
bench_need rdma.sh bench-rdma bench-rdma memserver testhost-agent
for p in ib_read_lat ib_read_bw jq; do
	command -v $p >/dev/null || { echo "rdma.sh: $p missing (make deps installs perftest, jq)" >&2; exit 1; }
done

if [ "$QUICK" = 1 ]; then
	ROUNDS=1 LAT_N=200 WARM=20 TPUT_MS=500 BW_N=1000 VERBS_N=200 PERF_TIMEOUT=60
else
	ROUNDS=${BENCH_RDMA_ROUNDS:-11} LAT_N=2000 WARM=200 TPUT_MS=3000 BW_N=10000 VERBS_N=1000
	PERF_TIMEOUT=180
fi
DEPTH=32
MS_TCP=7100 MS_RDMA=7101 VERBS_PORT=7102 PERF_PORT=18515

TMP=$(mktemp -d /tmp/bench-rdma.XXXXXX)
BG=()
. "$TOP/tools/testhost/lib.sh"
export TESTHOST_AGENT=$BUILD/testhost-agent TESTHOST_BUILD=$BUILD
unset TESTHOST_RUN
cleanup() {
	local p
	for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; done
	th_down
	rm -rf "$TMP"
}
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
th_up h1 h2 || { rm -rf "$TMP"; echo "bench-rdma: the test hosts did not boot" >&2; exit 1; }
trap cleanup EXIT
IP1=$(th_ip h1)
for h in h1 h2; do
	th_run -n -t 20 "$h" -- rdma link show rxe0/1 | grep -q 'state ACTIVE' ||
		{ echo "bench-rdma: rxe0 is not ACTIVE on $h" >&2; exit 1; }
done

# bg_run HOST TIMEOUT CMD...: CMD on HOST in the background; $! is the agent
# client itself, so killing it makes the host's agent kill CMD's group.
bg_run() {
	local host=$1 t=$2 ip
	shift 2
	ip=$(th_ip "$host")
	(exec nsenter --net="/run/netns/$(th_netns)" -- "$TESTHOST_AGENT" run --addr "$ip" \
		--port "$TH_AGENT_PORT" --timeout "$t" --no-stdin -- "$@") &
}

# The servers on h1 live for the whole run.
bg_run h1 7200 "$BUILD/memserver" --listen "tcp://0.0.0.0:$MS_TCP" \
	--listen "rdma://$IP1:$MS_RDMA" --capacity 256M --log-level warn \
	--ready-file /tmp/ms.ready >"$TMP/memserver.log" 2>&1
BG+=($!)
bg_run h1 7200 "$BUILD/bench-rdma" --verbs-serve $VERBS_PORT >"$TMP/verbs-serve.log" 2>&1
BG+=($!)
for i in $(seq 120); do
	if [ "$(th_run -n -t 20 h1 -- cat /tmp/ms.ready 2>/dev/null | wc -l)" = 2 ] &&
	   grep -q listening "$TMP/verbs-serve.log"; then
		break
	fi
	[ "$i" = 120 ] && { cat "$TMP/memserver.log" "$TMP/verbs-serve.log" >&2;
			    echo "bench-rdma: servers on h1 did not start" >&2; exit 1; }
	sleep 0.5
done

# perftest TOOL ARGS...: one ib_read_* pair, server on h1 and client on h2,
# on a port of its own. The client starts once the server's rdma_cm id
# listens; a pair that fails or overruns PERF_TIMEOUT (perftest's client can
# crash or hang when Soft-RoCE stalls) is retried on a fresh port, twice.
# Prints the client's result line; PERF_TRIES counts the attempts.
PERF_SEQ=0 PERF_TRIES=0 PERF_MTU=
perftest() {
	local tool=$1 port spid try i line=""
	shift
	for try in 1 2 3; do
		PERF_SEQ=$((PERF_SEQ + 1)) PERF_TRIES=$((PERF_TRIES + 1))
		port=$((PERF_PORT + PERF_SEQ))
		bg_run h1 $((PERF_TIMEOUT + 30)) "$tool" -d rxe0 -R -F -p $port "$@" \
			>"$TMP/perf-srv.log" 2>&1
		spid=$!
		for i in $(seq 60); do
			th_run -n -t 20 h1 -- rdma res show cm_id 2>/dev/null |
				grep -q "state LISTEN .*:$port\b" && break
			sleep 0.5
		done
		th_run -n -t "$PERF_TIMEOUT" h2 -- "$tool" -d rxe0 -R -F -p $port "$@" "$IP1" \
			>"$TMP/perf-cli.log" 2>&1 || true
		line=$(awk '$1 == 4096 && NF >= 5' "$TMP/perf-cli.log" | tail -1)
		PERF_MTU=$(sed -n 's/.*Mtu *: *\([0-9]*\).*/\1/p' "$TMP/perf-cli.log" | head -1)
		for i in $(seq 20); do kill -0 $spid 2>/dev/null || break; sleep 0.5; done
		kill $spid 2>/dev/null || true
		wait $spid 2>/dev/null || true
		[ -n "$line" ] && break
		echo "bench-rdma: $tool $* (attempt $try) gave no result:" \
			"$(grep -v '^ *$' "$TMP/perf-cli.log" | tail -2 | tr '\n' ' ')" >&2
	done
	[ -n "$line" ] || { echo "bench-rdma: $tool $* failed three times" >&2; return 1; }
	PERF_LINE=$line
}

# run ITEM ROUND: one measurement, one JSON line into runs.jsonl.
run() {
	local item=$1 round=$2 line out ev=() url busy=()
	case $item in
	ib_read_lat|ib_read_lat_e)
		[ "$item" = ib_read_lat_e ] && ev=(-e)
		perftest ib_read_lat -s 4096 -n "$LAT_N" "${ev[@]}" || exit 1
		line=$PERF_LINE
		# bytes iters t_min t_max t_typical(median) t_avg t_stdev p99 p99.9
		out=$(awk -v k="$item" '{ printf "{\"kind\":\"%s\",\"latency\":{\"samples\":%d,\"p50_us\":%s,\"p99_us\":%s,\"mean_us\":%s,\"min_us\":%s,\"max_us\":%s}}", k, $2, $5, $8, $6, $3, $4 }' <<<"$line") ;;
	ib_read_bw)
		perftest ib_read_bw -s 4096 -n "$BW_N" -t $DEPTH -Q 1 || exit 1
		line=$PERF_LINE
		# bytes iters peak_MB/s avg_MB/s Mpps (MB = 2^20 bytes)
		out=$(awk '{ printf "{\"kind\":\"ib_read_bw\",\"throughput\":{\"depth\":%d,\"pages\":%d,\"pages_per_s\":%.1f,\"peak_pages_per_s\":%.1f}}", '$DEPTH', $2, $4 * 256, $3 * 256 }' <<<"$line") ;;
	rdma_busy|rdma_event|tcp)
		url="rdma://$IP1:$MS_RDMA"
		[ "$item" = tcp ] && url="tcp://$IP1:$MS_TCP"
		[ "$item" = rdma_busy ] && busy=(--busy)
		out=$(th_run -n -t 600 h2 -- "$BUILD/bench-rdma" --url "$url" "${busy[@]}" \
			--lat "$LAT_N" --warmup "$WARM" --tput "$TPUT_MS" --depth $DEPTH \
			2>"$TMP/client.err") ||
			{ echo "bench-rdma: $item failed (exit $?): $out $(cat "$TMP/client.err")" >&2; exit 1; }
		out=$(jq -c --arg k "$item" '{kind: $k} + .' <<<"$out") ;;
	verbs)
		out=$(th_run -n -t 600 h2 -- "$BUILD/bench-rdma" --verbs "$IP1:$VERBS_PORT" \
			--lat "$VERBS_N" --warmup "$WARM" 2>"$TMP/client.err") ||
			{ echo "bench-rdma: verbs failed (exit $?): $out $(cat "$TMP/client.err")" >&2; exit 1; }
		out=$(jq -c '{kind: "verbs"} + .' <<<"$out") ;;
	esac
	jq -c --argjson r "$round" '. + {round: $r}' <<<"$out" >>"$TMP/runs.jsonl"
	echo "bench-rdma: round $round $item: $(jq -c 'del(.kind, .round, .url)' <<<"$out" | cut -c1-240)" >&2
}

# The client's CPU work per page on h2, and the TSC check for perftest.
th_run -n -t 300 h2 -- "$BUILD/bench-rdma" --local >"$TMP/local.json" ||
	{ echo "bench-rdma: bench-rdma --local failed" >&2; exit 1; }

ITEMS=(ib_read_lat rdma_busy ib_read_lat_e rdma_event ib_read_bw tcp verbs)
: >"$TMP/runs.jsonl"
for round in $(seq "$ROUNDS"); do
	order=("${ITEMS[@]}")
	if [ $((round % 2)) = 0 ]; then
		order=(); for ((i = ${#ITEMS[@]} - 1; i >= 0; i--)); do order+=("${ITEMS[$i]}"); done
	fi
	for item in "${order[@]}"; do run "$item" "$round"; done
done
LOAD1=$(cut -d' ' -f1 /proc/loadavg)

# The report: medians over rounds, per-round ratios (jq program below).
read -r -d '' REPORT_JQ <<'JQ' || true
def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def r3: if . == null then null else . * 1000 | round / 1000 end;
def runs($k): [.[] | select(.kind == $k and (.busy_poll // "") != "unavailable")];
def med($k; f): [runs($k)[] | f] | median;
# per-round ratios of two figures (rr_all), and their median over the rounds
def rr_all($a; fa; $b; fb): . as $all | [range(1; $rounds + 1) as $r |
	([$all[] | select(.round == $r and .kind == $a and (.busy_poll // "") != "unavailable") | fa] | first) as $x |
	([$all[] | select(.round == $r and .kind == $b) | fb] | first) as $y |
	select($x != null and $y != null and $y > 0) | $x / $y | r3];
def rr($a; fa; $b; fb): rr_all($a; fa; $b; fb) | median | r3;
def lat($k): { p50_us: med($k; .latency.p50_us) | r3, p99_us: med($k; .latency.p99_us) | r3,
	mean_us: med($k; .latency.mean_us) | r3, min_us: med($k; .latency.min_us) | r3 };
def tput($k): { pages_per_s: med($k; .throughput.pages_per_s) | r3 };
def verbs($w; $v): med("verbs"; .verbs[$w][$v].p50_us) | r3;
def ratio($v; $goal; $what): if $v == null then null else
	{ value: $v, description: $what } + (if $goal then { goal: $goal } else {} end) end;
. as $runs |
(runs("rdma_busy") | length > 0) as $busy |
{
  benchmark: "rdma", date: $date,
  title: "Memory-server page READ over rdma:// (Soft-RoCE) against perftest and tcp://",
  description: ("4 KiB page READs from a memory server on test host h1 to a client on test host h2 (two emulated x86 hosts, qemu TCG, Soft-RoCE rxe0 on a virtio NIC, one bridge): the client library over rdma:// (one one-sided RDMA READ of the page and its checksum, stored adjacent) and tcp://, against perftest's ib_read_lat (busy-polling), ib_read_lat -e (CQ events) and ib_read_bw on the same rxe devices and hosts. Latency: one outstanding READ, \($lat_n) per side per round, medians over \($rounds) rounds of each round's p50 (p99). pages/s: \($depth) outstanding 1-page READs for \($tput_ms) ms (ib_read_bw: \($bw_n) READs, -t \($depth) -Q 1). Rounds run every side back to back, the order reversed every other round; ratios are medians of the per-round ratios."),
  machine: { cpus: $cpus, cpu_model: $cpu, kernel: $kernel,
             host: "two emulated test hosts (qemu TCG, 2 vCPUs, 1536 MiB each, kernel \($hkernel)) on this machine",
             rdma: "Soft-RoCE (rdma_rxe) on virtio-net, path MTU \($mtu) (perftest's report)",
             loadavg_start: $load0, loadavg_end: $load1 },
  config: { rounds: $rounds, latency_reads: $lat_n, tput_ms: $tput_ms, depth: $depth,
            ib_read_bw_iters: $bw_n, verbs_reads: $verbs_n, page: 4096, region_pages: 256,
            perftest: $perftest, perftest_pairs_started: $perf_tries, source: $source,
            perftest_args: "-d rxe0 -R -F -s 4096; ib_read_lat -n \($lat_n) [-e]; ib_read_bw -n \($bw_n) -t \($depth) -Q 1 (a completion per READ, so \($depth) stay in flight as in the client)" },
  ratios: (
    (if $busy then ratio(rr("rdma_busy"; .latency.p50_us; "ib_read_lat"; .latency.p50_us); "<= 1.2";
       "rdma:// busy-poll p50 / ib_read_lat p50 (both busy-polling), one outstanding 4 KiB READ")
       | { rdma_busy_p50_vs_ib_read_lat_ratio: . } else {} end) +
    { rdma_event_p50_vs_ib_read_lat_e_ratio: ratio(rr("rdma_event"; .latency.p50_us; "ib_read_lat_e"; .latency.p50_us); "<= 1.2";
       "rdma:// default (event) p50 / ib_read_lat -e p50, one outstanding 4 KiB READ") } +
    (if $busy then { rdma_busy_p99_vs_ib_read_lat_ratio: ratio(rr("rdma_busy"; .latency.p99_us; "ib_read_lat"; .latency.p99_us); null;
       "the same at p99") } else {} end) +
    { rdma_event_p99_vs_ib_read_lat_e_ratio: ratio(rr("rdma_event"; .latency.p99_us; "ib_read_lat_e"; .latency.p99_us); null;
       "the same at p99"),
      rdma_pps_vs_ib_read_bw_ratio: ratio(rr("rdma_event"; .throughput.pages_per_s; "ib_read_bw"; .throughput.pages_per_s); null;
       "rdma:// pages/s / ib_read_bw pages/s, \($depth) outstanding 4 KiB READs"),
      rdma_vs_tcp_p50_ratio: ratio(rr("rdma_event"; .latency.p50_us; "tcp"; .latency.p50_us); null;
       "rdma:// (event) p50 / tcp:// p50, same client, same hosts (lower: rdma faster)"),
      rdma_vs_tcp_pps_ratio: ratio(rr("rdma_event"; .throughput.pages_per_s; "tcp"; .throughput.pages_per_s); null;
       "rdma:// pages/s / tcp:// pages/s (higher: rdma faster)") }
  ) | with_entries(select(.value != null)),
  figures: ({
    ib_read_lat_p50_us: { value: med("ib_read_lat"; .latency.p50_us) | r3, unit: "us" },
    ib_read_lat_e_p50_us: { value: med("ib_read_lat_e"; .latency.p50_us) | r3, unit: "us" },
    rdma_event_p50_us: { value: med("rdma_event"; .latency.p50_us) | r3, unit: "us" },
    tcp_p50_us: { value: med("tcp"; .latency.p50_us) | r3, unit: "us" },
    ib_read_bw_pages_per_s: { value: med("ib_read_bw"; .throughput.pages_per_s) | r3, unit: "pages/s" },
    rdma_pages_per_s: { value: med("rdma_event"; .throughput.pages_per_s) | r3, unit: "pages/s" },
    tcp_pages_per_s: { value: med("tcp"; .throughput.pages_per_s) | r3, unit: "pages/s" } } +
    (if $busy then { rdma_busy_p50_us: { value: med("rdma_busy"; .latency.p50_us) | r3, unit: "us" },
                     rdma_busy_pages_per_s: { value: med("rdma_busy"; .throughput.pages_per_s) | r3, unit: "pages/s" } }
     else {} end)),
  results: {
    ib_read_lat: { latency: lat("ib_read_lat") },
    ib_read_lat_e: { latency: lat("ib_read_lat_e") },
    ib_read_bw: { throughput: (tput("ib_read_bw") + { peak_pages_per_s: med("ib_read_bw"; .throughput.peak_pages_per_s) | r3 }) },
    rdma_busy: (if $busy then { latency: lat("rdma_busy"), throughput: tput("rdma_busy") }
                else { busy_poll: "unavailable", error: ([$runs[] | select(.kind == "rdma_busy") | .error] | first) } end),
    rdma_event: { latency: lat("rdma_event"), throughput: tput("rdma_event") },
    tcp: { latency: lat("tcp"), throughput: tput("tcp") },
    gap: ({
      description: "Where the rdma:// client loses to ib_read_lat, p50 in us (medians over rounds). verbs: bare verbs on h2 against bench-rdma --verbs-serve on h1 (P slots of 4104 bytes, page then its 8-byte sum, as the memory server stores them), one outstanding READ: read1 = one 4 KiB READ of the page (ib_read_lat's work), read2 = the former layout's READ pair (page, then a separate 8-byte READ of its sum; one chain, last signalled: what the client did per page before the slot layout), slot = one 4104-byte READ of the slot into a contiguous page + sum (the client's one READ per page now), slot_sum = slot + XXH3 check + 4 KiB copy out (the client's whole per-page work). busy = polling the CQ, event = arm, post, ibv_get_cq_event as ib_read_lat -e. cpu: the client's per-page CPU work on h2 (bench-rdma --local).",
      verbs_busy: { read1: verbs("busy"; "read1"), read2: verbs("busy"; "read2"),
                    slot: verbs("busy"; "slot"), slot_sum: verbs("busy"; "slot_sum") },
      verbs_event: { read1: verbs("event"; "read1"), read2: verbs("event"; "read2"),
                     slot: verbs("event"; "slot"), slot_sum: verbs("event"; "slot_sum") },
      second_read_busy_ratio: rr("verbs"; .verbs.busy.read2.p50_us; "verbs"; .verbs.busy.read1.p50_us),
      second_read_event_ratio: rr("verbs"; .verbs.event.read2.p50_us; "verbs"; .verbs.event.read1.p50_us),
      slot_busy_ratio: rr("verbs"; .verbs.busy.slot.p50_us; "verbs"; .verbs.busy.read1.p50_us),
      slot_event_ratio: rr("verbs"; .verbs.event.slot.p50_us; "verbs"; .verbs.event.read1.p50_us),
      cpu: { xxh3_4k_p50_us: $local[0].xxh3_4k.p50_us, memcpy_4k_p50_us: $local[0].memcpy_4k.p50_us,
             clock_read_p50_us: $local[0].clock_read.p50_us, clocksource: $local[0].clocksource,
             note: "each figure includes one clock read" },
      verbs_max_rd_atomic: ([$runs[] | select(.kind == "verbs") | .verbs.max_rd_atomic] | first),
      verbs_read1_vs_ib_read_lat_ratio: rr("verbs"; .verbs.busy.read1.p50_us; "ib_read_lat"; .latency.p50_us),
      rdma_event_vs_verbs_slot_sum_event_ratio: rr("rdma_event"; .latency.p50_us; "verbs"; .verbs.event.slot_sum.p50_us)
    } + (if $busy then { rdma_busy_vs_verbs_slot_sum_busy_ratio: rr("rdma_busy"; .latency.p50_us; "verbs"; .verbs.busy.slot_sum.p50_us) } else {} end)),
    per_round_ratios: ({
      description: "each round's ratio, in round order: how far a single round moves on this machine",
      rdma_event_p50_vs_ib_read_lat_e: rr_all("rdma_event"; .latency.p50_us; "ib_read_lat_e"; .latency.p50_us),
      rdma_pps_vs_ib_read_bw: rr_all("rdma_event"; .throughput.pages_per_s; "ib_read_bw"; .throughput.pages_per_s),
      verbs_read2_vs_read1_busy: rr_all("verbs"; .verbs.busy.read2.p50_us; "verbs"; .verbs.busy.read1.p50_us),
      verbs_read2_vs_read1_event: rr_all("verbs"; .verbs.event.read2.p50_us; "verbs"; .verbs.event.read1.p50_us),
      verbs_slot_vs_read1_busy: rr_all("verbs"; .verbs.busy.slot.p50_us; "verbs"; .verbs.busy.read1.p50_us) } +
      (if $busy then { rdma_busy_p50_vs_ib_read_lat: rr_all("rdma_busy"; .latency.p50_us; "ib_read_lat"; .latency.p50_us) }
       else {} end)),
    tsc: { measured_mhz: $local[0].tsc_mhz_measured, cpuinfo_mhz: $local[0].cpuinfo_mhz,
           note: "perftest converts TSC cycles with the cpu MHz of /proc/cpuinfo; both measured on h2" },
    runs: $runs
  },
  notes: ([
    "Soft-RoCE under TCG emulation: both hosts are qemu TCG guests on this (shared, 2-CPU) machine, rxe is software RDMA in their kernels and every packet crosses two emulated virtio NICs and a bridge. Absolute figures are orders of magnitude off real RNICs (microseconds there, hundreds of microseconds here) and swing with the machine's load (1-min load \($load0) at the start, \($load1) at the end); only ratios within this run mean anything, and even they say how the client compares with perftest on this software path, not on hardware.",
    "Busy-polling inside a TCG guest keeps one of the outer machine's CPUs spinning, which the other host's vCPUs then lack: on this machine busy-polling can be slower than sleeping, for perftest as for the client."
  ] + (if $busy then [] else
    ["rdma:// busy-polling was unavailable in this build (ms_client_set_busy_poll: \([$runs[] | select(.kind == "rdma_busy") | .error] | first)): no busy-poll figures or rdma_busy_p50_vs_ib_read_lat_ratio; ib_read_lat (busy) is still measured for reference."] end)),
  plots: [ { file: "rdma.png", title: "Latency (p50, p99), pages/s and the client's work with bare verbs, same run",
             script: "tools/bench/rdma.gp" } ]
}
JQ
jq -s --slurpfile local "$TMP/local.json" --argjson rounds "$ROUNDS" --argjson lat_n "$LAT_N" \
	--argjson tput_ms "$TPUT_MS" --argjson bw_n "$BW_N" --argjson depth $DEPTH \
	--argjson verbs_n "$VERBS_N" --argjson perf_tries "$PERF_TRIES" --argjson load0 "$LOAD0" --argjson load1 "$LOAD1" \
	--arg cpu "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)" \
	--argjson cpus "$(nproc)" --arg kernel "$(uname -r)" \
	--arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	--arg source "$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
		git -C "$TOP" diff --quiet HEAD -- memserver 2>/dev/null || echo ' + uncommitted memserver/ changes')" \
	--arg hkernel "$(th_run -n -t 20 h2 -- uname -r)" \
	--arg perftest "$(dpkg-query -W -f='${Version}' perftest 2>/dev/null || echo unknown)" \
	--arg mtu "${PERF_MTU:-unknown}" "$REPORT_JQ" "$TMP/runs.jsonl" >"$TMP/rdma.json"

# Data files for rdma.gp: label p50 p99 / label pages_per_s / variant busy event.
jq -r '.results as $r | [
	["ib_read_lat", $r.ib_read_lat.latency], ["rdma_busy", $r.rdma_busy.latency],
	["ib_read_lat_-e", $r.ib_read_lat_e.latency], ["rdma_event", $r.rdma_event.latency],
	["tcp", $r.tcp.latency]][] |
	"\(.[0]) \(.[1].p50_us // "NaN") \(.[1].p99_us // "NaN")"' "$TMP/rdma.json" >"$TMP/rdma-latency.dat"
jq -r '.results as $r | [
	["ib_read_bw", $r.ib_read_bw.throughput], ["rdma_busy", $r.rdma_busy.throughput],
	["rdma_event", $r.rdma_event.throughput], ["tcp", $r.tcp.throughput]][] |
	"\(.[0]) \(.[1].pages_per_s // "NaN")"' "$TMP/rdma.json" >"$TMP/rdma-tput.dat"
jq -r '.results.gap as $g | ["read1", "slot", "slot_sum", "read2"][] as $v |
	"\($v) \($g.verbs_busy[$v] // "NaN") \($g.verbs_event[$v] // "NaN")"' "$TMP/rdma.json" \
	>"$TMP/rdma-verbs.dat"
cp "$TMP/rdma.json" "$TMP/rdma-latency.dat" "$TMP/rdma-tput.dat" "$TMP/rdma-verbs.dat" "$OUT/"
jq -r '.ratios | to_entries[] | "\(.key) = \(.value.value)"' "$OUT/rdma.json"

# shellcheck shell=sh disable=SC2034
# Shared helpers of the ept-*.sh benchmark drivers (sourced, POSIX sh).
#
# Every driver takes --out DIR (where NAME.json and its data files go),
# --build DIR (where the programs are) and --quick (a tiny run for
# check-ept-bench-smoke whose figures mean nothing). The drivers need jq.

ept_parse_args() {
	EPT_OUT=docs/bench EPT_BUILD=build EPT_QUICK=0
	while [ $# -gt 0 ]; do
		case $1 in
		--out) EPT_OUT=$2; shift 2 ;;
		--build) EPT_BUILD=$2; shift 2 ;;
		--quick) EPT_QUICK=1; shift ;;
		*) echo "usage: $0 [--out DIR] [--build DIR] [--quick]" >&2; exit 2 ;;
		esac
	done
	command -v jq >/dev/null || { echo "$0: jq is needed (make deps)" >&2; exit 1; }
	mkdir -p "$EPT_OUT"
	EPT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ept-bench.XXXXXX")
	EPT_MS_PID=
	trap 'ept_cleanup' EXIT
	trap 'exit 1' INT TERM HUP
}

ept_cleanup() {
	if [ -n "$EPT_MS_PID" ]; then
		kill "$EPT_MS_PID" 2>/dev/null || :
		wait "$EPT_MS_PID" 2>/dev/null || :
	fi
	rm -rf "$EPT_TMP"
}

# Starts one memory server on a free loopback port; sets EPT_MS_URL.
ept_start_memserver() {
	"$EPT_BUILD/memserver" --listen tcp://127.0.0.1:0 --capacity "$1" \
		--ready-file "$EPT_TMP/ms.url" --log-level warn 2>"$EPT_TMP/memserver.log" &
	EPT_MS_PID=$!
	_ms_i=0
	while [ ! -s "$EPT_TMP/ms.url" ]; do
		_ms_i=$((_ms_i + 1))
		if [ $_ms_i -gt 200 ] || ! kill -0 "$EPT_MS_PID" 2>/dev/null; then
			cat "$EPT_TMP/memserver.log" >&2
			echo "$0: the memory server did not start" >&2
			exit 1
		fi
		sleep 0.05
	done
	EPT_MS_URL=$(cat "$EPT_TMP/ms.url")
}

# The machine, as benchutil.c's bench_machine_json describes it.
ept_machine_json() {
	model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
	memk=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo)
	load=$(cut -d' ' -f1 /proc/loadavg)
	jq -n --argjson cpus "$(nproc)" --arg model "${model:-unknown}" --arg kernel "$(uname -r)" \
		--arg arch "$(uname -m)" --argjson mem "$(( ${memk:-0} / 1024 ))" --argjson load "$load" \
		'{cpus: $cpus, cpu_model: $model, kernel: $kernel, arch: $arch, mem_total_mib: $mem,
		  loadavg_1min: $load}'
}

ept_date() {
	date -u +%Y-%m-%dT%H:%M:%SZ
}

# Runs memload with the given arguments, --json; appends its report to
# $EPT_TMP/runs.jsonl tagged with the JSON object $1. Exits on failure.
ept_memload() {
	_ml_tag=$1
	shift
	if ! "$EPT_BUILD/memload" "$@" --json >"$EPT_TMP/run.json" 2>"$EPT_TMP/run.err"; then
		cat "$EPT_TMP/run.err" >&2
		echo "$0: memload $* failed" >&2
		exit 1
	fi
	jq -c --argjson tag "$_ml_tag" '$tag + {elapsed: .elapsed_seconds, setup: .setup_seconds,
		ops: .ops, graph: .graph, ept: .ept}' "$EPT_TMP/run.json" >>"$EPT_TMP/runs.jsonl"
}

# jq definitions shared by the summaries.
EPT_JQ_DEFS='
def median: sort | if length == 0 then null
	elif length % 2 == 1 then .[(length - 1) / 2]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def r3: if . == null then null else (. * 1000 | round) / 1000 end;
def r4: if . == null then null else (. * 10000 | round) / 10000 + 0 end;
def r6: if . == null then null else (. * 1000000 | round) / 1000000 end;
'

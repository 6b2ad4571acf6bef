#!/bin/bash
# Command-line tests of memserver and msctl: every bad invocation prints
# exactly one line on stderr and exits non-zero without crashing (exit code
# below 128) or hanging (each run is bounded by `timeout 10`); then an msctl
# happy path against a real daemon.
#
# usage: tests/integration/cli.sh [BUILD_DIR]   (default: build)
# The binaries may also be named with LEGATO_MEMSERVER and LEGATO_MSCTL.
set -u

BUILD=${1:-build}
MEMSERVER=${LEGATO_MEMSERVER:-$BUILD/memserver}
MSCTL=${LEGATO_MSCTL:-$BUILD/msctl}
T=$(mktemp -d "${TMPDIR:-/tmp}/legato-cli-XXXXXX")
checks=0
failures=0
pids=()

cleanup() {
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	failures=$((failures + 1))
	echo "FAIL: $*"
}

# expect_error DESCRIPTION CMD...: non-zero exit below 124, one stderr line.
expect_error() {
	local what=$1 rc lines
	shift
	checks=$((checks + 1))
	timeout 10 "$@" </dev/null >"$T/out" 2>"$T/err"
	rc=$?
	lines=$(wc -l <"$T/err")
	if [ "$rc" -eq 0 ]; then
		fail "$what: exit status 0"
	elif [ "$rc" -eq 124 ]; then
		fail "$what: still running after 10 s"
	elif [ "$rc" -ge 124 ]; then
		fail "$what: exit status $rc (crash or signal)"
	elif [ "$lines" -ne 1 ] || [ -n "$(tail -c1 "$T/err")" ]; then
		fail "$what: $lines lines on stderr:"
		sed 's/^/    | /' "$T/err"
	else
		echo "ok - $what: $(cat "$T/err")"
	fi
}

# expect_ok DESCRIPTION CMD...: exit 0 (stdout left in $T/out).
expect_ok() {
	local what=$1 rc
	shift
	checks=$((checks + 1))
	timeout 10 "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$what: exit status $rc"
		sed 's/^/    | /' "$T/err"
		return 1
	fi
	echo "ok - $what"
}

# check DESCRIPTION TEST...: a plain assertion.
check() {
	local what=$1
	shift
	checks=$((checks + 1))
	if "$@"; then
		echo "ok - $what"
	else
		fail "$what"
	fi
}

# start_daemon NAME ARGS...: starts memserver on a free port; sets URL and PID.
start_daemon() {
	local name=$1 i
	shift
	rm -f "$T/$name.ready"
	"$MEMSERVER" --listen tcp://127.0.0.1:0 --ready-file "$T/$name.ready" \
		--log-level warn "$@" 2>"$T/$name.log" &
	PID=$!
	pids+=("$PID")
	for i in $(seq 1 2000); do
		[ -s "$T/$name.ready" ] && break
		if ! kill -0 "$PID" 2>/dev/null; then
			echo "memserver $name died at start-up:"
			cat "$T/$name.log"
			exit 1
		fi
		sleep 0.01
	done
	URL=$(head -n1 "$T/$name.ready")
	case $URL in
	tcp://127.0.0.1:[1-9]*) ;;
	*) echo "memserver $name not ready: '$URL'"; cat "$T/$name.log"; exit 1 ;;
	esac
}

# stop_daemon PID: SIGTERM and a clean exit.
stop_daemon() {
	local pid=$1 rc i
	kill -TERM "$pid"
	for i in $(seq 1 2000); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	if kill -0 "$pid" 2>/dev/null; then
		fail "memserver (pid $pid) still running 20 s after SIGTERM"
		kill -KILL "$pid"
	fi
	wait "$pid"
	rc=$?
	check "memserver (pid $pid) exits 0 on SIGTERM (got $rc)" [ "$rc" -eq 0 ]
}

printf '0123456789abcdef0123456789abcdef\n' >"$T/key"
printf 'short\n' >"$T/short.key"
printf 'fedcba9876543210fedcba9876543210\n' >"$T/other.key"

# ---- memserver: bad invocations ----------------------------------------
L=tcp://127.0.0.1:0
expect_error "memserver without --listen" "$MEMSERVER" --capacity 1G
expect_error "memserver without --capacity" "$MEMSERVER" --listen "$L"
expect_error "memserver --capacity 12Q" "$MEMSERVER" --listen "$L" --capacity 12Q
expect_error "memserver --capacity overflow" "$MEMSERVER" --listen "$L" --capacity 99999999T
expect_error "memserver URL without scheme" "$MEMSERVER" --listen 127.0.0.1:7000 --capacity 1G
expect_error "memserver URL udp://" "$MEMSERVER" --listen udp://127.0.0.1:7000 --capacity 1G
expect_error "memserver URL port 65536" "$MEMSERVER" --listen tcp://127.0.0.1:65536 --capacity 1G
expect_error "memserver URL without port" "$MEMSERVER" --listen tcp://127.0.0.1 --capacity 1G
expect_error "memserver rdma:// in a tcp build" "$MEMSERVER" --listen rdma://127.0.0.1:0 --capacity 1G
expect_error "memserver unknown address" "$MEMSERVER" --listen tcp://192.0.2.123:0 --capacity 1G
expect_error "memserver unknown option" "$MEMSERVER" --bogus
expect_error "memserver unknown short option" "$MEMSERVER" -Z
expect_error "memserver option without argument" "$MEMSERVER" --capacity 1G --listen
expect_error "memserver stray argument" "$MEMSERVER" --listen "$L" --capacity 1G extra
expect_error "memserver --threads 0" "$MEMSERVER" --listen "$L" --capacity 1G --threads 0
expect_error "memserver --log-level loud" "$MEMSERVER" --listen "$L" --capacity 1G --log-level loud
expect_error "memserver missing key file" "$MEMSERVER" --listen "$L" --capacity 1G \
	--auth-key-file "$T/absent.key"
expect_error "memserver key file is a directory" "$MEMSERVER" --listen "$L" --capacity 1G \
	--auth-key-file "$T"
expect_error "memserver key file too short" "$MEMSERVER" --listen "$L" --capacity 1G \
	--auth-key-file "$T/short.key"
expect_error "memserver ready file in a missing directory" "$MEMSERVER" --listen "$L" \
	--capacity 1G --ready-file "$T/no/such/dir/ready"

start_daemon main --capacity 256M
MAIN_URL=$URL
MAIN_PID=$PID
expect_error "memserver on a port already in use" "$MEMSERVER" --listen "$MAIN_URL" --capacity 1G
check "the first daemon survives" kill -0 "$MAIN_PID"

# ---- msctl: bad invocations --------------------------------------------
expect_error "msctl without --server" "$MSCTL" stat
expect_error "msctl without a command" "$MSCTL" -s "$MAIN_URL"
expect_error "msctl unknown option" "$MSCTL" -s "$MAIN_URL" --bogus stat
expect_error "msctl bad URL" "$MSCTL" -s 127.0.0.1:7000 stat
expect_error "msctl port nobody listens on" "$MSCTL" -s tcp://127.0.0.1:1 stat
expect_error "msctl unknown host" "$MSCTL" -s tcp://no-such-host.invalid:7000 stat
expect_error "msctl unknown command" "$MSCTL" -s "$MAIN_URL" frobnicate
expect_error "msctl create without size" "$MSCTL" -s "$MAIN_URL" create 1
expect_error "msctl create bad size" "$MSCTL" -s "$MAIN_URL" create 1 12Q
expect_error "msctl create unaligned size" "$MSCTL" -s "$MAIN_URL" create 1 4097
expect_error "msctl create bad id" "$MSCTL" -s "$MAIN_URL" create one 1M
expect_error "msctl read without token" "$MSCTL" -s "$MAIN_URL" read 1 0 1
expect_error "msctl malformed token" "$MSCTL" -s "$MAIN_URL" -t zz read 1 0 1
expect_error "msctl --timeout 0" "$MSCTL" -s "$MAIN_URL" --timeout 0 stat
expect_error "msctl missing key file" "$MSCTL" -s "$MAIN_URL" -k "$T/absent.key" stat
expect_error "msctl key file too short" "$MSCTL" -s "$MAIN_URL" -k "$T/short.key" stat
expect_error "msctl read from a missing region" "$MSCTL" -s "$MAIN_URL" \
	-t "$(printf '%064d' 0)" read 999 0 1

# ---- msctl: happy path -------------------------------------------------
if expect_ok "msctl create" "$MSCTL" -s "$MAIN_URL" create 5 64M; then
	TOKEN=$(cat "$T/out")
	check "token is 64 hex digits" grep -Eqx '[0-9a-f]{64}' "$T/out"
	BAD=$(printf '%s' "$TOKEN" | tr '0-9a-f' '1-9a-f0')
	expect_error "msctl create existing region" "$MSCTL" -s "$MAIN_URL" create 5 64M
	expect_error "msctl wrong token" "$MSCTL" -s "$MAIN_URL" -t "$BAD" read 5 0 1
	expect_error "msctl delete with wrong token" "$MSCTL" -s "$MAIN_URL" -t "$BAD" delete 5
	expect_error "msctl read beyond the region" "$MSCTL" -s "$MAIN_URL" -t "$TOKEN" \
		read 5 16383 2

	# Three and a half pages: the tail is padded with zeros.
	head -c $((4096 * 3 + 2048)) /dev/urandom >"$T/data"
	expect_ok "msctl write" "$MSCTL" -s "$MAIN_URL" -t "$TOKEN" write 5 10 <"$T/data"
	expect_ok "msctl read" "$MSCTL" -s "$MAIN_URL" -t "$TOKEN" read 5 10 4
	cp "$T/out" "$T/back"
	{ cat "$T/data"; head -c 2048 /dev/zero; } >"$T/padded"
	check "read returns what was written, zero-padded" cmp -s "$T/back" "$T/padded"
	expect_ok "msctl read never-written pages" "$MSCTL" -s "$MAIN_URL" -t "$TOKEN" read 5 100 2
	check "never-written pages read as zeros" cmp -s "$T/out" <(head -c 8192 /dev/zero)
	expect_ok "msctl ping" "$MSCTL" -s "$MAIN_URL" ping

	if expect_ok "msctl stat --json" "$MSCTL" -s "$MAIN_URL" --json stat; then
		check "stat --json is JSON with the expected figures" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["capacity"] == 256 << 20, s["capacity"]
assert s["regions"] == 1, s["regions"]
assert s["reserved"] == 64 << 20, s["reserved"]
assert s["resident"] == 4 * 4096, s["resident"]
assert s["ops"]["write"]["count"] >= 1 and s["ops"]["read"]["count"] >= 2
assert s["ops"]["region_create"]["errors"] >= 1
' "$T/out"
	fi
	expect_ok "msctl stat (text)" "$MSCTL" -s "$MAIN_URL" stat
	check "stat text shows the region" grep -Eq '^regions +1$' "$T/out"
	expect_ok "msctl delete" "$MSCTL" -s "$MAIN_URL" -t "$TOKEN" delete 5
	expect_error "msctl delete again" "$MSCTL" -s "$MAIN_URL" -t "$TOKEN" delete 5
	expect_ok "msctl stat --json after delete" "$MSCTL" -s "$MAIN_URL" -j stat
	check "no regions left" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["regions"] == 0 and s["reserved"] == 0 and s["resident"] == 0, s
' "$T/out"
fi
stop_daemon "$MAIN_PID"

# ---- a keyed daemon ----------------------------------------------------
start_daemon keyed --capacity 64M --auth-key-file "$T/key"
KEYED_PID=$PID
expect_error "msctl without the key a server requires" "$MSCTL" -s "$URL" stat
expect_error "msctl with the wrong key" "$MSCTL" -s "$URL" -k "$T/other.key" stat
expect_ok "msctl with the right key" "$MSCTL" -s "$URL" -k "$T/key" ping
stop_daemon "$KEYED_PID"

if [ "$failures" -eq 0 ]; then
	echo "100%: Checks: $checks, Failures: 0, Errors: 0"
	exit 0
fi
echo "$(( (checks - failures) * 100 / checks ))%: Checks: $checks, Failures: $failures, Errors: 0"
exit 1

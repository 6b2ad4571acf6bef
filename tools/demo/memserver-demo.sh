#!/bin/bash
# make demo-memserver: the memory server on its own, driven with msctl.
# Starts a memory server with a cluster key on a free loopback port, creates a
# region, writes pages into it, reads them back, verifies them end to end, shows
# the server's figures and stops it with SIGTERM.
set -euo pipefail

BUILD=${BUILD:-build}
MEMSERVER=$BUILD/memserver
MSCTL=$BUILD/msctl
work=$(mktemp -d /tmp/legato-demo.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/key"
step "start a memory server (256 MiB, HMAC-authenticated, free loopback port)"
"$MEMSERVER" --listen tcp://127.0.0.1:0 --capacity 256M --auth-key-file "$work/key" \
	--ready-file "$work/ready" 2>"$work/memserver.log" &
pid=$!
for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.05; done
[ -s "$work/ready" ] || { cat "$work/memserver.log"; echo "demo: memserver did not start" >&2; exit 1; }
url=$(cat "$work/ready")
echo "memserver $url (pid $pid)"
ms() { "$MSCTL" -s "$url" --key-file "$work/key" "$@"; }

step "without the key the server refuses us"
if "$MSCTL" -s "$url" stat 2>&1; then echo "demo: unauthenticated access worked" >&2; exit 1; fi

step "create region 1 (64 MiB): capacity is reserved, no RAM is used yet"
token=$(ms create 1 64M)
echo "token $token"
ms stat | head -4

step "write 4 MiB of random data at page 100, read it back, compare"
head -c $((4 << 20)) /dev/urandom >"$work/in"
ms --token "$token" write 1 100 <"$work/in"
ms --token "$token" read 1 100 1024 >"$work/out"
cmp "$work/in" "$work/out" && echo "4 MiB round trip: identical (checksummed end to end)"

step "a never-written page reads as zeros and costs the server nothing"
ms --token "$token" read 1 5000 1 | cmp - <(head -c 4096 /dev/zero) && echo "page 5000: zeros"

step "server figures"
ms stat

step "delete the region and stop the server (SIGTERM)"
ms --token "$token" delete 1
kill "$pid"
wait "$pid" && echo "memserver stopped cleanly"
pid=

#!/bin/bash
# The KVM test-host tier: boots the hosts once (h1, h2), runs every
# tests/hosts/case-*.sh (or the cases named on the command line) against them,
# and tears everything down on exit, interrupted or not. A failing case gets
# its output and the last 40 console lines of every host printed, so a red CI
# log is enough to diagnose it.
#
# Environment: TESTHOST_BUILD (build dir with the programs, default build/),
# TESTHOST_CASE_TIMEOUT (seconds per case, default 240), TESTHOST_LOGS (copy
# console logs there at the end), and everything tools/testhost/lib.sh reads.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
. "$TOP/tools/testhost/lib.sh"
export TESTHOST_BUILD=${TESTHOST_BUILD:-$TOP/build}
export TESTHOST_AGENT
: "${TESTHOST_CASE_TIMEOUT:=240}"

if [ $# -gt 0 ]; then
	cases=()
	for c in "$@"; do cases+=("$HERE/case-${c#case-}"); cases[-1]=${cases[-1]%.sh}.sh; done
else
	cases=("$HERE"/case-*.sh)
fi

t_start=$(th_now)
echo "hosts: booting h1 h2"
if ! th_up h1 h2; then
	echo "hosts: FAIL: the test hosts did not boot (see above)"
	exit 1
fi
t_booted=$(th_elapsed "$t_start")

case_pgid=
on_signal() {
	[ -n "$case_pgid" ] && kill -TERM -- "-$case_pgid" 2>/dev/null
	echo "hosts: interrupted"
	exit "$1"	# the EXIT trap set by th_up tears the hosts down
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

pass=0; fail=0; failed=()
out=$(mktemp)
for c in "${cases[@]}"; do
	name=$(basename "$c" .sh); name=${name#case-}
	if [ ! -f "$c" ]; then
		echo "hosts: FAIL $name: no such case ($c)"
		fail=$((fail + 1)); failed+=("$name")
		continue
	fi
	t0=$(th_now)
	# Own process group, waited for in the background: a signal to this
	# runner takes the whole case (agent clients included) down at once.
	setsid timeout -k 10 "$TESTHOST_CASE_TIMEOUT" bash "$c" >"$out" 2>&1 &
	case_pgid=$!
	wait "$case_pgid"
	rc=$?
	case_pgid=
	dt=$(th_elapsed "$t0")
	if [ $rc -eq 0 ]; then
		echo "hosts: PASS $name (${dt} s)"
		sed 's/^/    /' "$out"
		pass=$((pass + 1))
	else
		[ $rc -eq 124 ] && [ "${dt%.*}" -ge "$TESTHOST_CASE_TIMEOUT" ] &&
			echo "hosts: case $name timed out after $TESTHOST_CASE_TIMEOUT s"
		echo "hosts: FAIL $name (exit $rc, ${dt} s)"
		sed 's/^/    /' "$out"
		th_consoles 40
		fail=$((fail + 1)); failed+=("$name")
	fi
	for h in $(th_hosts); do
		if ! th_qemu_alive "$h"; then
			echo "hosts: test host $h died during case $name; stopping"
			th_consoles 40
			fail=$((fail + 1)); failed+=("(host $h died)")
			break 2
		fi
	done
done
rm -f "$out"

[ -n "${TESTHOST_LOGS:-}" ] && th_logs "$TESTHOST_LOGS"
for h in $(th_hosts); do
	echo "hosts: boot time $h: $(cat "$TESTHOST_RUN/$h/boot_seconds" 2>/dev/null || echo '?') s"
done
echo "hosts: $pass passed, $fail failed; boot ${t_booted} s, total $(th_elapsed "$t_start") s"
[ $fail -eq 0 ] || { echo "hosts: failed: ${failed[*]}"; exit 1; }

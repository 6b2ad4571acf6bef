# Sourced by the VM benchmarks (vmm.sh, virtio.sh): run where KVM is, which on
# a machine without hardware virtualization means inside one emulated KVM test
# host (one CPU: docs/vmm.md says why).
#
#   bench_kvm_here                 true when /dev/kvm is usable on this machine
#   bench_in_host NAME OUT SCRIPT ARGS...
#                                  boots test host "bench", runs
#                                  `bash SCRIPT ARGS... --here --out /tmp/bench`
#                                  there and writes the files it prints between
#                                  "== file NAME" and "== end" lines into OUT
#                                  (the host sees this tree read-only); the rest
#                                  of its output passes through. Returns its
#                                  status.
#   bench_emit OUT FILE...         in the host (OUT = /tmp/bench): print FILEs
#                                  in that framing; elsewhere: copy them to OUT
# Needs TOP and BUILD set.

bench_kvm_here() {
	[ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo
}

bench_in_host() {
	local name=$1 out=$2 script=$3 raw rc
	shift 3
	. "$TOP/tools/testhost/lib.sh"
	export TESTHOST_AGENT=${TESTHOST_AGENT:-$BUILD/testhost-agent}
	echo "bench-$name: no usable /dev/kvm: running in an emulated KVM host (one CPU)"
	TESTHOST_SMP=1 th_up bench >/dev/null || { echo "bench-$name: test host did not boot" >&2; return 1; }
	raw=$(mktemp)
	th_run -n -t 3600 bench -- bash "$script" "$@" --here --out /tmp/bench >"$raw"
	rc=$?
	awk -v dir="$out" '
		/^== file / { f = dir "/" $3; printf "" > f; next }
		/^== end$/ { if (f) close(f); f = ""; next }
		f { print > f; next }
		{ print }' "$raw"
	rm -f "$raw"
	return $rc
}

bench_emit() {
	local out=$1 f
	shift
	for f in "$@"; do
		if [ "$out" = /tmp/bench ] && [ "${BENCH_INSIDE:-0}" = 1 ]; then
			echo "== file ${f##*/}"; cat "$f"; echo "== end"
		else
			cp "$f" "$out/"
		fi
	done
}

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
#   bench_args NAME ARGS...        parses the options every VM bench takes
#                                  (--out DIR --build DIR --quick --here) into
#                                  OUT BUILD QUICK INSIDE (made absolute; OUT
#                                  created); NAME is for the error message
#   bench_need NAME TARGET FILE... fails unless each FILE is under $BUILD
# Needs TOP set (and BUILD, after bench_args).

bench_args() {
	local name=$1
	shift
	OUT=$TOP/docs/bench BUILD=$TOP/build QUICK=0 INSIDE=0
	while [ $# -gt 0 ]; do
		case $1 in
		--out) OUT=$2; shift 2 ;;
		--build) BUILD=$2; shift 2 ;;
		--quick) QUICK=1; shift ;;
		--here) INSIDE=1; shift ;;
		*) echo "$name: unknown option $1 (--out DIR --build DIR --quick --here)" >&2; exit 1 ;;
		esac
	done
	[ -d "$BUILD" ] || { echo "$name: --build $BUILD: no such directory" >&2; exit 1; }
	mkdir -p "$OUT" || exit 1
	OUT=$(cd "$OUT" && pwd) BUILD=$(cd "$BUILD" && pwd)
}

bench_need() {
	local name=$1 target=$2 f
	shift 2
	for f in "$@"; do
		[ -f "$BUILD/$f" ] || { echo "$name: $BUILD/$f missing (make $target)" >&2; exit 1; }
	done
}

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

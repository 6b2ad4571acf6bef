#!/bin/bash
# Case: a test host's /dev/kvm runs a guest. kvm_smoke (tests/hosts/kvm_smoke.c)
# runs four real-mode instructions and checks the I/O exit (0x42 to port 0x10)
# and the HLT exit.
set -u
. "$(dirname "$0")/../../tools/testhost/lib.sh"
: "${TESTHOST_BUILD:=$TH_TOP/build}"
# On p1, the VMM cases' host: under TCG with one CPU, as nested SVM in a
# two-CPU emulated host can wedge it (once here: kvm_smoke's vCPU soft-locked
# h1 for minutes and took every later case on h1 down with it; docs/vmm.md).
if th_accel_args | grep -q tcg; then
	TESTHOST_SMP=1 th_need_hosts p1 || exit 1
else
	th_need_hosts p1 || exit 1
fi

th_run -n -t 60 p1 -- "$TESTHOST_BUILD/tests/hosts/kvm_smoke"

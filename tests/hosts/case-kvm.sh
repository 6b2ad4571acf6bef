#!/bin/bash
# Case: a test host's /dev/kvm runs a guest. kvm_smoke (tests/hosts/kvm_smoke.c)
# runs four real-mode instructions and checks the I/O exit (0x42 to port 0x10)
# and the HLT exit.
set -u
. "$(dirname "$0")/../../tools/testhost/lib.sh"
: "${TESTHOST_BUILD:=$TH_TOP/build}"
th_need_hosts h1 || exit 1

th_run -n -t 60 h1 -- "$TESTHOST_BUILD/tests/hosts/kvm_smoke"

#!/bin/bash
# Case: networking inside the test hosts. h1 reaches h2 over the run's bridge,
# and a host can make its own bridge and TAP device (what the VMM's
# virtio-net backend needs).
set -u
. "$(dirname "$0")/../../tools/testhost/lib.sh"
th_need_hosts h1 h2 || exit 1

bb=/run/testhost/bin/busybox
th_run -n -t 30 h1 -- $bb ping -c 2 -W 5 "$(th_ip h2)" || {
	echo "case-net: h1 cannot ping h2 ($(th_ip h2))"; exit 1; }
th_sh -n -t 30 h1 '
	set -e
	ip tuntap add dev legtap0 mode tap
	ip link add legbr0 type bridge
	ip link set legtap0 master legbr0
	ip link set legbr0 up
	ip link set legtap0 up
	ip -br link show legtap0
	ip link del legtap0
	ip link del legbr0
' || { echo "case-net: cannot create a TAP device and bridge inside h1"; exit 1; }

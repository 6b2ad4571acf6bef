#!/bin/bash
# Case: RDMA between two test hosts over Soft-RoCE (rxe0 on eth0). rdmaping
# (tools/rdmaping) serves a registered buffer on h1; on h2 it RDMA WRITEs a
# pattern into it, RDMA READs it back and compares, 100 times; the server then
# checks its buffer holds the last pattern.
set -u
. "$(dirname "$0")/../../tools/testhost/lib.sh"
: "${TESTHOST_BUILD:=$TH_TOP/build}"
th_need_hosts h1 h2 || exit 1

rdmaping=$TESTHOST_BUILD/rdmaping
slog=$TESTHOST_RUN/rdmaping-server.log	# goes away with the run

for h in h1 h2; do
	th_run -n -t 20 "$h" -- rdma link show rxe0/1 | grep -q 'state ACTIVE' || {
		echo "case-rdma: rxe0 is not ACTIVE on $h:"
		th_run -n -t 20 "$h" -- rdma link
		exit 1
	}
done

th_run -n -t 90 h1 -- "$rdmaping" -s -t 60 >"$slog" 2>&1 &
spid=$!
th_run -n -t 90 h2 -- "$rdmaping" -c "$(th_ip h1)" -w 30 -t 30 -i 100 -b 65536
crc=$?
wait "$spid"
src=$?
sed 's/^/server: /' "$slog"
[ $crc -eq 0 ] || { echo "case-rdma: client failed (exit $crc)"; exit 1; }
[ $src -eq 0 ] || { echo "case-rdma: server failed (exit $src)"; exit 1; }

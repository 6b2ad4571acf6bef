#!/bin/bash
# Case: the virtual cache over rdma:// across two test hosts (Soft-RoCE).
# memload (tools/memload) on h2 spreads a region over two memory servers, one
# on h1 (across the bridge) and one on h2 itself, both reached over rdma://:
# 4 threads, 50% writes, a region 8x its cache, every read verified, then a
# flush and a page-by-page comparison of both servers with memload's shadow.
# Page I/O is one-sided RDMA READ/WRITE; the servers' STAT must show none of
# it reached them as READ/WRITE requests.
set -u
. "$(dirname "$0")/../../tools/testhost/lib.sh"
: "${TESTHOST_BUILD:=$TH_TOP/build}"
th_need_hosts h1 h2 || exit 1

ml=$TESTHOST_BUILD/memload
msctl=$TESTHOST_BUILD/msctl
log=$TESTHOST_RUN/case-ept-rdma
mkdir -p "$log"
ip1=$(th_ip h1) ip2=$(th_ip h2)
u1=rdma://$ip1:7200 u2=rdma://$ip2:7200

trap 'th_memserver_stop h1 h2' EXIT
th_memserver h1 "$u1" --capacity 1G || { echo "case-ept-rdma: FAIL memserver on h1"; exit 1; }
th_memserver h2 "$u2" --capacity 1G || { echo "case-ept-rdma: FAIL memserver on h2"; exit 1; }

if th_run -n -t 220 h2 -- "$ml" --memserver "$u1" --memserver "$u2" --mem 16M --cache 2M \
	--threads 4 --write-ratio 0.5 --verify --ops 20000 --timeout 200 >"$log/memload.out" 2>&1; then
	echo "case-ept-rdma: ok memload over $u1 and $u2: $(grep -o 'mismatches[^,]*' "$log/memload.out" | head -3 | tr '\n' ' ')"
else
	echo "case-ept-rdma: FAIL memload over rdma://:"
	tail -20 "$log/memload.out"
	exit 1
fi
# One-sided: the servers saw control requests only.
for u in "$u1" "$u2"; do
	th_run -n -t 20 h2 -- "$msctl" -s "$u" -j stat >"$log/stat" 2>&1 ||
		{ cat "$log/stat"; echo "case-ept-rdma: FAIL msctl stat $u"; exit 1; }
	n=$(jq -r '[.ops.read.count, .ops.write.count] | add' "$log/stat" 2>/dev/null)
	[ "$n" = 0 ] || { cat "$log/stat"; echo "case-ept-rdma: FAIL $u served $n READ/WRITE requests itself"; exit 1; }
done
echo "case-ept-rdma: ok (no page request reached either server's CPU)"

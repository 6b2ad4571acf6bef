#!/bin/bash
# Case: a guest boots with --memserver rdma://... and its memory workload is
# right: case-vmm-ept (memory server on h2, the VMM on p1, 256 MiB of RAM on
# a 32 MiB cache, memcheck over 64 MiB from two threads, the API on the way)
# with the pages served over rdma:// by Soft-RoCE, one-sided; the server's
# STAT must show no READ/WRITE request. About 80 s under TCG. The VMM gets
# 180 s, so that a guest which stops making progress is still alive when
# case-vmm-ept records its diagnostics (engine stats, rxe counters, logs),
# well inside the tier's per-case limit.
VMM_EPT_SCHEME=rdma CASE=case-vmm-rdma VMM_EPT_TIMEOUT=${VMM_EPT_TIMEOUT:-180} \
	exec bash "$(dirname "$0")/case-vmm-ept.sh"

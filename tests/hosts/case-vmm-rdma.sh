#!/bin/bash
# Case: a guest boots with --memserver rdma://... and its memory workload is
# right: case-vmm-ept (memory server on h2, the VMM on p1, 256 MiB of RAM on
# a 32 MiB cache, memcheck over 64 MiB from two threads, the API on the way)
# with the pages served over rdma:// by Soft-RoCE, one-sided.
VMM_EPT_SCHEME=rdma CASE=case-vmm-rdma exec bash "$(dirname "$0")/case-vmm-ept.sh"

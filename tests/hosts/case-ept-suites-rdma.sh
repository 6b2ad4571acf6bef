#!/bin/bash
# Case: the virtual cache's integration suites (tests/integration/test_ept_*:
# integrity, write-back, failure, life cycle) over rdma:// inside h2, through
# case-ms-rdma (which says how).
RDMA_SUITES="test_ept_integrity test_ept_writeback test_ept_failure test_ept_lifecycle" \
	RDMA_HOST=h2 CASE=case-ept-suites-rdma exec bash "$(dirname "$0")/case-ms-rdma.sh"

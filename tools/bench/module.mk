# tools/bench/: benchmark drivers and the report generator behind docs/bench/.
#
#   make bench              run every target in BENCH_TARGETS, one at a time, then
#                           regenerate docs/bench/README.md (plots included)
#   make bench-memserver    memory server vs raw loopback TCP -> docs/bench/memserver.json
#   make bench-report       redraw plots and README from the JSON already there
#   make check-bench-smoke  tiny run into $(BUILD)/bench-smoke: builds, runs, reports;
#                           never judges a timing
#
# A fragment adds a benchmark with `BENCH_TARGETS += bench-NAME` and a phony
# bench-NAME rule that writes docs/bench/NAME.json (see tools/bench/README.md).
# Such a rule should not run the report when BENCH_NO_REPORT is set: `make bench`
# runs it once at the end.

BENCH_DIR ?= docs/bench
BENCH_REPORT_BIN := $(BUILD)/bench-report
BENCH_MEMSERVER_BIN := $(BUILD)/bench-memserver
BENCH_SMOKE_DIR := $(BUILD)/bench-smoke
PROGS += $(BENCH_REPORT_BIN) $(BENCH_MEMSERVER_BIN)
BENCH_TARGETS += bench-memserver

$(BENCH_REPORT_BIN): $(OBJ)/tools/bench/report.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -ljansson -lm

$(BENCH_MEMSERVER_BIN): $(OBJ)/tools/bench/bench_memserver.o \
		$(OBJ)/tools/bench/bench_memserver_run.o $(OBJ)/tools/bench/bench_memserver_rss.o \
		$(OBJ)/tools/bench/benchutil.o $(OBJ)/tools/bench/rawtcp.o $(LIBMEMSERVER) \
		$(LIBMSCLIENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(COMMON_LDLIBS) -ljansson -lm

.PHONY: bench bench-report bench-memserver check-bench-smoke

# Benchmarks must never overlap (they would measure each other), even under
# make -j: each runs in its own sub-make, in order. Prerequisites are built
# first, in parallel.
bench: $(BENCH_REPORT_BIN) all
	@set -e; for t in $(BENCH_TARGETS); do \
		echo "== $$t"; $(MAKE) --no-print-directory $$t BENCH_NO_REPORT=1; done
	$(BENCH_REPORT_BIN) --dir $(BENCH_DIR)

bench-report: $(BENCH_REPORT_BIN)
	$(BENCH_REPORT_BIN) --dir $(BENCH_DIR)

bench-memserver: $(BENCH_MEMSERVER_BIN) $(MEMSERVER_BIN) $(BENCH_REPORT_BIN)
	$(BENCH_MEMSERVER_BIN) --out $(BENCH_DIR) --memserver $(MEMSERVER_BIN)
	$(if $(BENCH_NO_REPORT),,$(BENCH_REPORT_BIN) --dir $(BENCH_DIR))

check-bench-smoke: $(BENCH_MEMSERVER_BIN) $(MEMSERVER_BIN) $(BENCH_REPORT_BIN)
	sh tools/bench/smoke.sh $(BENCH_SMOKE_DIR) $(BENCH_MEMSERVER_BIN) $(MEMSERVER_BIN) \
		$(BENCH_REPORT_BIN)

# bench-ept: fault service time of the virtual cache (tools/bench/bench_ept.c).
BENCH_EPT_BIN := $(BUILD)/bench-ept
PROGS += $(BENCH_EPT_BIN)
BENCH_TARGETS += bench-ept

$(BENCH_EPT_BIN): $(OBJ)/tools/bench/bench_ept.o $(OBJ)/tools/bench/benchutil.o $(LIBEPT) \
		$(LIBMEMSERVER) $(LIBMSCLIENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(EPT_LDLIBS) -lm

.PHONY: bench-ept
bench-ept: $(BENCH_EPT_BIN) $(BENCH_REPORT_BIN)
	$(BENCH_EPT_BIN) -o $(BENCH_DIR)
	$(if $(BENCH_NO_REPORT),,$(BENCH_REPORT_BIN) --dir $(BENCH_DIR))

# bench-ept-workload, bench-ept-policy, bench-ept-prefetch: the virtual cache
# measured as a whole (tools/bench/ept-*.sh; tools/bench/README-style JSON in
# docs/bench/ept-NAME.json): workload time against all-local memory, miss
# ratio of the engine's policies against exact LRU and OPT, and prefetch on a
# sequential scan. check-ept-bench-smoke runs each script --quick into
# $(BUILD)/bench-smoke-ept and checks only that the outputs exist and parse.
BENCH_EPT_TRACEGEN_BIN := $(BUILD)/bench-ept-tracegen
BENCH_EPT_SMOKE_DIR := $(BUILD)/bench-smoke-ept
PROGS += $(BENCH_EPT_TRACEGEN_BIN)
BENCH_TARGETS += bench-ept-workload bench-ept-policy bench-ept-prefetch
DEPS_PKGS += valgrind jq

$(BENCH_EPT_TRACEGEN_BIN): $(OBJ)/tools/bench/ept_tracegen.o $(OBJ)/tools/memload/workload.o \
		$(OBJ)/tools/memload/rand.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lm

.PHONY: bench-ept-workload bench-ept-policy bench-ept-prefetch check-ept-bench-smoke

bench-ept-workload: $(MEMLOAD_BIN) $(MEMSERVER_BIN) $(BENCH_REPORT_BIN)
	sh tools/bench/ept-workload.sh --out $(BENCH_DIR) --build $(BUILD)
	$(if $(BENCH_NO_REPORT),,$(BENCH_REPORT_BIN) --dir $(BENCH_DIR))

bench-ept-policy: $(CACHESIM_BIN) $(LACKEY2TRACE_BIN) $(BENCH_EPT_TRACEGEN_BIN) $(BENCH_REPORT_BIN)
	sh tools/bench/ept-policy.sh --out $(BENCH_DIR) --build $(BUILD)
	$(if $(BENCH_NO_REPORT),,$(BENCH_REPORT_BIN) --dir $(BENCH_DIR))

bench-ept-prefetch: $(MEMLOAD_BIN) $(MEMSERVER_BIN) $(BENCH_EPT_TRACEGEN_BIN) $(BENCH_REPORT_BIN)
	sh tools/bench/ept-prefetch.sh --out $(BENCH_DIR) --build $(BUILD)
	$(if $(BENCH_NO_REPORT),,$(BENCH_REPORT_BIN) --dir $(BENCH_DIR))

check-ept-bench-smoke: $(MEMLOAD_BIN) $(MEMSERVER_BIN) $(CACHESIM_BIN) $(LACKEY2TRACE_BIN) \
		$(BENCH_EPT_TRACEGEN_BIN) $(BENCH_REPORT_BIN)
	sh tools/bench/ept-smoke.sh $(BENCH_EPT_SMOKE_DIR) $(BUILD)

# bench-vmm: the VMM's boot time against QEMU microvm, its memory overhead, and
# a guest workload with the cache = mem and mem/8 (tools/bench/vmm.sh; inside
# an emulated KVM host when this machine has no hardware virtualization).
BENCH_VMM_RUN_BIN := $(BUILD)/bench-vmm-run
PROGS += $(BENCH_VMM_RUN_BIN)
BENCH_TARGETS += bench-vmm

$(BENCH_VMM_RUN_BIN): $(OBJ)/tools/bench/vmm_run.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(COMMON_LDLIBS) -ljansson

.PHONY: bench-vmm
bench-vmm: $(BENCH_VMM_RUN_BIN) $(VMM_BIN) $(MEMSERVER_BIN) $(BUILD)/testhost-agent guest \
		$(BENCH_REPORT_BIN)
	bash tools/bench/vmm.sh --out $(BENCH_DIR) --build $(BUILD)
	$(if $(BENCH_NO_REPORT),,$(BENCH_REPORT_BIN) --dir $(BENCH_DIR))

# A quick bench-vmm (one round, 512 MiB guest) into $(BUILD)/bench-smoke-vmm:
# the drivers, QEMU microvm and vmm boot, the JSON has its headline keys. It
# judges no timing.
VMM_SMOKE_JQ := .ratios.boot_no_remote_vs_qemu_ratio.value > 0 and \
	.figures.vmm_overhead_rss_mib.value > 0 and .results.workload["cache-8th"].faults > 0
.PHONY: check-vmm-bench-smoke
check-vmm-bench-smoke: $(BENCH_VMM_RUN_BIN) $(VMM_BIN) $(MEMSERVER_BIN) $(BUILD)/testhost-agent \
		guest
	bash tools/bench/vmm.sh --quick --out $(BUILD)/bench-smoke-vmm --build $(BUILD)
	jq -e '$(VMM_SMOKE_JQ)' $(BUILD)/bench-smoke-vmm/vmm.json >/dev/null

# bench-blk, bench-net: the virtio devices against QEMU's in the same (test)
# host and run (tools/bench/virtio.sh) -> docs/bench/blk.json, net.json.
BENCH_TARGETS += bench-blk bench-net
.PHONY: bench-blk bench-net
bench-blk bench-net: bench-%: $(VMM_BIN) $(MEMSERVER_BIN) $(BUILD)/testhost-agent guest \
		$(BENCH_REPORT_BIN)
	bash tools/bench/virtio.sh $* --out $(BENCH_DIR) --build $(BUILD)
	$(if $(BENCH_NO_REPORT),,$(BENCH_REPORT_BIN) --dir $(BENCH_DIR))

# Quick bench-blk and bench-net (one round, small transfers) into
# $(BUILD)/bench-smoke-virtio: both VMMs boot, move data, the JSON has its
# ratios. Judges no timing.
.PHONY: check-virtio-bench-smoke
check-virtio-bench-smoke: $(VMM_BIN) $(MEMSERVER_BIN) $(BUILD)/testhost-agent guest
	bash tools/bench/virtio.sh blk --quick --out $(BUILD)/bench-smoke-virtio --build $(BUILD)
	bash tools/bench/virtio.sh net --quick --out $(BUILD)/bench-smoke-virtio --build $(BUILD)
	jq -e '.ratios.blk_read_vs_qemu_ratio.value > 0' $(BUILD)/bench-smoke-virtio/blk.json >/dev/null
	jq -e '.ratios.net_guest_to_host_vs_qemu_ratio.value > 0' \
		$(BUILD)/bench-smoke-virtio/net.json >/dev/null

# bench-rdma: 4 KiB READ latency and pages/s of the memory server over rdma://
# and tcp:// between two test hosts (Soft-RoCE), against perftest's
# ib_read_lat (busy-polling), ib_read_lat -e (events) and ib_read_bw on the
# same rxe devices, in one run (tools/bench/rdma.sh -> docs/bench/rdma.json).
# bench-rdma is the client program it runs on the second host.
BENCH_RDMA_BIN := $(BUILD)/bench-rdma
PROGS += $(BENCH_RDMA_BIN)
BENCH_TARGETS += bench-rdma
DEPS_PKGS += perftest

$(BENCH_RDMA_BIN): $(OBJ)/tools/bench/bench_rdma.o $(OBJ)/tools/bench/benchutil.o \
		$(LIBMSCLIENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(COMMON_LDLIBS) -ljansson -lm

.PHONY: bench-rdma check-rdma-bench-smoke
bench-rdma: $(BENCH_RDMA_BIN) $(MEMSERVER_BIN) $(BUILD)/testhost-agent $(BENCH_REPORT_BIN) | deps
	bash tools/bench/rdma.sh --out $(BENCH_DIR) --build $(BUILD)
	$(if $(BENCH_NO_REPORT),,$(BENCH_REPORT_BIN) --dir $(BENCH_DIR))

# A quick bench-rdma (one short round, about a minute) into
# $(BUILD)/bench-smoke-rdma: the hosts boot, every side runs and the JSON has
# its ratios. Judges no timing. Part of `make check` (not SAN=1: test hosts).
RDMA_SMOKE_JQ := .ratios.rdma_event_p50_vs_ib_read_lat_e_ratio.value > 0 and \
	.ratios.rdma_pps_vs_ib_read_bw_ratio.value > 0 and .results.tcp.latency.p50_us > 0
check-rdma-bench-smoke: $(BENCH_RDMA_BIN) $(MEMSERVER_BIN) $(BUILD)/testhost-agent | deps
	bash tools/bench/rdma.sh --quick --out $(BUILD)/bench-smoke-rdma --build $(BUILD)
	jq -e '$(RDMA_SMOKE_JQ)' $(BUILD)/bench-smoke-rdma/rdma.json >/dev/null
ifneq ($(SAN),1)
check: check-rdma-bench-smoke
endif

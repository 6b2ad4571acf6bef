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

$(BENCH_MEMSERVER_BIN): $(OBJ)/tools/bench/bench_memserver.o $(OBJ)/tools/bench/benchutil.o $(LIBMEMSERVER) $(LIBMSCLIENT) \
		$(LIBCOMMON)
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

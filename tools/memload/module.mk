# tools/memload, tools/cachesim, tools/lackey2trace: the virtual cache's load
# generator and correctness harness, the offline replacement-policy simulator,
# and the valgrind-lackey trace converter (README.md in each directory).
#
#   make check-tools           self-checks: cachesim and lackey2trace on tiny
#                              inputs with known answers, memload --local
#   make check-memload-remote  memload --verify against a real memory server
#                              (needs userfaultfd: root, or
#                              vm.unprivileged_userfaultfd=1)

MEMLOAD_BIN := $(BUILD)/memload
CACHESIM_BIN := $(BUILD)/cachesim
LACKEY2TRACE_BIN := $(BUILD)/lackey2trace
PROGS += $(MEMLOAD_BIN) $(CACHESIM_BIN) $(LACKEY2TRACE_BIN)

MEMLOAD_OBJS := $(OBJ)/tools/memload/memload.o $(OBJ)/tools/memload/options.o \
	$(OBJ)/tools/memload/report.o $(OBJ)/tools/memload/workload.o $(OBJ)/tools/memload/rand.o

$(MEMLOAD_BIN): $(MEMLOAD_OBJS) $(LIBEPT) $(LIBMSCLIENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(EPT_LDLIBS) -lm

# The simulator links the engine's policy code itself (libept.a), nothing else
# of the engine.
$(CACHESIM_BIN): $(OBJ)/tools/cachesim/cachesim.o $(LIBEPT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(EPT_LDLIBS)

$(LACKEY2TRACE_BIN): $(OBJ)/tools/lackey2trace/lackey2trace.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

.PHONY: check-tools check-memload-remote

check-tools: $(MEMLOAD_BIN) $(CACHESIM_BIN) $(LACKEY2TRACE_BIN)
	sh tools/memload/check.sh $(BUILD)

check-memload-remote: $(MEMLOAD_BIN) $(MEMSERVER_BIN)
	sh tools/memload/check-remote.sh $(BUILD) $(MEMSERVER_BIN)

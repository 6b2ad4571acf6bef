# tests/: the native test tiers (docs/testing.md).
#
#   make check-unit         Check suites linked directly against the libraries
#   make check-integration  Check suites against the real memserver daemon over
#                           loopback TCP, plus tests/integration/cli.sh
#
# Every suite runs in Check's fork mode with explicit per-case timeouts; a
# target fails when any suite fails, after running all of them. With SAN=1
# (objects in build-san/) sanitizer reports abort the offending process and
# leaks are fatal, in the test programs and in the daemons they start.

TESTS_UNIT_DIR := $(BUILD)/tests/unit
TESTS_INTEGRATION_DIR := $(BUILD)/tests/integration

TESTS_UNIT_NAMES := common proto store session
TESTS_INTEGRATION_NAMES := ms_ops ms_auth ms_robust ms_protect

TESTS_UNIT_BINS := $(TESTS_UNIT_NAMES:%=$(TESTS_UNIT_DIR)/test_%)
TESTS_INTEGRATION_BINS := $(TESTS_INTEGRATION_NAMES:%=$(TESTS_INTEGRATION_DIR)/test_%)
UNIT_TESTS += $(TESTS_UNIT_BINS)
INTEGRATION_TESTS += $(TESTS_INTEGRATION_BINS)

$(OBJ)/tests/unit/%.o $(OBJ)/tests/integration/%.o: CFLAGS += $(CHECK_CFLAGS)
# Integration suites find the daemon here unless LEGATO_MEMSERVER says otherwise.
$(OBJ)/tests/integration/harness.o: CFLAGS += \
	-DLEGATO_TEST_MEMSERVER='"$(abspath $(MEMSERVER_BIN))"'

TESTS_LDLIBS := $(COMMON_LDLIBS) $(CHECK_LIBS)

# Static pattern rules: the objects are explicit, so make keeps them.
$(TESTS_UNIT_DIR)/test_common: $(OBJ)/tests/unit/test_common.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TESTS_LDLIBS)

$(filter-out %/test_common,$(TESTS_UNIT_BINS)): $(TESTS_UNIT_DIR)/test_%: \
		$(OBJ)/tests/unit/test_%.o $(LIBMEMSERVER) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TESTS_LDLIBS)

$(TESTS_INTEGRATION_BINS): $(TESTS_INTEGRATION_DIR)/test_%: \
		$(OBJ)/tests/integration/test_%.o $(OBJ)/tests/integration/harness.o \
		$(LIBMSCLIENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TESTS_LDLIBS)

# The client library's framing as rdma:// uses it, and rdma:// connect
# failures (no RDMA device needed).
TESTS_CLIENT_UNIT_BINS := $(TESTS_UNIT_DIR)/test_client_rdma
UNIT_TESTS += $(TESTS_CLIENT_UNIT_BINS)

$(TESTS_CLIENT_UNIT_BINS): $(TESTS_UNIT_DIR)/test_%: $(OBJ)/tests/unit/test_%.o \
		$(LIBMSCLIENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TESTS_LDLIBS)

# Sanitizer reports are fatal and leaks count; Check's timeouts stretch to
# match the slower instrumented code.
ifeq ($(SAN),1)
TESTS_ENV := ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	CK_TIMEOUT_MULTIPLIER=3
else
TESTS_ENV :=
endif
TESTS_ENV += LEGATO_MEMSERVER=$(abspath $(MEMSERVER_BIN)) LEGATO_MSCTL=$(abspath $(MSCTL_BIN))

# A backstop over each program's own Check timeouts, in seconds.
TESTS_TIMEOUT ?= 900

# Runs every program in $(1); fails at the end if any failed.
define tests_run
	@failed=""; for t in $(1); do \
		echo "== $$t"; \
		case $$t in *.sh) run="bash $$t $(BUILD)";; *) run=$$t;; esac; \
		env $(TESTS_ENV) timeout -k 10 $(TESTS_TIMEOUT) $$run || \
			failed="$$failed $$(basename $$t)"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi
endef

# The tiers run every program in UNIT_TESTS / INTEGRATION_TESTS, including
# those that fragments included after this one append: the prerequisite lists
# are expanded a second time, once every fragment has been read.
.SECONDEXPANSION:
.PHONY: check-unit check-integration
check-unit: $$(UNIT_TESTS)
	$(call tests_run,$(UNIT_TESTS))

check-integration: $$(INTEGRATION_TESTS) $(MEMSERVER_BIN) $(MSCTL_BIN)
	$(call tests_run,$(INTEGRATION_TESTS) tests/integration/cli.sh)

# The host tier runs the integration suites too (over rdma://, inside the
# test hosts): `make check-hosts` alone must not run stale builds of them.
check-hosts: $$(INTEGRATION_TESTS)

# ---- ept (the virtual cache) ------------------------------------------------
# Unit suites of the policies, frames and prefetch, and the integration suites
# that run the engine over real memserver daemons and real userfaultfd (one
# program per job, sharing tests/integration/ept_harness.c).
EPT_TESTS_UNIT_BINS := $(addprefix $(TESTS_UNIT_DIR)/test_ept_,policy frames prefetch)
EPT_TESTS_INTEGRATION_NAMES := integrity writeback failure lifecycle
EPT_TESTS_INTEGRATION_BINS := $(EPT_TESTS_INTEGRATION_NAMES:%=$(TESTS_INTEGRATION_DIR)/test_ept_%)
UNIT_TESTS += $(EPT_TESTS_UNIT_BINS)
INTEGRATION_TESTS += $(EPT_TESTS_INTEGRATION_BINS)

$(EPT_TESTS_UNIT_BINS): $(TESTS_UNIT_DIR)/test_%: $(OBJ)/tests/unit/test_%.o \
		$(LIBEPT) $(LIBMSCLIENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(EPT_LDLIBS) $(CHECK_LIBS) -lm

$(EPT_TESTS_INTEGRATION_BINS): $(TESTS_INTEGRATION_DIR)/test_%: \
		$(OBJ)/tests/integration/test_%.o $(OBJ)/tests/integration/ept_harness.o \
		$(OBJ)/tests/integration/harness.o $(LIBEPT) $(LIBMSCLIENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(EPT_LDLIBS) $(CHECK_LIBS) -lm

# ThreadSanitizer build of the ept integration suites, with the library sources
# they link (ept, the client library, common) compiled into $(BUILD)/tsan/. The
# memserver daemons they start are the ordinary build (other processes).
EPT_TSAN_DIR := $(BUILD)/tsan
EPT_TSAN_BINS := $(EPT_TESTS_INTEGRATION_NAMES:%=$(EPT_TSAN_DIR)/test_ept_%)
EPT_TSAN_SRCS := $(sort $(EPT_SRCS) $(MSCLIENT_LIB_SRCS) $(COMMON_SRCS)) \
	tests/integration/ept_harness.c tests/integration/harness.c
EPT_TSAN_CFLAGS := -O1 -g -std=gnu11 $(WARN) -D_GNU_SOURCE -pthread -I. -MMD -MP \
	-fsanitize=thread $(CHECK_CFLAGS)

$(EPT_TSAN_DIR)/obj/tests/integration/harness.o: EPT_TSAN_CFLAGS += \
	-DLEGATO_TEST_MEMSERVER='"$(abspath $(MEMSERVER_BIN))"'

$(EPT_TSAN_DIR)/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(EPT_TSAN_CFLAGS) -c -o $@ $<

$(EPT_TSAN_BINS): $(EPT_TSAN_DIR)/test_%: $(EPT_TSAN_DIR)/obj/tests/integration/test_%.o \
		$(EPT_TSAN_SRCS:%.c=$(EPT_TSAN_DIR)/obj/%.o)
	$(CC) -pthread -fsanitize=thread -o $@ $^ $(EPT_LDLIBS) $(CHECK_LIBS) -lm

# Runs every suite; fails at the end if any failed.
.PHONY: check-ept-tsan
check-ept-tsan: $(EPT_TSAN_BINS) $(MEMSERVER_BIN)
	@failed=""; for t in $(EPT_TSAN_BINS); do \
		echo "== $$t"; \
		env TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
			CK_TIMEOUT_MULTIPLIER=3 LEGATO_MEMSERVER=$(abspath $(MEMSERVER_BIN)) \
			timeout -k 10 $(TESTS_TIMEOUT) $$t || failed="$$failed $$(basename $$t)"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

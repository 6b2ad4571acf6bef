# legato: one non-recursive Makefile. Each component contributes a fragment
# (*/module.mk, mk/*.mk) that only appends to the variables below; every rule
# runs in this one make invocation, so dependencies across components are exact.
#
#   make            build every library and program into build/
#   make check      build and run every test tier (unit, integration, fuzz smoke, hosts)
#   make check SAN=1  the native tiers under ASan+UBSan (objects in build-san/)
#   make bench      run every bench-* target and regenerate docs/bench/README.md
#   make demo       boot a guest on disaggregated memory (docs/vmm.md)
#   make deps       install missing Debian packages (quiet when none are missing)

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD ?= build
SAN_FLAGS :=
endif

# Objects live under $(OBJ); programs and libraries directly in $(BUILD).
OBJ := $(BUILD)/obj
CC ?= gcc
OPT ?= -O2
# No -march=native anywhere: binaries run inside emulated qemu64 test hosts too.
WARN := -Wall -Wextra -Wformat=2 -Wmissing-prototypes -Wshadow -Werror
CFLAGS := $(OPT) -g -std=gnu11 $(WARN) -D_GNU_SOURCE -pthread -I. -MMD -MP \
	$(SAN_FLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(SAN_FLAGS) $(EXTRA_LDFLAGS)

CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt)

# Debian packages the build and the native tests need; fragments append.
DEPS_PKGS := build-essential pkg-config check libsubunit-dev libjansson-dev \
	libssl-dev libxxhash-dev clang libclang-rt-14-dev gnuplot-nox

# Filled in by the fragments.
LIBS :=
PROGS :=
UNIT_TESTS :=
INTEGRATION_TESTS :=
BENCH_TARGETS :=
CLEAN_EXTRA :=

.PHONY: all deps check check-unit check-integration check-fuzz bench demo clean
.DEFAULT_GOAL := all


include common/module.mk
include memserver/module.mk
include ept/module.mk
include tools/memload/module.mk
include vmm/module.mk
include guest-images/module.mk
include tools/fuzz/module.mk
include tools/bench/module.mk
include tools/demo/module.mk
include tests/module.mk
-include mk/*.mk

# The host tier boots emulated machines; SAN=1 covers the native tiers only.
ifeq ($(SAN),1)
check: check-unit check-integration check-tools check-memload-remote
else
check: check-unit check-integration check-tools check-memload-remote check-ept-tsan \
	check-fuzz check-bench-smoke check-ept-bench-smoke check-hosts \
	check-vmm-bench-smoke check-virtio-bench-smoke
endif

all: $(LIBS) $(PROGS)

deps:
	@sh tools/deps.sh $(sort $(DEPS_PKGS))

$(OBJ)/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.a:
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

clean:
	rm -rf build build-san $(CLEAN_EXTRA)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

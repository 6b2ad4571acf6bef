# KVM test hosts (docs/testhost.md): the in-host agent, the RDMA round-trip
# tool and the host-tier smoke tests, plus `make check-hosts`, which boots
# emulated x86 hosts (qemu-system-x86_64, TCG unless real KVM is at hand) and
# runs tests/hosts/case-*.sh on them.

DEPS_PKGS += qemu-system-x86 busybox-static cpio iproute2 kmod util-linux \
	xz-utils libibverbs-dev librdmacm-dev ibverbs-providers

HOSTS_OBJ := $(or $(OBJ),$(BUILD))
TESTHOST_AGENT_BIN := $(BUILD)/testhost-agent
RDMAPING_BIN := $(BUILD)/rdmaping
KVM_SMOKE_BIN := $(BUILD)/tests/hosts/kvm_smoke
HOSTS_PROGS := $(TESTHOST_AGENT_BIN) $(RDMAPING_BIN) $(KVM_SMOKE_BIN)

PROGS += $(HOSTS_PROGS)

# The agent is PID 1 of every test host and must not depend on the outer
# machine's libraries: static, and never sanitized (no ASan runtime there).
TESTHOST_AGENT_CFLAGS := $(filter-out -fsanitize=% -fno-sanitize%,$(CFLAGS))
$(HOSTS_OBJ)/tools/testhost/agent.o: CFLAGS := $(TESTHOST_AGENT_CFLAGS)
$(TESTHOST_AGENT_BIN): $(HOSTS_OBJ)/tools/testhost/agent.o
	@mkdir -p $(dir $@)
	$(CC) -static -pthread -o $@ $^

$(RDMAPING_BIN): $(HOSTS_OBJ)/tools/rdmaping/rdmaping.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lrdmacm -libverbs

$(KVM_SMOKE_BIN): $(HOSTS_OBJ)/tests/hosts/kvm_smoke.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

# Whole tier: boot (~10 s per host under TCG) plus the cases; bounded so a
# wedged emulator can never hold CI.
HOSTS_TIMEOUT ?= 1500

.PHONY: check-hosts
check-hosts: $(HOSTS_PROGS) all
	TESTHOST_AGENT=$(abspath $(TESTHOST_AGENT_BIN)) TESTHOST_BUILD=$(abspath $(BUILD)) \
		timeout -k 30 $(HOSTS_TIMEOUT) bash tests/hosts/run.sh $(HOSTS_CASES)

# vmm/: the KVM virtual machine monitor (libvmm.a) and the thin `vmm` program,
# plus its unit suites (tests/unit/test_vmm_*.c). See docs/vmm.md.
VMM_SRCS := vmm/cli.c vmm/run.c vmm/vm.c vmm/cpu.c vmm/boot.c vmm/acpi.c vmm/bus.c \
	vmm/mem.c vmm/api.c vmm/msi.c vmm/virtq.c \
	vmm/devices/devices.c vmm/devices/uart.c vmm/devices/i8042.c vmm/devices/rtc.c \
	vmm/devices/pm.c vmm/devices/pci.c vmm/devices/pvpanic.c vmm/devices/virtio_pci.c \
	vmm/devices/virtio_blk.c vmm/devices/virtio_net.c
LIBVMM := $(BUILD)/libvmm.a
VMM_BIN := $(BUILD)/vmm
LIBS += $(LIBVMM)
PROGS += $(VMM_BIN)
DEPS_PKGS += libmicrohttpd-dev libjansson-dev curl
VMM_LDLIBS := -lmicrohttpd $(EPT_LDLIBS)

$(LIBVMM): $(VMM_SRCS:%.c=$(OBJ)/%.o)

$(VMM_BIN): $(OBJ)/vmm/main.o $(LIBVMM) $(LIBEPT) $(LIBMSCLIENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(VMM_LDLIBS)

# Unit suites: pure builders and device models, no /dev/kvm needed. The
# virtqueue suites (test_vmm_virtq*) share a driver-side harness, added as an
# extra prerequisite; the link puts every object before the libraries.
VMM_TESTS_UNIT_BINS := $(addprefix $(BUILD)/tests/unit/test_vmm_,boot acpi uart virtq \
	virtq_broken)
VMM_VIRTQ_HARNESS := $(OBJ)/tests/unit/virtq_harness.o
UNIT_TESTS += $(VMM_TESTS_UNIT_BINS)

$(VMM_TESTS_UNIT_BINS): $(BUILD)/tests/unit/test_%: $(OBJ)/tests/unit/test_%.o \
		$(LIBVMM) $(LIBEPT) $(LIBMSCLIENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter-out %.o,$^) $(VMM_LDLIBS) $(CHECK_LIBS)
$(addprefix $(BUILD)/tests/unit/test_vmm_,virtq virtq_broken): $(VMM_VIRTQ_HARNESS)
$(VMM_TESTS_UNIT_BINS:$(BUILD)/tests/unit/%=$(OBJ)/tests/unit/%.o) $(VMM_VIRTQ_HARNESS): \
	CFLAGS += $(CHECK_CFLAGS)

# The host tier boots the guest with this vmm (tests/hosts/case-vmm*.sh).
check-hosts: $(VMM_BIN) $(MEMSERVER_BIN) guest

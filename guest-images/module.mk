# guest-images/: `make guest` builds the guest the VMM tests boot, from Debian
# packages (guest-images/build.sh): $(GUEST_KERNEL), the stock kernel the test
# hosts use, and $(GUEST_INITRD), a busybox initramfs running guest-images/init
# with the static memcheck workload, virtio_evil (hostile virtio driver) and
# netcopy (bulk TCP copies for the network workloads and bench-net's host ends).
GUEST_DIR := $(BUILD)/guest
GUEST_KERNEL := $(GUEST_DIR)/bzImage
GUEST_INITRD := $(GUEST_DIR)/initramfs.cpio
GUEST_MEMCHECK := $(GUEST_DIR)/memcheck
GUEST_EVIL := $(GUEST_DIR)/virtio_evil
GUEST_NETCOPY := $(GUEST_DIR)/netcopy
DEPS_PKGS += busybox-static cpio kmod

# Static, never sanitized, no -march=native: it runs inside the guest.
$(GUEST_MEMCHECK): guest-images/memcheck.c | deps
	@mkdir -p $(dir $@)
	$(CC) -O2 -std=gnu11 $(WARN) -static -pthread -o $@ $<

# The hostile virtio driver (legato.run=evil): static, never sanitized; the
# attacks (virtio_evil.c) and the device side (virtio_evil_dev.c).
GUEST_EVIL_SRCS := guest-images/virtio_evil.c guest-images/virtio_evil_dev.c
$(GUEST_EVIL): $(GUEST_EVIL_SRCS) guest-images/virtio_evil.h | deps
	@mkdir -p $(dir $@)
	$(CC) -O2 -std=gnu11 $(WARN) -static -o $@ $(GUEST_EVIL_SRCS)

$(GUEST_NETCOPY): guest-images/netcopy.c | deps
	@mkdir -p $(dir $@)
	$(CC) -O2 -std=gnu11 $(WARN) -static -o $@ $<

# The recipe always runs: it follows Debian's current kernel package, reuses
# the cached download, and rewrites the outputs only when they change.
.PHONY: guest
guest: $(GUEST_MEMCHECK) $(GUEST_EVIL) $(GUEST_NETCOPY)
	bash guest-images/build.sh $(GUEST_DIR) $(GUEST_MEMCHECK) $(GUEST_EVIL) $(GUEST_NETCOPY)

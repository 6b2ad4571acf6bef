# ept/: the virtual cache (libept.a): userfaultfd fault engine, frames,
# replacement policies, prefetch, write-back, memory-server batching.
EPT_SRCS := ept/ept.c ept/engine.c ept/evict.c ept/remote.c ept/frames.c ept/prefetch.c \
	ept/policy.c ept/policy_fifo.c ept/policy_sampled.c ept/policy_clock.c ept/policy_refault.c
LIBEPT := $(BUILD)/libept.a
LIBS += $(LIBEPT)
EPT_LDLIBS := -ljansson $(COMMON_LDLIBS)

$(LIBEPT): $(EPT_SRCS:%.c=$(OBJ)/%.o)

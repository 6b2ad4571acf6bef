# tools/fuzz/: libFuzzer targets for the protocol decoders, built with clang
# (Debian clang + libclang-rt-14-dev) and ASan+UBSan. `make check-fuzz` runs
# each for FUZZ_SECONDS from a generated seed corpus; `make fuzz` builds only.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_CFLAGS := -O1 -g -std=gnu11 -D_GNU_SOURCE -pthread -I. -Wall -Wextra -Werror \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_COMMON_SRCS := common/auth.c common/buf.c common/hist.c common/log.c common/util.c
FUZZ_FRAME_SRCS := tools/fuzz/fuzz_frame.c memserver/proto.c memserver/store.c \
	memserver/session.c $(FUZZ_COMMON_SRCS)
FUZZ_REPLY_SRCS := tools/fuzz/fuzz_reply.c memserver/proto.c memserver/client.c \
	memserver/client_frame.c memserver/client_tcp.c memserver/client_rdma.c \
	memserver/client_rdma_conn.c common/net.c common/url.c $(FUZZ_COMMON_SRCS)
FUZZ_VIRTQ_SRCS := tools/fuzz/fuzz_virtq.c vmm/virtq.c

.PHONY: fuzz check-fuzz
fuzz: $(FUZZ_DIR)/fuzz_frame $(FUZZ_DIR)/fuzz_reply $(FUZZ_DIR)/fuzz_virtq

$(FUZZ_DIR)/fuzz_frame: $(FUZZ_FRAME_SRCS) | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_FRAME_SRCS) -lcrypto -lxxhash

$(FUZZ_DIR)/fuzz_reply: $(FUZZ_REPLY_SRCS) | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_REPLY_SRCS) -lcrypto -lxxhash -lrdmacm -libverbs

$(FUZZ_DIR)/fuzz_virtq: $(FUZZ_VIRTQ_SRCS) vmm/virtq.h | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_VIRTQ_SRCS)

$(FUZZ_DIR)/mkseeds: tools/fuzz/mkseeds.c memserver/proto.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -o $@ $^ -lxxhash

# Each target runs from its own copy of the seeds so runs never share state.
check-fuzz: fuzz $(FUZZ_DIR)/mkseeds
	@rm -rf $(FUZZ_DIR)/corpus-frame $(FUZZ_DIR)/corpus-reply $(FUZZ_DIR)/corpus-virtq
	@mkdir -p $(FUZZ_DIR)/corpus-frame $(FUZZ_DIR)/corpus-reply $(FUZZ_DIR)/corpus-virtq
	$(FUZZ_DIR)/mkseeds $(FUZZ_DIR)/corpus-frame $(FUZZ_DIR)/corpus-reply
	$(FUZZ_DIR)/fuzz_frame -max_total_time=$(FUZZ_SECONDS) -max_len=300000 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus-frame 2>$(FUZZ_DIR)/frame.log \
		|| { tail -50 $(FUZZ_DIR)/frame.log; exit 1; }
	@grep -E '^(stat::number_of_executed_units|Done)' $(FUZZ_DIR)/frame.log || true
	$(FUZZ_DIR)/fuzz_reply -max_total_time=$$(( $(FUZZ_SECONDS) / 2 )) -max_len=300000 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus-reply 2>$(FUZZ_DIR)/reply.log \
		|| { tail -50 $(FUZZ_DIR)/reply.log; exit 1; }
	@grep -E '^(stat::number_of_executed_units|Done)' $(FUZZ_DIR)/reply.log || true
	$(FUZZ_DIR)/fuzz_virtq -max_total_time=$$(( $(FUZZ_SECONDS) / 4 )) -max_len=65552 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus-virtq 2>$(FUZZ_DIR)/virtq.log \
		|| { tail -50 $(FUZZ_DIR)/virtq.log; exit 1; }
	@grep -E '^(stat::number_of_executed_units|Done)' $(FUZZ_DIR)/virtq.log || true

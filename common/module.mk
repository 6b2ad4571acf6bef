# common/: logging, parsing, wire codec, sockets, auth, histograms.
COMMON_SRCS := $(wildcard common/*.c)
COMMON_OBJS := $(COMMON_SRCS:%.c=$(OBJ)/%.o)
LIBCOMMON := $(BUILD)/libcommon.a
LIBS += $(LIBCOMMON)
COMMON_LDLIBS := -lcrypto -lxxhash -lrdmacm -libverbs

$(LIBCOMMON): $(COMMON_OBJS)

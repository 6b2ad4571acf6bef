# memserver/: the pool and TCP server (libmemserver.a), the client library
# (libmsclient.a), the daemon and the msctl operator tool.
MEMSERVER_LIB_SRCS := memserver/proto.c memserver/store.c memserver/session.c memserver/server.c \
	memserver/server_rdma.c
MSCLIENT_LIB_SRCS := memserver/proto.c memserver/client.c memserver/client_frame.c \
	memserver/client_tcp.c memserver/client_rdma.c memserver/client_rdma_conn.c

LIBMEMSERVER := $(BUILD)/libmemserver.a
LIBMSCLIENT := $(BUILD)/libmsclient.a
LIBS += $(LIBMEMSERVER) $(LIBMSCLIENT)
DEPS_PKGS += libibverbs-dev librdmacm-dev ibverbs-providers

$(LIBMEMSERVER): $(MEMSERVER_LIB_SRCS:%.c=$(OBJ)/%.o)
$(LIBMSCLIENT): $(MSCLIENT_LIB_SRCS:%.c=$(OBJ)/%.o)

MEMSERVER_BIN := $(BUILD)/memserver
MSCTL_BIN := $(BUILD)/msctl
PROGS += $(MEMSERVER_BIN) $(MSCTL_BIN)

$(MEMSERVER_BIN): $(OBJ)/memserver/main.o $(LIBMEMSERVER) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(COMMON_LDLIBS)

$(MSCTL_BIN): $(OBJ)/memserver/msctl.o $(LIBMSCLIENT) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(COMMON_LDLIBS) -ljansson

/*
 * TCP socket helpers in the spirit of Redis's anet: listen, accept and connect
 * with the options every legato connection wants (TCP_NODELAY, close-on-exec,
 * keepalive), returning -errno instead of printing.
 */
#ifndef LEGATO_COMMON_NET_H
#define LEGATO_COMMON_NET_H

#include <stdint.h>

#include "common/url.h"

/* Binds and listens on host:port (port 0 picks one). Returns the listening
 * fd (non-blocking, close-on-exec) or -errno; *bound_port gets the port. */
int net_tcp_listen(const char *host, uint16_t port, int backlog, uint16_t *bound_port);

/* Accepts one connection as a non-blocking, close-on-exec, TCP_NODELAY socket.
 * Returns the fd or -errno (-EAGAIN when none is pending). */
int net_tcp_accept(int listen_fd);

/* Connects to host:port within timeout_ms (<= 0: no limit). The returned socket
 * is blocking, close-on-exec and TCP_NODELAY. Returns the fd or -errno. */
int net_tcp_connect(const char *host, uint16_t port, int timeout_ms);

/* Sets or clears O_NONBLOCK. Returns 0 or -errno. */
int net_set_nonblock(int fd, int on);

/* Sets SO_SNDBUF and SO_RCVBUF to at least bytes (best effort). */
void net_set_buffers(int fd, int bytes);

#endif

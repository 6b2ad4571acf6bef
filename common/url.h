/*
 * Endpoint URLs: "tcp://HOST:PORT" and "rdma://HOST:PORT", where HOST is an IPv4
 * address, a bracketed IPv6 address or a name. One parser so that every tool
 * accepts exactly the same spelling.
 */
#ifndef LEGATO_COMMON_URL_H
#define LEGATO_COMMON_URL_H

#include <stdint.h>

enum url_scheme { URL_TCP, URL_RDMA };

struct url {
	enum url_scheme scheme;
	char host[256];
	uint16_t port;
};

/* Parses s into *out. Port 0 is accepted (listen on any free port).
 * Returns 0 or -EINVAL. */
int url_parse(const char *s, struct url *out);

/* Formats *u back into buf ("tcp://127.0.0.1:7000"). */
void url_format(const struct url *u, char *buf, unsigned len);

#endif

/*
 * Parser and formatter for endpoint URLs (see url.h).
 */
#include "common/url.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

int url_parse(const char *s, struct url *out)
{
	const char *host, *colon, *end;
	uint64_t port;
	size_t hlen;

	memset(out, 0, sizeof(*out));
	if (strncmp(s, "tcp://", 6) == 0) {
		out->scheme = URL_TCP;
		host = s + 6;
	} else if (strncmp(s, "rdma://", 7) == 0) {
		out->scheme = URL_RDMA;
		host = s + 7;
	} else {
		return -EINVAL;
	}
	if (*host == '[') {
		end = strchr(host, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		host++;
		colon = end + 1;
	} else {
		colon = strrchr(host, ':');
		if (!colon)
			return -EINVAL;
		end = colon;
	}
	hlen = (size_t)(end - host);
	if (host[-1] != '[' && memchr(host, ':', hlen))
		return -EINVAL; /* an IPv6 address must be bracketed */
	if (hlen == 0 || hlen >= sizeof(out->host))
		return -EINVAL;
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	if (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -EINVAL;
	if (parse_u64(colon + 1, &port) || port > 65535)
		return -EINVAL;
	out->port = (uint16_t)port;
	return 0;
}

void url_format(const struct url *u, char *buf, unsigned len)
{
	const char *scheme = u->scheme == URL_RDMA ? "rdma" : "tcp";

	if (strchr(u->host, ':'))
		snprintf(buf, len, "%s://[%s]:%u", scheme, u->host, u->port);
	else
		snprintf(buf, len, "%s://%s:%u", scheme, u->host, u->port);
}

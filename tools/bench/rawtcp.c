/*
 * Raw TCP reference server for bench-memserver (see rawtcp.h).
 */
#include "tools/bench/rawtcp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/net.h"
#include "common/util.h"
#include "common/wire.h"


static void *raw_conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t cfg[8], *in = NULL, *out = NULL;
	uint32_t req_len, resp_len;
	size_t partial = 0;

	net_set_nonblock(fd, 0);
	if (read_full(fd, cfg, sizeof(cfg)))
		goto out;
	req_len = get_le32(cfg);
	resp_len = get_le32(cfg + 4);
	in = malloc(RAW_RX);
	out = calloc(RAW_MAX_DEPTH, resp_len);
	if (!in || !out || !req_len)
		goto out;
	for (uint32_t i = 0; i < RAW_MAX_DEPTH; i++)
		put_le32(out + (size_t)i * resp_len, resp_len); /* like a frame length */
	for (;;) {
		ssize_t n = recv(fd, in, RAW_RX, 0);
		size_t k;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		partial += (size_t)n;
		k = partial / req_len;
		partial %= req_len;
		while (k) {
			size_t m = MIN(k, (size_t)RAW_MAX_DEPTH);

			if (write_full(fd, out, m * resp_len))
				goto out;
			k -= m;
		}
	}
out:
	free(in);
	free(out);
	close(fd);
	return NULL;
}

static void *raw_acceptor_main(void *arg)
{
	struct raw_server *rs = arg;

	for (;;) {
		struct pollfd p[2] = { { .fd = rs->lfd, .events = POLLIN },
				       { .fd = rs->stop[0], .events = POLLIN } };
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = net_tcp_accept(rs->lfd);
		if (fd < 0)
			continue;
		if (rs->nconns == ARRAY_SIZE(rs->conns) ||
		    pthread_create(&rs->conns[rs->nconns], NULL, raw_conn_main,
				   (void *)(intptr_t)fd)) {
			close(fd);
			continue;
		}
		rs->nconns++;
	}
	return NULL;
}

void raw_server_start(struct raw_server *rs)
{
	memset(rs, 0, sizeof(*rs));
	rs->lfd = net_tcp_listen("127.0.0.1", 0, 16, &rs->port);
	if (rs->lfd < 0)
		die("raw server: listen: %s", strerror(-rs->lfd));
	if (pipe2(rs->stop, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	if (pthread_create(&rs->acceptor, NULL, raw_acceptor_main, rs))
		die("cannot start the raw server thread");
}

void raw_server_stop(struct raw_server *rs)
{
	if (write(rs->stop[1], "x", 1) != 1)
		die("raw server: cannot stop");
	pthread_join(rs->acceptor, NULL);
	for (unsigned i = 0; i < rs->nconns; i++)
		pthread_join(rs->conns[i], NULL);
	close(rs->lfd);
	close(rs->stop[0]);
	close(rs->stop[1]);
}

int raw_connect(struct raw_server *rs, uint32_t req_len, uint32_t resp_len)
{
	uint8_t cfg[8];
	int fd = net_tcp_connect("127.0.0.1", rs->port, 5000);

	if (fd < 0)
		die("raw client: connect: %s", strerror(-fd));
	net_set_buffers(fd, 4 << 20); /* as the memserver client does */
	put_le32(cfg, req_len);
	put_le32(cfg + 4, resp_len);
	if (write_full(fd, cfg, sizeof(cfg)))
		die("raw client: send");
	return fd;
}


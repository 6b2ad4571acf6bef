/*
 * netcopy: one TCP stream between stdin/stdout and a peer, in 256 KiB reads
 * and writes, for the network workloads of the guest (legato.run=net-xfer)
 * and the host ends of bench-net. busybox nc moves a few KiB per system call,
 * which under emulation makes the tool, not the network device, the limit.
 *
 *   netcopy send|recv ADDR:PORT   connect to an IPv4 address (retrying for 30 s while the
 *                                 listener starts)
 *   netcopy send|recv :PORT       listen on PORT, serve one connection
 *
 * send copies stdin to the socket, half-closes it and waits for the peer to
 * close (so it ends once the peer has read everything); recv copies the
 * socket to stdout until the peer closes. Then one line on stderr,
 * "netcopy: send|recv BYTES bytes in SECONDS s", timed from the connection
 * (not from the start: the connect retries are not the network's time).
 * Exit 0, or 1 with one line on stderr. Static, for the guest's initramfs; the host runs the same binary.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)
#define CONNECT_TRIES 300	/* 100 ms apart */

static int fail(const char *what, int err)
{
	fprintf(stderr, "netcopy: %s: %s\n", what, strerror(err));
	return -1;
}

/* HOST is a dotted IPv4 address: the guest has no resolver. */
static int dial(const char *host, const char *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = -1, err = 0;
	char *end;
	long p = strtol(port, &end, 10);

	if (*end || p <= 0 || p > 65535 || inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		fprintf(stderr, "netcopy: bad address '%s:%s' (IPv4 ADDR:PORT)\n", host, port);
		return -1;
	}
	a.sin_port = htons((uint16_t)p);
	for (int i = 0; i < CONNECT_TRIES; i++) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			break;
		}
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return fd;
		err = errno;
		close(fd);
		fd = -1;
		if (err != ECONNREFUSED && err != ENETUNREACH && err != EHOSTUNREACH)
			break;
		usleep(100 * 1000);
	}
	return fail("connect", err);
}

static int serve_one(const char *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = INADDR_ANY };
	int one = 1, ls, fd;
	char *end;
	long p = strtol(port, &end, 10);

	if (*end || p <= 0 || p > 65535) {
		fprintf(stderr, "netcopy: bad port '%s'\n", port);
		return -1;
	}
	a.sin_port = htons((uint16_t)p);
	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0)
		return fail("socket", errno);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 1)) {
		fail("listen", errno);
		close(ls);
		return -1;
	}
	fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		fail("accept", errno);
	close(ls);
	return fd;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Copies from in to out until in ends, adding to *bytes. Returns 0, or -1
 * having said why. */
static int copy(int in, int out, char *buf, unsigned long long *bytes)
{
	for (;;) {
		ssize_t r = read(in, buf, BUF_SIZE), done = 0;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fail("read", errno);
		if (r == 0)
			return 0;
		while (done < r) {
			ssize_t w = write(out, buf + done, (size_t)(r - done));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return fail("write", errno);
			done += w;
		}
		*bytes += (unsigned long long)r;
	}
}

int main(int argc, char **argv)
{
	char *buf = malloc(BUF_SIZE), *colon, *host;
	unsigned long long bytes = 0;
	double t0;
	int fd, rc;

	if (argc != 3 || (strcmp(argv[1], "send") && strcmp(argv[1], "recv")) ||
	    !(colon = strrchr(argv[2], ':'))) {
		fprintf(stderr, "usage: netcopy send|recv ADDR:PORT | :PORT\n");
		return 1;
	}
	if (!buf) {
		fail("buffer", ENOMEM);
		return 1;
	}
	host = argv[2];
	*colon = '\0';
	fd = *host ? dial(host, colon + 1) : serve_one(colon + 1);
	if (fd < 0)
		return 1;
	t0 = now();
	if (!strcmp(argv[1], "recv")) {
		rc = copy(fd, 1, buf, &bytes);
	} else {
		rc = copy(0, fd, buf, &bytes);
		if (!rc && shutdown(fd, SHUT_WR))
			rc = fail("shutdown", errno);
		while (!rc && read(fd, buf, BUF_SIZE) > 0)
			;	/* until the peer has read it all and closed */
	}
	close(fd);
	free(buf);
	if (!rc)
		fprintf(stderr, "netcopy: %s %llu bytes in %.4f s\n", argv[1], bytes, now() - t0);
	return rc ? 1 : 0;
}

/*
 * testhost-agent: runs commands inside a legato test host for the machine
 * outside it. One static binary with two modes:
 *
 *   serve  PID 1 of a test host (exec'd by the initramfs init): listens on a
 *          TCP port of the host's private network, forks one session per
 *          connection, runs the requested command chrooted into the host's view
 *          of the outer filesystem and streams its stdout, stderr and exit
 *          status back. As PID 1 it also reaps every orphan.
 *   run    the client, run outside (inside the run's network namespace):
 *          sends one command, forwards stdin, copies the command's output to
 *          its own stdout/stderr and exits with the command's status.
 *
 * Wire format: frames of { u8 type, u8 pad[3], le32 len } + payload. The
 * request payload is a list of NUL-terminated strings "t:<timeout s>",
 * "c:<cwd>", "e:<NAME=value>", "a:<argument>". A stdin frame of length 0 is
 * end of input; the exit frame carries a le32 shell-style status (exit code,
 * 128+signal, 124 on timeout).
 *
 * Everything has a deadline: a command is killed (its whole process group)
 * when its timeout expires or when its client goes away, and the client gives
 * up when the agent stays silent past the command's timeout.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENT_PORT	7077
#define FRAME_MAX	(1u << 20)
#define IO_CHUNK	65536

enum frame_type {
	F_REQ = 1,
	F_STDIN = 2,
	F_STDOUT = 3,
	F_STDERR = 4,
	F_EXIT = 5,
};

/* Exit statuses of the client that do not come from the command. */
#define ST_TIMEOUT	124
#define ST_AGENT	125
#define ST_NOEXEC	127

struct frame_hdr {
	uint8_t type;
	uint8_t pad[3];
	uint32_t len;
};

static const char *prog = "testhost-agent";

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads exactly len bytes; returns 0, -EPIPE on a clean EOF, or -errno. */
static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n == 0)
			return -EPIPE;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_frame(int fd, enum frame_type type, const void *data, uint32_t len)
{
	struct frame_hdr h = { .type = (uint8_t)type, .len = htole32(len) };
	int err;

	err = write_all(fd, &h, sizeof(h));
	if (!err && len)
		err = write_all(fd, data, len);
	return err;
}

/* Receives one frame into a malloc'd buffer (NUL-terminated for convenience). */
static int recv_frame(int fd, struct frame_hdr *h, char **data)
{
	char *buf;
	int err;

	err = read_all(fd, h, sizeof(*h));
	if (err)
		return err;
	h->len = le32toh(h->len);
	if (h->len > FRAME_MAX)
		return -EPROTO;
	buf = malloc(h->len + 1);
	if (!buf)
		return -ENOMEM;
	err = read_all(fd, buf, h->len);
	if (err) {
		free(buf);
		return err == -EPIPE ? -EPROTO : err;
	}
	buf[h->len] = '\0';
	*data = buf;
	return 0;
}

static int send_status(int fd, int status)
{
	uint32_t v = htole32((uint32_t)status);

	return send_frame(fd, F_EXIT, &v, sizeof(v));
}

static void send_msg(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void send_msg(int fd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	send_frame(fd, F_STDERR, msg, (uint32_t)n);
}

/* ---------------------------------------------------------------- serve */

struct request {
	unsigned int timeout_s;
	const char *cwd;
	char **argv;
	char **envp;
};

static void free_request(struct request *req)
{
	free(req->argv);
	free(req->envp);
}

/* Parses a request payload in place; the strings point into buf. */
static int parse_request(char *buf, uint32_t len, struct request *req)
{
	size_t nargs = 0, nenv = 0, ia = 0, ie = 0;
	char *p;

	memset(req, 0, sizeof(*req));
	req->timeout_s = 300;
	req->cwd = "/";
	if (!len || buf[len - 1] != '\0')
		return -EPROTO;
	for (p = buf; p < buf + len; p += strlen(p) + 1) {
		if (!strncmp(p, "a:", 2))
			nargs++;
		else if (!strncmp(p, "e:", 2))
			nenv++;
	}
	if (!nargs)
		return -EPROTO;
	req->argv = calloc(nargs + 1, sizeof(char *));
	req->envp = calloc(nenv + 4, sizeof(char *));
	if (!req->argv || !req->envp) {
		free_request(req);
		return -ENOMEM;
	}
	req->envp[ie++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	req->envp[ie++] = "HOME=/root";
	req->envp[ie++] = "TERM=dumb";
	for (p = buf; p < buf + len; p += strlen(p) + 1) {
		if (!strncmp(p, "a:", 2))
			req->argv[ia++] = p + 2;
		else if (!strncmp(p, "e:", 2))
			req->envp[ie++] = p + 2;
		else if (!strncmp(p, "c:", 2))
			req->cwd = p + 2;
		else if (!strncmp(p, "t:", 2))
			req->timeout_s = (unsigned int)strtoul(p + 2, NULL, 10);
	}
	return 0;
}

static void exec_command(const struct request *req, const char *root,
			 int in, int out, int err)
{
	extern char **environ;
	sigset_t all;
	int fd;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	setsid();
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(ST_AGENT);
	for (fd = 3; fd < 1024; fd++)
		close(fd);
	if (root && (chroot(root) || chdir("/"))) {
		dprintf(2, "%s: chroot %s: %s\n", prog, root, strerror(errno));
		_exit(ST_AGENT);
	}
	if (chdir(req->cwd)) {
		dprintf(2, "%s: cd %s: %s\n", prog, req->cwd, strerror(errno));
		_exit(ST_AGENT);
	}
	environ = req->envp;
	execvp(req->argv[0], req->argv);
	dprintf(2, "%s: exec %s: %s\n", prog, req->argv[0], strerror(errno));
	_exit(ST_NOEXEC);
}

static int wait_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return ST_AGENT;
}

/*
 * One connection: read the request, run the command, relay until it exits and
 * its output pipes drain (or stay quiet for a moment after it exited, so a
 * daemon it left behind holding the pipes does not keep the session open).
 */
static int serve_session(int sock, const char *root)
{
	int pin[2], pout[2], perr[2];
	struct frame_hdr h;
	struct request req;
	char *pending = NULL, *pend_at = NULL, *buf = NULL;
	size_t pend_len = 0;
	int out_open = 1, err_open = 1, in_open = 1, sock_open = 1;
	int exited = 0, status = 0, pidfd, wstatus, err;
	int64_t deadline, quiet_since = 0;
	char io[IO_CHUNK];
	pid_t pid;

	err = recv_frame(sock, &h, &buf);
	if (err)
		return err;
	if (h.type != F_REQ) {
		err = -EPROTO;
		goto out_buf;
	}
	err = parse_request(buf, h.len, &req);
	if (err)
		goto out_buf;
	if (pipe2(pin, O_CLOEXEC)) {
		err = -errno;
		goto out_req;
	}
	if (pipe2(pout, O_CLOEXEC)) {
		err = -errno;
		goto out_pin;
	}
	if (pipe2(perr, O_CLOEXEC)) {
		err = -errno;
		goto out_pout;
	}
	pid = fork();
	if (pid < 0) {
		err = -errno;
		goto out_perr;
	}
	if (pid == 0)
		exec_command(&req, root, pin[0], pout[1], perr[1]);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	pin[0] = pout[1] = perr[1] = -1;
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	/* Wakes poll when the command exits (else a 200 ms tick notices). */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	deadline = req.timeout_s ? now_ms() + (int64_t)req.timeout_s * 1000 : 0;

	while (out_open || err_open || !exited) {
		struct pollfd pfd[5];
		int n = 0, i_sock = -1, i_in = -1, i_out = -1, i_err = -1;
		int timeout = 200;

		if (pidfd >= 0 && !exited)
			pfd[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };

		if (sock_open && !pending)
			pfd[i_sock = n++] = (struct pollfd){ .fd = sock, .events = POLLIN };
		if (in_open && pending)
			pfd[i_in = n++] = (struct pollfd){ .fd = pin[1], .events = POLLOUT };
		if (out_open)
			pfd[i_out = n++] = (struct pollfd){ .fd = pout[0], .events = POLLIN };
		if (err_open)
			pfd[i_err = n++] = (struct pollfd){ .fd = perr[0], .events = POLLIN };
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR) {
			err = -errno;
			break;
		}

		if (!exited && waitpid(pid, &wstatus, WNOHANG) == pid) {
			exited = 1;
			status = wait_status(wstatus);
			quiet_since = now_ms();
		}
		if (deadline && !exited && now_ms() >= deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &wstatus, 0);
			send_msg(sock, "%s: command timed out after %u s, killed\n",
				 prog, req.timeout_s);
			exited = 1;
			status = ST_TIMEOUT;
			break;
		}

		if (i_sock >= 0 && pfd[i_sock].revents) {
			free(buf);
			buf = NULL;
			err = recv_frame(sock, &h, &buf);
			if (err) {
				/* The client went away: take the command down with it. */
				kill(-pid, SIGKILL);
				kill(pid, SIGKILL);
				waitpid(pid, &wstatus, 0);
				goto out_pipes;
			}
			if (h.type == F_STDIN && h.len && in_open) {
				pending = pend_at = buf;
				pend_len = h.len;
				buf = NULL;
			} else if (h.type == F_STDIN && in_open) {
				close(pin[1]);
				pin[1] = -1;
				in_open = 0;
			}
		}
		if (i_in >= 0 && pfd[i_in].revents) {
			ssize_t w = write(pin[1], pend_at, pend_len);

			if (w < 0 && errno != EAGAIN && errno != EINTR) {
				/* The command closed its stdin: drop the rest. */
				close(pin[1]);
				pin[1] = -1;
				in_open = 0;
				w = (ssize_t)pend_len;
			}
			if (w > 0) {
				pend_at += w;
				pend_len -= (size_t)w;
			}
			if (!pend_len || !in_open) {
				free(pending);
				pending = NULL;
			}
		}
		if (i_out >= 0 && pfd[i_out].revents) {
			ssize_t r = read(pout[0], io, sizeof(io));

			if (r > 0) {
				send_frame(sock, F_STDOUT, io, (uint32_t)r);
				quiet_since = now_ms();
			} else if (r == 0 || errno != EINTR) {
				out_open = 0;
			}
		}
		if (i_err >= 0 && pfd[i_err].revents) {
			ssize_t r = read(perr[0], io, sizeof(io));

			if (r > 0) {
				send_frame(sock, F_STDERR, io, (uint32_t)r);
				quiet_since = now_ms();
			} else if (r == 0 || errno != EINTR) {
				err_open = 0;
			}
		}
		if (exited && now_ms() - quiet_since > 500)
			break;
	}
	err = send_status(sock, status);
out_pipes:
	if (pidfd >= 0)
		close(pidfd);
	free(pending);
out_perr:
	if (perr[0] >= 0)
		close(perr[0]);
	if (perr[1] >= 0)
		close(perr[1]);
out_pout:
	if (pout[0] >= 0)
		close(pout[0]);
	if (pout[1] >= 0)
		close(pout[1]);
out_pin:
	if (pin[0] >= 0)
		close(pin[0]);
	if (pin[1] >= 0)
		close(pin[1]);
out_req:
	free_request(&req);
out_buf:
	free(buf);
	return err;
}

static int serve(int port, const char *root)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_ANY),
	};
	int one = 1, lfd;

	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 64)) {
		int err = -errno;

		close(lfd);
		return err;
	}
	fprintf(stderr, "%s: serving on port %d\n", prog, port);
	for (;;) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		pid_t pid;
		int fd;

		/* PID 1 inherits every orphan: reap them all. */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pid = fork();
		if (pid == 0) {
			close(lfd);
			_exit(serve_session(fd, root) ? 1 : 0);
		}
		close(fd);
	}
}

/* ------------------------------------------------------------------ run */

static int connect_to(const char *addr, int port, int wait_s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int64_t deadline = now_ms() + (int64_t)wait_s * 1000;
	int one = 1, fd, err;

	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return -EINVAL;
	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			return fd;
		}
		err = -errno;
		close(fd);
		if (now_ms() >= deadline)
			return err;
		usleep(200 * 1000);
	}
}

static int append_str(char **buf, size_t *len, size_t *cap, const char *pfx, const char *s)
{
	size_t need = strlen(pfx) + strlen(s) + 1;

	if (*len + need > *cap) {
		size_t ncap = (*cap ? *cap * 2 : 1024) + need;
		char *nb = realloc(*buf, ncap);

		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = ncap;
	}
	*len += (size_t)sprintf(*buf + *len, "%s%s", pfx, s) + 1;
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: %s serve [--port N] [--root DIR]\n"
		"       %s run --addr IP [--port N] [--timeout S] [--wait S] [--cwd DIR]\n"
		"              [--env NAME=VALUE]... [--no-stdin] -- COMMAND [ARG]...\n"
		"run exits with the command's status; 124 when it timed out, 125 when\n"
		"the agent could not be reached or the connection was lost.\n",
		prog, prog);
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "wait", required_argument, NULL, 'w' },
		{ "cwd", required_argument, NULL, 'c' },
		{ "env", required_argument, NULL, 'e' },
		{ "no-stdin", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *addr = NULL, *cwd = "/";
	unsigned int timeout_s = 300;
	int port = AGENT_PORT, wait_s = 5, use_stdin = 1, sock, opt, i, err;
	char *req = NULL, *data = NULL, tbuf[32];
	size_t len = 0, cap = 0;
	int64_t deadline;
	struct frame_hdr h;

	while ((opt = getopt_long(argc, argv, "+a:p:t:w:c:e:n", opts, NULL)) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 't': timeout_s = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'w': wait_s = atoi(optarg); break;
		case 'c': cwd = optarg; break;
		case 'n': use_stdin = 0; break;
		case 'e':
			if (append_str(&req, &len, &cap, "e:", optarg))
				return ST_AGENT;
			break;
		default:
			usage();
			return ST_AGENT;
		}
	}
	if (!addr || optind >= argc) {
		usage();
		return ST_AGENT;
	}
	snprintf(tbuf, sizeof(tbuf), "%u", timeout_s);
	if (append_str(&req, &len, &cap, "t:", tbuf) ||
	    append_str(&req, &len, &cap, "c:", cwd))
		return ST_AGENT;
	for (i = optind; i < argc; i++)
		if (append_str(&req, &len, &cap, "a:", argv[i]))
			return ST_AGENT;

	signal(SIGPIPE, SIG_IGN);
	sock = connect_to(addr, port, wait_s);
	if (sock < 0) {
		fprintf(stderr, "%s: cannot reach test host agent at %s:%d: %s\n",
			prog, addr, port, strerror(-sock));
		free(req);
		return ST_AGENT;
	}
	err = send_frame(sock, F_REQ, req, (uint32_t)len);
	free(req);
	if (!err && !use_stdin)
		err = send_frame(sock, F_STDIN, NULL, 0);
	if (err) {
		fprintf(stderr, "%s: sending request to %s: %s\n", prog, addr, strerror(-err));
		close(sock);
		return ST_AGENT;
	}
	/* The agent enforces the timeout; this one only catches a dead agent. */
	deadline = timeout_s ? now_ms() + ((int64_t)timeout_s + 30) * 1000 : 0;

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = sock, .events = POLLIN },
			{ .fd = 0, .events = POLLIN },
		};
		int left = deadline ? (int)(deadline - now_ms()) : 1000;

		if (deadline && left <= 0) {
			fprintf(stderr, "%s: no answer from %s within %u s\n",
				prog, addr, timeout_s + 30);
			close(sock);
			return ST_AGENT;
		}
		if (poll(pfd, use_stdin ? 2 : 1, left > 1000 ? 1000 : left) < 0 &&
		    errno != EINTR)
			break;
		if (use_stdin && pfd[1].revents) {
			char io[IO_CHUNK];
			ssize_t r = read(0, io, sizeof(io));

			if (r > 0) {
				send_frame(sock, F_STDIN, io, (uint32_t)r);
			} else if (r == 0 || errno != EINTR) {
				send_frame(sock, F_STDIN, NULL, 0);
				use_stdin = 0;
			}
		}
		if (!pfd[0].revents)
			continue;
		err = recv_frame(sock, &h, &data);
		if (err)
			break;
		if (h.type == F_STDOUT)
			write_all(1, data, h.len);
		else if (h.type == F_STDERR)
			write_all(2, data, h.len);
		if (h.type == F_EXIT && h.len == 4) {
			uint32_t v;

			memcpy(&v, data, 4);
			free(data);
			close(sock);
			return (int)le32toh(v);
		}
		free(data);
	}
	fprintf(stderr, "%s: lost the connection to %s before the command ended\n",
		prog, addr);
	close(sock);
	return ST_AGENT;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return run(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "serve")) {
		const char *root = NULL;
		int port = AGENT_PORT, i, err;

		for (i = 2; i + 1 < argc; i += 2) {
			if (!strcmp(argv[i], "--port"))
				port = atoi(argv[i + 1]);
			else if (!strcmp(argv[i], "--root"))
				root = argv[i + 1];
		}
		err = serve(port, root);
		fprintf(stderr, "%s: serve: %s\n", prog, strerror(-err));
		return 1;
	}
	usage();
	return 2;
}

/*
 * virtio-blk over a file (--disk PATH[,ro]): one request queue served by one
 * thread per disk, with buffered preadv/pwritev straight between the file and
 * the guest's buffers (iovecs into guest RAM, so every page goes through the
 * virtual cache: no O_DIRECT, which would bypass its write-protection).
 *
 * A request is a descriptor chain:
 *   device-readable: 16-byte header {le32 type, le32 reserved, le64 sector},
 *                    then the data for a write
 *   device-writable: the buffer for a read (or a GET_ID's 20 bytes), then one
 *                    status byte
 * framed any way the driver likes (the header may span buffers). Types: IN,
 * OUT, FLUSH (fdatasync), GET_ID; anything else is UNSUPP. A request that
 * reaches past the end of the disk, writes a read-only disk, or has no room
 * for its status is an I/O error to the guest, never a VMM failure; a queue
 * the driver broke (bad descriptors) stops the device until it is reset.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/wire.h"
#include "vmm/devices/virtio_pci.h"

#define BLK_F_SEG_MAX 2
#define BLK_F_RO 5
#define BLK_F_BLK_SIZE 6
#define BLK_F_FLUSH 9
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2
#define QUEUE_SIZE 256
#define SEG_MAX 126		/* data buffers per request: QUEUE_SIZE - header - status */
#define MAX_IOV (SEG_MAX + 2)
#define CFG_SIZE 0x3c

struct blk {
	struct vmm *vm;
	struct vmm_virtio *vio;
	const char *path;
	int fd;
	bool ro;
	uint64_t sectors;
	char id[20];
	struct vmm_virtio_worker worker;
};

static void blk_cfg_read(void *dev, unsigned off, uint8_t *data, unsigned len)
{
	struct blk *b = dev;
	uint8_t cfg[CFG_SIZE] = { 0 };

	put_le64(cfg + 0, b->sectors);		/* capacity */
	put_le32(cfg + 12, SEG_MAX);		/* seg_max */
	put_le32(cfg + 20, 512);		/* blk_size */
	memcpy(data, cfg + off, len);
}

/* Copies up to len bytes starting skip bytes into iov[0, n) to dst. */
static size_t iov_read(const struct iovec *iov, unsigned n, size_t skip, void *dst, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l = l - skip < len - done ? l - skip : len - done;
		memcpy((uint8_t *)dst + done, (uint8_t *)iov[i].iov_base + skip, l);
		done += l;
		skip = 0;
	}
	return done;
}

/* Describes bytes [skip, skip + len) of iov[0, n) in out[]; returns the count. */
static unsigned iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len,
			  struct iovec *out)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len)
			l = len;
		out[k++] = (struct iovec){ (uint8_t *)iov[i].iov_base + skip, l };
		len -= l;
		skip = 0;
	}
	return k;
}

/* Runs one request; returns its status and sets *written (data bytes). */
static uint8_t blk_request(struct blk *b, const struct iovec *iov,
			   const struct vmm_virtq_chain *c, uint32_t *written)
{
	const struct iovec *in = iov + c->nout;
	struct iovec sl[MAX_IOV];
	uint8_t hdr[16];
	uint64_t sector, off;
	size_t len;
	unsigned n;
	ssize_t r;

	*written = 0;
	if (iov_read(iov, c->nout, 0, hdr, sizeof(hdr)) != sizeof(hdr))
		return S_IOERR;
	sector = get_le64(hdr + 8);
	switch (get_le32(hdr)) {
	case T_IN:
		len = c->in_len - 1;
		n = iov_slice(in, c->nin, 0, len, sl);
		break;
	case T_OUT:
		if (b->ro)
			return S_IOERR;
		len = c->out_len - sizeof(hdr);
		n = iov_slice(iov, c->nout, sizeof(hdr), len, sl);
		break;
	case T_FLUSH:
		return fdatasync(b->fd) ? S_IOERR : S_OK;
	case T_GET_ID: {
		size_t l = c->in_len - 1 < sizeof(b->id) ? c->in_len - 1 : sizeof(b->id);

		n = iov_slice(in, c->nin, 0, l, sl);
		for (unsigned i = 0, at = 0; i < n; at += (unsigned)sl[i].iov_len, i++)
			memcpy(sl[i].iov_base, b->id + at, sl[i].iov_len);
		*written = (uint32_t)l;
		return S_OK;
	}
	default:
		return S_UNSUPP;
	}
	if (sector > b->sectors || len > (b->sectors - sector) * 512 || len % 512)
		return S_IOERR;
	off = sector * 512;
	while (len) {
		r = get_le32(hdr) == T_IN ? preadv(b->fd, sl, (int)n, (off_t)off)
					  : pwritev(b->fd, sl, (int)n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return S_IOERR;
		if (get_le32(hdr) == T_IN)
			*written += (uint32_t)r;
		off += (uint64_t)r;
		len -= (size_t)r;
		n = iov_slice(sl, n, (size_t)r, len, sl);	/* the rest (in place) */
	}
	return S_OK;
}

/* Drains the queue; returns false once it is broken. */
static bool blk_drain(struct blk *b, struct vmm_virtq *vq)
{
	struct iovec iov[MAX_IOV];
	struct vmm_virtq_chain c;
	int rc;

	do {
		vmm_virtq_disable_notify(vq);
		while ((rc = vmm_virtq_pop(vq, iov, MAX_IOV, &c)) == 1) {
			uint32_t written = 0;
			uint8_t status = S_IOERR;

			if (c.nin && c.in_len >= 1)
				status = blk_request(b, iov, &c, &written);
			if (c.nin && c.in_len >= 1) {
				/* the status byte: the last writable byte */
				const struct iovec *last = &iov[c.nout + c.nin - 1];

				((uint8_t *)last->iov_base)[last->iov_len - 1] = status;
				written++;
			}
			vmm_virtq_push(vq, c.head, written);
		}
		vmm_virtio_used(b->vio, 0);
		if (rc < 0) {
			vmm_virtio_needs_reset(b->vio, 0, "request");
			return false;
		}
	} while (vmm_virtq_enable_notify(vq));
	return true;
}

/* The device's thread (its worker's run): drains the queue on each kick
 * until the worker's stop fd says stop. */
static void blk_thread(void *arg)
{
	struct blk *b = arg;
	struct vmm_virtq *vq = vmm_virtio_queue(b->vio, 0);
	int kick = vmm_virtio_kick_fd(b->vio, 0), ep = epoll_create1(EPOLL_CLOEXEC);
	int stop = vmm_virtio_worker_stop_fd(&b->worker);
	struct epoll_event ev = { .events = EPOLLIN };
	bool live = true;

	ev.data.fd = kick;
	epoll_ctl(ep, EPOLL_CTL_ADD, kick, &ev);
	ev.data.fd = stop;
	epoll_ctl(ep, EPOLL_CTL_ADD, stop, &ev);
	for (;;) {
		uint64_t v;

		if (live && vmm_virtq_enabled(vq))
			live = blk_drain(b, vq);
		if (epoll_wait(ep, &ev, 1, -1) < 0 && errno != EINTR)
			break;
		if (read(stop, &v, sizeof(v)) > 0)
			break;
		while (read(kick, &v, sizeof(v)) > 0)
			;
	}
	close(ep);
}

static int blk_start(void *dev, uint64_t features)
{
	struct blk *b = dev;

	(void)features;
	return vmm_virtio_worker_start(&b->worker);
}

static int blk_stop(void *dev, int timeout_ms)
{
	struct blk *b = dev;

	return vmm_virtio_worker_stop(&b->worker, timeout_ms);
}

static const struct vmm_virtio_ops blk_ops = {
	.name = "virtio-blk",
	.device_id = 2,
	.class_code = 0x010000,
	.nqueues = 1,
	.queue_max = QUEUE_SIZE,
	.cfg_size = CFG_SIZE,
	.cfg_read = blk_cfg_read,
	.start = blk_start,
	.stop = blk_stop,
};

static void blk_free(void *dev)
{
	struct blk *b = dev;

	if (vmm_virtio_destroy(b->vio))
		return;		/* its thread still runs, on b and b->fd */
	if (b->fd >= 0)
		close(b->fd);
	vmm_virtio_worker_fini(&b->worker);
	free(b);
}

static int blk_open(struct blk *b, const struct vmm_disk_config *d)
{
	struct stat st;

	b->fd = open(d->path, (d->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		int rc = -errno;

		fprintf(stderr, "vmm: --disk %s: %s\n", d->path, strerror(-rc));
		return rc;
	}
	if (fstat(b->fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 512) {
		fprintf(stderr, "vmm: --disk %s: not a regular file of at least 512 bytes\n",
			d->path);
		return -EINVAL;
	}
	b->sectors = (uint64_t)st.st_size / 512;
	/* The serial number the guest sees (/sys/block/vdX/serial). */
	snprintf(b->id, sizeof(b->id), "legato%llx%llx", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	return 0;
}

/* The device for --disk number i. */
static int blk_create(struct vmm *vm, unsigned i, void **dev)
{
	const struct vmm_disk_config *d = &vm->cfg->disks[i];
	struct blk *b = calloc(1, sizeof(*b));
	int rc;

	if (!b)
		return -ENOMEM;
	b->vm = vm;
	b->fd = -1;
	b->path = d->path;
	b->ro = d->ro;
	rc = vmm_virtio_worker_init(&b->worker, "virtio-blk", b->path, blk_thread, b);
	if (!rc) {
		rc = blk_open(b, d);
		vm->init_error_reported = rc != 0;	/* blk_open said why */
	}
	if (!rc)
		rc = vmm_virtio_create(vm, &blk_ops, b,
				       1ull << BLK_F_SEG_MAX | 1ull << BLK_F_BLK_SIZE |
				       1ull << BLK_F_FLUSH | (b->ro ? 1ull << BLK_F_RO : 0),
				       &b->vio);
	if (rc) {
		blk_free(b);
		return rc;
	}
	*dev = b;
	return 0;
}

/* One virtio-blk device per --disk, in the order given. */
static int blk_set_init(struct vmm *vm, void **state)
{
	return vmm_virtio_set_init(vm, vm->cfg->ndisks, blk_create, blk_free, state);
}

const struct vmm_device_ops vmm_virtio_blk_ops = {
	.name = "virtio-blk",
	.init = blk_set_init,
	.fini = vmm_virtio_set_fini,
};

/*
 * virtio-net over a TAP interface (--net tap=NAME[,mac=MAC]): a receive queue
 * (0) and a transmit queue (1), no control queue, no multiqueue, served by
 * one thread per NIC with readv/writev straight between the TAP and the
 * guest's buffers (iovecs into guest RAM, so every page goes through the
 * virtual cache like any other access).
 *
 * Every frame on either queue starts with the 12-byte virtio 1.x header
 * {u8 flags, u8 gso_type, le16 hdr_len, gso_size, csum_start, csum_offset,
 * num_buffers}, which is exactly what the TAP speaks with IFF_VNET_HDR and a
 * header size of 12 (num_buffers is padding to it): frames and their
 * checksum/segmentation offload requests pass through unchanged.
 *
 *   transmit: a chain is the header and the frame, device-readable, framed
 *             any way the driver likes; one writev to the TAP, used length 0
 *   receive:  a chain is device-writable room for the header and a frame;
 *             one readv from the TAP into it, used length = bytes read
 *
 * Offloads: the guest may send checksum-less and TSO frames (CSUM, HOST_TSO4/
 * 6, HOST_ECN: the host kernel finishes them); at DRIVER_OK TUNSETOFFLOAD
 * tells the TAP what the guest takes (GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN),
 * so the host hands over partial checksums and 64 KiB TSO frames only to a
 * driver that said it can take them.
 *
 * Receive buffers: with MRG_RXBUF (Linux takes it) a frame may fill several
 * chains and num_buffers in the first one's header says how many, so the
 * driver posts small buffers (Linux: 1.5-4 KiB page fragments) instead of a
 * 64 KiB+ chain per frame, whatever its size (its "big packets" mode without
 * MRG_RXBUF, 17 pages per slot, 17 MiB of guest RAM for a 256-slot ring,
 * all of it resident in the cache). A TAP read cannot be undone or peeked,
 * so chains are taken before their frame: enough of them to hold the
 * largest frame the TAP may hand over (a 64 KiB TSO frame when the guest
 * takes TSO, else one of the TAP's MTU); one readv fills them in order, the
 * chains it used go back in order and the rest stay held for the next
 * frame. If the ring runs dry before that much room is held, receiving
 * waits for the driver's next kick, unless every slot of the ring is held
 * (the driver cannot add more): then the room held is all there is. Without
 * MRG_RXBUF a frame is one chain. A frame bigger than the room held is
 * dropped (counted), never split.
 *
 * The TAP: TUNSETIFF attaches to an existing TAP or creates one (then gone
 * again when vmm exits). Bringing it up and giving it an address or a
 * bridge is the host administrator's business; a TAP vmm creates stays down
 * and carries nothing until someone sets it up.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/wire.h"
#include "vmm/devices/virtio_pci.h"

#define NET_F_CSUM 0
#define NET_F_GUEST_CSUM 1
#define NET_F_MAC 5
#define NET_F_GUEST_TSO4 7
#define NET_F_GUEST_TSO6 8
#define NET_F_GUEST_ECN 9
#define NET_F_HOST_TSO4 11
#define NET_F_HOST_TSO6 12
#define NET_F_HOST_ECN 13
#define NET_F_MRG_RXBUF 15
#define NET_F_STATUS 16
#define S_LINK_UP 1
#define RXQ 0
#define TXQ 1
#define QUEUE_SIZE 256
#define MAX_IOV QUEUE_SIZE	/* no chain may be longer than the queue (spec) */
#define RX_IOV_MAX 1024		/* UIO_MAXIOV: what one readv takes */
#define HDR_LEN 12		/* struct virtio_net_hdr_mrg_rxbuf: the virtio 1.x header */
#define NUM_BUFFERS_OFF 10
#define BUDGET 64		/* frames per queue before the other gets a turn */
#define CFG_SIZE 10		/* mac[6], le16 status, le16 max_virtqueue_pairs */
#define ETH_OVERHEAD 18		/* Ethernet header and one VLAN tag on top of the MTU */
#define GSO_FRAME_MAX (65535 + ETH_OVERHEAD)

#define NET_FEATURES                                                                          \
	(1ull << NET_F_CSUM | 1ull << NET_F_GUEST_CSUM | 1ull << NET_F_MAC |                  \
	 1ull << NET_F_GUEST_TSO4 | 1ull << NET_F_GUEST_TSO6 | 1ull << NET_F_GUEST_ECN |      \
	 1ull << NET_F_HOST_TSO4 | 1ull << NET_F_HOST_TSO6 | 1ull << NET_F_HOST_ECN |         \
	 1ull << NET_F_MRG_RXBUF | 1ull << NET_F_STATUS)

struct net {
	struct vmm *vm;
	struct vmm_virtio *vio;
	char tap[IFNAMSIZ];
	int fd;			/* the TAP, non-blocking */
	uint8_t mac[6];
	struct vmm_virtio_worker worker;
	bool mrg;		/* MRG_RXBUF negotiated: a frame may span chains */
	uint64_t rx_need;	/* room for the largest frame the TAP may hand over */
	/* The thread's, from start() to stop(): the receive chains in hand,
	 * in the order taken, their writable buffers one after another in
	 * rx_iov; whether they are room enough to read the TAP into; and the
	 * counters logged at stop(). */
	struct {
		uint16_t head;
		unsigned niov;
		uint32_t len;
	} rx_held[QUEUE_SIZE];
	unsigned rx_nheld, rx_niov;
	uint64_t rx_room;
	bool rx_ready;
	struct iovec rx_iov[RX_IOV_MAX];
	uint64_t rx_frames, rx_bufs, rx_bytes, rx_dropped, rx_errors;
	uint64_t tx_frames, tx_bytes, tx_dropped, tx_errors;
	size_t rx_max, tx_max;	/* largest frame: above the MTU only with TSO */
};

static void net_cfg_read(void *dev, unsigned off, uint8_t *data, unsigned len)
{
	struct net *n = dev;
	uint8_t cfg[CFG_SIZE] = { 0 };

	memcpy(cfg, n->mac, 6);
	put_le16(cfg + 6, S_LINK_UP);		/* status */
	put_le16(cfg + 8, 1);			/* max_virtqueue_pairs */
	memcpy(data, cfg + off, len);
}

/* Copies len bytes from src to bytes [skip, skip + len) of iov[0, n). */
static void iov_write(const struct iovec *iov, unsigned n, size_t skip, const void *src,
		      size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l = l - skip < len - done ? l - skip : len - done;
		memcpy((uint8_t *)iov[i].iov_base + skip, (const uint8_t *)src + done, l);
		done += l;
		skip = 0;
	}
}

/* Sends one transmit chain to the TAP. A chain that is no frame (writable
 * buffers, or shorter than the header) is an error of the driver's, a
 * frame the TAP refuses (a bad GSO header, no room: EAGAIN) is dropped, as a
 * wire would; the chain goes back to the driver either way. */
static void net_send(struct net *n, const struct iovec *iov, const struct vmm_virtq_chain *c)
{
	ssize_t r;

	if (c->nin || c->out_len < HDR_LEN) {
		n->tx_errors++;
		log_debug("virtio-net %s: transmit chain with %u writable buffers, %u bytes: "
			  "not sent", n->tap, c->nin, c->out_len);
		return;
	}
	do
		r = writev(n->fd, iov, (int)c->nout);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		/* EAGAIN: only with a send buffer limit on the TAP (none by
		 * default). Holding the chain for EPOLLOUT would stall the queue
		 * behind it; dropping is what a congested wire does, and TCP
		 * resends. */
		if (!n->tx_dropped++)
			log_warn("virtio-net %s: TAP write of %u bytes: %s; such frames are "
				 "dropped (counted)", n->tap, c->out_len, strerror(errno));
		else
			log_debug("virtio-net %s: TAP write of %u bytes: %s", n->tap, c->out_len,
				  strerror(errno));
		return;
	}
	n->tx_frames++;
	n->tx_bytes += (uint64_t)r - HDR_LEN;
	if ((size_t)r - HDR_LEN > n->tx_max)
		n->tx_max = (size_t)r - HDR_LEN;
}

/* Sends what the driver queued, up to BUDGET chains. Returns 0 when the
 * queue is empty (notifications on), 1 when chains are left (call again),
 * -1 once the queue is broken. */
static int net_tx(struct net *n)
{
	struct vmm_virtq *vq = vmm_virtio_queue(n->vio, TXQ);
	struct iovec iov[MAX_IOV];
	struct vmm_virtq_chain c;
	unsigned done = 0;
	int rc;

	do {
		vmm_virtq_disable_notify(vq);
		while ((rc = vmm_virtq_pop(vq, iov, MAX_IOV, &c)) == 1) {
			net_send(n, iov, &c);
			vmm_virtq_push(vq, c.head, 0);
			if (++done == BUDGET) {
				vmm_virtio_used(n->vio, TXQ);
				return 1;
			}
		}
		vmm_virtio_used(n->vio, TXQ);
		if (rc < 0) {
			vmm_virtio_needs_reset(n->vio, TXQ, "transmit");
			return -1;
		}
	} while (vmm_virtq_enable_notify(vq));
	return 0;
}

/*
 * Takes receive chains until the room for one frame is held (one chain
 * without MRG_RXBUF; rx_need bytes with it, or every slot of the ring).
 * Chains that are no receive buffer go back unused and count in *pushed.
 * Returns 1 when the room is held, 0 when the ring ran dry first
 * (notifications on: the driver kicks when it adds buffers), -1 once the
 * queue is broken.
 */
static int rx_gather(struct net *n, struct vmm_virtq *vq, unsigned *pushed)
{
	while (!n->rx_nheld || (n->mrg && n->rx_room < n->rx_need)) {
		struct vmm_virtq_chain c;
		int rc;

		if (n->rx_nheld == vmm_virtq_size(vq) || n->rx_niov + MAX_IOV > RX_IOV_MAX)
			return 1;	/* no more to be had: what is held is all the room */
		rc = vmm_virtq_pop(vq, n->rx_iov + n->rx_niov, RX_IOV_MAX - n->rx_niov, &c);
		if (rc == 0 && vmm_virtq_enable_notify(vq)) {
			vmm_virtq_disable_notify(vq);
			continue;
		}
		if (rc == 0)
			return 0;
		if (rc < 0) {
			vmm_virtio_needs_reset(n->vio, RXQ, "receive");
			return -1;
		}
		if (c.nout || c.in_len < HDR_LEN) {
			n->rx_errors++;
			log_debug("virtio-net %s: receive chain with %u readable buffers, %u "
				  "writable bytes: returned unused", n->tap, c.nout, c.in_len);
			vmm_virtq_push(vq, c.head, 0);
			(*pushed)++;
			continue;
		}
		n->rx_held[n->rx_nheld].head = c.head;
		n->rx_held[n->rx_nheld].niov = c.nin;
		n->rx_held[n->rx_nheld].len = c.in_len;
		n->rx_nheld++;
		n->rx_niov += c.nin;
		n->rx_room += c.in_len;
	}
	return 1;
}

/* Gives the driver the len-byte frame (header included) just read into the
 * held chains: the first ones it fills, in order, num_buffers set in the
 * first; the rest stay held. Returns how many chains went back. */
static unsigned rx_deliver(struct net *n, struct vmm_virtq *vq, uint32_t len)
{
	unsigned k = 0, niov = 0;
	uint32_t left = len;
	uint8_t count[2];

	while (left) {
		uint32_t l = left < n->rx_held[k].len ? left : n->rx_held[k].len;

		niov += n->rx_held[k++].niov;
		left -= l;
	}
	put_le16(count, (uint16_t)k);
	iov_write(n->rx_iov, n->rx_held[0].niov, NUM_BUFFERS_OFF, count, sizeof(count));
	left = len;
	for (unsigned i = 0; i < k; i++) {
		uint32_t l = left < n->rx_held[i].len ? left : n->rx_held[i].len;

		vmm_virtq_push(vq, n->rx_held[i].head, l);
		n->rx_room -= n->rx_held[i].len;
		left -= l;
	}
	n->rx_nheld -= k;
	n->rx_niov -= niov;
	memmove(n->rx_held, n->rx_held + k, n->rx_nheld * sizeof(n->rx_held[0]));
	memmove(n->rx_iov, n->rx_iov + niov, n->rx_niov * sizeof(n->rx_iov[0]));
	return k;
}

/*
 * Moves frames from the TAP into receive chains, up to BUDGET frames.
 * Returns 0 when waiting: for the TAP (rx_ready: the room is held) or for
 * the driver's kick (the ring ran dry; notifications on); 1 when it should
 * be called again; -1 when receiving stopped until the device is reset (the
 * driver broke the queue, or the TAP itself fails).
 */
static int net_rx(struct net *n)
{
	struct vmm_virtq *vq = vmm_virtio_queue(n->vio, RXQ);
	unsigned work = 0, pushed = 0;
	int ret = 0;

	vmm_virtq_disable_notify(vq);
	n->rx_ready = false;
	for (;;) {
		unsigned k;
		ssize_t r;

		if (work++ == BUDGET) {
			ret = 1;
			break;
		}
		ret = rx_gather(n, vq, &pushed);
		if (ret <= 0)
			break;
		ret = 0;
		r = readv(n->fd, n->rx_iov, (int)n->rx_niov);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			n->rx_ready = true;	/* the TAP is empty: poll it */
			break;
		}
		if (r < 0) {
			/* Not the guest's doing and not transient (the TAP was
			 * deleted: EBADFD, and poll reports an error for ever). */
			log_warn("virtio-net %s: TAP read: %s; receiving stops until the guest "
				 "resets the device", n->tap, strerror(errno));
			ret = -1;
			break;
		}
		if ((size_t)r > n->rx_room || (size_t)r < HDR_LEN) {
			/* The TAP reports a frame's whole length even when it
			 * had to cut it to fit: drop it, keep the chains. */
			n->rx_dropped++;
			log_debug("virtio-net %s: %zd-byte frame for %llu bytes of room: dropped",
				  n->tap, r, (unsigned long long)n->rx_room);
			continue;
		}
		k = rx_deliver(n, vq, (uint32_t)r);
		pushed += k;
		n->rx_bufs += k;
		n->rx_frames++;
		n->rx_bytes += (uint64_t)r - HDR_LEN;
		if ((size_t)r - HDR_LEN > n->rx_max)
			n->rx_max = (size_t)r - HDR_LEN;
	}
	if (pushed)
		vmm_virtio_used(n->vio, RXQ);
	return ret;
}

/* The device's thread (its worker's run): serves both queues and the TAP
 * until the worker's stop fd says stop. */
static void net_thread(void *arg)
{
	struct net *n = arg;
	struct vmm_virtq *rxq = vmm_virtio_queue(n->vio, RXQ), *txq = vmm_virtio_queue(n->vio, TXQ);
	int kick[2] = { vmm_virtio_kick_fd(n->vio, RXQ), vmm_virtio_kick_fd(n->vio, TXQ) };
	int stop = vmm_virtio_worker_stop_fd(&n->worker), ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN }, evs[4];
	bool rx_live = true, tx_live = true, tap_polled = false;

	for (unsigned i = 0; i < 2; i++) {
		ev.data.fd = kick[i];
		epoll_ctl(ep, EPOLL_CTL_ADD, kick[i], &ev);
	}
	ev.data.fd = stop;
	epoll_ctl(ep, EPOLL_CTL_ADD, stop, &ev);
	for (;;) {
		bool more = false;
		int nev, rc;

		if (rx_live && vmm_virtq_enabled(rxq)) {
			rc = net_rx(n);
			rx_live = rc >= 0;
			more |= rc > 0;
		}
		if (tx_live && vmm_virtq_enabled(txq)) {
			rc = net_tx(n);
			tx_live = rc >= 0;
			more |= rc > 0;
		}
		/* The TAP is in the set only while a receive chain waits for a
		 * frame (out of the set, not just without EPOLLIN: an error on
		 * it would be reported regardless). */
		if (rx_live && n->rx_ready) {
			if (!tap_polled) {
				ev.data.fd = n->fd;
				epoll_ctl(ep, EPOLL_CTL_ADD, n->fd, &ev);
				tap_polled = true;
			}
		} else if (tap_polled) {
			epoll_ctl(ep, EPOLL_CTL_DEL, n->fd, NULL);
			tap_polled = false;
		}
		nev = epoll_wait(ep, evs, 4, more ? 0 : -1);
		if (nev < 0 && errno != EINTR)
			break;
		for (int i = 0; i < nev; i++) {
			uint64_t v;

			if (evs[i].data.fd == stop)
				goto out;
			if (evs[i].data.fd == kick[0] || evs[i].data.fd == kick[1])
				while (read(evs[i].data.fd, &v, sizeof(v)) > 0)
					;
		}
	}
out:
	close(ep);
}

/* The TAP's MTU now (the largest plain frame it hands over), at least 1500. */
static unsigned net_tap_mtu(const struct net *n)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unsigned mtu = 1500;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", n->tap);
	if (s >= 0 && ioctl(s, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 1500)
		mtu = (unsigned)ifr.ifr_mtu;
	if (s >= 0)
		close(s);
	return mtu;
}

static int net_start(void *dev, uint64_t features)
{
	struct net *n = dev;
	unsigned off = 0;
	uint8_t junk[64];
	int rc;

	/* What the TAP may hand us: only what the driver takes (the TSO and
	 * ECN bits mean nothing to it without CSUM). */
	if (features & 1ull << NET_F_GUEST_CSUM) {
		off |= TUN_F_CSUM;
		if (features & 1ull << NET_F_GUEST_TSO4)
			off |= TUN_F_TSO4;
		if (features & 1ull << NET_F_GUEST_TSO6)
			off |= TUN_F_TSO6;
		if ((features & 1ull << NET_F_GUEST_ECN) && (off & (TUN_F_TSO4 | TUN_F_TSO6)))
			off |= TUN_F_TSO_ECN;
	}
	if (ioctl(n->fd, TUNSETOFFLOAD, off) < 0) {
		rc = -errno;
		log_err("virtio-net %s: TUNSETOFFLOAD 0x%x: %s", n->tap, off, strerror(-rc));
		return rc;
	}
	/* Frames queued while no driver listened are stale, and may not fit
	 * the offloads just set: a short read consumes (and drops) each. */
	while (read(n->fd, junk, sizeof(junk)) >= 0)
		;
	n->mrg = features & 1ull << NET_F_MRG_RXBUF;
	n->rx_need = HDR_LEN + (off & (TUN_F_TSO4 | TUN_F_TSO6) ? GSO_FRAME_MAX
								 : net_tap_mtu(n) + ETH_OVERHEAD);
	n->rx_nheld = n->rx_niov = 0;
	n->rx_room = 0;
	n->rx_ready = false;
	n->rx_frames = n->rx_bufs = n->rx_bytes = n->rx_dropped = n->rx_errors = 0;
	n->tx_frames = n->tx_bytes = n->tx_dropped = n->tx_errors = 0;
	n->rx_max = n->tx_max = 0;
	return vmm_virtio_worker_start(&n->worker);
}

static int net_stop(void *dev, int timeout_ms)
{
	struct net *n = dev;
	int rc = vmm_virtio_worker_stop(&n->worker, timeout_ms);

	if (rc)
		return rc;	/* the counters are still the thread's */
	log_info("virtio-net %s: rx %llu frames in %llu buffers %llu bytes (largest %zu; %llu "
		 "dropped, %llu bad chains), tx %llu frames %llu bytes (largest %zu; %llu dropped, %llu bad chains)",
		 n->tap, (unsigned long long)n->rx_frames, (unsigned long long)n->rx_bufs,
		 (unsigned long long)n->rx_bytes,
		 n->rx_max, (unsigned long long)n->rx_dropped, (unsigned long long)n->rx_errors,
		 (unsigned long long)n->tx_frames, (unsigned long long)n->tx_bytes, n->tx_max,
		 (unsigned long long)n->tx_dropped, (unsigned long long)n->tx_errors);
	return 0;
}

static const struct vmm_virtio_ops net_ops = {
	.name = "virtio-net",
	.device_id = 1,
	.class_code = 0x020000,
	.nqueues = 2,
	.queue_max = QUEUE_SIZE,
	.cfg_size = CFG_SIZE,
	.cfg_read = net_cfg_read,
	.start = net_start,
	.stop = net_stop,
};

static void net_free(void *dev)
{
	struct net *n = dev;

	if (vmm_virtio_destroy(n->vio))
		return;		/* its thread still runs, on n and the TAP */
	if (n->fd >= 0)
		close(n->fd);
	vmm_virtio_worker_fini(&n->worker);
	free(n);
}

/* A locally administered unicast 52:54:00:xx:xx:xx from an FNV-1a hash of
 * this host's name and the TAP's: stable across runs, distinct for distinct
 * TAPs and hosts (mostly: give mac= when it matters). The host's name is in
 * it because VMs on two hosts often use the same TAP name on one segment. */
static void net_mac_from_name(const char *name, uint8_t mac[6])
{
	uint32_t h = 2166136261u;
	char host[256] = "";

	gethostname(host, sizeof(host) - 1);
	for (const char *p = host; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

static int net_open(struct net *n, const struct vmm_net_config *c)
{
	struct ifreq ifr;
	int hdr = HDR_LEN, rc;
	const char *hint = "";

	snprintf(n->tap, sizeof(n->tap), "%s", c->tap);
	n->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (n->fd < 0) {
		rc = -errno;
		fprintf(stderr, "vmm: --net tap=%s: /dev/net/tun: %s\n", c->tap, strerror(-rc));
		return rc;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->tap);
	if (ioctl(n->fd, TUNSETIFF, &ifr) < 0) {
		rc = -errno;
		if (rc == -EINVAL)
			hint = " (an interface of that name that is not a single-queue TAP?)";
		else if (rc == -EBUSY)
			hint = " (another process has it open?)";
		else if (rc == -EPERM)
			hint = " (creating or attaching needs CAP_NET_ADMIN or the TAP's owner)";
		fprintf(stderr, "vmm: --net tap=%s: cannot attach to the TAP interface: %s%s\n",
			c->tap, strerror(-rc), hint);
		return rc;
	}
	/* Until a driver says what it takes, plain frames only. */
	if (ioctl(n->fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl(n->fd, TUNSETOFFLOAD, 0) < 0) {
		rc = -errno;
		fprintf(stderr, "vmm: --net tap=%s: cannot set up the TAP's virtio header: %s\n",
			c->tap, strerror(-rc));
		return rc;
	}
	if (c->mac_set)
		memcpy(n->mac, c->mac, 6);
	else
		net_mac_from_name(c->tap, n->mac);
	log_info("virtio-net %s: MAC %02x:%02x:%02x:%02x:%02x:%02x", n->tap, n->mac[0], n->mac[1],
		 n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
	return 0;
}

/* The device for --net number i. */
static int net_create(struct vmm *vm, unsigned i, void **dev)
{
	struct net *n = calloc(1, sizeof(*n));
	int rc;

	if (!n)
		return -ENOMEM;
	n->vm = vm;
	n->fd = -1;
	rc = vmm_virtio_worker_init(&n->worker, "virtio-net", n->tap, net_thread, n);
	if (!rc) {
		rc = net_open(n, &vm->cfg->nets[i]);
		vm->init_error_reported = rc != 0;	/* net_open said why */
	}
	if (!rc)
		rc = vmm_virtio_create(vm, &net_ops, n, NET_FEATURES, &n->vio);
	if (rc) {
		net_free(n);
		return rc;
	}
	*dev = n;
	return 0;
}

/* One virtio-net device per --net, in the order given. */
static int net_set_init(struct vmm *vm, void **state)
{
	return vmm_virtio_set_init(vm, vm->cfg->nnets, net_create, net_free, state);
}

const struct vmm_device_ops vmm_virtio_net_ops = {
	.name = "virtio-net",
	.init = net_set_init,
	.fini = vmm_virtio_set_fini,
};

/*
 * The public face of ept (ept.h): creating the region and registering it with
 * userfaultfd, the handler thread's event loop, and the commands other threads
 * send it (flush, drop, stats, stop) through an eventfd and a condition
 * variable.
 */
#include "ept/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <jansson.h>
#include <xxhash.h>

#include "common/log.h"
#include "common/util.h"

#define DEFAULT_PREFETCH_DEPTH 32
#define DEFAULT_TIMEOUT_MS 5000
#define MIN_CACHE_PAGES 64

/* userfaultfd(2), falling back to /dev/userfaultfd (6.1+) when the syscall
 * is restricted for this user. Never UFFD_USER_MODE_ONLY: KVM faults on guest
 * memory from kernel mode. */
static int uffd_open(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0 && (errno == EPERM || errno == ENOSYS)) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

		if (dev >= 0) {
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
			close(dev);
		}
	}
	return fd;
}

static int region_setup(struct ept *e)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)e->base, .len = e->size },
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};

	/* Stock kernels default THP to "always": a 2 MiB fault would defeat a
	 * 4 KiB cache. The region is also no business of fork() or core dumps. */
	madvise(e->base, e->size, MADV_NOHUGEPAGE);
	madvise(e->base, e->size, MADV_DONTFORK);
	madvise(e->base, e->size, MADV_DONTDUMP);
	e->uffd = uffd_open();
	if (e->uffd < 0) {
		log_err("userfaultfd unavailable (%s): run as root, or set "
			"vm.unprivileged_userfaultfd=1, or grant access to /dev/userfaultfd",
			strerror(errno));
		return -ENOSYS;
	}
	if (ioctl(e->uffd, UFFDIO_API, &api) < 0) {
		log_err("UFFDIO_API: %s", strerror(errno));
		return -ENOSYS;
	}
	if (ioctl(e->uffd, UFFDIO_REGISTER, &reg) < 0) {
		log_err("registering the region with userfaultfd (missing + write-protect): %s",
			strerror(errno));
		return -ENOSYS;
	}
	return 0;
}

static int validate(const struct ept_config *cfg)
{
	if (!cfg->mem_size || cfg->mem_size % EPT_PAGE_SIZE || cfg->cache_size % EPT_PAGE_SIZE) {
		log_err("memory and cache sizes must be non-zero multiples of 4 KiB");
		return -EINVAL;
	}
	if (cfg->cache_size < MIN_CACHE_PAGES * EPT_PAGE_SIZE) {
		log_err("the cache must hold at least %d pages", MIN_CACHE_PAGES);
		return -EINVAL;
	}
	if (cfg->cache_size / EPT_PAGE_SIZE > (1u << 30)) {
		log_err("cache too large");
		return -EINVAL;
	}
	if (cfg->policy && !ept_policy_find(cfg->policy)) {
		log_err("unknown replacement policy '%s'", cfg->policy);
		return -EINVAL;
	}
	return 0;
}

int ept_create(const struct ept_config *cfg, struct ept **out)
{
	struct epoll_event ev = { .events = EPOLLIN };
	uint64_t cache_pages;
	struct ept *e;
	int ret;

	ret = validate(cfg);
	if (ret)
		return ret;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->uffd = e->evfd = e->epfd = -1;
	pthread_mutex_init(&e->cmd_lock, NULL);
	pthread_cond_init(&e->cmd_cond, NULL);
	e->size = cfg->mem_size;
	e->npages = cfg->mem_size / EPT_PAGE_SIZE;
	cache_pages = MIN(cfg->cache_size, cfg->mem_size) / EPT_PAGE_SIZE;
	if (cache_pages < MIN_CACHE_PAGES)
		cache_pages = MIN_CACHE_PAGES;
	e->prefetch_on = cfg->prefetch;
	e->test_delay_us = cfg->test_delay_us;
	e->test_delay_rng = 0x9e3779b97f4a7c15ull; /* any non-zero seed */
	e->on_fatal = cfg->on_fatal;
	e->fatal_ctx = cfg->fatal_ctx;
	e->pops = ept_policy_find(cfg->policy ? cfg->policy : "clock");
	ept_prefetch_init(&e->pf, cfg->prefetch_depth ? cfg->prefetch_depth
						      : DEFAULT_PREFETCH_DEPTH);
	{
		static const uint8_t zero[EPT_PAGE_SIZE];

		e->zero_sum = XXH3_64bits(zero, EPT_PAGE_SIZE);
	}
	e->base = mmap(NULL, e->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (e->base == MAP_FAILED) {
		e->base = NULL;
		ret = -ENOMEM;
		goto destroy;
	}
	ret = region_setup(e);
	if (ret)
		goto destroy;
	ret = ept_frames_init(&e->ft, (uint32_t)cache_pages, e->npages);
	if (!ret)
		ret = e->pops->create((unsigned)cache_pages, &e->pol);
	e->scratch = calloc(cache_pages, sizeof(*e->scratch));
	if (ret || !e->scratch) {
		ret = -ENOMEM;
		goto destroy;
	}
	e->st.capacity_pages = cache_pages;
	/* Debugging aid, off by default: one hash per page of the region (it
	 * breaks the metadata bound on purpose), checked on every fetch. */
	if (getenv("LEGATO_EPT_VERIFY") && strcmp(getenv("LEGATO_EPT_VERIFY"), "1") == 0) {
		e->verify = calloc(e->npages, sizeof(*e->verify));
		if (!e->verify) {
			ret = -ENOMEM;
			goto destroy;
		}
		log_warn("LEGATO_EPT_VERIFY=1: checking every fetched page (debug mode)");
	}
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	e->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->epfd < 0 || e->evfd < 0) {
		ret = -errno;
		goto destroy;
	}
	ev.data.ptr = &e->uffd;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->uffd, &ev))
		goto epoll_failed;
	ev.data.ptr = &e->evfd;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->evfd, &ev))
		goto epoll_failed;
	ret = ept_remote_open(e, &(struct ept_config){
		.extents = cfg->extents, .nextents = cfg->nextents, .key = cfg->key,
		.timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS });
	if (ret)
		goto destroy;
	*out = e;
	return 0;

epoll_failed:
	ret = -errno;
destroy:
	ept_destroy(e);
	return ret;
}

void *ept_base(const struct ept *e)
{
	return e->base;
}

uint64_t ept_mem_size(const struct ept *e)
{
	return e->size;
}

/* Finishes the command in progress (called on the handler thread). */
static void cmd_complete(struct ept *e, int result)
{
	pthread_mutex_lock(&e->cmd_lock);
	e->cmd_result = result;
	e->cmd_done = true;
	pthread_cond_broadcast(&e->cmd_cond);
	pthread_mutex_unlock(&e->cmd_lock);
}

void ept_flush_progress(struct ept *e)
{
	if (!e->flush_cmd)
		return;
	if (e->failed) {
		e->flush_cmd = 0;
		cmd_complete(e, -EIO);
		return;
	}
	if (e->writes_inflight)
		return;
	if (e->flush_cmd == CMD_DROP) {
		/* Pages fetched meanwhile (prefetches in flight) must go too. */
		if (e->reads_inflight)
			return;
		if (e->ft.nfree != e->ft.nframes) {
			ept_drop_resident(e);
			if (e->writes_inflight)
				return;
		}
	}
	e->flush_cmd = 0;
	cmd_complete(e, 0);
}

static void snapshot_stats(struct ept *e, struct ept_stats *out)
{
	*out = e->st;
	out->resident = e->ft.nframes - e->ft.nfree;
	out->writeback_inflight = e->writes_inflight;
}

static void take_command(struct ept *e)
{
	uint64_t v;
	int cmd;

	if (read(e->evfd, &v, sizeof(v)) < 0)
		return;
	pthread_mutex_lock(&e->cmd_lock);
	cmd = e->cmd;
	if (cmd == CMD_STATS)
		snapshot_stats(e, &e->cmd_stats);
	pthread_mutex_unlock(&e->cmd_lock);
	switch (cmd) {
	case CMD_STATS:
		cmd_complete(e, 0);
		break;
	case CMD_FLUSH:
	case CMD_DROP:
		if (e->failed)
			cmd_complete(e, -EIO);
		else
			ept_flush_begin(e, cmd);
		break;
	case CMD_STOP:
		e->stopping = true;
		break;
	}
}

#define SPIN_BUDGET_NS 40000

/* Returns true when a reply arrived within the spin budget (processed). */
static bool spin_for_replies(struct ept *e)
{
	uint64_t end = now_ns() + SPIN_BUDGET_NS;

	do {
		if (ept_remote_poll(e))
			return true;
		sched_yield();
	} while (now_ns() < end);
	return false;
}

/* One turn: wait, then faults, completions, commands, deferred work, send. */
static void *handler_main(void *arg)
{
	struct ept *e = arg;
	struct epoll_event events[16];
	int delay_ms = -1;	/* until the next delayed completion (test hook) */
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		int timeout = delay_ms, n;

		/* Wake up now and then while requests are out, to time them out. */
		if (e->reads_inflight || e->writes_inflight)
			timeout = timeout < 0 || timeout > 100 ? 100 : timeout;
		if (e->stopping && e->reads_inflight == 0 && e->writes_inflight == 0)
			break;
		/* Fetches out and nothing else to do: poll the servers for a
		 * short budget before sleeping. A reply caught spinning saves a
		 * thread wake-up, which here costs as much as the round trip;
		 * an idle engine never spins. */
		if (e->reads_inflight && spin_for_replies(e))
			timeout = 0;
		n = epoll_wait(e->epfd, events, ARRAY_SIZE(events), timeout);
		for (int i = 0; i < n; i++) {
			if (events[i].data.ptr == &e->uffd && !e->failed)
				ept_read_faults(e);
			else if (events[i].data.ptr == &e->evfd)
				take_command(e);
		}
		/* Completions (delayed ones included) start more work, and
		 * sending may bring replies in with it (no longer signalled by
		 * epoll): go round until nothing more completes. */
		do {
			delay_ms = ept_remote_delayed(e);
			if (!e->failed) {
				ept_retry_deferred(e);
				ept_sample(e);
			}
			ept_remote_submit(e);
			ept_flush_progress(e);
		} while (ept_remote_poll(e) || delay_ms == 0);
		if (e->failed) {
			/* Serve nothing more; leave faulting threads blocked. */
			epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->uffd, NULL);
			if (e->stopping)
				break;
		}
	}
	cmd_complete(e, 0);
	return NULL;
}

int ept_start(struct ept *e)
{
	int ret = pthread_create(&e->thread, NULL, handler_main, e);

	if (ret)
		return -ret;
	/* Named by the creator, so it is named before anyone looks. */
	pthread_setname_np(e->thread, "ept-handler");
	e->started = true;
	return 0;
}

/* Sends cmd to the handler and waits for it to finish. */
static int run_command(struct ept *e, int cmd, struct ept_stats *stats)
{
	uint64_t one = 1;
	int ret;

	pthread_mutex_lock(&e->cmd_lock);
	while (e->cmd != CMD_NONE)
		pthread_cond_wait(&e->cmd_cond, &e->cmd_lock);
	e->cmd = cmd;
	e->cmd_done = false;
	pthread_mutex_unlock(&e->cmd_lock);
	if (write(e->evfd, &one, sizeof(one)) < 0)
		abort(); /* an eventfd write cannot fail short of overflow */
	pthread_mutex_lock(&e->cmd_lock);
	while (!e->cmd_done)
		pthread_cond_wait(&e->cmd_cond, &e->cmd_lock);
	ret = e->cmd_result;
	if (stats)
		*stats = e->cmd_stats;
	e->cmd = CMD_NONE;
	pthread_cond_broadcast(&e->cmd_cond);
	pthread_mutex_unlock(&e->cmd_lock);
	return ret;
}

int ept_flush(struct ept *e)
{
	return e->started ? run_command(e, CMD_FLUSH, NULL) : -EINVAL;
}

int ept_drop(struct ept *e)
{
	return e->started ? run_command(e, CMD_DROP, NULL) : -EINVAL;
}

void ept_get_stats(struct ept *e, struct ept_stats *out)
{
	if (e->started)
		run_command(e, CMD_STATS, out);
	else
		snapshot_stats(e, out);
}

const char *ept_error(struct ept *e)
{
	const char *msg;

	pthread_mutex_lock(&e->cmd_lock);
	msg = e->fatal ? e->fatal_msg : NULL;
	pthread_mutex_unlock(&e->cmd_lock);
	return msg;
}

void ept_stop(struct ept *e)
{
	if (!e->started)
		return;
	run_command(e, CMD_STOP, NULL);
	pthread_join(e->thread, NULL);
	e->started = false;
}

void ept_destroy(struct ept *e)
{
	if (!e)
		return;
	ept_stop(e);
	ept_remote_close(e);
	if (e->pol)
		e->pops->destroy(e->pol);
	ept_frames_free(&e->ft);
	while (e->read_free) {
		struct ept_read *rd = e->read_free;

		e->read_free = rd->next_free;
		free(rd);
	}
	while (e->write_free) {
		struct ept_write *wr = e->write_free;

		e->write_free = wr->next_free;
		free(wr);
	}
	free(e->deferred);
	free(e->deferred_t0);
	free(e->scratch);
	free(e->verify);
	if (e->epfd >= 0)
		close(e->epfd);
	if (e->evfd >= 0)
		close(e->evfd);
	/* Only now, with nothing running, may the registration go. */
	if (e->uffd >= 0)
		close(e->uffd);
	if (e->base)
		munmap(e->base, e->size);
	pthread_mutex_destroy(&e->cmd_lock);
	pthread_cond_destroy(&e->cmd_cond);
	free(e);
}

static json_t *hist_json(const struct hist *h)
{
	return json_pack("{s:I,s:I,s:I,s:I}", "count", (json_int_t)hist_total(h), "p50_ns",
			 (json_int_t)hist_quantile(h, 0.5), "p90_ns",
			 (json_int_t)hist_quantile(h, 0.9), "p99_ns",
			 (json_int_t)hist_quantile(h, 0.99));
}

char *ept_stats_json(const struct ept_stats *s)
{
	json_t *o = json_object();
	char *text;
#define FIELD(name) json_object_set_new(o, #name, json_integer((json_int_t)s->name))
	FIELD(faults_missing);
	FIELD(faults_wp);
	FIELD(faults_zero_fill);
	FIELD(faults_remote);
	FIELD(faults_wb_hit);
	FIELD(faults_inactive_hit);
	FIELD(faults_in_flight);
	FIELD(pages_fetched);
	FIELD(pages_written_back);
	FIELD(skipped_clean);
	FIELD(skipped_zero);
	FIELD(prefetched);
	FIELD(prefetch_hits);
	FIELD(evictions);
	FIELD(resident);
	FIELD(resident_peak);
	FIELD(capacity_pages);
	FIELD(writeback_inflight);
	FIELD(servers_failed);
#undef FIELD
	json_object_set_new(o, "latency_zero_fill", hist_json(&s->lat_zero_fill));
	json_object_set_new(o, "latency_remote", hist_json(&s->lat_remote));
	json_object_set_new(o, "latency_wb_hit", hist_json(&s->lat_wb_hit));
	json_object_set_new(o, "latency_inactive_hit", hist_json(&s->lat_inactive_hit));
	text = json_dumps(o, JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}

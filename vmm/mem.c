/*
 * Guest RAM. With --no-remote it is plain anonymous memory. Otherwise it is an
 * ept region (the virtual cache): this file creates one region per memory
 * server with the client library (the guest-physical space is split into equal
 * page-aligned extents, one per server, in the order given), hands the extents
 * and their capability tokens to ept, and deletes the regions at exit. With
 * --local it first spawns a private memory server (posix_spawn: never fork
 * with a userfaultfd region mapped) on loopback port 0 and reads its URL from
 * --ready-file.
 *
 * Whatever the mode, guest RAM is one contiguous host mapping of mem_size
 * bytes; KVM slots map guest-physical ranges onto it around the MMIO hole.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/log.h"
#include "common/util.h"
#include "ept/ept.h"
#include "memserver/client.h"
#include "vmm/vmm.h"

extern char **environ;

void *vmm_gpa(const struct vmm_mem *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->nslots; i++) {
		const struct vmm_slot *s = &mem->slots[i];

		if (gpa >= s->gpa && len <= s->size && gpa - s->gpa <= s->size - len)
			return mem->base + s->offset + (gpa - s->gpa);
	}
	return NULL;
}

static void memserver_path(const struct vmm_config *cfg, char *out, size_t len)
{
	char self[2048];
	ssize_t n;
	char *slash;

	if (cfg->memserver_bin) {
		snprintf(out, len, "%s", cfg->memserver_bin);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			snprintf(out, len, "%s/memserver", self);
			if (access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, len, "memserver");
}

/* Spawns the private memory server; writes its URL into url. */
static int spawn_memserver(const struct vmm_config *cfg, struct vmm_mem *mem, char *url,
			   size_t url_len)
{
	char bin[4096], ready[128], cap[32];
	char *argv[] = { bin, "--listen", "tcp://127.0.0.1:0", "--capacity", cap,
			 "--ready-file", ready, "--log-level", "warn", NULL, NULL, NULL };
	posix_spawnattr_t attr;
	sigset_t none;
	pid_t pid;
	int rc, status;

	memserver_path(cfg, bin, sizeof(bin));
	snprintf(mem->spawn_dir, sizeof(mem->spawn_dir), "/tmp/legato-vmm.XXXXXX");
	if (!mkdtemp(mem->spawn_dir)) {
		mem->spawn_dir[0] = 0;
		return -errno;
	}
	snprintf(ready, sizeof(ready), "%s/ready", mem->spawn_dir);
	snprintf(cap, sizeof(cap), "%llu", (unsigned long long)cfg->mem_size);
	if (cfg->key_file) { /* a keyed client talks only to a keyed server */
		argv[9] = "--auth-key-file";
		argv[10] = (char *)cfg->key_file;
	}
	/* The child starts with no signals blocked, whatever our mask is. */
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&attr, 0);
	rc = posix_spawnp(&pid, bin, NULL, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	if (rc) {
		fprintf(stderr, "vmm: cannot start the local memory server '%s': %s\n", bin,
			strerror(rc));
		return -rc;
	}
	mem->spawned_pid = pid;
	for (int i = 0; i < 1000; i++) {	/* 10 s */
		uint8_t *buf;
		size_t n;

		if (read_file(ready, url_len - 1, &buf, &n) == 0 && n > 0) {
			memcpy(url, buf, n);
			url[n] = 0;
			free(buf);
			url[strcspn(url, "\r\n")] = 0;
			log_info("local memory server %s (pid %d)", url, (int)pid);
			return 0;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			mem->spawned_pid = 0;
			fprintf(stderr, "vmm: the local memory server '%s' exited during start-up\n",
				bin);
			return -ECHILD;
		}
		usleep(10000);
	}
	fprintf(stderr, "vmm: the local memory server did not become ready in 10 s\n");
	return -ETIMEDOUT;
}

static int create_regions(const struct vmm_config *cfg, const char *const *urls, unsigned n,
			  const struct auth_key *key, struct vmm_mem *mem,
			  struct ept_extent *ext)
{
	uint64_t npages = cfg->mem_size / EPT_PAGE_SIZE, first = 0;
	struct ms_client *c;
	int rc;

	for (unsigned i = 0; i < n; i++) {
		uint64_t count = npages / n + (i < npages % n ? 1 : 0), id;

		rc = ms_client_connect(urls[i], key, 5000, &c);
		if (rc) {
			fprintf(stderr, "vmm: memory server %s: cannot connect: %s\n", urls[i],
				strerror(-rc));
			return rc;
		}
		do {
			auth_random(&id, sizeof(id));
			id &= 0x7fffffffffffffffull;
			rc = ms_client_create(c, id, count * EPT_PAGE_SIZE, mem->region_tokens[i]);
		} while (rc == -EEXIST);
		ms_client_close(c);
		if (rc) {
			fprintf(stderr, "vmm: memory server %s: cannot create a %llu MiB region: %s\n",
				urls[i], (unsigned long long)(count * EPT_PAGE_SIZE >> 20),
				strerror(-rc));
			return rc;
		}
		mem->region_urls[i] = strdup(urls[i]);
		mem->region_ids[i] = id;
		mem->nregions = i + 1;
		ext[i] = (struct ept_extent){ .first_page = first, .npages = count, .nreplicas = 1 };
		ext[i].replicas[0].url = mem->region_urls[i];
		ext[i].replicas[0].region = id;
		memcpy(ext[i].replicas[0].token, mem->region_tokens[i], MS_TOKEN_LEN);
		ext[i].replicas[0].region_page = 0;
		first += count;
	}
	return 0;
}

int vmm_mem_create(const struct vmm_config *cfg, void (*on_fatal)(void *, const char *),
		   void *fatal_ctx, struct vmm_mem *mem)
{
	struct ept_extent ext[VMM_MAX_MEMSERVERS];
	const char *urls[VMM_MAX_MEMSERVERS];
	static struct auth_key key;
	const struct auth_key *keyp = NULL;
	char local_url[256];
	struct ept_config ec;
	unsigned n = 0;
	int rc;

	memset(mem, 0, sizeof(*mem));
	mem->mode = cfg->mode;
	mem->size = cfg->mem_size;
	mem->nslots = vmm_mem_layout(cfg->mem_size, mem->slots);
	if (cfg->mode == VMM_MODE_NO_REMOTE) {
		mem->base = mmap(NULL, cfg->mem_size, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (mem->base == MAP_FAILED) {
			rc = -errno;
			mem->base = NULL;
			fprintf(stderr, "vmm: cannot map %llu MiB of guest RAM: %s\n",
				(unsigned long long)(cfg->mem_size >> 20), strerror(-rc));
			return rc;
		}
		madvise(mem->base, cfg->mem_size, MADV_DONTFORK);
		return 0;
	}
	if (cfg->key_file) {
		rc = auth_key_load(cfg->key_file, &key);
		if (rc) {
			fprintf(stderr, "vmm: --key-file %s: %s\n", cfg->key_file, strerror(-rc));
			return rc;
		}
		keyp = &key;
		mem->key = keyp;
	}
	if (cfg->mode == VMM_MODE_LOCAL) {
		rc = spawn_memserver(cfg, mem, local_url, sizeof(local_url));
		if (rc)
			goto fail;
		urls[n++] = local_url;
	} else {
		for (; n < cfg->nmemservers; n++)
			urls[n] = cfg->memservers[n];
	}
	rc = create_regions(cfg, urls, n, keyp, mem, ext);
	if (rc)
		goto fail;
	memset(&ec, 0, sizeof(ec));
	ec.mem_size = cfg->mem_size;
	ec.cache_size = cfg->cache_size;
	ec.extents = ext;
	ec.nextents = n;
	ec.key = keyp;
	ec.policy = cfg->policy;
	ec.prefetch = cfg->prefetch;
	ec.on_fatal = on_fatal;
	ec.fatal_ctx = fatal_ctx;
	rc = ept_create(&ec, &mem->ept);
	if (rc) {
		fprintf(stderr, "vmm: cannot create the virtual cache: %s\n", strerror(-rc));
		goto fail;
	}
	rc = ept_start(mem->ept);
	if (rc) {
		fprintf(stderr, "vmm: cannot start the virtual cache: %s\n", strerror(-rc));
		goto fail;
	}
	mem->base = ept_base(mem->ept);
	return 0;
fail:
	vmm_mem_destroy(mem);
	return rc;
}

void vmm_mem_destroy(struct vmm_mem *mem)
{
	if (mem->ept) {
		ept_stop(mem->ept);
		ept_destroy(mem->ept);
		mem->ept = NULL;
	} else if (mem->base) {
		munmap(mem->base, mem->size);
	}
	mem->base = NULL;
	for (unsigned i = 0; i < mem->nregions; i++) {
		struct ms_client *c;

		if (ms_client_connect(mem->region_urls[i], mem->key, 2000, &c) == 0) {
			if (ms_client_delete(c, mem->region_ids[i], mem->region_tokens[i]))
				log_warn("memory server %s: region %llx not deleted",
					 mem->region_urls[i], (unsigned long long)mem->region_ids[i]);
			ms_client_close(c);
		}
		free(mem->region_urls[i]);
		mem->region_urls[i] = NULL;
	}
	mem->nregions = 0;
	if (mem->spawned_pid > 0) {
		int status;

		kill(mem->spawned_pid, SIGTERM);
		for (int i = 0; i < 300 && waitpid(mem->spawned_pid, &status, WNOHANG) == 0; i++)
			usleep(10000);
		if (waitpid(mem->spawned_pid, &status, WNOHANG) == 0) {
			kill(mem->spawned_pid, SIGKILL);
			waitpid(mem->spawned_pid, &status, 0);
		}
		mem->spawned_pid = 0;
	}
	if (mem->spawn_dir[0]) {
		char ready[160];

		snprintf(ready, sizeof(ready), "%s/ready", mem->spawn_dir);
		unlink(ready);
		rmdir(mem->spawn_dir);
		mem->spawn_dir[0] = 0;
	}
}

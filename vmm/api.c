/*
 * The control API: HTTP/1.1 + JSON on a unix socket (libmicrohttpd, one
 * internal polling thread), so `curl --unix-socket PATH http://vm/vm` works.
 * Documented in docs/api.md. The API thread never touches guest memory: it
 * reads VM state under the VM lock and ept statistics through ept's command
 * channel, and pauses by waiting for the vCPUs to leave the guest.
 */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ept/ept.h"
#include "vmm/vmm.h"

#if MHD_VERSION < 0x00097002
typedef int mhd_result;
#else
typedef enum MHD_Result mhd_result;
#endif

struct vmm_api {
	struct vmm *vm;
	struct MHD_Daemon *mhd;
	int fd;
	char path[108];
};

static mhd_result reply(struct MHD_Connection *c, unsigned code, char *body)
{
	struct MHD_Response *r;
	mhd_result ret;

	if (!body)
		body = strdup("{\"error\":\"out of memory\"}");
	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static mhd_result reply_json(struct MHD_Connection *c, unsigned code, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	char *body = s ? malloc(strlen(s) + 2) : NULL;

	if (body)
		sprintf(body, "%s\n", s);
	free(s);
	json_decref(j);
	return reply(c, code, body);
}

static mhd_result reply_error(struct MHD_Connection *c, unsigned code, const char *msg)
{
	return reply_json(c, code, json_pack("{ss}", "error", msg));
}

static const char *mode_name(enum vmm_mode m)
{
	return m == VMM_MODE_NO_REMOTE ? "no-remote" : m == VMM_MODE_LOCAL ? "local" : "remote";
}

static json_t *vm_info(struct vmm *vm)
{
	const struct vmm_config *cfg = vm->cfg;
	enum vmm_state state;
	enum vmm_exit_reason reason;

	pthread_mutex_lock(&vm->lock);
	state = vm->state;
	reason = vm->exit_reason;
	pthread_mutex_unlock(&vm->lock);
	return json_pack("{ss ss si sI sI ss sf ss}", "name", cfg->name, "state",
			 vmm_state_name(state), "vcpus", (int)vm->nvcpus, "mem",
			 (json_int_t)cfg->mem_size, "cache",
			 (json_int_t)(vm->mem.ept ? cfg->cache_size : cfg->mem_size), "memory",
			 mode_name(cfg->mode), "uptime_s",
			 (double)(now_ns() - vm->start_ns) / 1e9, "exit_reason",
			 vmm_exit_name(reason));
}

static mhd_result handle(void *cls, struct MHD_Connection *c, const char *url,
			 const char *method, const char *version, const char *upload,
			 size_t *upload_size, void **con_cls)
{
	struct vmm_api *api = cls;
	struct vmm *vm = api->vm;
	static int marker;
	bool get = !strcmp(method, "GET"), put = !strcmp(method, "PUT");
	int rc;

	(void)version;
	(void)upload;
	if (!*con_cls) {	/* headers only so far; the body (ignored) follows */
		*con_cls = &marker;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (!strcmp(url, "/vm")) {
		if (!get)
			return reply_error(c, 405, "use GET");
		return reply_json(c, 200, vm_info(vm));
	}
	if (!strcmp(url, "/vm/stats")) {
		struct ept_stats s;
		char *body;

		if (!get)
			return reply_error(c, 405, "use GET");
		if (!vm->mem.ept)
			return reply(c, 200, strdup("{\"memory\":\"no-remote\"}\n"));
		ept_get_stats(vm->mem.ept, &s);
		body = ept_stats_json(&s);
		return reply(c, 200, body);
	}
	if (!strcmp(url, "/vm/pause") || !strcmp(url, "/vm/resume") || !strcmp(url, "/vm/stop")) {
		if (!put)
			return reply_error(c, 405, "use PUT");
		if (!strcmp(url, "/vm/pause")) {
			rc = vmm_pause(vm, 10000);
			if (rc == -ETIMEDOUT)
				return reply_error(c, 504, "vCPUs did not leave the guest in 10 s");
		} else if (!strcmp(url, "/vm/resume")) {
			rc = vmm_resume(vm);
		} else {
			vmm_request_exit(vm, VMM_EXIT_STOPPED, "stopped through the API");
			rc = 0;
		}
		if (rc)
			return reply_error(c, 409, "not possible in this state");
		return reply_json(c, 200, vm_info(vm));
	}
	return reply_error(c, 404, "no such resource (GET /vm, GET /vm/stats, "
			   "PUT /vm/pause|resume|stop)");
}

int vmm_api_start(struct vmm *vm, const char *path, struct vmm_api **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vmm_api *api;
	struct stat st;
	int rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "vmm: --api-sock path is too long\n");
		return -ENAMETOOLONG;
	}
	api = calloc(1, sizeof(*api));
	if (!api)
		return -ENOMEM;
	api->vm = vm;
	snprintf(api->path, sizeof(api->path), "%s", path);
	strcpy(sa.sun_path, path);
	if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);	/* a stale socket of an earlier run */
	api->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (api->fd < 0 || bind(api->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(api->fd, 16) < 0) {
		rc = -errno;
		fprintf(stderr, "vmm: --api-sock %s: %s\n", path, strerror(-rc));
		goto fail;
	}
	api->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handle, api,
				    MHD_OPTION_LISTEN_SOCKET, api->fd, MHD_OPTION_END);
	if (!api->mhd) {
		fprintf(stderr, "vmm: --api-sock %s: cannot start the HTTP server\n", path);
		rc = -EIO;
		unlink(path);
		goto fail;
	}
	*out = api;
	return 0;
fail:
	if (api->fd >= 0)
		close(api->fd);
	free(api);
	return rc;
}

void vmm_api_stop(struct vmm_api *api)
{
	MHD_stop_daemon(api->mhd);
	close(api->fd);
	unlink(api->path);
	free(api);
}

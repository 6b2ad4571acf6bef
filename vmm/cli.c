/*
 * The vmm command line: `vmm --help`, `vmm --version`, `vmm run [options]`.
 * Bad input gets one line on stderr ("vmm: ...") and a non-zero status before
 * anything is created; sizes are checked against each other here, the kernel
 * and initrd files in vmm_boot_check.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/version.h"
#include "ept/ept.h"
#include "vmm/vmm.h"

void vmm_cli_usage(void)
{
	printf("usage: vmm COMMAND [options]\n"
	       "\n"
	       "legato's KVM virtual machine monitor: boots an unmodified Linux guest whose\n"
	       "RAM is a virtual cache over memory servers (or plain local RAM).\n"
	       "\n"
	       "commands:\n"
	       "  run         boot a guest and run it until it powers off (vmm run --help)\n"
	       "\n"
	       "options:\n"
	       "  -h, --help     this text\n"
	       "  -V, --version  print the version\n"
	       "\n"
	       "example:\n"
	       "  vmm run --local --kernel bzImage --initrd initramfs.cpio \\\n"
	       "      --cmdline 'console=ttyS0' --mem 1G --cache 128M --vcpus 2\n");
}

void vmm_cli_run_usage(void)
{
	printf("usage: vmm run --kernel BZIMAGE --mem SIZE [options]\n"
	       "\n"
	       "Guest:\n"
	       "  --kernel FILE        bzImage to boot (64-bit boot protocol)\n"
	       "                         e.g. --kernel build/guest/bzImage\n"
	       "  --initrd FILE        initramfs                e.g. --initrd build/guest/initramfs.cpio\n"
	       "  --cmdline STR        kernel command line (default 'console=ttyS0')\n"
	       "                         e.g. --cmdline 'console=ttyS0 legato.run=memcheck:256M'\n"
	       "  --mem SIZE           guest RAM, a multiple of 4 KiB (K/M/G)  e.g. --mem 1G\n"
	       "  --vcpus N            vCPUs, 1..%d (default 1)     e.g. --vcpus 2\n"
	       "\n"
	       "Memory (one of; --local is the default):\n"
	       "  --local              start a private memory server on loopback for this VM\n"
	       "                         e.g. --local --cache 128M\n"
	       "  --memserver URL      use this memory server (repeat to spread the guest's\n"
	       "                       memory over several)  e.g. --memserver tcp://10.0.0.2:7000\n"
	       "  --no-remote          plain local RAM, no cache (the baseline)  e.g. --no-remote\n"
	       "  --cache SIZE         local cache, <= --mem (default: --mem)  e.g. --cache 128M\n"
	       "  --policy NAME        replacement policy: clock (default), fifo, refault\n"
	       "                         e.g. --policy refault\n"
	       "  --prefetch on|off    stream prefetch (default on)   e.g. --prefetch off\n"
	       "  --key-file FILE      cluster key of the memory servers  e.g. --key-file /etc/legato.key\n"
	       "  --memserver-bin FILE the daemon --local starts (default: memserver next to vmm)\n"
	       "                         e.g. --memserver-bin /usr/local/bin/memserver\n"
	       "\n"
	       "Devices:\n"
	       "  --disk FILE[,ro]     a virtio-blk disk backed by FILE (its size, in 512-byte\n"
	       "                       sectors; buffered I/O), read-only with ',ro'; repeat for\n"
	       "                       more (/dev/vda, /dev/vdb, ...)  e.g. --disk /var/lib/vm1.img\n"
	       "  --net tap=NAME[,mac=MAC]  a virtio-net NIC on TAP interface NAME (created when\n"
	       "                       missing; checksum and TSO offloads), MAC derived from the\n"
	       "                       host and TAP names unless given\n"
	       "                         e.g. --net tap=vm1,mac=52:54:00:12:34:56\n"
	       "\n"
	       "Control:\n"
	       "  --api-sock PATH      HTTP+JSON API on this unix socket (docs/api.md)\n"
	       "                         e.g. --api-sock /run/vm1.sock\n"
	       "  --name NAME          name shown by the API (default vm-PID)  e.g. --name web1\n"
	       "  --log-level LEVEL    error, warn (default), info, debug  e.g. --log-level info\n"
	       "  -h, --help           this text\n"
	       "\n"
	       "The guest's serial console is vmm's stdin/stdout. vmm exits 0 when the guest\n"
	       "powers off or reboots, or is stopped through the API; 2 on a guest panic, 3 on\n"
	       "a triple fault, 4 on a KVM error, 5 when its memory cannot be served, 1 on bad\n"
	       "input or other errors.\n"
	       "\n"
	       "example:\n"
	       "  vmm run --memserver tcp://10.0.0.2:7000 --kernel bzImage --initrd initrd \\\n"
	       "      --cmdline 'console=ttyS0' --mem 256M --cache 32M --vcpus 2\n",
	       VMM_MAX_VCPUS);
}

enum {
	OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEM, OPT_CACHE, OPT_VCPUS, OPT_MEMSERVER,
	OPT_LOCAL, OPT_NO_REMOTE, OPT_POLICY, OPT_PREFETCH, OPT_API_SOCK, OPT_NAME,
	OPT_LOG_LEVEL, OPT_KEY_FILE, OPT_MEMSERVER_BIN, OPT_DISK, OPT_NET,
};

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vmm: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return -EINVAL;
}

static int size_arg(const char *opt, const char *s, uint64_t *out)
{
	if (parse_size(s, out) || *out == 0) {
		fprintf(stderr, "vmm: %s: bad size '%s' (e.g. 256M, 4G)\n", opt, s);
		return -EINVAL;
	}
	return 0;
}

/* --disk PATH[,ro]: optarg is modified in place (the ",ro" cut off). */
static int disk_arg(struct vmm_config *cfg, char *arg)
{
	char *comma = strrchr(arg, ',');
	bool ro = false;

	if (cfg->ndisks == VMM_MAX_DISKS)
		return bad("too many --disk (at most %d)", VMM_MAX_DISKS);
	if (comma) {
		if (strcmp(comma, ",ro"))
			return bad("--disk %s: the only option is ',ro'", arg);
		*comma = '\0';
		ro = true;
	}
	if (!*arg)
		return bad("--disk: no file named");
	cfg->disks[cfg->ndisks++] = (struct vmm_disk_config){ .path = arg, .ro = ro };
	return 0;
}

/* --net tap=NAME[,mac=XX:XX:XX:XX:XX:XX]: optarg is cut up in place. */
static int net_arg(struct vmm_config *cfg, char *arg)
{
	struct vmm_net_config *n;
	char *opt, *save = NULL;

	if (cfg->nnets == VMM_MAX_NETS)
		return bad("too many --net (at most %d)", VMM_MAX_NETS);
	n = &cfg->nets[cfg->nnets];
	memset(n, 0, sizeof(*n));
	for (opt = strtok_r(arg, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
		unsigned m[6];
		char end;

		if (!strncmp(opt, "tap=", 4) && opt[4] && strlen(opt + 4) < 16) {
			n->tap = opt + 4;
		} else if (!strncmp(opt, "mac=", 4) &&
			   sscanf(opt + 4, "%2x:%2x:%2x:%2x:%2x:%2x%c", &m[0], &m[1], &m[2], &m[3],
				  &m[4], &m[5], &end) == 6) {
			for (unsigned i = 0; i < 6; i++)
				n->mac[i] = (uint8_t)m[i];
			if (n->mac[0] & 1)
				return bad("--net: mac=%s is a multicast address", opt + 4);
			n->mac_set = true;
		} else {
			return bad("--net: bad option '%s' (tap=NAME of at most 15 characters, "
				   "mac=XX:XX:XX:XX:XX:XX)", opt);
		}
	}
	if (!n->tap)
		return bad("--net: tap=NAME is required");
	cfg->nnets++;
	return 0;
}

int vmm_cli_parse_run(int argc, char **argv, struct vmm_config *cfg)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "cmdline", required_argument, NULL, OPT_CMDLINE },
		{ "mem", required_argument, NULL, OPT_MEM },
		{ "cache", required_argument, NULL, OPT_CACHE },
		{ "vcpus", required_argument, NULL, OPT_VCPUS },
		{ "memserver", required_argument, NULL, OPT_MEMSERVER },
		{ "local", no_argument, NULL, OPT_LOCAL },
		{ "no-remote", no_argument, NULL, OPT_NO_REMOTE },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "prefetch", required_argument, NULL, OPT_PREFETCH },
		{ "api-sock", required_argument, NULL, OPT_API_SOCK },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "key-file", required_argument, NULL, OPT_KEY_FILE },
		{ "memserver-bin", required_argument, NULL, OPT_MEMSERVER_BIN },
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "net", required_argument, NULL, OPT_NET },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool local = false, no_remote = false;
	enum log_level level = LOG_WARN;
	uint64_t v;
	int c;

	memset(cfg, 0, sizeof(*cfg));
	cfg->cmdline = "console=ttyS0";
	cfg->vcpus = 1;
	cfg->prefetch = true;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL: cfg->kernel = optarg; break;
		case OPT_INITRD: cfg->initrd = optarg; break;
		case OPT_CMDLINE: cfg->cmdline = optarg; break;
		case OPT_MEM:
			if (size_arg("--mem", optarg, &cfg->mem_size))
				return -EINVAL;
			break;
		case OPT_CACHE:
			if (size_arg("--cache", optarg, &cfg->cache_size))
				return -EINVAL;
			break;
		case OPT_VCPUS:
			if (parse_u64(optarg, &v) || v < 1 || v > VMM_MAX_VCPUS) {
				fprintf(stderr, "vmm: --vcpus: '%s' is not 1..%d\n", optarg,
					VMM_MAX_VCPUS);
				return -EINVAL;
			}
			cfg->vcpus = (unsigned)v;
			break;
		case OPT_MEMSERVER:
			if (cfg->nmemservers == VMM_MAX_MEMSERVERS)
				return bad("too many --memserver (at most 16)");
			cfg->memservers[cfg->nmemservers++] = optarg;
			break;
		case OPT_LOCAL: local = true; break;
		case OPT_NO_REMOTE: no_remote = true; break;
		case OPT_POLICY: cfg->policy = optarg; break;
		case OPT_PREFETCH:
			if (!strcmp(optarg, "on"))
				cfg->prefetch = true;
			else if (!strcmp(optarg, "off"))
				cfg->prefetch = false;
			else
				return bad("--prefetch takes on or off, not '%s'", optarg);
			break;
		case OPT_API_SOCK: cfg->api_sock = optarg; break;
		case OPT_NAME: cfg->name = optarg; break;
		case OPT_LOG_LEVEL:
			if (log_parse_level(optarg, &level))
				return bad("--log-level: unknown level '%s'", optarg);
			break;
		case OPT_KEY_FILE: cfg->key_file = optarg; break;
		case OPT_MEMSERVER_BIN: cfg->memserver_bin = optarg; break;
		case OPT_DISK:
			if (disk_arg(cfg, optarg))
				return -EINVAL;
			break;
		case OPT_NET:
			if (net_arg(cfg, optarg))
				return -EINVAL;
			break;
		case 'h':
			vmm_cli_run_usage();
			return 1;
		default:
			return bad("run: unknown or incomplete option '%s' (see vmm run --help)",
				   argv[optind - 1]);
		}
	}
	log_init("vmm", level);
	if (optind < argc)
		return bad("run: unexpected argument '%s'", argv[optind]);
	if (!cfg->kernel)
		return bad("run: --kernel is required (see vmm run --help)");
	if (!cfg->mem_size)
		return bad("run: --mem is required (see vmm run --help)");
	if (cfg->mem_size % EPT_PAGE_SIZE) {
		fprintf(stderr, "vmm: --mem must be a multiple of 4 KiB (got %llu bytes)\n",
			(unsigned long long)cfg->mem_size);
		return -EINVAL;
	}
	if ((local ? 1 : 0) + (no_remote ? 1 : 0) + (cfg->nmemservers ? 1 : 0) > 1)
		return bad("run: choose one of --local, --memserver and --no-remote");
	cfg->mode = no_remote ? VMM_MODE_NO_REMOTE :
		    cfg->nmemservers ? VMM_MODE_REMOTE : VMM_MODE_LOCAL;
	if (cfg->mode == VMM_MODE_NO_REMOTE) {
		if (cfg->cache_size || cfg->policy || cfg->key_file)
			return bad("run: --no-remote takes no --cache, --policy or --key-file");
		return 0;
	}
	if (!cfg->cache_size)
		cfg->cache_size = cfg->mem_size;
	if (cfg->cache_size % EPT_PAGE_SIZE)
		return bad("--cache must be a multiple of 4 KiB");
	if (cfg->cache_size > cfg->mem_size) {
		fprintf(stderr, "vmm: --cache (%llu MiB) is larger than --mem (%llu MiB)\n",
			(unsigned long long)(cfg->cache_size >> 20),
			(unsigned long long)(cfg->mem_size >> 20));
		return -EINVAL;
	}
	if (cfg->cache_size < 64 * EPT_PAGE_SIZE)
		return bad("--cache must be at least 256 KiB");
	if (cfg->policy) {
		bool known = false;

		for (unsigned i = 0; ept_policy_names[i]; i++)
			known |= !strcmp(ept_policy_names[i], cfg->policy);
		if (!known)
			return bad("--policy: unknown policy '%s' (clock, fifo, refault)", cfg->policy);
	}
	return 0;
}

int vmm_main(int argc, char **argv)
{
	struct vmm_config cfg;
	int rc;

	log_init("vmm", LOG_WARN);
	if (argc < 2) {
		vmm_cli_usage();
		return 1;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		vmm_cli_usage();
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("vmm (legato) %s\n", LEGATO_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "run")) {
		fprintf(stderr, "vmm: unknown command '%s' (see vmm --help)\n", argv[1]);
		return 1;
	}
	rc = vmm_cli_parse_run(argc - 1, argv + 1, &cfg);
	if (rc)
		return rc > 0 ? 0 : 1;
	return vmm_run(&cfg);
}

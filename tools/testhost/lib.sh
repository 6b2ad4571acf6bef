# shellcheck shell=bash
# legato test hosts: the shell library behind tools/testhost/testhost, meant to
# be sourced by host-tier tests (bash).
#
# A "run" is a directory ($TESTHOST_RUN) holding everything about one set of
# emulated x86 hosts: the initramfs, one subdirectory per host (console log,
# qemu pid and log, boot time) and the name of the private network namespace
# whose bridge joins the hosts' TAP devices. Hosts boot the Debian kernel
# cached by th_fetch, load KVM and Soft-RoCE, see the outer root read-only
# (9p + tmpfs overlay) and run commands through testhost-agent.
#
#   th_up NAME...            boot hosts (a new run unless $TESTHOST_RUN is set)
#   th_need_hosts NAME...    boot only those not up yet
#   th_run [-t S] [-n] [-e K=V] [-C DIR] NAME [--] CMD...   run CMD on NAME
#   th_sh NAME 'SCRIPT'      th_run NAME -- /bin/sh -c SCRIPT
#   th_cp NAME SRC DST       copy a file into a host
#   th_memserver NAME URL [ARG]...  (re)start the memory server on a host
#   th_memserver_stop NAME...       stop the memory servers on those hosts
#   th_ip NAME               the host's address (inside the namespace)
#   th_console NAME [N]      last N console lines (default 40)
#   th_consoles [N]          the same for every host, with headers
#   th_logs DIR              copy console and qemu logs to DIR
#   th_status                hosts, liveness, boot times
#   th_down                  kill the qemus, delete TAPs, bridge and namespace
#
# Settings (environment): TESTHOST_CACHE, TESTHOST_KERNEL, TESTHOST_ACCEL
# (auto|tcg|kvm), TESTHOST_MEM (MiB), TESTHOST_SMP, TESTHOST_BOOT_TIMEOUT,
# TESTHOST_TIMEOUT (default per-command timeout), TESTHOST_TTL (hard lifetime
# of a run), TESTHOST_AGENT (the static agent binary), TESTHOST_MODULES (extra
# modules), TESTHOST_BOOT (pvh|bzimage), TESTHOST_LOGLEVEL (kernel console
# loglevel), TESTHOST_DEBUG=1 (time each init step), TESTHOST_KEEP=1 (keep the run directory after th_down).

TH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TH_TOP=$(cd "$TH_DIR/../.." && pwd)

# Outer directories under /tmp or /run that commands in the hosts must see
# (the checkout and the build directory), comma-separated.
th_keep_dirs() {
	local d out=""
	for d in "$TH_TOP" "${TESTHOST_BUILD:-}"; do
		[ -n "$d" ] || continue
		d=$(cd "$d" 2>/dev/null && pwd) || continue
		case "$d" in /tmp/*|/run/*) out+="${out:+,}$d" ;; esac
	done
	echo "${out:-none}"
}

if [ -z "${TESTHOST_CACHE:-}" ]; then
	if [ -w /var/cache ] || [ -w /var/cache/legato ]; then
		TESTHOST_CACHE=/var/cache/legato/testhost
	else
		TESTHOST_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/legato/testhost
	fi
fi
: "${TESTHOST_ACCEL:=auto}"
: "${TESTHOST_MEM:=1536}"
: "${TESTHOST_SMP:=2}"
: "${TESTHOST_BOOT_TIMEOUT:=180}"
: "${TESTHOST_TIMEOUT:=300}"
: "${TESTHOST_TTL:=3600}"
: "${TESTHOST_AGENT:=$TH_TOP/build/testhost-agent}"
: "${TESTHOST_MODULES:=}"
: "${TESTHOST_LOGLEVEL:=4}"	# kernel console: warnings and worse
: "${TESTHOST_BOOT:=pvh}"	# boot the ELF kernel through PVH when it has one

TH_AGENT_PORT=7077
TH_SUBNET=10.77.0		# exists only inside the run's namespace
TH_BRIDGE=thbr0

# Modules every host loads; dependencies come from modules.dep. "svm"/"vmx"
# entries load only on a CPU of that vendor.
TH_MODULES_ANY="virtio_pci virtio_net virtio-rng 9pnet_virtio 9p overlay tun bridge
	configfs ib_core ib_uverbs ib_cm iw_cm rdma_cm rdma_ucm udp_tunnel
	ip6_udp_tunnel vxlan crc32_generic rdma_rxe irqbypass kvm"
TH_MODULES_SVM="ccp kvm-amd"
TH_MODULES_VMX="kvm-intel"

th_log() { echo "testhost: $*" >&2; }
th_die() { echo "testhost: error: $*" >&2; return 1; }

th_now() { date +%s.%N; }
th_elapsed() { awk -v a="$1" -v b="$(th_now)" 'BEGIN { printf "%.1f", b - a }'; }

# ------------------------------------------------------------ fetching

# th_fetch_pkg PKG: download PKG (current candidate version) from the apt
# archive once, extract it under $TESTHOST_CACHE/PKG_VERSION/root and print
# that directory. Works offline when a version is already cached.
th_fetch_pkg() {
	local pkg=$1 ver dir tmp
	ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null |
		awk '/^Version:/ { print $2; exit }')
	if [ -z "$ver" ]; then
		dir=$(ls -d "$TESTHOST_CACHE/${pkg}_"*/ 2>/dev/null | sort -V | tail -n 1)
		if [ -n "$dir" ] && [ -f "$dir/.complete" ]; then
			th_log "apt knows no $pkg; using cached ${dir%/}"
			echo "${dir%/}"
			return 0
		fi
		th_die "package $pkg unknown to apt and not cached (run apt-get update?)"
		return 1
	fi
	dir=$TESTHOST_CACHE/${pkg}_${ver//:/%3a}
	if [ -f "$dir/.complete" ]; then
		echo "$dir"
		return 0
	fi
	mkdir -p "$TESTHOST_CACHE" || return 1
	tmp=$(mktemp -d "$TESTHOST_CACHE/.fetch.XXXXXX") || return 1
	chmod 755 "$tmp"
	th_log "downloading $pkg $ver into $TESTHOST_CACHE"
	if ! (cd "$tmp" && timeout 900 apt-get download -q "$pkg=$ver") >"$tmp/apt.log" 2>&1; then
		cat "$tmp/apt.log" >&2
		rm -rf "$tmp"
		th_die "apt-get download $pkg=$ver failed"
		return 1
	fi
	if ! dpkg-deb -x "$tmp"/*.deb "$tmp/root"; then
		rm -rf "$tmp"
		th_die "dpkg-deb -x failed for $pkg"
		return 1
	fi
	rm -f "$tmp"/*.deb "$tmp/apt.log"
	echo "$pkg $ver" >"$tmp/package"
	touch "$tmp/.complete"
	# Another run may have won the race; either copy is complete.
	mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
	echo "$dir"
}

# th_kernel_pkg: the kernel package to boot ($TESTHOST_KERNEL, or whatever
# linux-image-amd64 currently depends on).
th_kernel_pkg() {
	local pkg=${TESTHOST_KERNEL:-}
	if [ -z "$pkg" ]; then
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
			awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
	fi
	if [ -z "$pkg" ] && [ "$(id -u)" = 0 ] && [ -z "${TH_APT_UPDATED:-}" ]; then
		TH_APT_UPDATED=1
		th_log "apt cannot resolve linux-image-amd64; running apt-get update"
		timeout 300 apt-get update -qq >/dev/null 2>&1
		th_kernel_pkg
		return
	fi
	if [ -z "$pkg" ]; then
		pkg=$(ls -d "$TESTHOST_CACHE"/linux-image-*/ 2>/dev/null | sort -V | tail -n 1)
		pkg=${pkg%/}; pkg=${pkg##*/}; pkg=${pkg%%_*}
	fi
	[ -n "$pkg" ] || { th_die "cannot resolve linux-image-amd64 (apt-get update?)"; return 1; }
	echo "$pkg"
}

# th_fetch: make sure kernel and busybox are cached; prints the kernel dir.
# The kernel dir gets vmlinuz, and its modules tree is depmod'ed once.
th_fetch() {
	local pkg dir kver
	pkg=$(th_kernel_pkg) || return 1
	dir=$(th_fetch_pkg "$pkg") || return 1
	if [ ! -f "$dir/.depmod" ]; then
		kver=$(ls "$dir/root/lib/modules" | head -n 1)
		[ -n "$kver" ] && [ -f "$dir/root/boot/vmlinuz-$kver" ] ||
			{ th_die "$pkg has no kernel image/modules"; return 1; }
		depmod -b "$dir/root" "$kver" || { th_die "depmod failed for $pkg"; return 1; }
		echo "$kver" >"$dir/kver"
		touch "$dir/.depmod"
	fi
	if [ ! -f "$dir/.pvh" ]; then
		kver=$(cat "$dir/kver")
		if grep -q '^CONFIG_PVH=y' "$dir/root/boot/config-$kver" 2>/dev/null &&
		   th_extract_vmlinux "$dir/root/boot/vmlinuz-$kver" "$dir/vmlinux.tmp"; then
			mv "$dir/vmlinux.tmp" "$dir/vmlinux"
		else
			rm -f "$dir/vmlinux.tmp"
		fi
		touch "$dir/.pvh"
	fi
	th_fetch_pkg busybox-static >/dev/null || return 1
	echo "$dir"
}

# th_extract_vmlinux BZIMAGE OUT: the uncompressed ELF kernel inside a
# bzImage (xz, zstd or gzip payload). Booting it through its PVH entry skips
# the decompressor, which costs ~2.5 s per boot under TCG.
th_extract_vmlinux() {
	local img=$1 out=$2 magic tool off
	for magic in 'xz:\xfd7zXZ\x00' 'zstd -q:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08\x00'; do
		tool=${magic%%:*}
		command -v "${tool%% *}" >/dev/null || continue
		for off in $(LC_ALL=C grep -obUaP "${magic#*:}" "$img" | cut -d: -f1); do
			tail -c +$((off + 1)) "$img" | $tool -dc 2>/dev/null >"$out"
			if [ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
				return 0
			fi
		done
	done
	return 1
}

th_busybox() {
	local dir
	dir=$(th_fetch_pkg busybox-static 2>/dev/null) && [ -x "$dir/root/bin/busybox" ] &&
		{ echo "$dir/root/bin/busybox"; return 0; }
	# Offline fallback: the installed package.
	[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 &&
		{ echo /bin/busybox; return 0; }
	th_die "no static busybox (package busybox-static)"
}

# ----------------------------------------------------------- initramfs

# th_initramfs KDIR OUT: build the host initramfs (uncompressed newc cpio).
th_initramfs() {
	local kdir=$1 out=$2 kver mroot stage bb cond m
	kver=$(cat "$kdir/kver") || return 1
	mroot=$kdir/root/lib/modules/$kver
	stage=$(mktemp -d "${out%/*}/.initramfs.XXXXXX") || return 1
	mkdir -p "$stage/bin" "$stage/etc/testhost" "$stage/lib/modules"
	bb=$(th_busybox) || return 1
	cp "$bb" "$stage/bin/busybox"
	[ -x "$TESTHOST_AGENT" ] || { th_die "no agent at $TESTHOST_AGENT (make it first)"; return 1; }
	if ldd "$TESTHOST_AGENT" >/dev/null 2>&1; then
		th_die "$TESTHOST_AGENT must be linked statically"
		return 1
	fi
	cp "$TESTHOST_AGENT" "$stage/bin/testhost-agent"
	install -m 0755 "$TH_DIR/init" "$stage/init"

	local specs=() mod
	for cond in any svm vmx; do
		case $cond in
		any) m="$TH_MODULES_ANY $TESTHOST_MODULES" ;;
		svm) m=$TH_MODULES_SVM ;;
		vmx) m=$TH_MODULES_VMX ;;
		esac
		for mod in $m; do specs+=("$cond:$mod"); done
	done
	th_stage_modules "$mroot" "$stage" "$stage/etc/testhost/modules" "${specs[@]}" ||
		{ rm -rf "$stage"; return 1; }
	(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out" ||
		{ rm -rf "$stage"; th_die "cpio failed"; return 1; }
	rm -rf "$stage"
}

# th_stage_modules MROOT STAGE LIST [PREFIX:]MODULE...: copies each MODULE of
# the kernel module tree MROOT (lib/modules/KVER), its dependencies first as
# modules.dep orders them, into STAGE/lib/modules/, and appends one line per
# module, in load order, to LIST: "PREFIX PATH", or "PATH" with no prefix. A
# module needed twice is staged and listed once. Used by the test hosts'
# initramfs and by guest-images/build.sh.
th_stage_modules() {
	local mroot=$1 stage=$2 list=$3 spec line mod file
	shift 3
	local -A dep path done_
	while IFS= read -r line; do
		file=${line%%:*}
		mod=${file##*/}; mod=${mod%.ko}; mod=${mod//-/_}
		path[$mod]=$file
		dep[$mod]=${line#*:}
	done <"$mroot/modules.dep"
	: >"$list"
	th_stage_mod() {	# PREFIX MODULE
		local m=${2//-/_} d dm
		[ -n "${done_[$m]:-}" ] && return 0
		[ -n "${path[$m]:-}" ] || { th_die "module $2 not in $mroot"; return 1; }
		done_[$m]=1
		for d in ${dep[$m]}; do
			dm=${d##*/}; dm=${dm%.ko}
			th_stage_mod "$1" "$dm" || return 1
		done
		mkdir -p "$stage/lib/modules/${path[$m]%/*}"
		cp "$mroot/${path[$m]}" "$stage/lib/modules/${path[$m]}"
		echo "${1:+$1 }${path[$m]}" >>"$list"
	}
	for spec in "$@"; do
		case $spec in
		*:*) th_stage_mod "${spec%%:*}" "${spec#*:}" || return 1 ;;
		*) th_stage_mod "" "$spec" || return 1 ;;
		esac
	done
}

# ----------------------------------------------------------------- run

th_need_run() {
	[ -n "${TESTHOST_RUN:-}" ] && [ -f "$TESTHOST_RUN/netns" ] ||
		{ th_die "no test host run (th_up first, or set TESTHOST_RUN)"; return 1; }
}

th_netns() { cat "$TESTHOST_RUN/netns"; }

# th_in_ns CMD...: run CMD in the run's network namespace (only the network:
# file system and mounts stay the outer machine's).
th_in_ns() { nsenter --net="/run/netns/$(th_netns)" -- "$@"; }

th_host_field() {	# th_host_field NAME FIELD(2=ip 3=mac 4=tap)
	awk -v n="$1" -v f="$2" '$1 == n { print $f; found = 1 } END { exit !found }' \
		"$TESTHOST_RUN/hosts"
}

th_hosts() { awk '{ print $1 }' "$TESTHOST_RUN/hosts"; }

# th_need_hosts NAME...: make sure the named hosts exist, booting the missing
# ones (in a new run when there is none), so a test case runs alone as well
# as inside tests/hosts/run.sh, which boots the hosts once for every case.
th_need_hosts() {
	local missing=() n
	for n in "$@"; do
		if [ -z "${TESTHOST_RUN:-}" ] || ! th_host_field "$n" 2 >/dev/null 2>&1; then
			missing+=("$n")
		fi
	done
	[ ${#missing[@]} -eq 0 ] || th_up "${missing[@]}"
}

th_ip() {
	th_need_run || return 1
	th_host_field "$1" 2 || { th_die "no host named $1"; return 1; }
}

th_accel_args() {
	local accel=$TESTHOST_ACCEL
	if [ "$accel" = auto ]; then
		# Only real hardware virtualization: a /dev/kvm without vmx/svm in
		# the CPU flags (a paravirtual one) cannot give the hosts a KVM.
		if [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
			accel=kvm
		else
			accel=tcg
		fi
	fi
	case $accel in
	kvm) echo "-accel kvm -cpu host" ;;
	tcg) echo "-accel tcg -cpu qemu64,+svm,+npt" ;;
	*) th_die "TESTHOST_ACCEL must be auto, tcg or kvm"; return 1 ;;
	esac
}

# th_qemu_pid NAME: pid of host NAME's running QEMU. The pid file is checked
# against the command line, whose -name is unique to this run and host; when
# the pid file is missing or stale the process table is searched for it.
th_qemu_pid() {
	local pid tag p
	tag="-name legato-testhost-$(cat "$TESTHOST_RUN/id" 2>/dev/null)-$1 "
	pid=$(cat "$TESTHOST_RUN/$1/qemu.pid" 2>/dev/null)
	if [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$tag"; then
		echo "$pid"
		return 0
	fi
	for p in $(grep -lzx -- "legato-testhost-$(cat "$TESTHOST_RUN/id" 2>/dev/null)-$1" \
			/proc/[0-9]*/cmdline 2>/dev/null); do
		if [ "$(head -z -n 1 "$p" 2>/dev/null | tr -d '\0')" = qemu-system-x86_64 ]; then
			p=${p#/proc/}
			echo "${p%/cmdline}"
			return 0
		fi
	done
	return 1
}

th_qemu_alive() { th_qemu_pid "$1" >/dev/null; }

# th_up NAME...: boot the named hosts and wait until each agent answers.
# Creates a new run (namespace, bridge) unless $TESTHOST_RUN already names
# one. Installs EXIT/INT/TERM traps that tear the run down, unless
# TESTHOST_NO_TRAP=1; a watcher process also tears it down when this shell
# dies (even by SIGKILL) or after TESTHOST_TTL seconds.
th_up() {
	local names=("$@") kdir kver accel id ns i name ip mac tap cmdline hostsarg=""
	[ ${#names[@]} -gt 0 ] || { th_die "th_up: name at least one host"; return 1; }
	kdir=$(th_fetch) || return 1
	kver=$(cat "$kdir/kver")
	accel=$(th_accel_args) || return 1
	local image=$kdir/root/boot/vmlinuz-$kver
	case $TESTHOST_BOOT in
	pvh) [ -f "$kdir/vmlinux" ] && image=$kdir/vmlinux ;;
	bzimage) ;;
	*) th_die "TESTHOST_BOOT must be pvh or bzimage"; return 1 ;;
	esac

	if [ -z "${TESTHOST_RUN:-}" ]; then
		id=$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
		TESTHOST_RUN=$(mktemp -d "${TMPDIR:-/tmp}/legato-testhost.$id.XXXX") || return 1
		export TESTHOST_RUN
		echo "$id" >"$TESTHOST_RUN/id"
		: >"$TESTHOST_RUN/hosts"
		ns=legato-th-$id
		echo "$ns" >"$TESTHOST_RUN/netns"
		if [ "${TESTHOST_NO_TRAP:-0}" != 1 ]; then
			trap 'th_down' EXIT
			trap 'exit 130' INT
			trap 'exit 143' TERM
		fi
		setsid bash "$TH_DIR/testhost" reap "$TESTHOST_RUN" "${TESTHOST_OWNER:-$$}" \
			"$TESTHOST_TTL" </dev/null >>"$TESTHOST_RUN/reaper.log" 2>&1 &
		echo $! >"$TESTHOST_RUN/reaper.pid"
		ip netns add "$ns" || { th_die "cannot create network namespace $ns"; return 1; }
		ip -n "$ns" link set lo up
		ip -n "$ns" link add "$TH_BRIDGE" type bridge &&
			ip -n "$ns" addr add "$TH_SUBNET.1/24" dev "$TH_BRIDGE" &&
			ip -n "$ns" link set "$TH_BRIDGE" up ||
			{ th_die "cannot set up bridge in $ns"; return 1; }
		th_initramfs "$kdir" "$TESTHOST_RUN/initramfs.cpio" || return 1
	fi
	th_need_run || return 1
	id=$(cat "$TESTHOST_RUN/id")
	ns=$(th_netns)

	# Addresses: every host of the run, existing and new, on each command line.
	for name in "${names[@]}"; do
		if grep -q "^$name " "$TESTHOST_RUN/hosts"; then
			th_die "host $name already exists in this run"; return 1
		fi
		[[ $name =~ ^[a-z][a-z0-9-]{0,15}$ ]] || { th_die "bad host name: $name"; return 1; }
		i=$(($(wc -l <"$TESTHOST_RUN/hosts") + 1))
		[ $i -le 200 ] || { th_die "too many hosts"; return 1; }
		printf '%s %s %s %s\n' "$name" "$TH_SUBNET.$((10 + i))" \
			"$(printf '52:54:00:4c:00:%02x' $((10 + i)))" "thtap$i" >>"$TESTHOST_RUN/hosts"
	done
	while read -r name ip mac tap; do hostsarg+="${hostsarg:+,}$name:$ip"; done \
		<"$TESTHOST_RUN/hosts"

	local -A started
	for name in "${names[@]}"; do
		ip=$(th_host_field "$name" 2); mac=$(th_host_field "$name" 3)
		tap=$(th_host_field "$name" 4)
		mkdir -p "$TESTHOST_RUN/$name"
		ip -n "$ns" tuntap add dev "$tap" mode tap &&
			ip -n "$ns" link set "$tap" master "$TH_BRIDGE" up ||
			{ th_die "cannot create $tap"; return 1; }
		cmdline="console=ttyS0 panic=-1 loglevel=$TESTHOST_LOGLEVEL 8250.nr_uarts=1 i8042.noaux"
		cmdline+=" legato.name=$name legato.ip=$ip/24 legato.hosts=$hostsarg"
		[ "${TESTHOST_DEBUG:-0}" = 1 ] && cmdline+=" legato.debug=1"
		# The hosts get fresh /tmp and /run: a checkout or build directory
		# under them (CI clones anywhere) is bound back into their view.
		cmdline+=" legato.keep=$(th_keep_dirs)"
		started[$name]=$(th_now)
		# A simple command, not a function, so the background child execs
		# at once and keeps none of this shell's saved descriptors (a
		# caller's $(...) pipe would otherwise stay open for the run's life).
		# shellcheck disable=SC2086
		nsenter --net="/run/netns/$ns" -- setsid qemu-system-x86_64 \
			-name "legato-testhost-$id-$name" \
			-nodefaults -no-user-config -display none -no-reboot \
			$accel -smp "$TESTHOST_SMP" -m "$TESTHOST_MEM" \
			-kernel "$image" \
			-initrd "$TESTHOST_RUN/initramfs.cpio" \
			-append "$cmdline" \
			-chardev file,id=con,path="$TESTHOST_RUN/$name/console.log" \
			-serial chardev:con \
			-netdev tap,id=net0,ifname="$tap",script=no,downscript=no \
			-device virtio-net-pci,netdev=net0,mac="$mac" \
			-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
			-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
			-device virtio-rng-pci \
			-monitor unix:"$TESTHOST_RUN/$name/monitor.sock",server=on,wait=off \
			-pidfile "$TESTHOST_RUN/$name/qemu.pid" \
			</dev/null >"$TESTHOST_RUN/$name/qemu.log" 2>&1 &
	done

	# Wait for each host's "ready" line, then for its agent to answer.
	local pending=("${names[@]}") left t0 rc=0 status
	t0=$(th_now)
	while [ ${#pending[@]} -gt 0 ]; do
		left=()
		for name in "${pending[@]}"; do
			if grep -q "testhost: $name: ready" "$TESTHOST_RUN/$name/console.log" 2>/dev/null; then
				if status=$(th_run -t 20 -n "$name" cat /run/testhost.status 2>&1); then
					th_elapsed "${started[$name]}" >"$TESTHOST_RUN/$name/boot_seconds"
					th_log "$name ($(th_ip "$name")) up in $(cat "$TESTHOST_RUN/$name/boot_seconds") s" \
						"[$accel -smp $TESTHOST_SMP -m $TESTHOST_MEM, $kver, ${image##*/}]"
					if [ "$status" != ok ]; then
						th_log "$name: WARNING: init steps failed:$status"
					fi
					continue
				fi
				th_log "$name: agent does not answer: $status"
				rc=1
				continue
			fi
			if [ -f "$TESTHOST_RUN/$name/qemu.pid" ] && ! th_qemu_alive "$name"; then
				th_log "$name: qemu exited during boot"
				rc=1
				continue
			fi
			if [ ! -f "$TESTHOST_RUN/$name/qemu.pid" ] &&
			   [ "$(th_elapsed "$t0" | cut -d. -f1)" -ge 10 ]; then
				th_log "$name: qemu did not start: $(tail -n 5 "$TESTHOST_RUN/$name/qemu.log")"
				rc=1
				continue
			fi
			if [ "$(th_elapsed "$t0" | cut -d. -f1)" -ge "$TESTHOST_BOOT_TIMEOUT" ]; then
				th_log "$name: not up after $TESTHOST_BOOT_TIMEOUT s"
				rc=1
				continue
			fi
			left+=("$name")
		done
		pending=("${left[@]}")
		[ ${#pending[@]} -gt 0 ] && sleep 0.2
	done
	if [ $rc -ne 0 ]; then
		for name in "${names[@]}"; do
			echo "---- qemu log of $name" >&2
			tail -n 20 "$TESTHOST_RUN/$name/qemu.log" >&2
		done
		th_consoles 40 >&2
		th_die "booting ${names[*]} failed"
	fi
	return $rc
}

# th_run [-t SECS] [-n] [-e NAME=VALUE]... [-C DIR] NAME [--] CMD [ARG]...
# Runs CMD on host NAME (chrooted into the host's view of the outer root, so
# the outer machine's paths work). Prints its stdout/stderr, returns its exit
# status: 124 when it timed out (then it is killed), 125 when the host's agent
# cannot be reached. -n: no stdin.
th_run() {
	local timeout=$TESTHOST_TIMEOUT args=() name ip
	OPTIND=1
	while getopts "t:ne:C:" opt; do
		case $opt in
		t) timeout=$OPTARG ;;
		n) args+=(--no-stdin) ;;
		e) args+=(--env "$OPTARG") ;;
		C) args+=(--cwd "$OPTARG") ;;
		*) th_die "th_run: bad option"; return 125 ;;
		esac
	done
	shift $((OPTIND - 1))
	name=$1; shift
	[ "${1:-}" = -- ] && shift
	[ $# -gt 0 ] || { th_die "th_run: no command"; return 125; }
	ip=$(th_ip "$name") || return 125
	th_in_ns "$TESTHOST_AGENT" run --addr "$ip" --port "$TH_AGENT_PORT" \
		--timeout "$timeout" "${args[@]}" -- "$@"
}

th_sh() {
	local opts=()
	while [ $# -gt 2 ]; do opts+=("$1"); shift; done
	th_run "${opts[@]}" "$1" -- /bin/sh -c "$2"
}

# th_cp NAME SRC DST: copy a file into host NAME's (tmpfs-backed) view; the
# mode is kept. Outer files are already visible at their own paths.
th_cp() {
	local name=$1 src=$2 dst=$3 mode
	mode=$(stat -c %a "$src") || return 1
	th_run -t 600 "$name" -- /bin/sh -c \
		'mkdir -p "$(dirname "$1")" && cat >"$1" && chmod "$2" "$1"' sh "$dst" "$mode" <"$src"
}

# th_memserver NAME URL [ARG]...: starts $TESTHOST_BUILD/memserver on host
# NAME listening on URL (ARGs added, e.g. --capacity 1G), after stopping any
# memory server already there, and returns once it serves (its ready file),
# or 1 with its log after 10 s. It runs detached from the agent, logging to
# NAME:/tmp/memserver.log; the caller stops it (th_memserver_stop), typically
# from an EXIT trap, so that no later case meets it.
th_memserver() {
	local name=$1 url=$2 ms=${TESTHOST_BUILD:-$TH_TOP/build}/memserver
	shift 2
	th_memserver_stop "$name"
	th_sh -n -t 30 "$name" "rm -f /tmp/memserver.ready
		setsid $ms --listen $url --ready-file /tmp/memserver.ready $* \
			>/tmp/memserver.log 2>&1 </dev/null &
		for i in \$(seq 100); do [ -s /tmp/memserver.ready ] && exit 0; sleep 0.1; done
		cat /tmp/memserver.log; exit 1"
}

# th_memserver_stop NAME...: SIGTERM to every memory server on those hosts,
# and a wait (up to 5 s each) until they are gone.
th_memserver_stop() {
	local name
	for name in "$@"; do
		th_sh -n -t 20 "$name" "pkill -TERM -x memserver; for i in \$(seq 50); do
			pgrep -x memserver >/dev/null || exit 0; sleep 0.1; done; exit 1" >/dev/null 2>&1
	done
}

th_console() {
	th_need_run || return 1
	tail -n "${2:-40}" "$TESTHOST_RUN/$1/console.log" 2>/dev/null
}

th_consoles() {
	local name
	th_need_run || return 1
	for name in $(th_hosts); do
		echo "==== last ${1:-40} console lines of test host $name ($(th_host_field "$name" 2))"
		th_console "$name" "${1:-40}"
		th_qemu_alive "$name" || echo "==== $name: qemu is not running: $(tail -n 3 "$TESTHOST_RUN/$name/qemu.log")"
	done
}

th_logs() {
	local dir=$1 name
	th_need_run || return 1
	mkdir -p "$dir" || return 1
	for name in $(th_hosts); do
		cp "$TESTHOST_RUN/$name/console.log" "$dir/$name.console.log" 2>/dev/null
		cp "$TESTHOST_RUN/$name/qemu.log" "$dir/$name.qemu.log" 2>/dev/null
	done
}

th_status() {
	local name
	th_need_run || return 1
	echo "run $TESTHOST_RUN namespace $(th_netns)"
	for name in $(th_hosts); do
		printf '%-10s %-12s %-8s boot %ss\n' "$name" "$(th_host_field "$name" 2)" \
			"$(th_qemu_alive "$name" && echo up || echo down)" \
			"$(cat "$TESTHOST_RUN/$name/boot_seconds" 2>/dev/null || echo '?')"
	done
}

# th_down: tear the run down; idempotent and safe to race with the watcher.
th_down() {
	local run=${TESTHOST_RUN:-} name pid id ns i
	[ -n "$run" ] && [ -f "$run/id" ] || return 0
	exec {th_lock}>>"$run/lock"
	flock "$th_lock"
	if [ -f "$run/down" ]; then
		exec {th_lock}>&-
		return 0
	fi
	id=$(cat "$run/id"); ns=$(cat "$run/netns" 2>/dev/null)
	for name in $(awk '{ print $1 }' "$run/hosts" 2>/dev/null); do
		pid=$(th_qemu_pid "$name") && kill -TERM "$pid" 2>/dev/null
	done
	for i in $(seq 50); do
		pid=""
		for name in $(awk '{ print $1 }' "$run/hosts" 2>/dev/null); do
			th_qemu_alive "$name" && pid=1
		done
		[ -z "$pid" ] && break
		sleep 0.1
	done
	for name in $(awk '{ print $1 }' "$run/hosts" 2>/dev/null); do
		pid=$(th_qemu_pid "$name") && kill -KILL "$pid" 2>/dev/null
	done
	if [ -n "$ns" ] && [ -e "/run/netns/$ns" ]; then
		for name in $(awk '{ print $4 }' "$run/hosts" 2>/dev/null); do
			ip -n "$ns" link del "$name" 2>/dev/null
		done
		ip -n "$ns" link del "$TH_BRIDGE" 2>/dev/null
		ip netns del "$ns"
	fi
	touch "$run/down"
	pid=$(cat "$run/reaper.pid" 2>/dev/null)
	if [ -n "$pid" ] && [ "$pid" != "${TH_REAPER_SELF:-}" ] &&
	   tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q "testhost reap $run "; then
		kill "$pid" 2>/dev/null
	fi
	exec {th_lock}>&-
	if [ "${TESTHOST_KEEP:-0}" != 1 ]; then
		rm -rf "$run"
	fi
	[ "$run" = "${TESTHOST_RUN:-}" ] && unset TESTHOST_RUN
	return 0
}

#!/bin/bash
# Case: virtio-blk. On p1 (one CPU under TCG, as case-vmm-ept) the guest, its
# RAM on the virtual cache (a private memory server, 256 MiB of RAM, 64 MiB of
# cache), makes an ext2 file system on /dev/vda (a 64 MiB file on the host),
# writes three files of BLK_MIB (default 8) MiB from /dev/urandom and prints
# their md5sums; a second vmm process on plain RAM boots with the same disk
# file read-only and must print the same sums. Also: a missing disk file is a
# one-line error and status 1.
set -u
. "$(dirname "$0")/../../tools/testhost/lib.sh"
: "${TESTHOST_BUILD:=$TH_TOP/build}"
: "${BLK_MIB:=8}"
vmm=$TESTHOST_BUILD/vmm
kernel=$TESTHOST_BUILD/guest/bzImage
initrd=$TESTHOST_BUILD/guest/initramfs.cpio
for f in "$vmm" "$kernel" "$initrd"; do
	[ -f "$f" ] || { echo "case-vmm-blk: $f missing (make vmm guest)"; exit 1; }
done
if th_accel_args | grep -q tcg; then
	TESTHOST_SMP=1 th_need_hosts p1 || exit 1
else
	th_need_hosts p1 || exit 1
fi
fail() { echo "case-vmm-blk: FAIL: $*"; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

boot() {	# boot NAME DISK-ARG WORKLOAD MEMORY-ARGS...: console in $out/NAME
	local name=$1 disk=$2 run=$3 t0=$SECONDS
	shift 3
	# A guest that hangs is stopped with SIGTERM before the agent's limit, so
	# vmm's summary line (what the cache and devices did) reaches the log.
	th_run -n -t 200 p1 -- timeout -s TERM -k 10 150 "$vmm" run "$@" --mem 256M --vcpus 2 \
		--disk "$disk" --log-level info \
		--kernel "$kernel" --initrd "$initrd" \
		--cmdline "console=ttyS0 loglevel=4 transparent_hugepage=madvise legato.run=$run" \
		2>&1 | tr -d '\r' >"$out/$name"
	echo "${PIPESTATUS[0]}" >"$out/$name.rc"
	echo "case-vmm-blk: $name: exit $(cat "$out/$name.rc") in $((SECONDS - t0)) s"
}

th_sh -n -t 30 p1 "rm -f /tmp/disk.img && truncate -s 64M /tmp/disk.img &&
	head -c 32 /dev/urandom >/tmp/blk.key" || fail "cannot make the disk and key files"
# With --key-file, the private memory server of --local gets the key too (a
# client given a key refuses a server that does not prove it).
boot write /tmp/disk.img "disk-write:$BLK_MIB" --local --cache 64M --key-file /tmp/blk.key
[ "$(cat "$out/write.rc")" = 0 ] || { tail -20 "$out/write"; fail "write boot: status $(cat "$out/write.rc")"; }
grep -q '^legato-disk: write rc=0' "$out/write" || { tail -20 "$out/write"; fail "guest could not write its disk"; }
grep '^legato-disk: [0-9a-f]\{32\} ' "$out/write" | sort >"$out/sums.write"
[ "$(wc -l <"$out/sums.write")" = 3 ] || { tail -20 "$out/write"; fail "no checksums written"; }

boot read /tmp/disk.img,ro disk-read --no-remote
[ "$(cat "$out/read.rc")" = 0 ] || { tail -20 "$out/read"; fail "read boot: status $(cat "$out/read.rc")"; }
grep -q '^legato-disk: read rc=0' "$out/read" || { tail -20 "$out/read"; fail "guest could not read its disk"; }
grep '^legato-disk: [0-9a-f]\{32\} ' "$out/read" | sort >"$out/sums.read"
cmp -s "$out/sums.write" "$out/sums.read" ||
	{ diff "$out/sums.write" "$out/sums.read"; fail "files read back differ from those written"; }

th_run -n -t 30 p1 -- "$vmm" run --no-remote --mem 256M --disk /nonexistent.img \
	--kernel "$kernel" >"$out/bad" 2>&1 && fail "a missing disk file was accepted"
grep -q 'nonexistent.img' "$out/bad" || { cat "$out/bad"; fail "no error naming the missing disk"; }
echo "case-vmm-blk: ok ($(wc -l <"$out/sums.read") files, $((3 * BLK_MIB)) MiB, read back intact)"

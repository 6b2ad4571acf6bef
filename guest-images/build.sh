#!/bin/bash
# guest-images/build.sh OUTDIR MEMCHECK [EVIL [NETCOPY]]: builds the legato guest from
# Debian packages into OUTDIR: bzImage (the stock kernel the test hosts use:
# the package linux-image-amd64 depends on, fetched and cached by
# tools/testhost/lib.sh) and initramfs.cpio (busybox-static, guest-images/init,
# the static memcheck workload, the static virtio_evil program (EVIL; default:
# virtio_evil beside MEMCHECK), the static netcopy (NETCOPY, likewise), and the pvpanic and virtio modules of that
# kernel with their dependencies from its modules.dep). Idempotent: the
# packages are downloaded once; the outputs are replaced only when they change.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
out=$1
memcheck=$2
evil=${3:-$(dirname "$memcheck")/virtio_evil}
netcopy=${4:-$(dirname "$memcheck")/netcopy}
. "$HERE/../tools/testhost/lib.sh"

GUEST_MODULES="pvpanic-pci virtio_pci virtio_net virtio_blk virtio-rng crc32c_generic ext4"

kdir=$(th_fetch)
kver=$(cat "$kdir/kver")
mroot=$kdir/root/lib/modules/$kver
bb=$(th_busybox)
mkdir -p "$out"
stage=$(mktemp -d "$out/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/etc/legato" "$stage/lib/modules" "$stage/dev" \
	"$stage/proc" "$stage/sys" "$stage/tmp"
cp "$bb" "$stage/bin/busybox"
cp "$memcheck" "$stage/bin/memcheck"
cp "$evil" "$stage/bin/virtio_evil"
cp "$netcopy" "$stage/bin/netcopy"
install -m 0755 "$HERE/init" "$stage/init"

# shellcheck disable=SC2086
th_stage_modules "$mroot" "$stage" "$stage/etc/legato/modules" $GUEST_MODULES

(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$stage.cpio"
cmp -s "$stage.cpio" "$out/initramfs.cpio" 2>/dev/null && rm -f "$stage.cpio" ||
	mv -f "$stage.cpio" "$out/initramfs.cpio"
cmp -s "$kdir/root/boot/vmlinuz-$kver" "$out/bzImage" 2>/dev/null ||
	cp -f "$kdir/root/boot/vmlinuz-$kver" "$out/bzImage"
echo "$kver" >"$out/kernel-version"
echo "guest: $out/bzImage ($kver), $out/initramfs.cpio ($(($(stat -c %s "$out/initramfs.cpio") / 1024)) KiB)"

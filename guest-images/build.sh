#!/bin/bash
# guest-images/build.sh OUTDIR MEMCHECK: builds the legato guest from Debian
# packages into OUTDIR: bzImage (the stock kernel the test hosts use: the
# package linux-image-amd64 depends on, fetched and cached by
# tools/testhost/lib.sh) and initramfs.cpio (busybox-static, guest-images/init,
# the static memcheck workload, and the pvpanic and virtio modules of that
# kernel with their dependencies from its modules.dep). Idempotent: the
# packages are downloaded once; the outputs are replaced only when they change.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
out=$1
memcheck=$2
. "$HERE/../tools/testhost/lib.sh"

GUEST_MODULES="pvpanic-pci virtio_pci virtio_net virtio_blk virtio-rng"

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
install -m 0755 "$HERE/init" "$stage/init"

declare -A dep path done_
while IFS= read -r line; do
	file=${line%%:*}
	mod=${file##*/}; mod=${mod%.ko}; mod=${mod//-/_}
	path[$mod]=$file
	dep[$mod]=${line#*:}
done <"$mroot/modules.dep"
: >"$stage/etc/legato/modules"
visit() {
	local m=${1//-/_} d dm
	[ -n "${done_[$m]:-}" ] && return 0
	[ -n "${path[$m]:-}" ] || { echo "guest: module $1 not in $kver" >&2; return 1; }
	done_[$m]=1
	for d in ${dep[$m]}; do
		dm=${d##*/}; dm=${dm%.ko}
		visit "$dm"
	done
	mkdir -p "$stage/lib/modules/${path[$m]%/*}"
	cp "$mroot/${path[$m]}" "$stage/lib/modules/${path[$m]}"
	echo "${path[$m]}" >>"$stage/etc/legato/modules"
}
for m in $GUEST_MODULES; do visit "$m"; done

(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$stage.cpio"
cmp -s "$stage.cpio" "$out/initramfs.cpio" 2>/dev/null && rm -f "$stage.cpio" ||
	mv -f "$stage.cpio" "$out/initramfs.cpio"
cmp -s "$kdir/root/boot/vmlinuz-$kver" "$out/bzImage" 2>/dev/null ||
	cp -f "$kdir/root/boot/vmlinuz-$kver" "$out/bzImage"
echo "$kver" >"$out/kernel-version"
echo "guest: $out/bzImage ($kver), $out/initramfs.cpio ($(($(stat -c %s "$out/initramfs.cpio") / 1024)) KiB)"

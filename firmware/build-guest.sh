#!/usr/bin/env bash
# build-guest.sh - build cloudbox's small test guest (our own "cirros") from
# Debian packages into a bootable disk: firmware/build/guest.qcow2.
#
#   firmware/build-guest.sh [--force] [--refresh]
#
#     --force    rebuild even when guest.qcow2 is newer than every input
#     --refresh  ask apt for the newest packages again instead of re-using
#                the .debs cached in firmware/build/cache
#
# What it makes (see firmware/README.md):
#   an MBR-partitioned 64 MiB disk; partition 1 is FAT16 ("CLOUDBOX") and
#   holds SYSLINUX, the kernel of Debian's linux-image-cloud-amd64 and an
#   initramfs that we build here: static busybox, dropbear with its
#   libraries, the virtio/cdrom/iso9660/vfat modules, and guest/init, which
#   does DHCP, OpenStack metadata (config drive, then 169.254.169.254),
#   hostname, SSH keys and user_data, and prints "CLOUDBOX-GUEST: ..." lines
#   on ttyS0.
#
# Why SYSLINUX on FAT: every step works on plain files as root without
# loop devices or mounts (mkfs.vfat -C makes the filesystem image, mtools
# copies files into it, `syslinux --install` writes its boot sector and
# ldlinux.sys through mtools, sfdisk partitions the disk file and dd puts
# the filesystem and syslinux's mbr.bin in place). extlinux and grub-install
# both need the filesystem mounted, which means loop devices, which are not
# available in every container or CI sandbox.
#
# Idempotent and cached: downloaded .debs stay in build/cache and are re-used;
# when guest.qcow2 is newer than this script, the files in guest/ and the
# cached .debs, nothing is done. Needs root on Debian 12 (amd64); installs
# the Debian tools it uses with apt-get.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST_SRC=$HERE/guest
BUILD=${CLOUDBOX_GUEST_BUILD_DIR:-$HERE/build}
CACHE=$BUILD/cache
WORK=$BUILD/work
OUT=$BUILD/guest.qcow2

DISK_MB=64              # virtual size of the disk
PART_START=2048         # first sector of partition 1 (1 MiB aligned)
KERNEL_META=linux-image-cloud-amd64
KERNEL_CMDLINE="console=tty0 console=ttyS0,115200 quiet panic=10"

# Modules for the initramfs, with everything modules.dep says they need.
# Required ones must exist (as a module or built in); optional ones are
# skipped with a warning if this kernel has neither.
MODULES_REQUIRED="virtio_pci virtio_net virtio_blk isofs vfat"
MODULES_OPTIONAL="virtio_console virtio_scsi virtio_rng virtio_balloon
    nls_cp437 nls_ascii nls_utf8 nls_iso8859-1
    ata_piix ata_generic sr_mod sd_mod button evdev"

FORCE=""
REFRESH=""
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        --refresh) REFRESH=1; FORCE=1 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-guest: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

T0=$(date +%s)
log() { echo "build-guest: $*"; }
warn() { echo "build-guest: WARNING: $*" >&2; }
die() { echo "build-guest: ERROR: $*" >&2; exit 1; }
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR

[ "$(id -u)" = 0 ] || die "must run as root (it uses apt-get, and mknod for the initramfs)"
command -v dpkg >/dev/null && command -v apt-get >/dev/null ||
    die "needs a Debian system (dpkg and apt-get)"
[ "$(dpkg --print-architecture)" = amd64 ] ||
    die "the guest is x86_64: run this on an amd64 Debian (this is $(dpkg --print-architecture))"

mkdir -p "$CACHE"
exec 9>"$BUILD/.lock"
if ! flock -n 9; then
    log "another build is running; waiting for it"
    flock 9
fi
rm -rf "$CACHE"/.dl.* "$OUT.tmp"     # left over by an interrupted run

# ---------------------------------------------------------------- up to date?
if [ -z "$FORCE" ] && [ -s "$OUT" ]; then
    newer=$(find "$HERE/build-guest.sh" "$GUEST_SRC" "$CACHE" -newer "$OUT" \
                 \( -type f -o -type l \) ! -name '.*' -print -quit)
    if [ -z "$newer" ]; then
        log "$OUT is up to date ($(du -h "$OUT" | cut -f1)); use --force to rebuild"
        exit 0
    fi
    log "rebuilding: $newer is newer than $OUT"
fi

# ------------------------------------------------------------------- tools
export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=""
apt_update_once() {
    [ -n "$APT_UPDATED" ] && return 0
    log "apt-get update"
    apt-get update -q >"$BUILD/apt-update.log" 2>&1 ||
        die "apt-get update failed, see $BUILD/apt-update.log"
    APT_UPDATED=1
}
# make sure apt knows the packages (a fresh machine may have no lists)
apt_known() {
    local p
    for p in "$@"; do
        if ! apt-cache show --no-all-versions "$p" >/dev/null 2>&1; then
            apt_update_once
            apt-cache show --no-all-versions "$p" >/dev/null 2>&1 ||
                die "apt does not know the Debian package '$p'"
        fi
    done
}

need_pkgs=()
need() {    # need COMMAND-OR-FILE PACKAGE
    if [[ $1 == /* ]]; then [ -e "$1" ] && return 0
    else command -v "$1" >/dev/null 2>&1 && return 0
    fi
    need_pkgs+=("$2")
}
need depmod kmod
need modprobe kmod
need cpio cpio
need gzip gzip
need mkfs.vfat dosfstools
need mcopy mtools
need syslinux syslinux
need /usr/lib/syslinux/mbr/mbr.bin syslinux-common
need sfdisk fdisk
need qemu-img qemu-utils
need flock util-linux
if [ ${#need_pkgs[@]} -gt 0 ]; then
    mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
    apt_known "${need_pkgs[@]}"
    log "installing build tools: ${need_pkgs[*]}"
    apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" \
        >"$BUILD/apt-install.log" 2>&1 ||
        die "apt-get install ${need_pkgs[*]} failed, see $BUILD/apt-install.log"
fi

# ---------------------------------------------------------------- packages
cached_deb() { ls -1 "$CACHE/$1"_*.deb 2>/dev/null | sort -V | tail -n 1 || true; }

# fetch_deb PACKAGE: set DEB to the path of its .deb in the cache,
# downloading it when it is not there (or with --refresh).
fetch_deb() {
    local pkg=$1 tmp
    DEB=$(cached_deb "$pkg")
    if [ -n "$DEB" ] && [ -z "$REFRESH" ]; then
        return 0
    fi
    apt_known "$pkg"
    log "downloading $pkg"
    tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
    if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg") \
            >"$BUILD/apt-download.log" 2>&1; then
        rm -rf "$tmp"
        die "apt-get download $pkg failed, see $BUILD/apt-download.log"
    fi
    rm -f "$CACHE/$pkg"_*.deb
    mv "$tmp"/*.deb "$CACHE/"
    rmdir "$tmp"
    DEB=$(cached_deb "$pkg")
    [ -n "$DEB" ] || die "apt-get download $pkg left no .deb"
}

# The kernel: linux-image-cloud-amd64 is a metapackage; its one dependency
# linux-image-<abi>-cloud-amd64 holds the kernel and the modules.
kernel_deb=""
if [ -z "$REFRESH" ]; then
    kernel_deb=$(ls -1 "$CACHE"/linux-image-[0-9]*-cloud-amd64_*.deb 2>/dev/null |
                 sort -V | tail -n 1 || true)
fi
if [ -z "$kernel_deb" ]; then
    apt_known "$KERNEL_META"
    kernel_pkg=$(apt-cache depends "$KERNEL_META" |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    [ -n "$kernel_pkg" ] || die "cannot tell which kernel package $KERNEL_META depends on"
    for old in "$CACHE"/linux-image-[0-9]*-cloud-amd64_*.deb; do
        case "$old" in */"$kernel_pkg"_*) ;; *) rm -f "$old" ;; esac
    done
    fetch_deb "$kernel_pkg"
    kernel_deb=$DEB
fi
log "kernel package: $(basename "$kernel_deb")"

fetch_deb busybox-static
busybox_deb=$DEB
fetch_deb dropbear-bin
dropbear_deb=$DEB

# dropbear's shared libraries: follow the Depends of dropbear-bin through
# library packages only (libc6, libcrypt1, libtomcrypt1, libtommath1, zlib1g).
deb_lib_deps() {
    { dpkg-deb -f "$1" Pre-Depends; dpkg-deb -f "$1" Depends; } |
        tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/:any//; s/[[:space:]]//g' |
        grep -E '^(lib|zlib)' || true
}
declare -A seen_pkg=()
lib_debs=()
queue=$(deb_lib_deps "$dropbear_deb")
while [ -n "$queue" ]; do
    next=""
    for p in $queue; do
        [ -n "${seen_pkg[$p]:-}" ] && continue
        seen_pkg[$p]=1
        fetch_deb "$p"
        lib_debs+=("$DEB")
        next="$next $(deb_lib_deps "$DEB")"
    done
    queue=$(echo "$next" | xargs -n 1 2>/dev/null | sort -u | xargs)
done

# ---------------------------------------------------------------- unpack
log "unpacking packages"
rm -rf "$WORK"
mkdir -p "$WORK/kernel" "$WORK/pkgs"
dpkg-deb -x "$kernel_deb" "$WORK/kernel"
for d in "$busybox_deb" "$dropbear_deb" "${lib_debs[@]}"; do
    dpkg-deb -x "$d" "$WORK/pkgs"
done

KVER=$(ls -1 "$WORK/kernel/lib/modules")
[ "$(echo "$KVER" | wc -l)" = 1 ] && [ -n "$KVER" ] ||
    die "expected exactly one kernel in $kernel_deb, found: $KVER"
VMLINUZ="$WORK/kernel/boot/vmlinuz-$KVER"
[ -f "$VMLINUZ" ] || die "no /boot/vmlinuz-$KVER in $kernel_deb"
log "kernel $KVER ($(du -h "$VMLINUZ" | cut -f1))"

ROOT=$WORK/initramfs
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc/cloudbox,etc/dropbear,dev,proc,sys,run,tmp,mnt,root,var/log}
mkdir -p "$ROOT"/lib/x86_64-linux-gnu "$ROOT"/lib64 "$ROOT"/usr/share/udhcpc "$ROOT"/usr/share/cloudbox
chmod 700 "$ROOT/root"
chmod 1777 "$ROOT/tmp"

# ---------------------------------------------------------------- busybox
BB="$WORK/pkgs/bin/busybox"
[ -x "$BB" ] || die "no /bin/busybox in $busybox_deb"
cp "$BB" "$ROOT/bin/busybox"
n=0
while read -r applet; do
    [ -n "$applet" ] && [ ! -e "$ROOT/$applet" ] && [ ! -L "$ROOT/$applet" ] || continue
    mkdir -p "$ROOT/$(dirname "$applet")"
    ln -s /bin/busybox "$ROOT/$applet"
    n=$((n + 1))
done < <("$BB" --list-full)
for a in sh awk findfs udhcpc wget insmod init cttyhack acpid timeout usleep dd tr head; do
    [ -L "$ROOT/bin/$a" ] || [ -L "$ROOT/sbin/$a" ] || [ -L "$ROOT/usr/bin/$a" ] ||
        [ -L "$ROOT/usr/sbin/$a" ] || die "this busybox has no '$a' applet"
done
log "busybox: $n applets"

# ---------------------------------------------------------------- dropbear
for f in usr/sbin/dropbear usr/bin/dropbearkey usr/bin/dbclient; do
    [ -x "$WORK/pkgs/$f" ] || die "no /$f in $dropbear_deb"
    cp "$WORK/pkgs/$f" "$ROOT/$f"
done
LDSO=$(find "$WORK/pkgs" -name ld-linux-x86-64.so.2 -type f | head -n 1)
[ -n "$LDSO" ] || die "no ld-linux-x86-64.so.2 in the libc6 package"
libpath=$(find "$WORK/pkgs" -name '*.so*' \( -type f -o -type l \) -printf '%h\n' |
          sort -u | paste -sd:)
cp "$LDSO" "$ROOT/lib64/ld-linux-x86-64.so.2"
for f in usr/sbin/dropbear usr/bin/dropbearkey usr/bin/dbclient; do
    # the loader of the downloaded libc resolves the libraries, so only the
    # downloaded packages are used, never the build host's own libraries
    "$LDSO" --library-path "$libpath" --list "$WORK/pkgs/$f" > "$WORK/ldd.out" ||
        die "cannot list the libraries of /$f"
    while read -r soname arrow path _; do
        [ "$arrow" = "=>" ] || continue
        case "$soname" in */*) continue ;; esac     # the loader itself
        case "$path" in
            "$WORK/pkgs/"*) cp -L "$path" "$ROOT/lib/x86_64-linux-gnu/$soname" ;;
            *) die "/$f needs $soname, which none of the downloaded packages has (found: $path)" ;;
        esac
    done < "$WORK/ldd.out"
done
log "dropbear: $(cd "$ROOT/lib/x86_64-linux-gnu" && echo *)"

# ---------------------------------------------------------------- modules
log "resolving kernel modules with modules.dep"
depmod -b "$WORK/kernel" "$KVER"
KMODDIR="$WORK/kernel/lib/modules/$KVER"
: > "$WORK/modules.order"
for m in $MODULES_REQUIRED $MODULES_OPTIONAL; do
    if ! out=$(modprobe -d "$WORK/kernel" -S "$KVER" --show-depends "$m" 2>&1); then
        case " $MODULES_REQUIRED " in
            *" $m "*) die "kernel $KVER has no module '$m': $out" ;;
            *) warn "kernel $KVER has no module '$m', skipped"; continue ;;
        esac
    fi
    echo "$out" | while read -r kind path _; do
        if [ "$kind" = insmod ]; then echo "${path#"$KMODDIR"/}"; fi
    done >> "$WORK/modules.order"
done
mkdir -p "$ROOT/lib/modules/$KVER"
: > "$ROOT/etc/cloudbox/modules"
while read -r rel; do
    dst="$ROOT/lib/modules/$KVER/$rel"
    mkdir -p "$(dirname "$dst")"
    # busybox insmod takes plain .ko files: decompress when needed
    case "$rel" in
        *.ko.xz)  dst=${dst%.xz};  xz -dc "$KMODDIR/$rel" > "$dst";    rel=${rel%.xz} ;;
        *.ko.zst) dst=${dst%.zst}; zstd -qdc "$KMODDIR/$rel" > "$dst"; rel=${rel%.zst} ;;
        *.ko.gz)  dst=${dst%.gz};  gzip -dc "$KMODDIR/$rel" > "$dst";  rel=${rel%.gz} ;;
        *)        cp "$KMODDIR/$rel" "$dst" ;;
    esac
    echo "$rel" >> "$ROOT/etc/cloudbox/modules"
done < <(awk 'NF && !seen[$0]++' "$WORK/modules.order")
for f in modules.builtin modules.builtin.modinfo modules.order; do
    [ -f "$KMODDIR/$f" ] && cp "$KMODDIR/$f" "$ROOT/lib/modules/$KVER/"
done
depmod -b "$ROOT" "$KVER"     # so that modprobe works inside the guest
log "modules: $(wc -l < "$ROOT/etc/cloudbox/modules") files ($(sed 's#.*/##; s#\.ko$##' "$ROOT/etc/cloudbox/modules" | xargs))"

# ---------------------------------------------------------------- guest files
for f in init inittab shutdown profile udhcpc.script json.awk disk; do
    [ -f "$GUEST_SRC/$f" ] || die "missing $GUEST_SRC/$f"
done
install -m 0755 "$GUEST_SRC/init" "$ROOT/init"
install -m 0644 "$GUEST_SRC/inittab" "$ROOT/etc/inittab"
install -m 0755 "$GUEST_SRC/shutdown" "$ROOT/etc/cloudbox/shutdown"
install -m 0644 "$GUEST_SRC/profile" "$ROOT/etc/profile"
install -m 0755 "$GUEST_SRC/udhcpc.script" "$ROOT/usr/share/udhcpc/default.script"
install -m 0644 "$GUEST_SRC/json.awk" "$ROOT/usr/share/cloudbox/json.awk"
install -m 0755 "$GUEST_SRC/disk" "$ROOT/usr/sbin/cloudbox-disk"
# ACPI power button (virsh shutdown / QEMU system_powerdown) -> poweroff
mkdir -p "$ROOT/etc/acpi/PWRF"
printf '#!/bin/sh\nexec /sbin/poweroff\n' > "$ROOT/etc/acpi/PWRF/00000080"
chmod 0755 "$ROOT/etc/acpi/PWRF/00000080"

# root logs in with an SSH key only (no password); the console has a shell
echo 'root:*:0:0:root:/root:/bin/sh' > "$ROOT/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' > "$ROOT/etc/group"
printf '/bin/sh\n/bin/ash\n' > "$ROOT/etc/shells"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' > "$ROOT/etc/nsswitch.conf"
echo cloudbox-guest > "$ROOT/etc/hostname"
: > "$ROOT/etc/resolv.conf"
cat > "$ROOT/etc/cloudbox/build-info" <<EOF
kernel=$KVER
kernel_deb=$(basename "$kernel_deb")
busybox_deb=$(basename "$busybox_deb")
dropbear_deb=$(basename "$dropbear_deb")
EOF
mknod -m 600 "$ROOT/dev/console" c 5 1
mknod -m 666 "$ROOT/dev/null" c 1 3

# ---------------------------------------------------------------- initramfs
log "packing initramfs"
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --quiet) | gzip -9 -n > "$WORK/initrd.img"
log "initramfs: $(du -h "$WORK/initrd.img" | cut -f1) ($(du -sh "$ROOT" | cut -f1) unpacked)"

# ---------------------------------------------------------------- disk
log "making the boot filesystem (FAT16 + SYSLINUX)"
export MTOOLS_SKIP_CHECK=1
part_sectors=$(( DISK_MB * 2048 - PART_START ))
FS="$WORK/boot.vfat"
# -h: hidden sectors = partition offset, which the FAT boot sector needs
mkfs.vfat -C -n CLOUDBOX -i 0c10db0c -h "$PART_START" "$FS" $((part_sectors / 2)) >/dev/null
cat > "$WORK/syslinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT cloudbox
PROMPT 0
TIMEOUT 0
LABEL cloudbox
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND $KERNEL_CMDLINE
EOF
cp "$VMLINUZ" "$WORK/vmlinuz"
mcopy -i "$FS" -o "$WORK/vmlinuz" "$WORK/initrd.img" "$WORK/syslinux.cfg" ::/
# writes the FAT boot sector, ldlinux.sys and ldlinux.c32 (through mtools)
syslinux --install "$FS"
mdir -i "$FS" -a -b ::/ | grep -qi ldlinux.sys || die "syslinux did not install ldlinux.sys"

log "partitioning the disk (MBR, one bootable FAT16 partition)"
RAW="$WORK/disk.raw"
rm -f "$RAW"
truncate -s "${DISK_MB}M" "$RAW"
printf 'label: dos\nlabel-id: 0x0c10db0c\nunit: sectors\n\nstart=%d, type=e, bootable\n' \
    "$PART_START" | sfdisk --quiet --no-reread --no-tell-kernel "$RAW" >/dev/null
dd if="$FS" of="$RAW" bs=512 seek="$PART_START" conv=notrunc,sparse status=none
# syslinux's MBR boot code: the first 440 bytes, before the partition table
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$RAW" bs=440 count=1 conv=notrunc status=none

log "converting to qcow2"
qemu-img convert -f raw -O qcow2 "$RAW" "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"
# keep work/initramfs, initrd.img and vmlinuz for inspection; drop the rest
rm -rf "$RAW" "$FS" "$WORK/kernel" "$WORK/pkgs"
{
    cat "$ROOT/etc/cloudbox/build-info"
    echo "cmdline=$KERNEL_CMDLINE"
    echo "disk_virtual_size=${DISK_MB}M"
    echo "qcow2_bytes=$(stat -c %s "$OUT")"
    echo "sha256=$(sha256sum "$OUT" | cut -d' ' -f1)"
} > "$BUILD/guest.info"

log "done in $(( $(date +%s) - T0 )) s: $OUT ($(du -h --apparent-size "$OUT" | cut -f1), virtual ${DISK_MB} MiB)"

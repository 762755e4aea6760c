#!/usr/bin/env bash
# Build cloudbox's installer ISO (hybrid: BIOS and UEFI, CD or USB stick) from Debian 12
# packages plus cloudbox's .deb.  See packaging/ISO.md.
#
#   packaging/build-iso.sh [--deb FILE] [--answer FILE] [--answer-url URL --answer-fingerprint SHA256]
#                          [--out FILE]
#
#     --deb FILE     the cloudbox .deb to put in (default: the newest packaging/build/cloudbox_*.deb,
#                    made by packaging/build-deb.sh when there is none)
#     --answer FILE  an answer file (TOML, firmware/installer/answer.example.toml) to put on the ISO
#                    as /answer.toml: the ISO then installs unattended
#     --answer-url URL --answer-fingerprint SHA256
#                    the installer fetches its answer file from this https URL, whose server
#                    certificate must have this SHA-256 fingerprint (no CA is trusted)
#     --out FILE     default packaging/build/cloudbox-<version>-amd64.iso
#
# How: debootstrap a bookworm root, apt-get install the kernel, GRUB (BIOS and EFI), the
# installer's tools and ./cloudbox.deb into it, add the installer (firmware/installer/), squash
# it (zstd), and make the ISO with grub-mkrescue (El Torito BIOS + EFI image, and an MBR/GPT so
# that the same file boots from a USB stick).  The ISO boots that root as a live system
# (Debian's live-boot in the live initrd only); the installer copies the same root to the disk.
# Downloads are cached under $CLOUDBOX_ISO_CACHE (default /var/cache/cloudbox-iso): a second
# build with the same package list and .deb reuses the installed root and only re-squashes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root

# The build host's tools (a fresh Debian 12 gets them here).
HOST_PACKAGES=(debootstrap squashfs-tools xorriso grub-common grub-pc-bin grub-efi-amd64-bin mtools dosfstools)
# The system on the ISO and on the installed node, besides cloudbox's own Depends.
TARGET_PACKAGES=(linux-image-amd64 systemd-sysv udev initramfs-tools grub-pc grub-efi-amd64-bin efibootmgr
    e2fsprogs dosfstools gdisk squashfs-tools whiptail kbd console-setup-linux openssh-server
    systemd-timesyncd systemd-resolved ca-certificates curl less iputils-ping procps python3 zstd)
LIVE_PACKAGES=(live-boot)  # only in the live initrd: purged from the installed root

CACHE=${CLOUDBOX_ISO_CACHE:-/var/cache/cloudbox-iso}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
INSTALLER_SRC=$REPO/firmware/installer
DEB="" ANSWER="" OUT="" EXTRA=""
while [ $# -gt 0 ]; do
    case $1 in
        --deb) DEB=$(realpath "$2"); shift 2 ;;
        --answer) ANSWER=$(realpath "$2"); shift 2 ;;
        --answer-url) EXTRA="$EXTRA cloudbox.answer=$2"; shift 2 ;;
        --answer-fingerprint) EXTRA="$EXTRA cloudbox.answer-fingerprint=$2"; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-iso: unknown argument $1" >&2; exit 2 ;;
    esac
done
start=$(date +%s)
install_os_packages "${HOST_PACKAGES[@]}"

if [ -z "$DEB" ]; then
    DEB=$(ls -t "$REPO"/packaging/build/cloudbox_*_amd64.deb 2>/dev/null | head -1 || true)
    if [ -z "$DEB" ]; then
        "$REPO/packaging/build-deb.sh"
        DEB=$(ls -t "$REPO"/packaging/build/cloudbox_*_amd64.deb | head -1)
    fi
fi
VERSION=$(dpkg-deb -f "$DEB" Version)
OUT=${OUT:-$REPO/packaging/build/cloudbox-$VERSION-amd64.iso}
mkdir -p "$(dirname "$OUT")" "$CACHE/archives/partial"
say "cloudbox .deb: $DEB ($VERSION)"

# --- 1. debootstrap (once) ----------------------------------------------------------------
BASE=$CACHE/base
if [ ! -x "$BASE/usr/bin/apt-get" ]; then
    say "debootstrap bookworm into $BASE (once)"
    rm -rf "$BASE.new"
    debootstrap --variant=minbase --cache-dir="$CACHE/archives" bookworm "$BASE.new" "$MIRROR" >"$CACHE/debootstrap.log"
    mv "$BASE.new" "$BASE"
fi

# --- 2. the root with every package (cached by package list and .deb) ---------------------
ROOT=$CACHE/root
key=$(printf '%s\n' "${TARGET_PACKAGES[*]}" "${LIVE_PACKAGES[*]}" "$(sha256sum "$DEB" | cut -d' ' -f1)" | sha256sum | cut -c1-16)
mounted=()
umount_all() { local m; for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done; mounted=(); }
trap umount_all EXIT
chroot_mounts() {  # the kernel file systems apt's maintainer scripts expect
    mount -t proc proc "$1/proc"; mounted=("$1/proc" "${mounted[@]}")
    # A /dev of its own, never the host's: maintainer scripts chgrp device nodes to the root's
    # groups (qemu's to its "kvm", whose number is another group's on the host: the host's
    # /dev/kvm once became ssl-cert's, and libvirt then re-probed QEMU at every define).
    mount -t tmpfs -o mode=0755,nosuid dev "$1/dev"; mounted=("$1/dev" "${mounted[@]}")
    local node name major minor
    for node in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
        read -r name major minor <<<"$node"
        mknod -m 666 "$1/dev/$name" c "$major" "$minor"
    done
    mkdir "$1/dev/pts" "$1/dev/shm"
    ln -s pts/ptmx "$1/dev/ptmx"
    mount -t devpts devpts "$1/dev/pts" -o newinstance,ptmxmode=0666; mounted=("$1/dev/pts" "${mounted[@]}")
    mount -t sysfs -o ro sysfs "$1/sys"; mounted=("$1/sys" "${mounted[@]}")
    mount --bind "$CACHE/archives" "$1/var/cache/apt/archives"; mounted=("$1/var/cache/apt/archives" "${mounted[@]}")
}
if [ "$(cat "$ROOT.key" 2>/dev/null)" != "$key" ]; then
    say "installing the packages into a copy of the base (this takes minutes)"
    rm -rf "$ROOT" "$ROOT.key"
    cp -a "$BASE" "$ROOT"
    chroot_mounts "$ROOT"
    printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"; chmod 755 "$ROOT/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://security.debian.org/debian-security bookworm-security main
EOF
    cp "$DEB" "$ROOT/tmp/cloudbox.deb"
    echo 'do_symlinks = yes' >"$ROOT/etc/kernel-img.conf"
    chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive /bin/sh -ec "
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends ${TARGET_PACKAGES[*]} ${LIVE_PACKAGES[*]} /tmp/cloudbox.deb
    " >"$CACHE/apt.log" 2>&1 || { tail -30 "$CACHE/apt.log" >&2; exit 1; }
    # The live initrd (with live-boot), then the installed system's own (without).
    cp "$ROOT"/boot/initrd.img-* "$CACHE/live-initrd.img"
    chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive /bin/sh -ec "
        apt-get purge -y -qq ${LIVE_PACKAGES[*]}
        apt-get autoremove --purge -y -qq
        apt-get clean
        # Debian's stand-alone etcd would take the ports of cloudbox's own etcd members.
        systemctl disable etcd.service
        systemctl enable systemd-networkd.service systemd-networkd-wait-online.service systemd-resolved.service
    " >>"$CACHE/apt.log" 2>&1 || { tail -30 "$CACHE/apt.log" >&2; exit 1; }
    rm -f "$ROOT/tmp/cloudbox.deb" "$ROOT/usr/sbin/policy-rc.d"
    # Made per machine at install time, not shared by every node of this ISO.
    rm -f "$ROOT"/etc/ssh/ssh_host_*
    : >"$ROOT/etc/machine-id"
    rm -f "$ROOT/var/lib/dbus/machine-id"
    umount_all
    echo "$key" >"$ROOT.key"
fi

# --- 3. the installer (every build: firmware/installer/) ----------------------------------
say "adding the installer from firmware/installer"
IROOT=$ROOT/usr/lib/cloudbox-installer
rm -rf "$IROOT"
install -d "$IROOT"
install -m 0644 "$INSTALLER_SRC"/cbinstall/*.py -D -t "$IROOT/cbinstall"
install -m 0755 "$INSTALLER_SRC/getty" "$INSTALLER_SRC/firstboot" "$IROOT/"
install -m 0644 "$INSTALLER_SRC/answer.example.toml" "$IROOT/"
install -m 0644 "$INSTALLER_SRC/cloudbox-firstboot.service" "$ROOT/etc/systemd/system/cloudbox-firstboot.service"
install -m 0644 "$INSTALLER_SRC/cloudbox-issue.service" "$ROOT/etc/systemd/system/cloudbox-issue.service"
for unit in getty@.service serial-getty@.service; do
    install -m 0644 -D "$INSTALLER_SRC/getty-installer.conf" "$ROOT/etc/systemd/system/$unit.d/cloudbox-installer.conf"
done
ln -sfn /etc/systemd/system/cloudbox-issue.service "$ROOT/etc/systemd/system/multi-user.target.wants/cloudbox-issue.service"
echo cloudbox >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tcloudbox\n' >"$ROOT/etc/hosts"
cat >"$ROOT/etc/issue" <<'EOF'
cloudbox (Debian GNU/Linux 12) \n \l

EOF
mkdir -p "$ROOT/etc/issue.d"

# --- 4. squashfs and ISO --------------------------------------------------------------------
STAGE=$CACHE/iso
rm -rf "$STAGE"
mkdir -p "$STAGE/live" "$STAGE/boot/grub"
KERNEL=$(ls "$ROOT"/boot/vmlinuz-* | sort -V | tail -1)
cp "$KERNEL" "$STAGE/live/vmlinuz"
cp "$CACHE/live-initrd.img" "$STAGE/live/initrd.img"
say "mksquashfs (zstd)"
# (zstd: the initrd too, once the zstd package is in the root; both decompress fast under TCG)
mksquashfs "$ROOT" "$STAGE/live/filesystem.squashfs" -comp zstd -Xcompression-level 6 -noappend -quiet -no-progress \
    -wildcards -e 'proc/*' 'sys/*' 'dev/*' 'run/*' 'tmp/*' 'var/cache/apt/archives/*.deb' >/dev/null
# The installed system's size: the installer checks the disk against it.
du -sxm "$ROOT" | cut -f1 >"$STAGE/live/filesystem.size"
echo "$VERSION" >"$STAGE/live/cloudbox.version"
[ -z "$ANSWER" ] || install -m 0644 "$ANSWER" "$STAGE/answer.toml"
install -m 0644 "$INSTALLER_SRC/grub.cfg" "$STAGE/boot/grub/grub.cfg"
sed -i "s|@VERSION@|$VERSION|g; s|@EXTRA@|${EXTRA# }|g" "$STAGE/boot/grub/grub.cfg"
say "grub-mkrescue: $OUT"
grub-mkrescue -o "$OUT.new" "$STAGE" -- -volid CLOUDBOX >"$CACHE/mkrescue.log" 2>&1 \
    || { cat "$CACHE/mkrescue.log" >&2; exit 1; }
mv "$OUT.new" "$OUT"
echo "$OUT ($(du -m "$OUT" | cut -f1) MiB, built in $(( $(date +%s) - start )) s)"

#!/usr/bin/env bash
# Boot cloudbox's installer ISO in QEMU (TCG: no KVM needed) and check it.
#
#   packaging/test-iso.sh [--iso FILE] boot [bios-cd|uefi-cd|bios-usb|uefi-usb ...]
#       each way of booting reaches the installer (its first line on the serial console)
#   packaging/test-iso.sh [--firmware bios|uefi] node DISK
#       only the second half of install: boot a disk it installed
#   packaging/test-iso.sh [--iso FILE] [--firmware bios|uefi] install
#       a blank 16 GiB disk and an answer file on a second drive labelled CLOUDBOX-AI: the
#       unattended install runs, the VM reboots from its disk, `cloudbox init` runs on the first
#       boot and the API answers through a port forwarded to 127.0.0.1 (the only traffic: QEMU's
#       user network is restrict=on, the guest reaches nothing outside).
#
# Prints the ISO's size and the time of each stage.  Work files: /var/tmp/cloudbox-iso-test.*
# (kept on failure, with the serial logs).  Timeouts: CLOUDBOX_ISO_BOOT_TIMEOUT (default 900 s
# per boot), CLOUDBOX_ISO_INSTALL_TIMEOUT (default 3600 s).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root

HOST_PACKAGES=(qemu-system-x86 qemu-utils ovmf dosfstools mtools curl)
ISO="" FIRMWARE=bios
while [ $# -gt 0 ]; do
    case $1 in
        --iso) ISO=$(realpath "$2"); shift 2 ;;
        --firmware) FIRMWARE=$2; shift 2 ;;
        *) break ;;
    esac
done
ACTION=${1:-install}; shift || true
ISO=${ISO:-$(ls -t "$REPO"/packaging/build/cloudbox-*-amd64.iso 2>/dev/null | head -1)}
[ -n "$ISO" ] && [ -f "$ISO" ] || { echo "test-iso: no ISO (run packaging/build-iso.sh or give --iso)" >&2; exit 2; }
install_os_packages "${HOST_PACKAGES[@]}"
BOOT_TIMEOUT=${CLOUDBOX_ISO_BOOT_TIMEOUT:-900}
INSTALL_TIMEOUT=${CLOUDBOX_ISO_INSTALL_TIMEOUT:-3600}
WORK=$(mktemp -d /var/tmp/cloudbox-iso-test.XXXXXX)
qemu_pid=""
ok=0
finish() {
    [ -z "$qemu_pid" ] || { kill "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; }
    if [ "$ok" = 1 ]; then rm -rf "$WORK"; else echo "test-iso: work files and serial logs kept in $WORK" >&2; fi
}
trap finish EXIT
say "ISO: $ISO ($(du -m "$ISO" | cut -f1) MiB)"

# The kernel's first line on the serial console (with or without quiet).
KERNEL_LINE='Linux version|^\[ *[0-9]+\.[0-9]+\] '
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
firmware_args() {  # firmware_args bios|uefi NAME: the machine and its firmware
    if [ "$1" = uefi ]; then
        [ -e "$WORK/$2.vars.fd" ] || cp "$OVMF_VARS" "$WORK/$2.vars.fd"  # kept across reboots
        echo "-machine q35 -drive if=pflash,format=raw,readonly=on,file=$OVMF_CODE -drive if=pflash,format=raw,file=$WORK/$2.vars.fd"
    else
        echo "-machine pc -global isa-fdc.fdtypeA=none"  # no floppy drive for the kernel to probe
    fi
}
start_qemu() {  # start_qemu NAME ARGS...: in the background, serial console to $WORK/NAME.serial
    local name=$1; shift
    : >"$WORK/$name.serial"
    qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 4096 -display none -monitor none \
        -serial "file:$WORK/$name.serial" "$@" >"$WORK/$name.qemu.log" 2>&1 &
    qemu_pid=$!
}
stop_qemu() { [ -z "$qemu_pid" ] || { kill "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; qemu_pid=""; }; }
wait_serial() {  # wait_serial NAME PATTERN TIMEOUT: seconds until the pattern shows, or fail
    local name=$1 pattern=$2 limit=$3 t0=$SECONDS
    while ! grep -aqE "$pattern" "$WORK/$name.serial"; do
        if ! kill -0 "$qemu_pid" 2>/dev/null; then
            echo "test-iso: QEMU ($name) ended before '$pattern':" >&2
            tail -c 3000 "$WORK/$name.serial" >&2; cat "$WORK/$name.qemu.log" >&2; return 1
        fi
        if [ $((SECONDS - t0)) -ge "$limit" ]; then
            echo "test-iso: no '$pattern' on $name's serial console in $limit s; its end:" >&2
            tail -c 3000 "$WORK/$name.serial" >&2; return 1
        fi
        sleep 2
    done
    echo $((SECONDS - t0))
}

boot_one() {  # boot_one bios-cd|uefi-cd|bios-usb|uefi-usb
    local way=$1 fw=${1%-*} medium=${1#*-} media
    case $medium in
        cd) media="-drive file=$ISO,media=cdrom,readonly=on,format=raw" ;;
        usb) media="-device qemu-xhci -drive if=none,id=stick,file=$ISO,format=raw,readonly=on -device usb-storage,drive=stick,bootindex=0" ;;
        *) echo "test-iso: unknown way $way" >&2; return 2 ;;
    esac
    # shellcheck disable=SC2046  # word splitting of the argument lists is wanted
    start_qemu "$way" $(firmware_args "$fw" "$way") $media -nic none
    local kernel installer
    kernel=$(wait_serial "$way" "$KERNEL_LINE" "$BOOT_TIMEOUT")
    installer=$(wait_serial "$way" "cloudbox-installer" "$BOOT_TIMEOUT")
    stop_qemu
    say "$way: kernel after ${kernel} s, installer after $((kernel + installer)) s"
}

node_boot() {  # node_boot DISK: boot an installed disk; the API must answer through hostfwd
    local disk=$1 port t t_boot
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    t_boot=$SECONDS
    # The installed node: its disk only (firmware vars kept: the UEFI path boots as installed).
    # shellcheck disable=SC2046
    start_qemu node $(firmware_args "$FIRMWARE" vm) \
        -drive "file=$disk,if=virtio,format=qcow2" \
        -nic "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:$port-:8443"
    t=$(wait_serial node "$KERNEL_LINE" "$BOOT_TIMEOUT"); say "installed system: kernel after $t s"
    while ! curl -fsSk --max-time 10 "https://127.0.0.1:$port/identity/v3" >"$WORK/identity.json" 2>/dev/null; do
        kill -0 "$qemu_pid" 2>/dev/null || { echo "test-iso: the node's QEMU ended" >&2; tail -c 3000 "$WORK/node.serial" >&2; exit 1; }
        if [ $((SECONDS - t_boot)) -ge "$INSTALL_TIMEOUT" ]; then
            echo "test-iso: the API did not answer on 127.0.0.1:$port in $INSTALL_TIMEOUT s" >&2
            tail -c 3000 "$WORK/node.serial" >&2; exit 1
        fi
        sleep 3
    done
    grep -q '"id": *"v3' "$WORK/identity.json"
    say "API answered after $((SECONDS - t_boot)) s of boot: $(head -c 200 "$WORK/identity.json")"
    t=$(wait_serial node "cloudbox web UI" 300) || true
    grep -a "cloudbox API\|cloudbox web UI\|admin password" "$WORK/node.serial" | tr -d '\r' | sort -u | sed 's/^/    login screen: /'
    curl -fsSk --max-time 10 "https://127.0.0.1:$port/" | grep -qi '<html' && say "web UI answered"
}

case $ACTION in
node)
    # The first boot of a disk that `install` made (kept in its work dir on failure).
    t_all=$SECONDS
    node_boot "$(realpath "$1")"
    stop_qemu
    ;;
boot)
    ways=("$@")
    [ ${#ways[@]} -gt 0 ] || ways=(bios-cd uefi-cd)
    for way in "${ways[@]}"; do boot_one "$way"; done
    ;;
install)
    t_all=$SECONDS
    qemu-img create -q -f qcow2 "$WORK/disk.qcow2" 16G
    cat >"$WORK/answer.toml" <<'EOF'
disk = "auto"
hostname = "isotest"
root_password = "cloudbox-iso-test"
[network]
interface = "auto"
mode = "dhcp"
[cloud]
mode = "new"
EOF
    # The answer drive: a small FAT file system labelled CLOUDBOX-AI with /answer.toml.
    mkfs.vfat -C -n CLOUDBOX-AI "$WORK/answer.img" 2048 >/dev/null
    mcopy -i "$WORK/answer.img" "$WORK/answer.toml" ::/answer.toml
    nic=(-nic "user,model=virtio-net-pci,restrict=on")
    # shellcheck disable=SC2046
    start_qemu install $(firmware_args "$FIRMWARE" vm) -no-reboot \
        -drive "file=$ISO,media=cdrom,readonly=on,format=raw" \
        -drive "file=$WORK/disk.qcow2,if=virtio,format=qcow2" \
        -drive "file=$WORK/answer.img,if=virtio,format=raw,readonly=on" "${nic[@]}"
    t=$(wait_serial install "cloudbox-installer" "$BOOT_TIMEOUT"); say "installer started after $t s"
    t=$(wait_serial install "INSTALLED" "$INSTALL_TIMEOUT"); say "installed after $((SECONDS - t_all)) s"
    # -no-reboot: the installer's reboot ends QEMU.
    for _ in $(seq 300); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
    stop_qemu
    grep -a "cloudbox-installer" "$WORK/install.serial" | tr -d '\r' | sed 's/^/    /'
    node_boot "$WORK/disk.qcow2"
    stop_qemu
    say "ok: unattended install and first boot in $((SECONDS - t_all)) s (ISO $(du -m "$ISO" | cut -f1) MiB)"
    ;;
*) echo "test-iso: boot or install, not $ACTION" >&2; exit 2 ;;
esac
ok=1

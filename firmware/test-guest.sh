#!/usr/bin/env bash
# test-guest.sh - boot firmware/build/guest.qcow2 under QEMU (TCG) and check
# the CLOUDBOX-GUEST markers on its serial console.
#
#   firmware/test-guest.sh [CASE...]     (default: all cases)
#
# Cases:
#   config-drive  ISO9660 config drive (label config-2) on an IDE CD-ROM,
#                 one-line meta_data.json, "#!" user_data that exits 0;
#                 then logs in over SSH (hostfwd on 127.0.0.1) with the key
#                 from the metadata and powers the guest off through ACPI.
#   vfat-drive    vfat config drive on a second virtio disk, pretty-printed
#                 meta_data.json with keys in another order, user_data
#                 exiting 3.
#   http          no config drive: the metadata service 169.254.169.254 is
#                 served by a local script through QEMU's guestfwd (slirp
#                 network 169.254.169.0/24); user_data is not a script.
#   none          no config drive and no metadata service: "metadata
#                 failed", and the guest still reaches "ready".
#   q35-scsi      q35 machine, config drive ISO as a CD-ROM on virtio-scsi
#                 (Debian's cloud kernel has no AHCI driver, so on q35 the
#                 config drive must not be a SATA CD-ROM).
#   hotplug       i440fx (cloudbox's machine): the disk list at boot, then a
#                 virtio disk hot-plugged (ACPI), resized, written from
#                 inside over SSH and unplugged, each seen on the console.
#   hotplug-q35   the same on q35, the disk plugged into a pcie-root-port.
#
# Networking is QEMU user mode with restrict=on: the guest can reach
# nothing outside QEMU's built-in slirp (DHCP, the guestfwd script, the
# hostfwd SSH port on 127.0.0.1). Every QEMU run is bounded by timeout(1).
# Logs stay in firmware/build/test/<case>/ (serial.log is the console).
# Builds the image first if needed (build-guest.sh is cached).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=$HERE/build/guest.qcow2
TESTDIR=$HERE/build/test
QEMU_TIMEOUT=${QEMU_TIMEOUT:-180}
READY_TIMEOUT=${READY_TIMEOUT:-150}

PASSED=0
FAILED=0
ok()   { echo "PASS: $CASE: $*"; PASSED=$((PASSED + 1)); }
bad()  { echo "FAIL: $CASE: $*"; FAILED=$((FAILED + 1)); }
log()  { echo "test-guest: $*"; }

[ "$(id -u)" = 0 ] || { echo "test-guest: must run as root" >&2; exit 1; }

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v genisoimage >/dev/null || need+=(genisoimage)
command -v mkfs.vfat >/dev/null || need+=(dosfstools)
command -v mcopy >/dev/null || need+=(mtools)
command -v ssh >/dev/null || need+=(openssh-client)
command -v socat >/dev/null || need+=(socat)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-cache show --no-all-versions "${need[@]}" >/dev/null 2>&1 || apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null ||
        { echo "test-guest: apt-get install ${need[*]} failed" >&2; exit 1; }
fi

"$HERE/build-guest.sh" || { echo "test-guest: build failed" >&2; exit 1; }

mkdir -p "$TESTDIR"
KEYDIR=$TESTDIR/key
if [ ! -f "$KEYDIR/id_ed25519" ]; then
    mkdir -p "$KEYDIR"
    ssh-keygen -q -t ed25519 -N '' -C 'cloudbox-test key' -f "$KEYDIR/id_ed25519"
fi
PUBKEY=$(cat "$KEYDIR/id_ed25519.pub")
# a second key, to check that several keys are installed
OTHERKEY='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHdUkqYKWxEUh2z0D4S7yF0CuXbs0a4Ln6zGQbdI/dwm second key with spaces'

free_port() {
    local p
    for p in $(seq $((20000 + $$ % 20000)) $((20100 + $$ % 20000))); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    echo 22222
}

# make_tree DIR: an OpenStack config drive tree; meta_data.json and
# user_data come from the variables META and USER_DATA.
make_tree() {
    rm -rf "$1"
    mkdir -p "$1/openstack/latest"
    printf '%s' "$META" > "$1/openstack/latest/meta_data.json"
    [ -n "${USER_DATA:-}" ] && printf '%s' "$USER_DATA" > "$1/openstack/latest/user_data"
    echo '{}' > "$1/openstack/latest/network_data.json"
    return 0
}

# boot ARGS...: start QEMU in the background, wait for "ready" (or the end)
boot() {
    local d=$TESTDIR/$CASE
    SERIAL=$d/serial.log
    MON=$d/monitor.sock
    rm -f "$SERIAL" "$MON" "$d/disk.qcow2"
    qemu-img create -q -f qcow2 -b "$IMAGE" -F qcow2 "$d/disk.qcow2"
    QEMU_CMD=(timeout "$QEMU_TIMEOUT" qemu-system-x86_64 -machine "${MACHINE:-pc},accel=tcg" -m 256
        -nographic -no-reboot -monitor "unix:$MON,server=on,wait=off"
        -drive "file=$d/disk.qcow2,if=virtio,format=qcow2" "$@")
    echo "${QEMU_CMD[*]}" > "$d/qemu.cmd"
    log "$CASE: ${QEMU_CMD[*]}"
    local t0
    t0=$(date +%s.%N)
    "${QEMU_CMD[@]}" </dev/null >"$SERIAL" 2>&1 &
    QEMU_PID=$!
    local i=0
    while [ $i -lt $((READY_TIMEOUT * 5)) ]; do
        grep -q '^CLOUDBOX-GUEST: ready' "$SERIAL" 2>/dev/null && break
        kill -0 "$QEMU_PID" 2>/dev/null || break
        sleep 0.2
        i=$((i + 1))
    done
    BOOT_SECONDS=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
}

stop() {
    if kill -0 "$QEMU_PID" 2>/dev/null; then
        kill "$QEMU_PID" 2>/dev/null
        wait "$QEMU_PID" 2>/dev/null
    fi
    return 0
}

# marker "LINE" [exact]: the serial log has "CLOUDBOX-GUEST: LINE"
marker() {
    # strip the CR of the serial console before comparing
    if tr -d '\r' < "$SERIAL" | grep -qxF "CLOUDBOX-GUEST: $1"; then
        ok "marker '$1'"
    else
        bad "marker '$1' missing"
    fi
}
marker_re() {
    if tr -d '\r' < "$SERIAL" | grep -qE "^CLOUDBOX-GUEST: $1\$"; then
        ok "marker /$1/"
    else
        bad "no marker matching /$1/"
    fi
}

report_boot() {
    local up
    up=$(tr -d '\r' < "$SERIAL" | sed -n 's/^CLOUDBOX-GUEST: uptime //p')
    log "$CASE: ready after ${BOOT_SECONDS}s wall clock (guest uptime ${up:-?})"
    echo "$CASE wall=${BOOT_SECONDS}s guest_uptime=${up:-?}" >> "$TESTDIR/boot-times"
}

no_failed_markers_except() {   # the steps that are allowed to fail
    local allowed=$1 lines
    lines=$(tr -d '\r' < "$SERIAL" | grep -E '^CLOUDBOX-GUEST: [^ ]+ failed' |
            grep -vE "^CLOUDBOX-GUEST: ($allowed) failed" || true)
    if [ -z "$lines" ]; then ok "no unexpected failed steps"
    else bad "unexpected failed steps: $lines"; fi
}

SSH_OPTS=(-i "$KEYDIR/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no
          -o UserKnownHostsFile=/dev/null -o ConnectTimeout=30 -o LogLevel=ERROR)

# ------------------------------------------------------------------ cases
case_config_drive() {
    local d=$TESTDIR/$CASE port
    META='{"uuid": "5f2b0a3e-7c4d-4e55-9a0b-1d2c3e4f5a6b", "meta": {"role": "test box", "note": "a \"quoted\" value, with {braces} and [brackets]"}, "public_keys": {"cloudbox-test": "'"$PUBKEY"'\n", "other": "'"$OTHERKEY"'\n"}, "keys": [{"name": "cloudbox-test", "type": "ssh", "data": "'"$PUBKEY"'\n"}], "hostname": "demo-instance1", "name": "demo instance1", "launch_index": 0, "availability_zone": "nova", "project_id": "p1", "random_seed": "c2VlZA==", "devices": []}'
    USER_DATA='#!/bin/sh
echo "hello from user-data on $(hostname)"
echo ran > /run/user-data-was-here
exit 0
'
    make_tree "$d/cfg"
    genisoimage -quiet -o "$d/config.iso" -V config-2 -J -r -l -ldots \
        -allow-lowercase -allow-multidot "$d/cfg"
    port=$(free_port)
    boot -drive "file=$d/config.iso,media=cdrom,if=ide,format=raw" \
         -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22" \
         -device virtio-net-pci,netdev=n0
    report_boot
    marker "modules loaded 30"
    marker_re "network eth0 10\.0\.2\.15/24"
    marker "config-drive /dev/sr0"
    marker "metadata source=config-drive"
    marker "instance-id 5f2b0a3e-7c4d-4e55-9a0b-1d2c3e4f5a6b"
    marker "hostname demo-instance1"
    marker "ssh-key installed 2"
    marker "user-data ran exit=0"
    marker "sshd dropbear port=22"
    marker "ready"
    no_failed_markers_except "__none__"

    local out
    out=$(timeout 120 ssh "${SSH_OPTS[@]}" -p "$port" root@127.0.0.1 \
        'hostname; cat /run/user-data-was-here; cat /root/.ssh/authorized_keys | wc -l; grep -c "hello from user-data on demo-instance1" /run/cloudbox/user-data.log; cat /run/cloudbox/markers' 2>&1)
    echo "$out" > "$d/ssh.out"
    if [ "$(echo "$out" | head -n 4 | tr '\n' ' ')" = "demo-instance1 ran 2 1 " ]; then
        ok "ssh login with the metadata key (hostname, user-data effect, 2 keys)"
    else
        bad "ssh login: got: $(echo "$out" | tr '\n' '|')"
    fi

    # graceful stop: ACPI power button -> acpid -> poweroff -> QEMU exits
    echo system_powerdown | socat - "UNIX-CONNECT:$MON" >/dev/null 2>&1
    local i=0
    while kill -0 "$QEMU_PID" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
    if ! kill -0 "$QEMU_PID" 2>/dev/null; then
        marker "shutdown"
        ok "ACPI power button powered the guest off in $((i / 5)) s"
    else
        bad "guest did not power off after system_powerdown"
    fi
    stop
}

case_vfat_drive() {
    local d=$TESTDIR/$CASE
    META='{
    "random_seed": "c2VlZA==",
    "hostname": "vfat-guest.novalocal",
    "public_keys": {
        "k": "'"$PUBKEY"'"
    },
    "uuid": "0c0ffee0-0000-4000-8000-000000000001"
}
'
    USER_DATA='#!/bin/sh
echo "failing on purpose"
exit 3
'
    make_tree "$d/cfg"
    rm -f "$d/config.vfat"
    mkfs.vfat -C -n config-2 "$d/config.vfat" 16384 >/dev/null 2>&1
    MTOOLS_SKIP_CHECK=1 mcopy -s -i "$d/config.vfat" "$d/cfg/openstack" ::/
    boot -drive "file=$d/config.vfat,if=virtio,format=raw" \
         -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0
    report_boot
    marker_re "network eth0 10\.0\.2\.15/24"
    marker "config-drive /dev/vdb"
    marker "metadata source=config-drive"
    marker "hostname vfat-guest"
    marker "ssh-key installed 1"
    marker "user-data ran exit=3"
    marker "ready"
    no_failed_markers_except "__none__"
    stop
}

case_http() {
    local d=$TESTDIR/$CASE
    META='{"uuid": "11111111-2222-4333-8444-555555555555", "hostname": "web-2.example.org", "public_keys": {"k": "'"$PUBKEY"'\n"}}'
    USER_DATA='#cloud-config
runcmd: [echo hi]
'
    make_tree "$d/www"
    cat > "$d/md-server.sh" <<'EOF'
#!/bin/bash
# one HTTP/1.0 exchange on stdin/stdout (QEMU guestfwd runs this per connection)
root=$1
read -r method path version
while IFS= read -r line; do line=${line%$'\r'}; [ -z "$line" ] && break; done
path=${path%%\?*}
echo "$(date +%T) $method $path" >> "$root/../requests.log"
f=$root$path
case "$path" in *..*) f=/nonexistent ;; esac
if [ -f "$f" ]; then
    printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n' "$(stat -c %s "$f")"
    cat "$f"
else
    printf 'HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
fi
EOF
    chmod +x "$d/md-server.sh"
    rm -f "$d/requests.log"
    boot -netdev "user,id=n0,restrict=on,net=169.254.169.0/24,host=169.254.169.2,dns=169.254.169.3,guestfwd=tcp:169.254.169.254:80-cmd:$d/md-server.sh $d/www" \
         -device virtio-net-pci,netdev=n0
    report_boot
    marker_re "network eth0 169\.254\.169\.15/24"
    marker "metadata source=http"
    marker "instance-id 11111111-2222-4333-8444-555555555555"
    marker "hostname web-2"
    marker "ssh-key installed 1"
    marker "user-data skipped not a #! script"
    marker "ready"
    no_failed_markers_except "__none__"
    if grep -q 'GET /openstack/latest/meta_data.json' "$d/requests.log" 2>/dev/null; then
        ok "metadata service got GET /openstack/latest/meta_data.json"
    else
        bad "metadata service saw no request"
    fi
    stop
}

case_q35_scsi() {
    local d=$TESTDIR/$CASE
    META='{"uuid": "33333333-2222-4333-8444-555555555555", "hostname": "q35-guest", "public_keys": {"k": "'"$PUBKEY"'\n"}}'
    USER_DATA='#!/bin/sh
echo q35
'
    make_tree "$d/cfg"
    genisoimage -quiet -o "$d/config.iso" -V config-2 -J -r "$d/cfg" 2>/dev/null
    MACHINE=q35 boot -device virtio-scsi-pci,id=scsi0 \
         -drive "file=$d/config.iso,if=none,id=cd0,media=cdrom,format=raw" \
         -device scsi-cd,drive=cd0,bus=scsi0.0 \
         -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0
    report_boot
    marker_re "network eth0 10\.0\.2\.15/24"
    marker "config-drive /dev/sr0"
    marker "metadata source=config-drive"
    marker "hostname q35-guest"
    marker "user-data ran exit=0"
    marker "ready"
    no_failed_markers_except "__none__"
    stop
}

case_none() {
    boot -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0
    report_boot
    marker_re "network eth0 10\.0\.2\.15/24"
    marker_re "metadata failed .+"
    marker "hostname failed no metadata"
    marker "ready"
    no_failed_markers_except "metadata|hostname|ssh-key|user-data"
    stop
}

# monitor COMMAND: one human monitor command on the running QEMU
monitor() {
    echo "$1" | socat - "UNIX-CONNECT:$MON" 2>&1 | tr -d '\033' >> "$TESTDIR/$CASE/monitor.log"
}

# wait_marker "LINE" [SECONDS]: wait until the console has that exact line
wait_marker() {
    local i=0
    while [ $i -lt $((${2:-60} * 5)) ]; do
        tr -d '\r' < "$SERIAL" | grep -qxF "CLOUDBOX-GUEST: $1" && { ok "marker '$1'"; return 0; }
        kill -0 "$QEMU_PID" 2>/dev/null || break
        sleep 0.2
        i=$((i + 1))
    done
    bad "marker '$1' did not come"
    return 1
}

# hotplug_case MACHINE: a disk present at boot, then a disk hot-plugged,
# resized, written from inside and unplugged; "pc" (i440fx, what cloudbox
# runs) plugs through ACPI (acpiphp), "q35" into a pcie-root-port (pciehp).
hotplug_case() {
    local machine=$1 d=$TESTDIR/$CASE port out plug_bus="" cd_args
    META='{"uuid": "44444444-2222-4333-8444-555555555555", "hostname": "hotplug", "public_keys": {"k": "'"$PUBKEY"'\n"}}'
    USER_DATA=''
    make_tree "$d/cfg"
    genisoimage -quiet -o "$d/config.iso" -V config-2 -J -r "$d/cfg" 2>/dev/null
    # a disk present at boot, and one holding a marker to hot-plug later; the
    # first is placed after the boot disk on the PCI bus (QEMU creates the
    # if=virtio boot disk after every -device, so SeaBIOS would try it first)
    rm -f "$d/boot-disk.raw" "$d/plug.raw"
    truncate -s 8M "$d/boot-disk.raw" "$d/plug.raw"
    printf 'CLOUDBOX-MARKER written on the host\n' | dd of="$d/plug.raw" conv=notrunc status=none
    port=$(free_port)
    if [ "$machine" = q35 ]; then
        # no AHCI in the guest's kernel: the config drive is a virtio-scsi CD-ROM
        cd_args=(-device virtio-scsi-pci,id=scsi0,addr=0x8
                 -drive "file=$d/config.iso,if=none,id=cd0,media=cdrom,format=raw"
                 -device scsi-cd,drive=cd0,bus=scsi0.0
                 -device pcie-root-port,id=rp1,chassis=1,addr=0x10)
        plug_bus=",bus=rp1"
    else
        cd_args=(-drive "file=$d/config.iso,media=cdrom,if=ide,format=raw")
    fi
    MACHINE=$machine boot "${cd_args[@]}" \
         -drive "file=$d/boot-disk.raw,if=none,id=d1,format=raw" \
         -device virtio-blk-pci,drive=d1,serial=boot-disk-serial,addr=0x9 \
         -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22" \
         -device virtio-net-pci,netdev=n0
    report_boot
    marker "disks vda:67108864 vdb:8388608:boot-disk-serial"
    marker "ready"
    no_failed_markers_except "__none__"

    # the guest's kernel sees the disk come, with its serial (virtio keeps
    # 20 bytes of it) and the marker on it
    monitor "drive_add 0 file=$d/plug.raw,if=none,id=plug0,format=raw"
    monitor "device_add virtio-blk-pci,drive=plug0,id=plugdev0,serial=vol-0123456789abcdef-and-more$plug_bus"
    wait_marker "disk-added vdc:8388608:vol-0123456789abcdef" 60 &&
        wait_marker "disk-marker vdc written on the host" 10
    monitor "block_resize plug0 16M"
    wait_marker "disk-resized vdc:16777216" 30

    # a marker written from inside (over SSH) reaches the host's file
    out=$(timeout 120 ssh "${SSH_OPTS[@]}" -p "$port" root@127.0.0.1 \
        'cloudbox-disk write vdc from the guest && cloudbox-disk read vdc' 2>&1)
    if [ "$out" = "from the guest" ]; then ok "cloudbox-disk write/read over SSH"
    else bad "cloudbox-disk write/read over SSH: got: $(echo "$out" | tr '\n' '|')"; fi
    if head -c 512 "$d/plug.raw" | head -n 1 | grep -qxF 'CLOUDBOX-MARKER from the guest'; then
        ok "the marker is in the host's file"
    else
        bad "the host's file has no marker: $(head -c 64 "$d/plug.raw" | tr -d '\000')"
    fi
    wait_marker "disk-written vdc from the guest" 10

    monitor "device_del plugdev0"
    wait_marker "disk-removed vdc" 60
    no_failed_markers_except "__none__"
    stop
}

CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(config-drive vfat-drive http none q35-scsi hotplug hotplug-q35)
: > "$TESTDIR/boot-times"
for CASE in "${CASES[@]}"; do
    mkdir -p "$TESTDIR/$CASE"
    case "$CASE" in
        config-drive) case_config_drive ;;
        vfat-drive) case_vfat_drive ;;
        http) case_http ;;
        none) case_none ;;
        q35-scsi) case_q35_scsi ;;
        hotplug) hotplug_case pc ;;
        hotplug-q35) hotplug_case q35 ;;
        *) echo "test-guest: unknown case $CASE" >&2; exit 2 ;;
    esac
done
echo
cat "$TESTDIR/boot-times"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

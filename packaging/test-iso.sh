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
#   packaging/test-iso.sh [--iso FILE] [--firmware bios|uefi] cluster
#       two VMs from the same ISO, each with its restricted user network (ssh and the API
#       forwarded to 127.0.0.1) and a private link between the two QEMU processes only
#       (-netdev socket on 127.0.0.1) with static addresses 10.99.0.1/24 and 10.99.0.2/24.
#       VM 1 installs unattended as a new cloud; the script gets a join token from it over ssh
#       (the answer file's ssh key), writes VM 2's answer file with that token; VM 2 installs
#       and joins on its first boot; both list two nodes, both up, and the API answers on both.
#   packaging/test-iso.sh [--iso FILE] [--firmware bios|uefi] answer-url
#       the live system fetches its answer file from an https server on 127.0.0.1 (seen by the
#       guest as 10.0.2.100 through guestfwd) pinned by its certificate's fingerprint; a wrong
#       pin is refused before any request is sent.
#
# Prints the ISO's size and the time of each stage.  Work files: /var/tmp/cloudbox-iso-test.*
# (kept on failure, with the serial logs).  Timeouts: CLOUDBOX_ISO_BOOT_TIMEOUT (default 900 s
# per boot), CLOUDBOX_ISO_INSTALL_TIMEOUT (default 3600 s).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root

HOST_PACKAGES=(qemu-system-x86 qemu-utils ovmf dosfstools mtools curl openssh-client openssl xorriso socat)
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
declare -A QEMU_PIDS=()
qemu_pid=""  # the last one started
ok=0
finish() {
    local pid
    for pid in "${QEMU_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
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
    QEMU_PIDS[$name]=$qemu_pid
}
stop_qemu() {  # stop_qemu [NAME]: the named QEMU, or the last one started
    local name=${1:-} pid=$qemu_pid
    [ -z "$name" ] || pid=${QEMU_PIDS[$name]:-}
    [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    for name in "${!QEMU_PIDS[@]}"; do [ "${QEMU_PIDS[$name]}" != "$pid" ] || unset "QEMU_PIDS[$name]"; done
    [ "$pid" != "$qemu_pid" ] || qemu_pid=""
}
wait_serial() {  # wait_serial NAME PATTERN TIMEOUT: seconds until the pattern shows, or fail
    local name=$1 pattern=$2 limit=$3 t0=$SECONDS
    while ! grep -aqE "$pattern" "$WORK/$name.serial"; do
        if ! kill -0 "${QEMU_PIDS[$name]}" 2>/dev/null; then
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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

install_disk() {  # install_disk VM ANSWER NIC-ARGS...: unattended install onto $WORK/VM.qcow2
    local vm=$1 answer=$2 t t0=$SECONDS; shift 2
    qemu-img create -q -f qcow2 "$WORK/$vm.qcow2" 16G
    # The answer drive: a small FAT file system labelled CLOUDBOX-AI with /answer.toml.
    mkfs.vfat -C -n CLOUDBOX-AI "$WORK/$vm.answer.img" 2048 >/dev/null
    mcopy -i "$WORK/$vm.answer.img" "$answer" ::/answer.toml
    # shellcheck disable=SC2046
    start_qemu "$vm-install" $(firmware_args "$FIRMWARE" "$vm") -no-reboot \
        -drive "file=$ISO,media=cdrom,readonly=on,format=raw" \
        -drive "file=$WORK/$vm.qcow2,if=virtio,format=qcow2" \
        -drive "file=$WORK/$vm.answer.img,if=virtio,format=raw,readonly=on" "$@"
    t=$(wait_serial "$vm-install" "cloudbox-installer" "$BOOT_TIMEOUT"); say "$vm: installer started after $t s"
    t=$(wait_serial "$vm-install" "INSTALLED" "$INSTALL_TIMEOUT"); say "$vm: installed after $((SECONDS - t0)) s"
    # -no-reboot: the installer's reboot ends QEMU.
    for _ in $(seq 300); do kill -0 "${QEMU_PIDS[$vm-install]}" 2>/dev/null || break; sleep 1; done
    stop_qemu "$vm-install"
    grep -a "cloudbox-installer" "$WORK/$vm-install.serial" | tr -d '\r' | sed 's/^/    /'
}

node_start() {  # node_start VM NIC-ARGS...: boot VM's installed disk (firmware vars kept)
    local vm=$1 t; shift
    # shellcheck disable=SC2046
    start_qemu "$vm" $(firmware_args "$FIRMWARE" "$vm") -drive "file=$WORK/$vm.qcow2,if=virtio,format=qcow2" "$@"
    t=$(wait_serial "$vm" "$KERNEL_LINE" "$BOOT_TIMEOUT"); say "$vm: installed system's kernel after $t s"
}

wait_api() {  # wait_api VM PORT: until the API answers through the forwarded port
    local vm=$1 port=$2 t0=$SECONDS
    while ! curl -fsSk --max-time 10 "https://127.0.0.1:$port/identity/v3" >"$WORK/$vm.identity.json" 2>/dev/null; do
        kill -0 "${QEMU_PIDS[$vm]}" 2>/dev/null || { echo "test-iso: $vm's QEMU ended" >&2; tail -c 3000 "$WORK/$vm.serial" >&2; exit 1; }
        if [ $((SECONDS - t0)) -ge "$INSTALL_TIMEOUT" ]; then
            echo "test-iso: $vm's API did not answer on 127.0.0.1:$port in $INSTALL_TIMEOUT s" >&2
            tail -c 3000 "$WORK/$vm.serial" >&2; exit 1
        fi
        sleep 3
    done
    grep -q '"id": *"v3' "$WORK/$vm.identity.json"
}

login_screen() {  # login_screen VM: the API, web UI and password lines of the login screen
    wait_serial "$1" "cloudbox web UI" 300 >/dev/null || true
    grep -a "cloudbox API\|cloudbox web UI\|admin password" "$WORK/$1.serial" | tr -d '\r' | sort -u | sed "s/^/    $1 login screen: /"
}

node_boot() {  # node_boot VM: boot an installed disk; the API must answer through hostfwd
    local vm=$1 port t_boot=$SECONDS
    port=$(free_port)
    node_start "$vm" -nic "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:$port-:8443"
    wait_api "$vm" "$port"
    say "API answered after $((SECONDS - t_boot)) s of boot: $(head -c 200 "$WORK/$vm.identity.json")"
    login_screen "$vm"
    curl -fsSk --max-time 10 "https://127.0.0.1:$port/" | grep -qi '<html' && say "web UI answered"
}

# cluster: two VMs.  NIC 1: the VM's own restricted user network (DHCP; ssh and the API forwarded
# to 127.0.0.1).  NIC 2: the link between the two QEMU processes only (a TCP socket on
# 127.0.0.1), static addresses; the cloud advertises them, so etcd and the join use the link.
LINK_NET=10.99.0
ssh_vm() {  # ssh_vm PORT COMMAND...: as root on a VM, with the answer file's key
    local port=$1; shift
    ssh -q -i "$WORK/id" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o ConnectTimeout=20 root@127.0.0.1 "$@"
}
wait_ssh() {  # wait_ssh VM PORT
    local t0=$SECONDS
    until ssh_vm "$2" true 2>/dev/null; do
        kill -0 "${QEMU_PIDS[$1]}" 2>/dev/null || { echo "test-iso: $1's QEMU ended" >&2; exit 1; }
        [ $((SECONDS - t0)) -lt "$BOOT_TIMEOUT" ] || { echo "test-iso: no ssh to $1 in $BOOT_TIMEOUT s" >&2; exit 1; }
        sleep 3
    done
}
cluster_answer() {  # cluster_answer N new|join [TOKEN]: VM N's answer file
    cat <<EOF
disk = "auto"
hostname = "node$1"
root_password = "cloudbox-iso-test"
ssh_keys = ["$(cat "$WORK/id.pub")"]
[network]
interface = "52:54:00:12:00:0$1"
mode = "dhcp"
[[network.extra]]
interface = "52:54:00:c1:00:0$1"
mode = "static"
address = "$LINK_NET.$1/24"
[cloud]
mode = "$2"
token = "${3:-}"
advertise = "$LINK_NET.$1"
EOF
}
user_nic() {  # user_nic N [SSH-PORT API-PORT]
    local fwd=""
    [ -z "${2:-}" ] || fwd=",hostfwd=tcp:127.0.0.1:$2-:22,hostfwd=tcp:127.0.0.1:$3-:8443"
    echo "-netdev user,id=user,restrict=on$fwd -device virtio-net-pci,netdev=user,mac=52:54:00:12:00:0$1"
}
link_nic() {  # link_nic N NETDEV-OPTIONS: the link's NIC (a lone hub port while installing)
    echo "-netdev $2,id=link -device virtio-net-pci,netdev=link,mac=52:54:00:c1:00:0$1"
}
cluster_nodes() {  # cluster_nodes SSH-PORT: "name:up name:up" from cloudbox cluster list --json
    ssh_vm "$1" cloudbox cluster list --json 2>/dev/null | python3 -c 'import json, sys
print(" ".join(sorted(n["name"] + ":" + ("up" if n["up"] else "down") for n in json.load(sys.stdin))))' 2>/dev/null || true
}
cluster_test() {
    local t_all=$SECONDS t0 ssh1 api1 ssh2 api2 link token nodes
    ssh1=$(free_port) api1=$(free_port) ssh2=$(free_port) api2=$(free_port) link=$(free_port)
    ssh-keygen -q -t ed25519 -N "" -C cloudbox-iso-test -f "$WORK/id"
    cluster_answer 1 new >"$WORK/vm1.answer.toml"
    # shellcheck disable=SC2046
    install_disk vm1 "$WORK/vm1.answer.toml" $(user_nic 1) $(link_nic 1 hubport,hubid=1)
    t0=$SECONDS
    # shellcheck disable=SC2046
    node_start vm1 $(user_nic 1 "$ssh1" "$api1") $(link_nic 1 "socket,listen=127.0.0.1:$link")
    wait_api vm1 "$api1"; say "vm1: API answered after $((SECONDS - t0)) s of boot (cloudbox init included)"
    wait_ssh vm1 "$ssh1"
    ssh_vm "$ssh1" ip -4 -br addr show | sed 's/^/    vm1: /'
    token=$(ssh_vm "$ssh1" cloudbox cluster add node2 2>/dev/null | tail -1)
    [ -n "$token" ] || { echo "test-iso: no join token from vm1" >&2; exit 1; }
    say "join token from vm1 (cloudbox cluster add node2 over ssh): ${#token} characters"
    cluster_answer 2 join "$token" >"$WORK/vm2.answer.toml"
    t0=$SECONDS
    # shellcheck disable=SC2046
    install_disk vm2 "$WORK/vm2.answer.toml" $(user_nic 2) $(link_nic 2 hubport,hubid=2)
    say "vm2: install took $((SECONDS - t0)) s (vm1 serving meanwhile)"
    t0=$SECONDS
    # shellcheck disable=SC2046
    node_start vm2 $(user_nic 2 "$ssh2" "$api2") $(link_nic 2 "socket,connect=127.0.0.1:$link")
    wait_api vm2 "$api2"; say "vm2: API answered after $((SECONDS - t0)) s of boot (cloudbox join included)"
    wait_ssh vm2 "$ssh2"
    ssh_vm "$ssh2" journalctl -b -u cloudbox-firstboot -o cat | grep -a "cloudbox-firstboot\|join" | sed 's/^/    vm2 first boot: /' || true
    ssh_vm "$ssh2" ip -4 -br addr show | sed 's/^/    vm2: /'
    ssh_vm "$ssh2" ping -c 2 -W 5 "$LINK_NET.1" | grep -a "packets" | sed 's/^/    vm2 -> vm1 over the link: /'
    # Both nodes up, as each of them sees it (a node's lease is renewed every 2 s).
    t0=$SECONDS
    until [ "$(cluster_nodes "$ssh1")" = "node1:up node2:up" ] && [ "$(cluster_nodes "$ssh2")" = "node1:up node2:up" ]; do
        [ $((SECONDS - t0)) -lt 600 ] || { echo "test-iso: the nodes: vm1 sees '$(cluster_nodes "$ssh1")', vm2 '$(cluster_nodes "$ssh2")'" >&2; exit 1; }
        sleep 5
    done
    say "both nodes up, seen from each (after $((SECONDS - t0)) s more):"
    ssh_vm "$ssh1" cloudbox cluster list | sed 's/^/    vm1$ cloudbox cluster list: /'
    local vm port unhealthy=""
    for vm in vm1 vm2; do
        port=$ssh1; [ "$vm" = vm1 ] || port=$ssh2
        ssh_vm "$port" cloudbox status >"$WORK/$vm.status" || unhealthy="$unhealthy $vm"
        sed "s/^/    $vm\$ cloudbox status: /" "$WORK/$vm.status"
    done
    [ -z "$unhealthy" ] || { echo "test-iso: cloudbox status says not healthy on:$unhealthy" >&2; exit 1; }
    login_screen vm1; login_screen vm2
    stop_qemu vm2; stop_qemu vm1
    say "ok: two nodes from one ISO, the second joined with the answer file's token, in $((SECONDS - t_all)) s (ISO $(du -m "$ISO" | cut -f1) MiB)"
}

# answer-url: the live system fetches its answer file from an https URL pinned by the server
# certificate's fingerprint.  The server runs on 127.0.0.1 and reaches the guest only as
# 10.0.2.100:8443 through QEMU's guestfwd, a socat per connection (the user network stays restrict=on).  The kernel
# command line is GRUB's menu entry plus cloudbox.answer= (QEMU boots the ISO's kernel directly,
# as a user editing the entry would).  No disk is attached: the installer reads the answers and
# stops at "no disk", so only the fetch and the checks run.  Then the same with a wrong pin.
answer_url_one() {  # answer_url_one NAME FINGERPRINT
    local name=$1 fp=$2 t
    # shellcheck disable=SC2046
    start_qemu "$name" $(firmware_args "$FIRMWARE" "$name") -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
        -append "boot=live noeject cloudbox.install console=tty0 console=ttyS0,115200 cloudbox.answer=https://10.0.2.100:8443/answer.toml cloudbox.answer-fingerprint=$fp" \
        -drive "file=$ISO,media=cdrom,readonly=on,format=raw" \
        -nic "user,model=virtio-net-pci,restrict=on,guestfwd=tcp:10.0.2.100:8443-cmd:socat STDIO TCP:127.0.0.1:$URL_PORT"
    t=$(wait_serial "$name" "cloudbox-installer.*FAILED" "$BOOT_TIMEOUT")
    stop_qemu "$name"
    say "$name: the installer ended after $t s:"
    grep -a "cloudbox-installer" "$WORK/$name.serial" | tr -d '\r' | head -4 | sed 's/^/    /'
}
answer_url_test() {
    local fp requests
    xorriso -osirrox on -indev "$ISO" -extract /live/vmlinuz "$WORK/vmlinuz" -extract /live/initrd.img "$WORK/initrd.img" 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=answers -keyout "$WORK/url.key" -out "$WORK/url.crt" 2>/dev/null
    fp=$(openssl x509 -in "$WORK/url.crt" -outform der | sha256sum | cut -d' ' -f1)
    mkdir -p "$WORK/www"
    printf 'disk = "auto"\nhostname = "urltest"\nroot_password = "cloudbox-iso-test"\n[cloud]\nmode = "new"\n' >"$WORK/www/answer.toml"
    URL_PORT=$(free_port)
    python3 - "$WORK" "$URL_PORT" >"$WORK/url-server.log" 2>&1 <<'EOF' &
import http.server, ssl, sys
work, port = sys.argv[1], int(sys.argv[2])
handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=f"{work}/www")
server = http.server.HTTPServer(("127.0.0.1", port), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(f"{work}/url.crt", f"{work}/url.key")
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
EOF
    QEMU_PIDS[url-server]=$!
    answer_url_one url-pinned "$fp"
    grep -aq "unattended: answers from https://10.0.2.100:8443/answer.toml" "$WORK/url-pinned.serial"
    grep -aq "FAILED: no disk to install to" "$WORK/url-pinned.serial"
    requests=$(grep -c 'GET /answer.toml' "$WORK/url-server.log" || true)
    say "right pin: the answer file was fetched ($requests request) and parsed; the install stopped at 'no disk' as meant"
    answer_url_one url-wrong-pin "$(printf '%064d' 0)"
    grep -aq "FAILED: the answer server's certificate is sha256 $fp, not the pinned" "$WORK/url-wrong-pin.serial"
    [ "$(grep -c 'GET /answer.toml' "$WORK/url-server.log" || true)" = "$requests" ]
    say "wrong pin: refused before any request reached the server"
    stop_qemu url-server
}

case $ACTION in
node)
    # The first boot of a disk that `install` made (kept in its work dir on failure).
    ln -s "$(realpath "$1")" "$WORK/vm.qcow2"
    node_boot vm
    stop_qemu
    ;;
boot)
    ways=("$@")
    [ ${#ways[@]} -gt 0 ] || ways=(bios-cd uefi-cd)
    for way in "${ways[@]}"; do boot_one "$way"; done
    ;;
install)
    t_all=$SECONDS
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
    install_disk vm "$WORK/answer.toml" -nic "user,model=virtio-net-pci,restrict=on"
    node_boot vm
    stop_qemu
    say "ok: unattended install and first boot in $((SECONDS - t_all)) s (ISO $(du -m "$ISO" | cut -f1) MiB)"
    ;;
cluster)
    cluster_test
    ;;
answer-url)
    answer_url_test
    ;;
*) echo "test-iso: boot, install, node, cluster or answer-url, not $ACTION" >&2; exit 2 ;;
esac
ok=1

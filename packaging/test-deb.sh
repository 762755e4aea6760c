#!/usr/bin/env bash
# Install the .deb on a clean Debian 12 and check that the cloud serves, then remove and purge it.
#   packaging/test-deb.sh DEB
# The clean system: a debootstrap (minbase) of bookworm, made once in $CLOUDBOX_TEST_ROOT
# (default /var/cache/cloudbox-test/bookworm) and never changed: each run works in an overlay
# on it, so every run starts from the same untouched system.  Downloaded .debs are kept in
# $CLOUDBOX_TEST_ROOT.archives for the next run.
# It runs in systemd-nspawn (--register=no: this host's PID 1 is no systemd): apt with the
# host's network, then cloudbox with a private network namespace of its own (its bridges and
# nftables tables stay off the host).  No systemd inside: `cloudbox serve --background`.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nspawn.sh"

DEB=$(realpath "$1")
PORT=8443
ensure_base

RUN=$(mktemp -d /var/tmp/cloudbox-deb-test.XXXXXX)
ROOT=$RUN/merged
mkdir -p "$RUN/upper" "$RUN/work" "$ROOT"
mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$RUN/upper,workdir=$RUN/work" "$ROOT"
nspawn=""
cleanup() { [ -z "$nspawn" ] || { kill "$nspawn" 2>/dev/null; wait "$nspawn" 2>/dev/null; }; umount "$ROOT" 2>/dev/null || umount -l "$ROOT"; rm -rf "$RUN"; }
trap cleanup EXIT

# Services of the packages installed must not start in this root (Debian's policy-rc.d).
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cp "$DEB" "$ROOT/root/"

in_root() {  # in_root [nspawn options] -- command...
    local opts=()
    while [ "$1" != -- ]; do opts+=("$1"); shift; done
    shift
    systemd-nspawn -q --register=no --keep-unit --bind="$BASE.archives:/var/cache/apt/archives" \
        --setenv=DEBIAN_FRONTEND=noninteractive "${opts[@]}" -D "$ROOT" "$@"
}

say "apt install ./$(basename "$DEB")"
start=$(date +%s)
in_root -- /bin/sh -ec "
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends curl >/dev/null
    apt-get install -y -qq --no-install-recommends ./root/$(basename "$DEB") >/dev/null
    test -x /usr/bin/cloudbox
    ! command -v pip pip3 gcc >/dev/null
    ! /usr/lib/cloudbox/bin/python -c 'import pip' 2>/dev/null
    cloudbox --version
    if command -v systemd-analyze >/dev/null; then
        systemd-analyze verify /lib/systemd/system/cloudbox.service && echo 'systemd-analyze verify cloudbox.service: ok'
    fi
"
say "installed in $(( $(date +%s) - start )) s"

say "cloudbox init; cloudbox serve --background; curl the API"
in_root --private-network ${CLOUDBOX_TEST_KVM:+--bind=/dev/kvm} -- /bin/sh -ec "
    ip link set lo up
    cloudbox init --no-user-config
    cloudbox serve --background
    curl -fsS --cacert /var/lib/cloudbox/pki/ca.pem https://127.0.0.1:$PORT/identity/v3 >/tmp/identity.json
    cat /tmp/identity.json; echo
    grep -q '\"id\": *\"v3' /tmp/identity.json
    curl -fsSk https://127.0.0.1:$PORT/ | grep -qi '<html'
    cloudbox status
    test -s /var/lib/cloudbox/logs/cloudbox.log
    cloudbox backup /root/node.backup
    cloudbox doctor || true
    cloudbox stop
"

say "under systemd: cloudbox init starts cloudbox.service; restart on failure; stop leaves its children"
# Boot the root's own systemd (nspawn -b) in a private network, and work in it through nsenter.
rm -rf "$ROOT/var/lib/cloudbox" && mkdir -m 0700 "$ROOT/var/lib/cloudbox"
rm -f "$ROOT/usr/sbin/policy-rc.d"
systemd-nspawn -q --register=no --keep-unit --private-network --console=passive -D "$ROOT" -b \
    >"$RUN/boot.log" 2>&1 &
nspawn=$!
leader=""
for _ in $(seq 150); do  # the container's PID 1 once it is systemd (nspawn forks helpers first)
    for pid in $(pgrep -P "$nspawn" || true); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd ] && leader=$pid
    done
    [ -n "$leader" ] && break
    sleep 0.2
done
[ -n "$leader" ] || { echo "test-deb: systemd did not boot in the root" >&2; cat "$RUN/boot.log" >&2; exit 1; }
booted() { nsenter -t "$leader" -m -u -i -n -p -r -w -- "$@"; }
for _ in $(seq 300); do  # systemctl needs the manager's socket, made early in the boot
    [ -S "/proc/$leader/root/run/systemd/private" ] && break
    sleep 0.2
done
timeout 120 nsenter -t "$leader" -m -u -i -n -p -r -w -- systemctl is-system-running --wait >/dev/null || true
status=0
booted /bin/sh -ec '
    test "$(systemctl is-enabled cloudbox.service)" = enabled
    systemctl show cloudbox.service -p ConditionResult | grep -q "ConditionResult=no"  # no cloud yet: skipped
    cloudbox init --no-user-config | grep "Serving:"
    for i in $(seq 300); do cloudbox status >/dev/null 2>&1 && break; sleep 0.2; done
    cloudbox status | grep "healthy:   yes"
    curl -fsS --cacert /var/lib/cloudbox/pki/ca.pem https://127.0.0.1:8443/identity/v3 | grep -q "\"v3"
    systemctl show cloudbox.service -p KillMode -p Restart
    journalctl -u cloudbox.service -o cat | grep -c "\"msg\"" | sed "s/^/journal lines of cloudbox: /"
    test -s /var/lib/cloudbox/logs/cloudbox.log
    main=$(systemctl show cloudbox.service -p MainPID --value)
    procs() {
        for f in /sys/fs/cgroup/system.slice/cloudbox.service/cgroup.procs \
                 /sys/fs/cgroup/unified/system.slice/cloudbox.service/cgroup.procs \
                 /sys/fs/cgroup/systemd/system.slice/cloudbox.service/cgroup.procs; do
            [ -r $f ] && cat $f && return
        done
    }
    # A tenant network with a subnet: the node forks its dnsmasq, in the cgroup of the unit (as QEMU
    # of guests is when libvirt does not move it to machine.slice).  It must outlive a crash of
    # the node process, the restart, and `systemctl stop` (KillMode=process).
    . /var/lib/cloudbox/admin-openrc.sh
    api() { curl -fsS --cacert "$OS_CACERT" -H "Content-Type: application/json" "$@"; }
    auth="{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"},\"password\":\"$OS_PASSWORD\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"}}}}}"
    token=$(api -D - -o /dev/null -d "$auth" https://127.0.0.1:8443/identity/v3/auth/tokens | sed -n "s/^[Xx]-[Ss]ubject-[Tt]oken: *//p" | tr -d "\r")
    net=$(api -H "X-Auth-Token: $token" -d "{\"network\":{\"name\":\"n1\"}}" https://127.0.0.1:8443/network/v2.0/networks \
        | sed "s/.*\"id\": *\"\([^\"]*\)\".*/\1/")
    api -H "X-Auth-Token: $token" -d "{\"subnet\":{\"network_id\":\"$net\",\"cidr\":\"10.9.0.0/24\",\"ip_version\":4}}" \
        https://127.0.0.1:8443/network/v2.0/subnets >/dev/null
    for i in $(seq 100); do
        children=$(procs | grep -vx "$main" | tr "\n" " ")
        [ -n "$children" ] && break
        sleep 0.2
    done
    echo "children of the node in the unit: $children($(for p in $children; do cat /proc/$p/comm; done | tr "\n" " "))"
    test -n "$children"
    kill -9 "$main"
    for i in $(seq 300); do
        new=$(systemctl show cloudbox.service -p MainPID --value)
        [ "$new" != 0 ] && [ "$new" != "$main" ] && cloudbox status >/dev/null 2>&1 && break
        sleep 0.2
    done
    cloudbox status | grep "healthy:   yes"
    echo "restarted after SIGKILL: pid $main -> $new"
    systemctl stop cloudbox.service
    test "$(systemctl is-active cloudbox.service)" = inactive
    for p in $children; do kill -0 $p; done
    echo "after SIGKILL, restart and stop of the unit, still running: $children"
    journalctl -u cloudbox.service -o cat | grep -m1 "left-over process" || true
' || status=$?
booted systemctl poweroff >/dev/null 2>&1 || kill "$nspawn" 2>/dev/null || true
wait "$nspawn" || true
nspawn=""
[ "$status" = 0 ] || { echo "test-deb: the systemd stage failed" >&2; tail -20 "$RUN/boot.log" >&2; exit 1; }
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"

say "apt remove keeps the data; apt purge removes only what the package made"
in_root -- /bin/sh -ec "
    apt-get remove -y -qq cloudbox >/dev/null
    test ! -e /usr/bin/cloudbox && test ! -e /usr/lib/cloudbox
    test -s /var/lib/cloudbox/state.db && test -s /var/lib/cloudbox/pki/ca.key
    test -e /etc/logrotate.d/cloudbox
    apt-get purge -y -qq cloudbox >/tmp/purge.out 2>&1  # apt runs dpkg on a pty: both streams in one
    grep 'cloudbox:' /tmp/purge.out
    grep -q 'data in /var/lib/cloudbox was kept' /tmp/purge.out
    test ! -e /etc/logrotate.d/cloudbox
    test -s /var/lib/cloudbox/state.db
    ! dpkg -l cloudbox 2>/dev/null | grep -q '^.[ic]'
"
say "ok: $(basename "$DEB") installs, serves, removes and purges on a clean Debian 12"

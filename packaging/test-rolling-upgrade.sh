#!/usr/bin/env bash
# A rolling upgrade of a three-node cluster (issue 19, acceptance 3), each node a clean Debian 12
# booted under systemd-nspawn (overlays on test-deb.sh's debootstrap), on a private underlay:
#   packaging/test-rolling-upgrade.sh [OLD_REV]          (default e4b28da; the new one is HEAD)
#   packaging/test-rolling-upgrade.sh --debs OLD.deb NEW.deb
# 1. builds both packages (the old relabelled <version>~old, as test-upgrade.sh does);
# 2. installs the old one into one overlay layer, shared read-only by the three nodes' roots;
# 3. boots the three roots, each in a network namespace of its own (eth0 10.211.0.N/24) on a
#    bridge in a further namespace: nothing reaches the host's namespace or any other;
#    `cloudbox init` on node 1, `cloudbox join` of nodes 2 and 3 with tokens (then their units);
# 4. boots a real guest (firmware/build/guest.qcow2, TCG, no network) through the API;
# 5. a client (packaging/rolling-client.py, in its own namespace on the bridge) creates and
#    deletes projects throughout, each write on the next node, logging every refusal;
# 6. `apt install ./new.deb` on node 1, 2, 3 in turn: each comes back healthy on the new package
#    (new main pid, the new package's version and command schema), the guest's QEMU pid lives on;
# 7. `cloudbox cluster finish-upgrade`; the client stops; every node applies the same revision
#    and the hashes of every replicated table are equal on all three; the guest is ACTIVE.
# Fails if the client went longer than $CLOUDBOX_WRITE_GAP_BOUND s (default 10) without an
# accepted write.  Prints each stage's run time and the longest write gap.
# Needs root, debootstrap, systemd-container, and the network for apt (or a warm cache).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nspawn.sh"
need_root

BOUND=${CLOUDBOX_WRITE_GAP_BOUND:-10}
GUEST_IMAGE=${CLOUDBOX_GUEST_IMAGE:-$REPO/firmware/build/guest.qcow2}
NODES=(1 2 3)
RUN=$(mktemp -d /var/tmp/cloudbox-rolling-test.XXXXXX)
ID=$(basename "$RUN" | tail -c 7 | tr -cd 'a-zA-Z0-9')
NS=cbru-$ID  # namespaces: $NS-hub (the bridge), $NS-n1..3 (the nodes), $NS-client
SUBNET=10.211.0
declare -A NSPAWN LEADER
client=""

cleanup() {
    local status=$?
    set +e
    if [ "$status" != 0 ]; then  # what each node said last
        for n in "${NODES[@]}"; do
            [ -n "${LEADER[$n]:-}" ] || continue
            echo "--- node$n: journal of cloudbox.service" >&2
            in_booted "${LEADER[$n]}" journalctl -u cloudbox.service -o cat -n 25 --no-pager >&2
        done
    fi
    [ -z "$client" ] || { kill "$client" 2>/dev/null; wait "$client" 2>/dev/null; }
    for n in "${NODES[@]}"; do nspawn_poweroff "${NSPAWN[$n]:-}" "${LEADER[$n]:-}"; done
    for n in "${NODES[@]}"; do overlay_umount "$RUN/node$n"; done
    overlay_umount "$RUN/layer"
    # The guest's cgroups: libvirt made them (machine-qemu-embed-...-cloudbox-<server id>...scope) in the
    # v1 hierarchies the containers' cgroup namespaces share with the host; QEMU died with its container.
    if [ -n "${server:-}" ]; then
        find /sys/fs/cgroup -mindepth 2 -maxdepth 8 -type d -name "machine-qemu*cloudbox*${server:0:8}*" -prune 2>/dev/null \
            | while read -r d; do find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
    fi
    for ns in hub n1 n2 n3 client; do
        ip netns list | grep -qw "$NS-$ns" || continue
        for pid in $(ip netns pids "$NS-$ns"); do kill -9 "$pid" 2>/dev/null; done  # only ours live there
        ip netns delete "$NS-$ns"
    done
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT

# --- timing ---------------------------------------------------------------------------------
TIMES=()
stage_started=0
stage() { stage_done; stage_name=$1; stage_started=$(date +%s.%N); say "$1"; }
stage_done() {
    [ "$stage_started" = 0 ] && return 0
    TIMES+=("$(awk "BEGIN { printf \"%7.1f s\", $(date +%s.%N) - $stage_started }")  $stage_name")
    stage_started=0
}
fail() { echo "test-rolling-upgrade: $*" >&2; exit 1; }

# --- 1. the two packages ----------------------------------------------------------------------
stage "the packages"
if [ "${1:-}" = --debs ]; then
    OLD_DEB=$(realpath "$2"); NEW_DEB=$(realpath "$3")
else
    build_old_and_new "${1:-e4b28da}" "$RUN"
fi
old_version=$(dpkg-deb -f "$OLD_DEB" Version)
new_version=$(dpkg-deb -f "$NEW_DEB" Version)
say "rolling upgrade $old_version -> $new_version"
[ -s "$GUEST_IMAGE" ] || fail "no guest image at $GUEST_IMAGE (firmware/build-guest.sh makes it)"

# --- 2. the old package, once, in a layer the three roots share --------------------------------
stage "apt install the old package (one layer for the three nodes)"
ensure_base
overlay_mount "$RUN/layer"
printf '#!/bin/sh\nexit 101\n' >"$RUN/layer/merged/usr/sbin/policy-rc.d"  # nothing starts while installing
chmod 755 "$RUN/layer/merged/usr/sbin/policy-rc.d"
cp "$OLD_DEB" "$RUN/layer/merged/root/old.deb"
systemd-nspawn -q --register=no --keep-unit --bind="$BASE.archives:/var/cache/apt/archives" \
    --setenv=DEBIAN_FRONTEND=noninteractive -D "$RUN/layer/merged" </dev/null /bin/sh -ec "
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends curl iproute2 ./root/old.deb >/dev/null
        cloudbox --version"
rm -f "$RUN/layer/merged/usr/sbin/policy-rc.d" "$RUN/layer/merged/root/old.deb"
overlay_umount "$RUN/layer"

# --- 3. the underlay and the three nodes ----------------------------------------------------------
stage "underlay, boot three nodes, init and join"
ip netns add "$NS-hub"
ip -n "$NS-hub" link add br0 type bridge
ip -n "$NS-hub" link set br0 up
ip -n "$NS-hub" link set lo up
attach() {  # attach NAME IP: namespace $NS-NAME with eth0 at IP on the hub's bridge
    ip netns add "$NS-$1"
    ip -n "$NS-hub" link add "$1" type veth peer name eth0 netns "$NS-$1"
    ip -n "$NS-hub" link set "$1" master br0 up
    ip -n "$NS-$1" addr add "$2/24" dev eth0
    ip -n "$NS-$1" link set eth0 up
    ip -n "$NS-$1" link set lo up
}
for n in "${NODES[@]}"; do
    attach "n$n" "$SUBNET.$n"
    overlay_mount "$RUN/node$n" "$RUN/layer/upper" "$BASE"
    cp "$NEW_DEB" "$RUN/node$n/merged/root/new.deb"
    echo "node$n" >"$RUN/node$n/merged/etc/hostname"
done
attach client "$SUBNET.100"
cp "$GUEST_IMAGE" "$RUN/guest.qcow2"

for n in "${NODES[@]}"; do
    nspawn_boot "$RUN/node$n/merged" "$RUN/boot$n.log" --hostname="node$n" \
        --network-namespace-path="/run/netns/$NS-n$n" --bind="$BASE.archives:/var/cache/apt/archives"
    NSPAWN[$n]=$NSPAWN_PID
    LEADER[$n]=$NSPAWN_LEADER
done
on() { local n=$1; shift; in_booted "${LEADER[$n]}" "$@"; }
# libvirt puts each guest's QEMU in cgroups of its own.  On a host with cgroup v1 (this one),
# nspawn mounts the controllers' hierarchies read-only in the container (libvirt fails: "Failed to
# create v1 controller cpu for group: Read-only file system"); they are made writable in each
# container's mount namespace only (a bind remount: the host's mounts keep their flags).  The
# container's cgroup namespace roots them at its own cgroup.
for n in "${NODES[@]}"; do
    on "$n" /bin/sh -ec 'for m in $(awk '"'"'$3 == "cgroup" && $4 ~ /(^|,)ro(,|$)/ { print $2 }'"'"' /proc/self/mounts); do
        mount -o remount,bind,rw "$m"; done'
done

# Helpers inside each root.
for n in "${NODES[@]}"; do
    cat >"$RUN/node$n/merged/root/lib.sh" <<'EOF'
set -e
wait_healthy() {  # at most 120 s
    timeout 120 sh -c 'until cloudbox status >/dev/null 2>&1; do sleep 0.3; done' || { cloudbox status; return 1; }
}
main_pid() { systemctl show cloudbox.service -p MainPID --value; }
EOF
done

on 1 /bin/sh -ec ". /root/lib.sh
    cloudbox init --no-user-config --advertise $SUBNET.1 | grep 'Serving:'
    wait_healthy"
cp "$RUN/node1/merged/var/lib/cloudbox/pki/ca.pem" "$RUN/ca.pem"
PASSWORD=$(sh -c '. "$1"; printf %s "$OS_PASSWORD"' - "$RUN/node1/merged/var/lib/cloudbox/admin-openrc.sh")
[ -n "$PASSWORD" ] || fail "no OS_PASSWORD in node 1's admin-openrc.sh"
for n in 2 3; do
    token=$(on 1 cloudbox cluster add "node$n" | tail -1)
    on "$n" /bin/sh -ec ". /root/lib.sh
        cloudbox join --no-serve --advertise $SUBNET.$n '$token'
        systemctl start cloudbox.service
        wait_healthy"
done
on 1 cloudbox status

URLS=$(printf "https://$SUBNET.%s:8443," "${NODES[@]}"); URLS=${URLS%,}
rolling_client() {  # rolling_client MODE [options]: packaging/rolling-client.py in the client's namespace
    local mode=$1
    shift
    ip netns exec "$NS-client" env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY \
        /usr/bin/python3 "$REPO/packaging/rolling-client.py" "$mode" --ca "$RUN/ca.pem" --password "$PASSWORD" "$@"
}

# --- 4. the guest -------------------------------------------------------------------------------
stage "boot the guest (TCG)"
read -r server guest_host < <(rolling_client guest --nodes "https://$SUBNET.1:8443" --image "$RUN/guest.qcow2" \
    --timeout 600) || fail "the guest did not boot"
guest_node=${guest_host#node}
qemu_pid() {  # (no procps in minbase)
    on "$guest_node" /bin/sh -c 'for p in /proc/[0-9]*; do
        tr "\0" " " <$p/cmdline 2>/dev/null | grep -q "^[^ ]*qemu-system.*$1" && echo ${p#/proc/}; done; true' - "$server"
}
alive() { on "$guest_node" /bin/sh -c 'kill -0 "$1"' - "$1"; }
qemu=$(qemu_pid | head -1)
[ -n "$qemu" ] || fail "no QEMU process of server $server in node $guest_node"
accel=$(on "$guest_node" cat "/proc/$qemu/cmdline" | tr '\0' ' ' | grep -o -- '-accel [a-z]*' | head -1 || true)
say "guest $server ACTIVE on $guest_host, QEMU pid $qemu (in its container) ${accel:-}"

# --- 5. the client ------------------------------------------------------------------------------
stage_done
say "the client starts creating and deleting projects"
rolling_client writes --nodes "$URLS" --out "$RUN/writes.json" --stop "$RUN/stop" >"$RUN/client.log" 2>&1 &
client=$!
for _ in $(seq 600); do  # its first accepted writes
    grep -q "writes accepted" "$RUN/client.log" 2>/dev/null && break
    kill -0 "$client" 2>/dev/null || { cat "$RUN/client.log"; fail "the client ended"; }
    sleep 0.2
done

# --- 6. node by node ------------------------------------------------------------------------------
for n in "${NODES[@]}"; do
    stage "apt install ./new.deb on node $n"
    on "$n" /bin/sh -ec ". /root/lib.sh
        old=\$(main_pid)
        apt-get install -y -qq --no-install-recommends ./root/new.deb >/dev/null
        deadline=\$(( \$(date +%s) + 120 ))
        while [ \"\$(date +%s)\" -lt \"\$deadline\" ]; do
            new=\$(main_pid)
            [ \"\$new\" != 0 ] && [ \"\$new\" != \"\$old\" ] && cloudbox status >/dev/null 2>&1 && break
            sleep 0.2
        done
        test \"\$new\" != \"\$old\"
        test \"\$(dpkg-query -W -f '\${Version}' cloudbox)\" = '$new_version'
        want=\$(/usr/lib/cloudbox/bin/python -c 'import cloudbox; from cloudbox.state.commands import known_schema; print(cloudbox.__version__, known_schema())')
        cloudbox status >/root/status
        grep -q \"version \${want% *}, command schema \${want#* })\" /root/status
        grep 'healthy:   yes' /root/status
        echo \"node$n: pid \$old -> \$new, package $new_version, cloudbox \${want% *}, command schema \${want#* }\"
    " || { on "$n" journalctl -u cloudbox.service -o cat | tail -30; fail "node $n did not come back on the new package"; }
    alive "$qemu" || fail "the guest's QEMU (pid $qemu) died during the upgrade of node $n"
    say "the guest's QEMU pid $qemu still runs; client: $(grep -c refused "$RUN/client.log" || true) refusals so far"
    on "$n" cloudbox status | sed -n '/^versions:/,/^healthy:/p' || true  # mixed releases and schemas
done

stage "cloudbox cluster finish-upgrade"
on 1 cloudbox cluster finish-upgrade
on 1 cloudbox status

# --- 7. the end state -------------------------------------------------------------------------------
stage "stop the client, compare state hashes"
before=$(grep -c "writes accepted" "$RUN/client.log" || true)
for _ in $(seq 300); do  # some writes on the finished cluster
    [ "$(grep -c "writes accepted" "$RUN/client.log" || true)" -gt "$before" ] && break
    sleep 0.2
done
touch "$RUN/stop"
wait "$client" || fail "the client failed: $(tail -5 "$RUN/client.log")"
client=""
rolling_client converge --nodes "$URLS" --timeout 120 || fail "the nodes' states differ"
read -r status host < <(rolling_client server --nodes "https://$SUBNET.1:8443" --server "$server")
[ "$status" = ACTIVE ] || fail "the guest is $status"
alive "$qemu" || fail "the guest's QEMU (pid $qemu) is gone"
say "the guest $server is $status on $host, QEMU pid $qemu unchanged"
stage_done

# --- the figures -------------------------------------------------------------------------------------
grep -E "refused|accepted again" "$RUN/client.log" | head -40 || true
summary=$(cat "$RUN/writes.json")
gap=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["longest_gap_s"])' <<<"$summary")
refusal=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["longest_refusal_s"])' <<<"$summary")
echo "stage times:"
printf '  %s\n' "${TIMES[@]}"
echo "client: $(tr -d '\n' <<<"$summary")"
echo "longest write gap: $gap s (bound $BOUND s); longest stretch of refusals: $refusal s"
awk "BEGIN { exit !($gap <= $BOUND) }" || fail "the client went $gap s without an accepted write (bound $BOUND s)"
say "ok: three nodes upgraded one at a time $old_version -> $new_version; writes went on, states equal, the guest ran throughout"

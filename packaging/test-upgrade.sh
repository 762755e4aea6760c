#!/usr/bin/env bash
# Upgrade a node in place: the .deb of an older commit, then `apt install ./` the current one,
# in the clean Debian 12 of test-deb.sh (a debootstrap made once, an overlay per run), under
# the root's own systemd (nspawn -b), as on a real server.
#   packaging/test-upgrade.sh [OLD_REV]           (default HEAD~1; both built by build-deb.sh)
#   packaging/test-upgrade.sh --debs OLD.deb NEW.deb
# Checks: the old node serves; a tenant network's dnsmasq (forked by the node into the unit's
# cgroup, as guests' QEMU is) and its state survive the upgrade; the upgrade restarts the unit on
# the new code (KillMode=process leaves the children); the API is back within seconds; each
# schema migration runs once (the first start of the new code logs what it applied, a later
# restart applies nothing); the node reports the new version and command schema.
# Needs root, debootstrap, systemd-container, and the network for apt (or a warm cache).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nspawn.sh"
need_root

RUN=$(mktemp -d /var/tmp/cloudbox-upgrade-test.XXXXXX)
ROOT=$RUN/merged
nspawn=""
cleanup() {
    [ -z "$nspawn" ] || { kill "$nspawn" 2>/dev/null; wait "$nspawn" 2>/dev/null; }
    mountpoint -q "$ROOT" && { umount "$ROOT" 2>/dev/null || umount -l "$ROOT"; }
    rm -rf "$RUN"
}
trap cleanup EXIT

# --- the two packages ---------------------------------------------------------------------
if [ "${1:-}" = --debs ]; then
    OLD_DEB=$(realpath "$2"); NEW_DEB=$(realpath "$3")
else
    build_old_and_new "${1:-HEAD~1}" "$RUN"  # packaging/nspawn.sh
fi
old_version=$(dpkg-deb -f "$OLD_DEB" Version)
new_version=$(dpkg-deb -f "$NEW_DEB" Version)
say "upgrade $old_version -> $new_version"

# --- the clean system -----------------------------------------------------------------------
ensure_base
mkdir -p "$RUN/upper" "$RUN/work" "$ROOT"
mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$RUN/upper,workdir=$RUN/work" "$ROOT"
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"  # nothing starts during the first install
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cp "$OLD_DEB" "$ROOT/root/old.deb"
cp "$NEW_DEB" "$ROOT/root/new.deb"

say "apt install the old package"
systemd-nspawn -q --register=no --keep-unit --bind="$BASE.archives:/var/cache/apt/archives" \
    --setenv=DEBIAN_FRONTEND=noninteractive -D "$ROOT" </dev/null /bin/sh -ec "
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends curl ./root/old.deb >/dev/null
        cloudbox --version"
rm -f "$ROOT/usr/sbin/policy-rc.d"

say "boot the root's systemd (private network)"
nspawn_boot "$ROOT" "$RUN/boot.log" --private-network --bind="$BASE.archives:/var/cache/apt/archives"
nspawn=$NSPAWN_PID
leader=$NSPAWN_LEADER
booted() { in_booted "$leader" "$@"; }

# Helpers inside the root: the API with an admin token, the unit's processes, the node's state.
cat >"$ROOT/root/lib.sh" <<'EOF'
set -e
wait_healthy() {  # at most 90 s
    timeout 90 sh -c 'until cloudbox status >/dev/null 2>&1; do sleep 0.3; done' || { cloudbox status; return 1; }
}
api() { curl -fsS --cacert /var/lib/cloudbox/pki/ca.pem -H "Content-Type: application/json" -H "X-Auth-Token: $(token)" "$@"; }
token() {
    . /var/lib/cloudbox/admin-openrc.sh
    auth="{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"},\"password\":\"$OS_PASSWORD\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"}}}}}"
    curl -fsS --cacert "$OS_CACERT" -H "Content-Type: application/json" -D - -o /dev/null -d "$auth" \
        https://127.0.0.1:8443/identity/v3/auth/tokens | sed -n "s/^[Xx]-[Ss]ubject-[Tt]oken: *//p" | tr -d "\r"
}
main_pid() { systemctl show cloudbox.service -p MainPID --value; }
unit_procs() {
    for f in /sys/fs/cgroup/system.slice/cloudbox.service/cgroup.procs \
             /sys/fs/cgroup/unified/system.slice/cloudbox.service/cgroup.procs \
             /sys/fs/cgroup/systemd/system.slice/cloudbox.service/cgroup.procs; do
        [ -r $f ] && cat $f && return
    done
}
migrations() { /usr/lib/cloudbox/bin/python -c 'import sqlite3; c = sqlite3.connect("file:/var/lib/cloudbox/state.db?mode=ro", uri=True); print(" ".join(f"{s}#{v}" for s, v in c.execute("SELECT service, version FROM _migrations ORDER BY 1, 2")))'; }
# The node logs what it migrated when it opens its database (to stderr: under systemd, the journal).
applied_logged() { journalctl -u cloudbox.service -o cat | grep -c "schema migrations applied" || true; }
EOF

status=0
booted /bin/sh -ec '
    . /root/lib.sh
    cloudbox init --no-user-config | grep "Serving:"
    wait_healthy
    cloudbox status | grep "healthy:   yes"
    api -d "{\"project\":{\"name\":\"before-upgrade\"}}" https://127.0.0.1:8443/identity/v3/projects >/dev/null
    net=$(api -d "{\"network\":{\"name\":\"kept\"}}" https://127.0.0.1:8443/network/v2.0/networks \
        | sed "s/.*\"id\": *\"\([^\"]*\)\".*/\1/")
    api -d "{\"subnet\":{\"network_id\":\"$net\",\"cidr\":\"10.9.0.0/24\",\"ip_version\":4}}" \
        https://127.0.0.1:8443/network/v2.0/subnets >/dev/null
    main=$(main_pid)
    for i in $(seq 100); do  # the network'"'"'s dnsmasq (short-lived helpers like ip or nft pass through the unit too)
        children=$(for p in $(unit_procs); do [ "$(cat /proc/$p/comm 2>/dev/null)" = dnsmasq ] && echo "$p"; done | tr "\n" " ")
        [ -n "$children" ] && break
        sleep 0.2
    done
    test -n "$children"
    echo "old node: pid $main, children in the unit: $children($(for p in $children; do cat /proc/$p/comm; done | tr "\n" " "))"
    echo "$main" >/root/old-main; echo "$children" >/root/children
    echo "migrations before: $(migrations)"; migrations >/root/migrations-old
' || status=$?

if [ "$status" = 0 ]; then
    say "apt install ./new.deb on the serving node"
    booted /bin/sh -ec '
        . /root/lib.sh
        start=$(date +%s.%N)
        apt-get install -y -qq --no-install-recommends ./root/new.deb >/dev/null
        installed=$(date +%s.%N)
        old=$(cat /root/old-main)
        deadline=$(( $(date +%s) + 90 ))
        while [ "$(date +%s)" -lt "$deadline" ]; do
            new=$(main_pid)
            [ "$new" != 0 ] && [ "$new" != "$old" ] && cloudbox status >/dev/null 2>&1 && break
            sleep 0.1
        done
        back=$(date +%s.%N)
        cloudbox status | tee /root/status-new | grep "healthy:   yes"
        echo "upgraded: pid $old -> $new; apt took $(awk "BEGIN { printf \"%.1f\", $installed - $start }") s;" \
             "the API answered $(awk "BEGIN { printf \"%.1f\", $back - $installed }") s after apt returned"
        ! kill -0 "$old" 2>/dev/null
        for p in $(cat /root/children); do kill -0 "$p"; done
        echo "still running after the upgrade: $(cat /root/children)"
        api "https://127.0.0.1:8443/identity/v3/projects?name=before-upgrade" | grep -q "\"before-upgrade\""
        api https://127.0.0.1:8443/network/v2.0/networks | grep -q "\"kept\""
        echo "migrations after:  $(migrations)"
        journalctl -u cloudbox.service -o cat | grep "schema migrations applied" | tail -1
        logged=$(applied_logged)
        migrations >/root/migrations-new
        # New migrations in the new code: its first start applied them, and said so once.
        cmp -s /root/migrations-old /root/migrations-new || test "$logged" = 1
        systemctl restart cloudbox.service
        wait_healthy
        test "$(migrations)" = "$(cat /root/migrations-new)"
        test "$(applied_logged)" = "$logged"  # a restart of the same code applies nothing
        echo "restart on the new code applied no migration"
        for p in $(cat /root/children); do kill -0 "$p"; done
        cloudbox status
    ' || status=$?
fi
booted systemctl poweroff >/dev/null 2>&1 || kill "$nspawn" 2>/dev/null || true
wait "$nspawn" || true
nspawn=""
[ "$status" = 0 ] || { echo "test-upgrade: failed" >&2; tail -20 "$RUN/boot.log" >&2; tail -40 "$ROOT/var/lib/cloudbox/logs/cloudbox.log" >&2 || true; exit 1; }
say "ok: $old_version upgraded in place to $new_version; guests' processes kept running"

# Clean Debian 12 roots for the package tests, and their systemd booted under systemd-nspawn.
# Sourced, not run (after lib.sh).
#   ensure_base                       the debootstrap of bookworm in $BASE, made once, never changed
#   overlay_mount DIR [LOWER...]      DIR/merged: an overlay on LOWER... (default $BASE)
#   overlay_umount DIR
#   nspawn_boot ROOT LOG [OPTS...]    boots ROOT's systemd in the background (--register=no: this host's
#                                     PID 1 is no systemd); sets NSPAWN_PID and NSPAWN_LEADER (the
#                                     container's PID 1) and returns once its manager is up
#   in_booted LEADER CMD...           CMD in every namespace of that container (stdin closed)
#   nspawn_poweroff NSPAWN_PID LEADER

BASE=${CLOUDBOX_TEST_ROOT:-/var/cache/cloudbox-test/bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

ensure_base() {
    if [ ! -x "$BASE/usr/bin/apt-get" ]; then
        say "debootstrap of Debian 12 into $BASE (once)"
        mkdir -p "$(dirname "$BASE")"
        debootstrap --variant=minbase bookworm "$BASE.new" "$MIRROR" >/dev/null
        mv "$BASE.new" "$BASE"
    fi
    mkdir -p "$BASE.archives/partial"
}

overlay_mount() {  # overlay_mount DIR [LOWER...]: the top LOWER first
    local dir=$1 lower
    shift
    lower=$(IFS=:; echo "${*:-$BASE}")
    mkdir -p "$dir/upper" "$dir/work" "$dir/merged"
    mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged"
}

overlay_umount() {
    mountpoint -q "$1/merged" || return 0
    umount "$1/merged" 2>/dev/null || umount -l "$1/merged"
}

nspawn_boot() {  # nspawn_boot ROOT LOG [nspawn options...]
    local root=$1 log=$2 pid
    shift 2
    systemd-nspawn -q --register=no --keep-unit --console=passive "$@" -D "$root" -b </dev/null >"$log" 2>&1 &
    NSPAWN_PID=$!
    NSPAWN_LEADER=""
    for _ in $(seq 300); do  # nspawn forks helpers first; the leader is the child that becomes systemd
        for pid in $(pgrep -P "$NSPAWN_PID" || true); do
            [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd ] && NSPAWN_LEADER=$pid
        done
        [ -n "$NSPAWN_LEADER" ] && break
        kill -0 "$NSPAWN_PID" 2>/dev/null || break
        sleep 0.2
    done
    if [ -z "$NSPAWN_LEADER" ]; then
        echo "nspawn: systemd did not boot in $root" >&2
        cat "$log" >&2
        kill "$NSPAWN_PID" 2>/dev/null; wait "$NSPAWN_PID" 2>/dev/null
        return 1
    fi
    for _ in $(seq 600); do  # systemctl needs the manager's socket, made early in the boot
        [ -S "/proc/$NSPAWN_LEADER/root/run/systemd/private" ] && break
        sleep 0.2
    done
    timeout 180 nsenter -t "$NSPAWN_LEADER" -m -u -i -n -p -r -w -- systemctl is-system-running --wait >/dev/null || true
}

in_booted() {  # in_booted LEADER CMD...
    local leader=$1
    shift
    nsenter -t "$leader" -m -u -i -n -p -r -w -- env DEBIAN_FRONTEND=noninteractive "$@" </dev/null
}

nspawn_poweroff() {  # nspawn_poweroff NSPAWN_PID LEADER: a clean shutdown, else the signal
    [ -n "$1" ] || return 0
    in_booted "$2" systemctl poweroff >/dev/null 2>&1 || kill "$1" 2>/dev/null || true
    timeout 90 tail --pid="$1" -f /dev/null || kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# The packages of an upgrade test: build_old_and_new OLD_REV RUN sets OLD_DEB (OLD_REV's .deb,
# relabelled <version>~old so that apt upgrades even when both carry one version) and NEW_DEB
# (HEAD's), both by build-deb.sh offline from this checkout's wheelhouse.
build_test_deb() {  # build_test_deb SOURCE_REPO OUT
    mkdir -p "$2"
    if [ -d "$REPO/packaging/build/wheelhouse" ]; then cp -a "$REPO/packaging/build/wheelhouse" "$2/"; fi
    if [ -x "$REPO/packaging/build/tools/bin/pip" ]; then ln -sfn "$REPO/packaging/build/tools" "$2/tools"; fi
    "$1/packaging/build-deb.sh" "$2" >"$2.log" 2>&1 || { tail -30 "$2.log" >&2; return 1; }
    ls "$2"/cloudbox_*.deb
}

build_old_and_new() {  # build_old_and_new OLD_REV RUN
    local rev run=$2 built
    rev=$(git -C "$REPO" rev-parse --verify "$1^{commit}")
    say "building the .deb of HEAD ($(git -C "$REPO" rev-parse --short HEAD)) and of ${rev:0:9}"
    NEW_DEB=$(build_test_deb "$REPO" "$run/new")
    # The old commit in a clone sharing this repository's objects (this checkout stays untouched).
    git clone -q --shared --no-checkout "$REPO" "$run/old-src"
    git -C "$run/old-src" checkout -q "$rev"
    ln -s "$VENV" "$run/old-src/.venv"  # the same pins as the current build
    [ ! -d "$REPO/web/vendor" ] || cp -r "$REPO/web/vendor" "$run/old-src/web/vendor"
    built=$(build_test_deb "$run/old-src" "$run/old")
    dpkg-deb -R "$built" "$run/old-tree"
    sed -i 's/^Version: \(.*\)$/Version: \1~old/' "$run/old-tree/DEBIAN/control"
    OLD_DEB=$run/old/$(basename "$built" _amd64.deb)~old_amd64.deb
    dpkg-deb --root-owner-group -Zxz --build "$run/old-tree" "$OLD_DEB" >/dev/null
    rm -rf "$run/old-tree" "$run/old-src"
}

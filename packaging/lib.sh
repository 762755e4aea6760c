# Shared by quickstart.sh and test.sh: OS packages and the Python environment.
# Sourced, not run.  Everything is idempotent: a second run installs nothing new.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${CLOUDBOX_VENV:-$REPO/.venv}

# Debian packages the node needs at run time.
RUNTIME_PACKAGES=(python3 etcd-server python3-venv python3-dev gcc pkg-config openssl ca-certificates iproute2 dnsmasq-base dnsmasq-utils nftables qemu-utils qemu-system-x86 libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-dev lvm2 thin-provisioning-tools)

say() { printf '==> %s\n' "$*"; }

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "cloudbox: run this as root (it installs Debian packages and manages host networking)" >&2
        exit 1
    fi
}

install_os_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    # Debian's etcd-server enables a stand-alone etcd of its own; cloudbox runs its members itself.
    if [ -d /run/systemd/system ] && systemctl is-enabled --quiet etcd 2>/dev/null; then
        systemctl disable --now etcd >/dev/null 2>&1 || true
    fi
}

make_venv() {  # make_venv [pip extras]
    local extras=${1:-}
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating the Python environment in $VENV"
        /usr/bin/python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --upgrade pip
    fi
    local stamp="$VENV/.installed${extras:+-$extras}"
    if [ ! -e "$stamp" ] || [ "$REPO/setup.cfg" -nt "$stamp" ]; then
        say "installing cloudbox${extras:+ with [$extras]} into $VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check -e "$REPO${extras:+[$extras]}"
        touch "$stamp"
    fi
    # The dashboard's browser packages (noVNC, xterm.js), pinned and checked: packaging/web-assets.sh.
    local assets=0
    "$REPO/packaging/web-assets.sh" "$REPO/web" || assets=$?
    if [ "$assets" = 2 ]; then
        say "warning: the npm registry is out of reach; the dashboard's consoles need packaging/web-assets.sh run later"
    elif [ "$assets" != 0 ]; then
        return "$assets"
    fi
}

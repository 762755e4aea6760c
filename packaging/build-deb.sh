#!/usr/bin/env bash
# Build cloudbox_<version>_amd64.deb from this checkout's HEAD (git archive: other people's
# uncommitted edits stay out), with every Python dependency inside it:
#   /usr/lib/cloudbox          a Python 3.11 virtualenv (Debian's /usr/bin/python3), no pip in it
#   /usr/bin/cloudbox          -> /usr/lib/cloudbox/bin/cloudbox
#   /usr/share/cloudbox/web    the web UI (with web/vendor, fetched by web-assets.sh)
#   /lib/systemd/system/cloudbox.service, /etc/logrotate.d/cloudbox
#
#   packaging/build-deb.sh [--worktree] [OUT_DIR]     (default OUT_DIR: packaging/build)
#
# Two stages.  1. The wheelhouse (OUT_DIR/wheelhouse): every wheel the package needs, at the
# versions of the development venv (.venv) when there is one; made with pip's cache or the
# package index, and libvirt-python compiled here against Debian's libvirt-dev.  Kept between
# builds.  2. Everything else is offline: the venv is filled with --no-index from the wheelhouse.
# Needs: python3-venv, libvirt-dev, gcc, pkg-config (packaging/lib.sh's RUNTIME_PACKAGES), dpkg-deb.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

WORKTREE=0
if [ "${1:-}" = --worktree ]; then WORKTREE=1; shift; fi
OUT=$(mkdir -p "${1:-$REPO/packaging/build}" && cd "${1:-$REPO/packaging/build}" && pwd)
MAINTAINER="${DEBFULLNAME:-cloudbox maintainers} <${DEBEMAIL:-cloudbox-packaging@example.org}>"
PY=/usr/bin/python3  # the target's interpreter: the venv links to it by path
PREFIX=/usr/lib/cloudbox
WHEELS=$OUT/wheelhouse
WORK=$OUT/work
rm -rf "$WORK"
mkdir -p "$WHEELS" "$WORK"

# --- the source -------------------------------------------------------------------------
SRC=$WORK/src
mkdir -p "$SRC"
if [ "$WORKTREE" = 1 ]; then
    say "source: the working tree"
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | tar -c --null -T - ) | tar -x -C "$SRC"
else
    say "source: git HEAD $(git -C "$REPO" rev-parse --short HEAD)"
    git -C "$REPO" archive HEAD | tar -x -C "$SRC"
fi
RELEASE=$("$PY" -c 'import re,sys; print(re.search(r"__version__ = \"([^\"]+)\"", open(sys.argv[1]).read())[1])' "$SRC/cloudbox/__init__.py")
# The version names the build, the release then the commit's time and id (a working tree's: the
# build's time), so that `cloudbox status` tells an upgraded node from the others and apt orders
# two builds of one release. Also a PEP 440 local version ("g": an all-digit id would be renumbered).
if [ "$WORKTREE" = 1 ]; then
    VERSION=$RELEASE+wt$(date -u +%Y%m%d%H%M%S)
else
    VERSION=$RELEASE+git$(TZ=UTC git -C "$REPO" log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd).g$(git -C "$REPO" rev-parse --short=9 HEAD)
fi
sed -i "s/^__version__ = \".*\"/__version__ = \"$VERSION\"/" "$SRC/cloudbox/__init__.py"
ARCH=$(dpkg --print-architecture)
DEB=$OUT/cloudbox_${VERSION}_${ARCH}.deb

# --- 1. the wheelhouse (may use the network or pip's cache) -----------------------------
TOOLS=$OUT/tools
if [ ! -x "$TOOLS/bin/pip" ]; then
    "$PY" -m venv "$TOOLS"  # ensurepip's bundled pip and setuptools
fi
# bdist_wheel (setuptools < 70 has it in the package "wheel"): from pip's cache or the index.
"$TOOLS/bin/python" -c 'import wheel' 2>/dev/null || "$TOOLS/bin/pip" install -q --disable-pip-version-check wheel
# Pins: the versions the tests ran with (the dev venv), as constraints.
CONSTRAINTS=$WORK/constraints.txt
if [ -x "$VENV/bin/pip" ]; then
    "$VENV/bin/pip" list --format=freeze --exclude-editable 2>/dev/null >"$CONSTRAINTS"
else
    : >"$CONSTRAINTS"
fi
rm -f "$WHEELS"/cloudbox-*.whl
say "wheelhouse: $WHEELS"
# --no-build-isolation: sdists (libvirt-python, cloudbox itself) build with the tools venv's
# setuptools, so building needs nothing from the index but the dependencies themselves.
"$TOOLS/bin/pip" wheel -q --disable-pip-version-check --no-build-isolation \
    -c "$CONSTRAINTS" -w "$WHEELS" "$SRC"

# --- 2. the tree of the package (offline from here) -------------------------------------
ROOT=$WORK/root
mkdir -p "$ROOT$PREFIX"
say "virtualenv in $PREFIX"
"$PY" -m venv --without-pip "$ROOT$PREFIX"
"$TOOLS/bin/pip" --python "$ROOT$PREFIX/bin/python" install -q --disable-pip-version-check \
    --no-index --find-links "$WHEELS" --no-compile --no-warn-script-location "cloudbox==$VERSION"
# sqlite-utils lists pip among its requirements (for its own `install` command): no pip on the target.
"$TOOLS/bin/pip" --python "$ROOT$PREFIX/bin/python" uninstall -q -y pip
# The venv was made at $ROOT$PREFIX: its scripts' #! lines and pyvenv.cfg name that path.
grep -rlI --null "$ROOT$PREFIX" "$ROOT$PREFIX/bin" "$ROOT$PREFIX/pyvenv.cfg" \
    | xargs -0 -r sed -i "s|$ROOT$PREFIX|$PREFIX|g"
# bin/: only the interpreter links and our command (the dependencies' own scripts and the
# activation scripts are for developers' shells, not for a system package).
find "$ROOT$PREFIX/bin" -mindepth 1 ! -name cloudbox ! -name 'python*' -delete
# The interpreter by a relative link (a venv finds its site-packages from the link's place).
ln -sfn ../../../bin/python3 "$ROOT$PREFIX/bin/python3"
ln -sfn python3 "$ROOT$PREFIX/bin/python"
# Library files are not programs (some wheels mark scripts and tests executable).
find "$ROOT$PREFIX/lib" -type f -perm /111 ! -name '*.so' ! -name '*.so.*' -exec chmod a-x {} +
find "$ROOT$PREFIX" -name __pycache__ -prune -exec rm -rf {} +
find "$ROOT$PREFIX" -type f -name '*.so*' -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} +
if grep -rlI "$ROOT" "$ROOT$PREFIX" >/dev/null; then
    echo "build-deb: the build path is still named in:" >&2
    grep -rlI "$ROOT" "$ROOT$PREFIX" >&2
    exit 1
fi
mkdir -p "$ROOT/usr/bin"
ln -s "../lib/cloudbox/bin/cloudbox" "$ROOT/usr/bin/cloudbox"

say "web UI in /usr/share/cloudbox/web"
# web/vendor (idempotent: fetched once).  Exit 2 is a registry out of reach: the package is
# built without the console pages, loudly; exit 1 (a tarball not as recorded) stops the build.
assets=0
"$REPO/packaging/web-assets.sh" "$REPO/web" >/dev/null || assets=$?
case $assets in
    0) ;;
    2) say "warning: the npm registry is out of reach; the package has no web/vendor (the consoles' pages)" ;;
    *) exit "$assets" ;;
esac
mkdir -p "$ROOT/usr/share/cloudbox"
cp -r "$SRC/web" "$ROOT/usr/share/cloudbox/web"
rm -rf "$ROOT/usr/share/cloudbox/web/screenshots"  # the README's pictures, not the UI's
if [ -d "$REPO/web/vendor" ]; then
    rm -rf "$ROOT/usr/share/cloudbox/web/vendor"
    cp -r "$REPO/web/vendor" "$ROOT/usr/share/cloudbox/web/vendor"
fi

DEBIAN_DIR=$REPO/packaging/debian
install -D -m 0644 "$DEBIAN_DIR/cloudbox.service" "$ROOT/lib/systemd/system/cloudbox.service"
install -D -m 0644 "$DEBIAN_DIR/logrotate" "$ROOT/etc/logrotate.d/cloudbox"
install -D -m 0644 "$DEBIAN_DIR/lintian-overrides" "$ROOT/usr/share/lintian/overrides/cloudbox"
install -D -m 0644 "$DEBIAN_DIR/cloudbox.1" "$ROOT/usr/share/man/man1/cloudbox.1"
gzip -9n "$ROOT/usr/share/man/man1/cloudbox.1"
DOC=$ROOT/usr/share/doc/cloudbox
install -D -m 0644 "$SRC/README.md" "$DOC/README.md"
install -D -m 0644 "$DEBIAN_DIR/copyright" "$DOC/copyright"
sed "s/@VERSION@/$VERSION/; s/@MAINTAINER@/$MAINTAINER/; s/@DATE@/$(date -R -d "@$(git -C "$REPO" log -1 --format=%ct)")/" \
    "$DEBIAN_DIR/changelog" | gzip -9n >"$DOC/changelog.gz"

# --- control ------------------------------------------------------------------------------
# Run-time Debian packages: lib.sh's list without what only builds Python packages.
BUILD_ONLY=" python3-venv python3-dev gcc pkg-config libvirt-dev "
depends=()
for pkg in "${RUNTIME_PACKAGES[@]}"; do
    case "$BUILD_ONLY" in *" $pkg "*) ;; *) depends+=("$pkg") ;; esac
done
# The venv runs on Debian's Python (its ABI: 3.11 only) and libvirt-python links libvirt.so.0.
pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
pynext=${pyver%.*}.$((${pyver#*.} + 1))
libvirt_ver=$(dpkg-query -W -f='${Version}' libvirt0 | sed 's/-[^-]*$//')
for i in "${!depends[@]}"; do
    if [ "${depends[$i]}" = python3 ]; then depends[$i]="python3 (>= ${pyver}~), python3 (<< ${pynext})"; fi
done
depends=("python${pyver}" "libvirt0 (>= ${libvirt_ver})" "${depends[@]}")
# deb-systemd-helper and deb-systemd-invoke, used by the maintainer scripts.
depends+=("init-system-helpers (>= 1.52)")
# The newest glibc symbol version any bundled binary needs (cryptography's wheel: 2.34).
glibc=$(find "$ROOT$PREFIX" -type f -name '*.so*' -exec objdump -T {} + 2>/dev/null \
    | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
depends=("libc6 (>= ${glibc})" "${depends[@]}")
depends_line=$(printf '%s, ' "${depends[@]}")
depends_line=${depends_line%, }

mkdir -p "$ROOT/DEBIAN"
install -m 0755 "$DEBIAN_DIR/postinst" "$DEBIAN_DIR/prerm" "$DEBIAN_DIR/postrm" "$ROOT/DEBIAN/"
echo /etc/logrotate.d/cloudbox >"$ROOT/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat >"$ROOT/DEBIAN/control" <<EOF
Package: cloudbox
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $size
Depends: $depends_line
Recommends: logrotate
Section: admin
Priority: optional
Description: private cloud with OpenStack's APIs, one process per node
 cloudbox serves Keystone, Nova, Glance, Neutron, Cinder, Swift and Heat
 compatible APIs from one Python process per node, keeps the cloud's state
 in SQLite as a replicated command log (etcd in a cluster) and drives the
 host directly: QEMU through libvirt, bridges, namespaces and nftables.
 .
 Every Python package it needs is bundled in /usr/lib/cloudbox.
 After installing: cloudbox init (then systemd starts cloudbox.service).
EOF

find "$ROOT" -path "$ROOT/DEBIAN" -prune -o -type d -exec chmod 0755 {} +
say "dpkg-deb: $DEB"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
rm -rf "$WORK"
echo "$DEB ($(du -h "$DEB" | cut -f1), installed $((size / 1024)) MiB)"

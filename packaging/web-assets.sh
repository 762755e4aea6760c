#!/bin/bash
# The dashboard's third-party browser code, from its published npm packages at pinned versions:
# noVNC (the VNC console) and xterm.js (the serial console).  Each tarball comes from the npm
# registry, is checked against the sha512 integrity the registry published for that version
# (recorded here), and is unpacked into web/vendor/<name>/, which git ignores.  Idempotent: a
# package already unpacked at its recorded integrity is left alone.
#   packaging/web-assets.sh [web dir]      (run by packaging/lib.sh: quickstart.sh and test.sh)
# Exit 1: a package does not match its recorded integrity; exit 2: the registry is out of reach.
set -euo pipefail

WEB_DIR=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/web}
REGISTRY=${NPM_REGISTRY:-https://registry.npmjs.org}

# directory  package  version  sha512 integrity (npm view <package>@<version> dist.integrity)
PACKAGES=(
    "novnc @novnc/novnc 1.7.0 sha512-ucEJOx4T2avIRCleodk7YobZj5O2Ga2AeLfQ69A/yjG9HHba2+PDgwSkN3FttrmG+70ZGx21sElNFouK13RzyA=="
    "xterm @xterm/xterm 6.0.0 sha512-TQwDdQGtwwDt+2cgKDLn0IRaSxYu1tSUjgKarSDkUM0ZNiSRXFpjxEsvc/Zgc5kq5omJ+V0a8/kIM2WD3sMOYg=="
    "xterm-addon-fit @xterm/addon-fit 0.11.0 sha512-jYcgT6xtVYhnhgxh3QgYDnnNMYTcf8ElbxxFzX0IZo+vabQqSPAjC3c1wJrKB5E19VwQei89QCiZZP86DCPF7g=="
)

fetch() {  # fetch URL FILE
    if command -v curl >/dev/null; then
        curl -fsSL --retry 3 -o "$2" "$1"
    else
        python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' "$1" "$2"
    fi
}

vendor=$WEB_DIR/vendor
mkdir -p "$vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for entry in "${PACKAGES[@]}"; do
    read -r dir package version integrity <<<"$entry"
    target=$vendor/$dir
    if [ -f "$target/.integrity" ] && [ "$(cat "$target/.integrity")" = "$integrity" ]; then
        continue
    fi
    tarball="$work/$dir.tgz"
    if ! fetch "$REGISTRY/$package/-/${package#*/}-$version.tgz" "$tarball"; then
        echo "web-assets: could not fetch $package@$version from $REGISTRY" >&2
        exit 2  # the registry is out of reach (lib.sh goes on without the console pages)
    fi
    got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
    if [ "$got" != "$integrity" ]; then
        echo "web-assets: $package@$version does not match its recorded integrity (got $got)" >&2
        exit 1
    fi
    rm -rf "$target.new" && mkdir -p "$target.new"
    tar -xzf "$tarball" -C "$target.new" --strip-components=1 --no-same-owner
    echo "$integrity" >"$target.new/.integrity"
    rm -rf "$target" && mv "$target.new" "$target"
    echo "==> web/vendor/$dir: $package@$version"
done

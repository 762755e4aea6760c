#!/usr/bin/env bash
# OpenStack's Tempest (API tests) against a fresh cloudbox node, as root on Debian 12.
#   tests/tempest/run.sh                 # identity, compute, image and network
#   tests/tempest/run.sh compute         # one service; or `fast`, or a regex of test ids
#   tests/tempest/run.sh orchestration   # Heat's API tests (heat-tempest-plugin, installed on demand)
# Installs Tempest from PyPI into .tempest-venv, brings up a node with the real drivers in
# /tmp/cloudbox-tempest, writes its tempest.conf, runs, prints passed/failed/skipped per service.
set -euo pipefail
. "$(dirname "$0")/../../packaging/lib.sh"
need_root
install_os_packages "${RUNTIME_PACKAGES[@]}"
make_venv test
TEMPEST_VENV=${TEMPEST_VENV:-$REPO/.tempest-venv}
TEMPEST_VERSION=47.0.0
installed=$("$TEMPEST_VENV/bin/pip" show tempest 2>/dev/null || true)  # (grep -q on a pipe would end pip early)
if [ ! -x "$TEMPEST_VENV/bin/tempest" ] || ! grep -qx "Version: $TEMPEST_VERSION" <<<"$installed"; then
    say "installing Tempest $TEMPEST_VERSION into $TEMPEST_VENV"
    /usr/bin/python3 -m venv "$TEMPEST_VENV"
    "$TEMPEST_VENV/bin/pip" install -q --disable-pip-version-check "tempest==$TEMPEST_VERSION"
fi
# Heat's API tests live in heat-tempest-plugin: installed only when a run selects orchestration
HEAT_PLUGIN_VERSION=3.0.0
if [[ " $* " == *" orchestration "* ]] && ! "$TEMPEST_VENV/bin/pip" show heat-tempest-plugin >/dev/null 2>&1; then
    say "installing heat-tempest-plugin $HEAT_PLUGIN_VERSION into $TEMPEST_VENV"
    "$TEMPEST_VENV/bin/pip" install -q --disable-pip-version-check "heat-tempest-plugin==$HEAT_PLUGIN_VERSION"
fi
cd "$REPO"
exec "$VENV/bin/python" -m tests.tempest.runner --tempest "$TEMPEST_VENV/bin/tempest" "$@"

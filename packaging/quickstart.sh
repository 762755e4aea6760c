#!/usr/bin/env bash
# Bring up a single-node cloudbox on this machine: install what it needs,
# `cloudbox init` (once), `cloudbox serve` in the background, and say where it is.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root

DATA_DIR=${CLOUDBOX_DATA_DIR:-/var/lib/cloudbox}
LISTEN=${CLOUDBOX_LISTEN:-0.0.0.0:8443}

install_os_packages "${RUNTIME_PACKAGES[@]}"
make_venv client
ln -sf "$VENV/bin/cloudbox" /usr/local/bin/cloudbox
command -v openstack >/dev/null || ln -sf "$VENV/bin/openstack" /usr/local/bin/openstack

if [ -e "$DATA_DIR/node.json" ]; then
    say "using the existing cloud in $DATA_DIR"
    # ~/.config/openstack/clouds.yaml may name another cloud "cloudbox" (an older data dir): point it here.
    "$VENV/bin/python" - "$DATA_DIR" <<'PY'
import sys
from pathlib import Path

import yaml

from cloudbox.bootstrap import merge_clouds_yaml

entry = yaml.safe_load((Path(sys.argv[1]) / "clouds.yaml").read_text())["clouds"]["cloudbox"]
merge_clouds_yaml(Path.home() / ".config" / "openstack" / "clouds.yaml", "cloudbox", entry)
PY
else
    say "creating a cloud in $DATA_DIR"
    cloudbox init --data-dir "$DATA_DIR" --listen "$LISTEN"
fi

cloudbox serve --data-dir "$DATA_DIR" --background

# A first image, so the tutorial's `openstack server create ... --image cirros` works at once:
# our small test guest, built here from Debian packages.
export OS_CLIENT_CONFIG_FILE=$DATA_DIR/clouds.yaml
if ! "$VENV/bin/openstack" --os-cloud cloudbox image show cirros >/dev/null 2>&1; then
    say "building the test guest (firmware/build-guest.sh) and uploading it as image cirros"
    "$REPO/firmware/build-guest.sh"
    "$VENV/bin/openstack" --os-cloud cloudbox image create --public --disk-format qcow2 \
        --container-format bare --file "$REPO/firmware/build/guest.qcow2" cirros >/dev/null
fi
unset OS_CLIENT_CONFIG_FILE

url=$("$VENV/bin/python" - "$DATA_DIR/clouds.yaml" <<'PY'
import sys, yaml
auth = yaml.safe_load(open(sys.argv[1]))["clouds"]["cloudbox"]["auth"]
print(auth["auth_url"].rsplit("/identity/", 1)[0], auth["password"])
PY
)
cat <<MSG

cloudbox is up.
  API:          ${url% *}   (identity at ${url% *}/identity/v3)
  Web UI:       ${url% *}/
  Credentials:  user admin, project admin, password ${url#* }
  clouds.yaml:  $DATA_DIR/clouds.yaml (also in ~/.config/openstack/clouds.yaml as cloud "cloudbox")
  openrc:       source $DATA_DIR/admin-openrc.sh
  Logs:         $DATA_DIR/logs/cloudbox.log
  Status/stop:  cloudbox status | cloudbox stop     (--data-dir $DATA_DIR if not the default)
  Image:        cirros (cloudbox's small test guest)
  Networks:     public (external, floating IPs; this host is its gateway); a project's own
                network is made at its first server, or: openstack network create ...
Try:  openstack --os-cloud cloudbox token issue
      openstack --os-cloud cloudbox server create demo-instance1 --flavor m1.tiny --image cirros --wait
      openstack --os-cloud cloudbox console log show demo-instance1
      openstack --os-cloud cloudbox floating ip create public
      openstack --os-cloud cloudbox server add floating ip demo-instance1 <that address>
      openstack --os-cloud cloudbox security group rule create --protocol tcp --dst-port 22 default
MSG

#!/usr/bin/env bash
# Run the whole test suite: installs what the tests need first (as root on Debian 12).
# Extra arguments go to pytest, e.g.  ./packaging/test.sh -k identity
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root

# ssh-keygen: the tutorial test imports a key pair as a person would; ping and busybox (udhcpc):
# the network tests; iperf3: bench/network.py; etcdctl (etcd-client): the cluster tests check
# etcd itself with it (a plain etcd cluster, and compaction of a node's history); curl: an S3 presigned URL
# fetched as a person would (tests/test_object_s3.py); chromium and chromium-driver: the dashboard's
# tests in a real browser (tests/browser.py, with Selenium from the test extras); nodejs: the page's
# event-stream module run by Node (tests/test_events_js.py; Debian 12's Node 18 and Node 20 both pass).
install_os_packages "${RUNTIME_PACKAGES[@]}" openssh-client iputils-ping iperf3 busybox etcd-client curl \
    chromium chromium-driver nodejs
make_venv test
# Ansible (with the openstack.cloud collection it bundles) for tests/test_ansible.py, in a venv of its own.
# That collection (2.5.0) reads openstack.version, which openstacksdk removed in 4.15: its modules use 4.14.
ANSIBLE_VENV=${CLOUDBOX_ANSIBLE_VENV:-$REPO/.ansible-venv}
ANSIBLE_PINS=(ansible==11.13.0 openstacksdk==4.14.0)
ANSIBLE_STAMP="$ANSIBLE_VENV/.installed-$(IFS=,; echo "${ANSIBLE_PINS[*]}")"
if [ ! -e "$ANSIBLE_STAMP" ]; then
    say "installing ${ANSIBLE_PINS[*]} into $ANSIBLE_VENV"
    /usr/bin/python3 -m venv "$ANSIBLE_VENV"
    "$ANSIBLE_VENV/bin/pip" install -q --disable-pip-version-check "${ANSIBLE_PINS[@]}"
    touch "$ANSIBLE_STAMP"
fi
cd "$REPO"
exec "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"

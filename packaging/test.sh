#!/usr/bin/env bash
# Run the whole test suite: installs what the tests need first (as root on Debian 12).
# Extra arguments go to pytest, e.g.  ./packaging/test.sh -k identity
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root

# ssh-keygen: the tutorial test imports a key pair as a person would; ping and busybox (udhcpc):
# the network tests; iperf3: bench/network.py; etcdctl (etcd-client): the cluster tests check
# etcd itself with it (a plain etcd cluster, and compaction of a node's history).
install_os_packages "${RUNTIME_PACKAGES[@]}" openssh-client iputils-ping iperf3 busybox etcd-client
make_venv test
cd "$REPO"
exec "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"

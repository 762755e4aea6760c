"""A volume's NBD export (cloudbox/volume/export.py) without compute: qemu-storage-daemon with the
cluster CA's certificates, read and written by qemu-io over TLS with a cluster-CA client
certificate; a client without one, with one of another CA, or without TLS is refused."""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import struct
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from cloudbox import nbd_tls, pki
from cloudbox.volume.driver.dir import DirDriver
from cloudbox.volume.export import MALLOC_ENV, ExportDaemon, ExportSpec, export_name
from tests.test_volume_nbd_guest import write_node_pki

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the export daemon runs as root, as the node does")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict]:
    """Node A (the volume's, its export daemon on 127.0.0.1) and client dirs: node B's (same
    CA), one of another cluster's CA, and one with the CA but no certificate."""
    now = dt.datetime.now(dt.timezone.utc)
    ca = pki.create_ca("test", now)
    node_a, node_b, stranger = tmp_path / "a", tmp_path / "b", tmp_path / "stranger"
    write_node_pki(node_a, ca, "node-a", "127.0.0.1")
    write_node_pki(node_b, ca, "node-b", "127.0.0.2")
    write_node_pki(stranger, pki.create_ca("other", now), "stranger", "127.0.0.1")
    no_cert = tmp_path / "no-cert"
    no_cert.mkdir()
    (no_cert / "ca-cert.pem").write_bytes(ca.cert_pem)
    daemon = ExportDaemon(node_a / "nbd-exports", nbd_tls.write_server_dir(node_a), "127.0.0.1", free_port())
    driver = DirDriver(node_a, "raw")
    try:
        yield {"daemon": daemon, "driver": driver, "client": nbd_tls.write_client_dir(node_b, "node-b"),
               "stranger": nbd_tls.write_client_dir(stranger, "stranger"), "no_cert": no_cert}
    finally:
        daemon.stop()


def qemu_io(daemon: ExportDaemon, volume_id: str, tls_dir: Path | None, *commands: str) -> subprocess.CompletedProcess:
    opts = f"driver=nbd,server.type=inet,server.host={daemon.address},server.port={daemon.port}," \
           f"export={export_name(volume_id)}"
    args = ["qemu-io"]
    if tls_dir is not None:
        args += ["--object", f"tls-creds-x509,id=tls0,dir={tls_dir},endpoint=client"]
        opts += ",tls-creds=tls0"
    args += ["--image-opts", opts]
    for command in commands:
        args += ["-c", command]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def head(path: Path, length: int) -> bytes:
    with path.open("rb") as f:
        return f.read(length)


def spec(driver: DirDriver, volume_id: str, readonly: bool = False) -> ExportSpec:
    return ExportSpec(volume_id, str(driver.path(volume_id)), driver.volume_format(volume_id), False, readonly)


def test_export_reads_and_writes_the_volume_over_tls(site: dict):
    daemon, driver = site["daemon"], site["driver"]
    vid = "0b6f5c1e-1111-4222-8333-944455556666"
    driver.create_blank(vid, 1)
    daemon.add(spec(driver, vid))
    assert daemon.exports() == {vid}
    done = qemu_io(daemon, vid, site["client"], "write -P 0xc5 1M 2M", "read -P 0xc5 1M 2M", "read -P 0 0 1M")
    assert done.returncode == 0 and "Pattern verification failed" not in done.stdout, done.stdout + done.stderr
    data = head(driver.path(vid), 4 << 20)
    assert data[1 << 20:3 << 20] == b"\xc5" * (2 << 20) and data[:1 << 20] == bytes(1 << 20)
    # Adding again changes nothing (the reconciler adds what it wants each pass).
    daemon.add(spec(driver, vid))
    assert daemon.exports() == {vid}


def test_clients_without_a_cluster_certificate_are_refused(site: dict):
    daemon, driver = site["daemon"], site["driver"]
    vid = "1b6f5c1e-1111-4222-8333-944455556666"
    driver.create_blank(vid, 1)
    daemon.add(spec(driver, vid))
    for tls_dir in (site["stranger"], site["no_cert"], None):
        refused = qemu_io(daemon, vid, tls_dir, "write -P 0xee 0 64k")
        assert refused.returncode != 0 and "wrote" not in refused.stdout, (tls_dir, refused.stdout)
    assert head(driver.path(vid), 65536) == bytes(65536)
    ok = qemu_io(daemon, vid, site["client"], "read -P 0 0 64k")
    assert ok.returncode == 0, ok.stderr


def test_qcow2_volumes_are_exported_as_the_guest_sees_them_and_read_only_stays_so(site: dict, tmp_path: Path):
    daemon = site["daemon"]
    driver = DirDriver(tmp_path / "a", "qcow2")
    vid, ro = "2b6f5c1e-1111-4222-8333-944455556666", "3b6f5c1e-1111-4222-8333-944455556666"
    driver.create_blank(vid, 1)
    driver.create_blank(ro, 1)
    daemon.add(spec(driver, vid))
    daemon.add(spec(driver, ro, readonly=True))
    done = qemu_io(daemon, vid, site["client"], "write -P 0x5a 0 1M", "read -P 0x5a 0 1M")
    assert done.returncode == 0 and "Pattern verification failed" not in done.stdout, done.stderr
    local = subprocess.run(["qemu-io", "-U", "-r", "-f", "qcow2", "-c", "read -P 0x5a 0 1M",
                            str(driver.path(vid))],
                           capture_output=True, text=True, timeout=60)
    assert local.returncode == 0 and "Pattern verification failed" not in local.stdout, local.stdout
    refused = qemu_io(daemon, ro, site["client"], "write -P 0x11 0 64k")
    assert "wrote" not in refused.stdout, refused.stdout


def test_removed_exports_are_gone_and_a_new_process_adopts_the_daemon(site: dict):
    daemon, driver = site["daemon"], site["driver"]
    keep, drop = "4b6f5c1e-1111-4222-8333-944455556666", "5b6f5c1e-1111-4222-8333-944455556666"
    for vid in (keep, drop):
        driver.create_blank(vid, 1)
        daemon.add(spec(driver, vid))
    pid = daemon.pid()
    daemon.remove(drop)
    daemon.remove(drop)  # twice: nothing to do
    assert daemon.exports() == {keep}
    gone = qemu_io(daemon, drop, site["client"], "read 0 64k")
    assert gone.returncode != 0, gone.stdout
    # What cloudbox finds after a restart: the same daemon, its exports as they were.
    again = ExportDaemon(daemon.run_dir, daemon.tls_dir, daemon.address, daemon.port)
    assert again.ensure_running() is False and again.pid() == pid and again.exports() == {keep}
    # The volume can be exported again once removed (its block nodes were closed).
    again.add(spec(driver, drop))
    assert again.exports() == {keep, drop}
    again.stop()
    assert daemon.exports() == set() and daemon.pid() is None


def test_client_dir_is_readable_by_the_guest_group_only(tmp_path: Path):
    now = dt.datetime.now(dt.timezone.utc)
    ca = pki.create_ca("test", now)
    write_node_pki(tmp_path, ca, "node-b", "127.0.0.2")
    gid = 4242
    out = nbd_tls.write_client_dir(tmp_path, "node-b", gid)
    assert sorted(p.name for p in out.iterdir()) == ["ca-cert.pem", "client-cert.pem", "client-key.pem"]
    assert (out.stat().st_mode & 0o777, out.stat().st_gid) == (0o750, gid)
    for path in out.iterdir():
        assert (path.stat().st_mode & 0o777, path.stat().st_uid, path.stat().st_gid) == (0o640, 0, gid)
    cert = (out / "client-cert.pem").read_bytes()
    assert nbd_tls.write_client_dir(tmp_path, "node-b", gid) == out and (out / "client-cert.pem").read_bytes() == cert
    # Another CA (a node that joined another cluster): a new certificate, signed by it.
    write_node_pki(tmp_path, pki.create_ca("other", now), "node-b", "127.0.0.2")
    nbd_tls.write_client_dir(tmp_path, "node-b", gid)
    assert (out / "client-cert.pem").read_bytes() != cert
    assert nbd_tls._signed_by((out / "client-cert.pem").read_bytes(), (tmp_path / "pki" / "ca.pem").read_bytes())


async def test_exports_follow_nbd_attachments_in_the_state_and_replay(tmp_path: Path):
    """What the worker reads (remote_attachments) and MarkExported: only an nbd attachment of another
    host that is attaching or attached is exported; the mark lands on it alone, and the log replays."""
    import trio

    from cloudbox.services import STORES
    from cloudbox.state.engine import StateEngine, replay
    from cloudbox.volume import commands as c
    from cloudbox.volume import commands_attach as ca
    from cloudbox.volume import core_attach, store_attach
    from tests.test_durability import _live_log_and_hashes
    from tests.test_volume_attach_replay import DEFAULTS, attachment
    from tests.test_volume_worker import AT, row

    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    nbd = core_attach.nbd_connection({"id": "v1"}, "a1", "rw", "10.0.0.1", core_attach.NBD_PORT, {})
    local = {"driver_volume_type": "local", "data": {"device_path": "/x"}}
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            for vid in ("v1", "v2"):
                await engine.propose(c.CreateVolume(row(vid, status="available"), DEFAULTS))
            await engine.propose(c.ReserveAttachment(attachment("a1", "v1"), False))
            await engine.propose(c.ReserveAttachment(attachment("a2", "v2"), False))
            assert engine.read_sync(store_attach.remote_attachments, "host-1") == []  # reserved: no connector yet
            await engine.propose(c.UpdateAttachment("a1", {"host": "host-2"}, nbd, "/dev/vdb", "host-2", AT))
            await engine.propose(c.UpdateAttachment("a2", {"host": "host-1"}, local, "/dev/vdb", "host-1", AT))
            [remote] = engine.read_sync(store_attach.remote_attachments, "host-1")
            assert (remote["id"], remote["volume_readonly"], remote["attach_status"]) == ("a1", False, "attaching")
            assert engine.read_sync(store_attach.remote_attachments, "host-2") == []  # it keeps no volume
            assert await engine.propose(ca.MarkExported("a2", AT)) is None  # a local one is never marked
            assert await engine.propose(ca.MarkExported("gone", AT)) is None  # detached meanwhile
            marked = await engine.propose(ca.MarkExported("a1", AT))
            assert marked["connection_info"]["data"]["exported"] is True
            assert engine.read_sync(store_attach.get_attachment, "a2")["connection_info"] == local
            await engine.propose(c.DeleteAttachments("v1", ("a1",), AT))
            assert engine.read_sync(store_attach.remote_attachments, "host-1") == []
            nursery.cancel_scope.cancel()
    finally:
        engine.close()
    log, hashes = _live_log_and_hashes(tmp_path / "state.db")
    assert replay(log, tmp_path / "replayed.db", STORES) == hashes


def starttls(daemon: ExportDaemon, client: Path) -> ssl.SSLSocket:
    """An NBD client up to its TLS session: the fixed newstyle handshake, then NBD_OPT_STARTTLS."""
    sock = socket.create_connection((daemon.address, daemon.port), timeout=10)
    greeting = sock.recv(18, socket.MSG_WAITALL)
    assert greeting[:16] == b"NBDMAGICIHAVEOPT", greeting
    sock.sendall(struct.pack(">I", 1) + b"IHAVEOPT" + struct.pack(">II", 5, 0))  # fixed newstyle; STARTTLS
    magic, option, reply, length = struct.unpack(">QIII", sock.recv(20, socket.MSG_WAITALL))
    assert (magic, option, reply, length) == (0x3E889045565A9, 5, 1, 0)  # NBD_REP_ACK
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(client / "ca-cert.pem")
    context.load_cert_chain(client / "client-cert.pem", client / "client-key.pem")
    return context.wrap_socket(sock, server_hostname=daemon.address)


def test_the_daemon_keeps_its_buffers_and_chooses_aes_128_gcm(site: dict):
    """How the daemon is started decides its cost per byte (DESIGN.md "Cost"): glibc's malloc
    tunables (request buffers stay in the heap instead of a fresh mmap per request) and the server's
    cipher choice, AES-128-GCM even for a client that prefers AES-256 (OpenSSL's default order)."""
    daemon, driver = site["daemon"], site["driver"]
    vid = "6b6f5c1e-1111-4222-8333-944455556666"
    driver.create_blank(vid, 1)
    daemon.add(spec(driver, vid))
    environ = Path(f"/proc/{daemon.pid()}/environ").read_bytes().split(b"\0")
    assert {f"{k}={v}".encode() for k, v in MALLOC_ENV.items()} <= set(environ)
    with starttls(daemon, site["client"]) as tls:
        assert tls.cipher()[0] in ("TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                                   "ECDHE-ECDSA-AES128-GCM-SHA256"), tls.cipher()

"""`cloudbox join TOKEN`: the new node's side of a join.

1. Read the token; fetch the CA certificate from a member and compare its
   fingerprint with the token's before sending anything.
2. Over TLS that trusts only that CA: send the secret, this node's name and
   address and a certificate signing request (the private key never leaves).
3. With the signed certificate: download a consistent snapshot of the state
   from the member's peer port (mutual TLS).
4. Write the data directory under a temporary name and rename it into place,
   so a failed join leaves no data directory; a join the cluster accepted but
   this node could not finish is undone on the cluster's side too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import ssl
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cloudbox import pki
from cloudbox.cluster import versions
from cloudbox.cluster.etcd_server import port_taken
from cloudbox.cluster.service import CLUSTER_FILE, decode_token
from cloudbox.errors import CloudboxError, SetupError
from cloudbox.node import DataDir
from cloudbox.settings import CONFIG_FILE, Settings

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


@dataclass
class Joined:
    node_id: str
    name: str
    url: str
    voter: bool
    revision: int
    address: str
    ca_pem: bytes
    token: dict[str, Any]

    def undo(self, data_dir: DataDir) -> None:
        """The node could not start: take it out of the cluster again and remove its data dir."""
        abort(self.address, ssl.create_default_context(cadata=self.ca_pem.decode()), self.token, self.node_id)
        shutil.rmtree(data_dir.root, ignore_errors=True)


def _message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:300]
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and value.get("message"):
                return str(value["message"])
        if body.get("message"):
            return str(body["message"])
    return json.dumps(body)[:300]


def fetch_ca(address: str, fingerprint: str) -> bytes:
    """The CA of the member at ``address`` if its fingerprint is the token's (nothing is sent but a GET)."""
    try:
        resp = httpx.get(f"{address}/cloudbox/v1/cluster/ca", verify=False, timeout=TIMEOUT)  # noqa: S501 - checked below
    except httpx.HTTPError as exc:
        raise SetupError(f"cannot reach {address}: {exc or type(exc).__name__}") from exc
    if resp.status_code != 200:
        raise SetupError(f"{address} did not give its CA certificate: {resp.status_code} {_message(resp)}")
    pem = resp.json()["ca"].encode()
    actual = pki.fingerprint(pem)
    if actual != fingerprint.lower():
        raise SetupError(
            f"the CA of {address} has fingerprint {actual}, but the token expects {fingerprint}: "
            "this is not the cluster the token was made for (nothing was sent to it)")
    return pem


def join(token: str, data_dir: DataDir, *, listen: str, advertise: str, name: str | None,
         extra_settings: dict[str, Any]) -> Joined:
    body = decode_token(token)
    if data_dir.exists() or (data_dir.root / CONFIG_FILE).exists():
        raise SetupError(f"a cloud already exists in {data_dir.root}; a joining node needs an empty data dir")
    name = name or body["name"]
    settings_values = {"listen": listen, "advertise": advertise, **extra_settings}
    Settings.resolve(settings_values, environ={})  # refuse bad values before anything is sent
    errors = []
    for address in body["addresses"]:
        try:
            ca_pem = fetch_ca(address, body["fingerprint"])
        except SetupError as exc:
            if "fingerprint" in str(exc):
                raise
            errors.append(str(exc))
            continue
        return _join_at(address, ca_pem, body, data_dir, name, settings_values)
    raise SetupError("no member of the cluster answered: " + "; ".join(errors))


def _join_at(address: str, ca_pem: bytes, token: dict[str, Any], data_dir: DataDir, name: str,
             settings_values: dict[str, Any]) -> Joined:
    from cloudbox.node import split_listen, url_host

    _host, port = split_listen(settings_values["listen"])
    advertise = settings_values["advertise"]
    peer_port = int(settings_values.get("peer_port") or 0) or port + 1
    settings = Settings.resolve(settings_values, environ={})
    etcd_ports = (settings.etcd_client_port, settings.etcd_peer_port)
    busy = [p for p in etcd_ports if port_taken(advertise, p)]
    if busy or etcd_ports[0] == etcd_ports[1]:
        raise SetupError(f"port {busy[0] if busy else etcd_ports[0]} on {advertise}, which this node's etcd member "
                         "would use, is taken: join with two free ports (--set etcd_client_port=PORT "
                         "--set etcd_peer_port=PORT)")
    key_pem, csr_pem = pki.create_csr(name)
    verify = ssl.create_default_context(cadata=ca_pem.decode())
    request = {"token_id": token["id"], "secret": token["secret"], "name": name, "csr": csr_pem.decode(),
               "address": advertise, "api_url": f"https://{url_host(advertise)}:{port}",
               "peer_url": f"https://{url_host(advertise)}:{peer_port}",
               "etcd_client_port": etcd_ports[0], "etcd_peer_port": etcd_ports[1], **versions.own()}
    try:
        resp = httpx.post(f"{address}/cloudbox/v1/cluster/join", json=request, verify=verify, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise SetupError(f"the join request to {address} failed: {exc or type(exc).__name__}") from exc
    if resp.status_code != 201:
        raise SetupError(f"the cluster refused the join ({resp.status_code}): {_message(resp)}")
    answer = resp.json()
    root = data_dir.root
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{root.name}.joining-", dir=root.parent))
    try:
        staged = DataDir(work)
        _write(staged.ca_cert, answer["ca"].encode(), 0o644)
        _write(staged.ca_key, answer["ca_key"].encode(), 0o600)
        _write(staged.node_cert, answer["cert"].encode(), 0o644)
        _write(staged.node_key, key_pem, 0o600)
        revision = _download_snapshot(answer["snapshot_from"], staged, verify)
        settings = {**answer["settings"], **settings_values}
        _write(work / CONFIG_FILE, (json.dumps(settings, indent=2) + "\n").encode(), 0o600)
        _write(work / CLUSTER_FILE, (json.dumps(answer["cluster"], indent=2, sort_keys=True) + "\n").encode(), 0o600)
        node = {"id": answer["node_id"], "name": name, "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                "joined": address}
        _write(staged.node_file, (json.dumps(node, indent=2) + "\n").encode(), 0o644)
        if root.exists():
            root.rmdir()  # only an empty directory (checked above: no cloud in it)
        os.replace(work, root)
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        abort(address, verify, token, answer["node_id"])
        if isinstance(exc, (SetupError, CloudboxError)):
            raise
        raise SetupError(f"the join was accepted but this node could not be set up: {exc}") from exc
    return Joined(answer["node_id"], name, request["api_url"], bool(answer["cluster"]["member"]), revision,
                  address, ca_pem, token)


def abort(address: str, verify: ssl.SSLContext, token: dict[str, Any], node_id: str) -> None:
    """Ask the cluster to undo an accepted join (best effort; `cluster remove` does it otherwise)."""
    try:
        httpx.post(f"{address}/cloudbox/v1/cluster/join/abort", verify=verify, timeout=TIMEOUT,
                   json={"token_id": token["id"], "secret": token["secret"], "node_id": node_id})
    except httpx.HTTPError:
        pass


def _download_snapshot(peer_url: str, staged: DataDir, verify: ssl.SSLContext) -> int:
    ctx = ssl.create_default_context(cafile=str(staged.ca_cert))
    ctx.load_cert_chain(str(staged.node_cert), str(staged.node_key))
    tmp = staged.root / f".state-{uuid.uuid4().hex}.db"
    try:
        with httpx.stream("GET", f"{peer_url}/cloudbox/v1/cluster/snapshot", verify=ctx, timeout=TIMEOUT) as resp:
            if resp.status_code != 200:
                resp.read()
                raise SetupError(f"the snapshot download from {peer_url} failed: {resp.status_code} {_message(resp)}")
            revision = int(resp.headers["X-Cloudbox-Revision"])
            with open(tmp, "wb") as out:
                for chunk in resp.iter_bytes():
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
    except httpx.HTTPError as exc:
        raise SetupError(f"the snapshot download from {peer_url} failed: {exc or type(exc).__name__}") from exc
    os.replace(tmp, staged.database)
    return revision


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)

"""`cloudbox init`: a new cloud in a data directory.

Everything the cloud's state holds (domain, roles, admin, catalog, first token
key) is made by commands through the state engine, so the log alone can
rebuild the database.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shlex
import shutil
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.fernet import Fernet

from cloudbox import clock, pki
from cloudbox.errors import SetupError
from cloudbox.identity import commands as ic
from cloudbox.identity import core as icore
from cloudbox.identity.service import ADMIN_PROJECT_NAME, catalog_commands, new_id
from cloudbox.node import DataDir, split_listen, url_host
from cloudbox.services import STORES, wanted_catalog
from cloudbox.settings import CONFIG_FILE, Settings
from cloudbox.state.engine import StateEngine



@dataclass
class InitResult:
    data_dir: DataDir
    url: str
    password: str
    clouds_yaml: Path
    user_clouds_yaml: Path | None
    ca_fingerprint: str


def _write_private(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def clouds_entry(url: str, password: str, region: str, cacert: Path) -> dict[str, Any]:
    return {
        "auth": {
            "auth_url": f"{url}/identity/v3",
            "username": "admin",
            "password": password,
            "project_name": ADMIN_PROJECT_NAME,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": region,
        "interface": "public",
        "identity_api_version": 3,
        "cacert": str(cacert),
    }


def merge_clouds_yaml(path: Path, name: str, entry: dict[str, Any]) -> None:
    """Put one cloud into a clouds.yaml, keeping the other clouds in it."""
    doc: dict[str, Any] = {}
    if path.exists():
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SetupError(f"{path} is not valid YAML ({exc}); fix or remove it") from exc
    doc.setdefault("clouds", {})[name] = entry
    _write_private(path, yaml.safe_dump(doc, sort_keys=False))


def init_cloud(
    data_dir: DataDir,
    *,
    listen: str,
    advertise: str,
    region: str,
    force: bool = False,
    user_clouds_yaml: Path | None = None,
    extra_settings: dict[str, Any] | None = None,
    node_name: str | None = None,
) -> InitResult:
    host, port = split_listen(listen)
    if data_dir.exists() or (data_dir.root / CONFIG_FILE).exists():
        if not force:
            raise SetupError(f"a cloud already exists in {data_dir.root}; pass --force to replace it (its state is lost)")
        if data_dir.running_pid():
            raise SetupError(f"cloudbox serve is running on {data_dir.root} (pid {data_dir.running_pid()}); stop it first")
        for child in data_dir.root.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    data_dir.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings_values = {"listen": listen, "advertise": advertise, "region": region, **(extra_settings or {})}
    settings = Settings.resolve(settings_values, environ={})  # refuse bad values before writing anything
    now = dt.datetime.now(dt.timezone.utc)
    hostname = node_name or socket.gethostname()
    node = {"id": uuid.uuid4().hex, "name": hostname, "created_at": now.isoformat()}

    ca = pki.create_ca(node["id"][:8], now)
    names = ["localhost", "127.0.0.1", "::1", hostname, advertise]
    if host not in ("0.0.0.0", "::"):
        names.append(host)
    cert = pki.create_node_cert(ca, hostname, names, now)
    _write_private(data_dir.ca_key, ca.key_pem)
    data_dir.ca_cert.write_bytes(ca.cert_pem)
    _write_private(data_dir.node_key, cert.key_pem)
    data_dir.node_cert.write_bytes(cert.cert_pem)

    password = secrets.token_urlsafe(18)
    url = f"https://{url_host(advertise)}:{port}"
    engine = StateEngine(data_dir.database, STORES)
    engine.open(create=True)
    try:
        for cmd in bootstrap_commands(password, settings.password_hash_cost, now.timestamp()):
            engine.apply_now(cmd)
        at = clock.iso(now.timestamp(), micro=True)
        for cmd in engine.read_sync(catalog_commands, wanted_catalog(url), region, at):
            engine.apply_now(cmd)
    finally:
        engine.close()

    _write_private(data_dir.root / CONFIG_FILE, json.dumps(settings_values, indent=2) + "\n")
    entry = clouds_entry(url, password, region, data_dir.ca_cert)
    merge_clouds_yaml(data_dir.clouds_yaml, "cloudbox", entry)
    _write_private(
        data_dir.openrc,
        "".join(f"export {k}={shlex.quote(v)}\n" for k, v in {
            "OS_AUTH_URL": f"{url}/identity/v3", "OS_USERNAME": "admin", "OS_PASSWORD": password,
            "OS_PROJECT_NAME": ADMIN_PROJECT_NAME, "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default", "OS_REGION_NAME": region, "OS_IDENTITY_API_VERSION": "3",
            "OS_CACERT": str(data_dir.ca_cert),
        }.items()),
    )
    if user_clouds_yaml is not None:
        merge_clouds_yaml(user_clouds_yaml, "cloudbox", entry)
    # node.json last: its presence marks a complete init.
    data_dir.node_file.write_text(json.dumps(node, indent=2) + "\n")
    return InitResult(data_dir, url, password, data_dir.clouds_yaml, user_clouds_yaml, pki.fingerprint(ca.cert_pem))


def bootstrap_commands(password: str, cost: int, now: float) -> list[Any]:
    at = clock.iso(now, micro=True)
    salt = os.urandom(16)
    ids = {name: new_id() for name in (*icore.BUILTIN_ROLES, "project", "user")}
    cmds: list[Any] = [
        ic.RotateKeys(key_id=1, key=Fernet.generate_key().decode(), created_at=at),
        ic.Create("domain", {"id": icore.DEFAULT_DOMAIN_ID, "name": "Default",
                             "description": "The default domain", "enabled": True, "created_at": at}),
    ]
    for role in icore.BUILTIN_ROLES:
        cmds.append(ic.Create("role", {"id": ids[role], "name": role, "domain_id": "", "description": "",
                                       "created_at": at}))
    cmds += [ic.ImplyRole(ids[prior], ids[implied]) for prior, implied in icore.BUILTIN_IMPLICATIONS]
    cmds += [
        ic.Create("project", {"id": ids["project"], "name": ADMIN_PROJECT_NAME,
                              "domain_id": icore.DEFAULT_DOMAIN_ID, "parent_id": None,
                              "description": "Bootstrap project for the cloud's administrators",
                              "enabled": True, "tags": [], "created_at": at}),
        ic.Create("user", {"id": ids["user"], "name": "admin", "domain_id": icore.DEFAULT_DOMAIN_ID,
                           "enabled": True, "password_hash": icore.hash_password(password, salt, cost),
                           "password_changed_at": at, "default_project_id": ids["project"],
                           "description": "", "email": None, "created_at": at}),
        ic.Grant("user", ids["user"], "project", ids["project"], ids["admin"]),
        ic.Grant("user", ids["user"], "system", "all", ids["admin"]),
        ic.Grant("user", ids["user"], "domain", icore.DEFAULT_DOMAIN_ID, ids["admin"]),
    ]

    return cmds

"""The real clients against the object store: the `openstack` CLI's container and object commands
(as OpenStack's tutorials type them) and python-swiftclient's `swift upload` / `download`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.cloud import Cloud
from tests.test_openstack_cli import openstack

SWIFT = shutil.which("swift", path=str(Path(sys.executable).parent)) or shutil.which("swift") or "swift"


@pytest.fixture(scope="module")
def user_env(cloud: Cloud) -> Iterator[dict[str, str]]:
    """A new project with a member user, and the clients' environment as that user."""
    project, user, password = f"obj-{uuid.uuid4().hex[:6]}", f"user-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    openstack(cloud, "project", "create", project)
    openstack(cloud, "user", "create", "--password", password, user)
    openstack(cloud, "role", "add", "--project", project, "--user", user, "member")
    yield cloud.openstack_env(OS_USERNAME=user, OS_PASSWORD=password, OS_PROJECT_NAME=project)


def cli(cloud: Cloud, env: dict[str, str], *args: str, cwd: Path | None = None) -> Any:
    proc = subprocess.run([openstack.__globals__["OPENSTACK"], *args, "-f", "json"], capture_output=True, text=True,
                          timeout=120, env=env, cwd=cwd)
    assert proc.returncode == 0, f"openstack {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def run(cloud: Cloud, env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_openstack_container_and_object_commands(cloud: Cloud, user_env: dict[str, str], tmp_path: Path):
    env = user_env
    data = os.urandom(300_000)
    (tmp_path / "FILE").write_bytes(data)
    # The tutorial's two commands, verbatim (the object is named by the path given).
    created = cli(cloud, env, "container", "create", "c1")
    assert created[0]["container"] == "c1"
    uploaded = cli(cloud, env, "object", "create", "c1", "FILE", cwd=tmp_path)
    assert uploaded[0]["object"] == "FILE" and uploaded[0]["etag"] == hashlib.md5(data).hexdigest()
    assert [o["Name"] for o in cli(cloud, env, "object", "list", "c1")] == ["FILE"]
    assert [c["Name"] for c in cli(cloud, env, "container", "list")] == ["c1"]
    shown = cli(cloud, env, "object", "show", "c1", "FILE")
    assert shown["content-length"] == str(len(data)) and shown["etag"] == hashlib.md5(data).hexdigest()
    container = cli(cloud, env, "container", "show", "c1")
    assert container["object_count"] == "1" and container["bytes_used"] == str(len(data))
    openstack(cloud, "object", "set", "--property", "color=blue", "c1", "FILE", env=env)
    assert "blue" in json.dumps(cli(cloud, env, "object", "show", "c1", "FILE"))
    openstack(cloud, "object", "save", "--file", str(tmp_path / "saved"), "c1", "FILE", env=env)
    assert (tmp_path / "saved").read_bytes() == data
    openstack(cloud, "object", "delete", "c1", "FILE", env=env)
    assert cli(cloud, env, "object", "list", "c1") == []
    openstack(cloud, "container", "delete", "c1", env=env)
    assert cli(cloud, env, "container", "list") == []


def test_swift_upload_and_download(cloud: Cloud, user_env: dict[str, str], tmp_path: Path):
    env = {**user_env, "OS_AUTH_VERSION": "3"}
    data = os.urandom(3_000_000)
    src = tmp_path / "src"
    src.mkdir()
    (src / "blob.bin").write_bytes(data)
    (src / "sub").mkdir()
    (src / "sub" / "small.txt").write_text("small\n")
    run(cloud, env, SWIFT, "upload", "backup", "blob.bin", "sub/small.txt", cwd=src)
    listed = run(cloud, env, SWIFT, "list", "backup").stdout.split()
    assert listed == ["blob.bin", "sub/small.txt"]
    stat = run(cloud, env, SWIFT, "stat", "backup", "blob.bin").stdout
    assert hashlib.md5(data).hexdigest() in stat
    out = tmp_path / "out"
    out.mkdir()
    run(cloud, env, SWIFT, "download", "backup", cwd=out)
    assert (out / "blob.bin").read_bytes() == data and (out / "sub" / "small.txt").read_text() == "small\n"
    run(cloud, env, SWIFT, "delete", "backup")
    assert run(cloud, env, SWIFT, "list").stdout.split() == []


@pytest.mark.parametrize("kind", ["slo", "dlo"])
def test_swift_segmented_upload_and_download(cloud: Cloud, user_env: dict[str, str], tmp_path: Path, kind: str):
    """`swift upload --segment-size` as a static (SLO) or dynamic (DLO) large object, downloaded whole."""
    env = {**user_env, "OS_AUTH_VERSION": "3"}
    container = f"big-{kind}"
    data = os.urandom(12 * 1024 * 1024 + 12345)
    (tmp_path / "big.bin").write_bytes(data)
    run(cloud, env, SWIFT, "upload", "--segment-size", "5M", f"--use-{kind}", container, "big.bin", cwd=tmp_path)
    stat = run(cloud, env, SWIFT, "stat", container, "big.bin").stdout
    assert ("Manifest:" in stat) == (kind == "dlo") and str(len(data)) in stat
    assert len(run(cloud, env, SWIFT, "list", f"{container}_segments").stdout.split()) == 3
    out = tmp_path / "out"
    out.mkdir()
    run(cloud, env, SWIFT, "download", container, "big.bin", cwd=out)
    assert hashlib.md5((out / "big.bin").read_bytes()).hexdigest() == hashlib.md5(data).hexdigest()
    run(cloud, env, SWIFT, "delete", container, "big.bin")
    assert run(cloud, env, SWIFT, "list", f"{container}_segments").stdout.split() == []


def test_swift_public_container_and_tempurl(cloud: Cloud, user_env: dict[str, str], tmp_path: Path):
    """`swift post -r '.r:*'` opens a container to reads without a token; `swift tempurl` signs a GET."""
    import httpx

    env = {**user_env, "OS_AUTH_VERSION": "3"}
    (tmp_path / "page.html").write_text("<p>hi</p>")
    run(cloud, env, SWIFT, "upload", "site", "page.html", cwd=tmp_path)
    storage_url = [line.split("=", 1)[1].strip("'") for line in run(cloud, env, SWIFT, "auth").stdout.splitlines()
                   if line.startswith("export OS_STORAGE_URL=")][0]
    with httpx.Client(verify=cloud.ssl_context()) as anonymous:
        assert anonymous.get(f"{storage_url}/site/page.html").status_code == 401
        run(cloud, env, SWIFT, "post", "-r", ".r:*", "site")
        r = anonymous.get(f"{storage_url}/site/page.html")
        assert r.status_code == 200 and r.text == "<p>hi</p>"
        run(cloud, env, SWIFT, "post", "-r", "", "site")
        assert anonymous.get(f"{storage_url}/site/page.html").status_code == 401
        run(cloud, env, SWIFT, "post", "-m", "Temp-URL-Key:secret")
        path = storage_url.split("://", 1)[1].split("/", 1)[1]
        signed = run(cloud, env, SWIFT, "tempurl", "--digest", "sha256", "GET", "60", f"/{path}/site/page.html",
                     "secret").stdout.strip()
        r = anonymous.get(storage_url.split("/object-store")[0] + signed)
        assert r.status_code == 200 and r.text == "<p>hi</p>"

"""Nova's remote console API on a node with the fake compute driver: the answers, who may ask,
and the proxy's refusals of tokens (real guests: tests/test_console_guest.py).  Helpers here
are shared with the guest tests."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cloudbox.console import tokens
from cloudbox.console.wsclient import Rejected, WebSocketClient
from tests.cloud import Cloud
from tests.compute_helpers import boot, make_qcow2, new_project_user, upload_image, wait_server

V26 = {"OpenStack-API-Version": "compute 2.6"}
V231 = {"OpenStack-API-Version": "compute 2.31"}


def altered(token: str) -> str:
    """The token with one character in its middle changed (its MAC no longer matches)."""
    middle = len(token) // 2
    return token[:middle] + ("B" if token[middle] != "B" else "C") + token[middle + 1:]


def socket_url(url: str) -> str:
    """The websocket a console URL leads to: the serial URL itself, or the one vnc.html opens."""
    parts = urlsplit(url)
    if parts.scheme in ("ws", "wss"):
        return url
    assert parts.path == "/ui/console/vnc.html", url
    [path] = parse_qs(parts.query)["path"]
    return f"wss://{parts.netloc}/{path}"


def token_of(url: str) -> str:
    [token] = parse_qs(urlsplit(socket_url(url)).query)["token"]
    return token


async def refused(cloud: Cloud, url: str) -> int:
    """The status a console websocket is refused with (fails if it opens)."""
    try:
        client = await WebSocketClient.connect(url, cloud.ssl_context(), subprotocols=("binary",))
    except Rejected as exc:
        return exc.status
    await client.aclose()
    raise AssertionError(f"{url} opened")


def sealed(cloud: Cloud, **changes: object) -> str:
    """A token sealed with the node's key (as the node seals them), with ``changes`` to its claims."""
    key = tokens.derive_key((cloud.data_dir / "pki" / "ca.key").read_bytes())
    now = int(time.time())
    claims = {"server_id": "x", "protocol": "vnc", "host": "h", "issued_at": now, "expires_at": now + 600,
              "nonce": "00" * 16, **changes}
    return tokens.seal(key, tokens.Claims(**claims))  # type: ignore[arg-type]


def remote_console(client: httpx.Client, server_id: str, protocol: str = "vnc", kind: str = "novnc",
                   headers: dict[str, str] = V26) -> httpx.Response:
    return client.post(f"/compute/v2.1/servers/{server_id}/remote-consoles",
                       json={"remote_console": {"protocol": protocol, "type": kind}}, headers=headers)


def test_a_token_opens_with_its_key_until_it_expires():
    key, other = tokens.derive_key(b"ca key one"), tokens.derive_key(b"ca key two")
    claims = tokens.Claims("s1", "serial", "node1", 1000, 1600, "ab" * 16)
    token = tokens.seal(key, claims)
    assert "=" not in token and len(token) < 256
    assert tokens.open_token(key, token, 1599) == claims
    for bad_key, text, now in ((key, token, 1600), (other, token, 1100), (key, altered(token), 1100),
                               (key, "", 1100), (key, "x" * 2000, 1100), (key, "é" * 10, 1100)):
        with pytest.raises(tokens.BadToken):
            tokens.open_token(bad_key, text, now)


@pytest.fixture(scope="module")
def server(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> dict:
    with cloud.client(cloud.token()) as admin:
        image = upload_image(admin, make_qcow2(tmp_path_factory.mktemp("img") / "i.qcow2"))
        server = boot(admin, image["id"])
        return wait_server(admin, server["id"], {"ACTIVE"})


def test_a_vnc_console_url_is_the_novnc_page_with_a_token(cloud: Cloud, server: dict):
    with cloud.client(cloud.token()) as admin:
        r = remote_console(admin, server["id"])
        assert r.status_code == 200, r.text
        body = r.json()["remote_console"]
        assert (body["protocol"], body["type"]) == ("vnc", "novnc")
        assert body["url"].startswith(f"{cloud.url}/ui/console/vnc.html?path=console%2Fvnc%3Ftoken%3D")
        assert socket_url(body["url"]).startswith(f"wss://127.0.0.1:{cloud.port}/console/vnc?token=")
        r = remote_console(admin, server["id"], "serial", "serial")
        assert r.status_code == 200, r.text
        assert r.json()["remote_console"]["url"].startswith(f"wss://127.0.0.1:{cloud.port}/console/serial?token=")
        # Every request is a new token.
        assert token_of(remote_console(admin, server["id"]).json()["remote_console"]["url"]) != token_of(body["url"])


def test_the_legacy_actions_answer_until_2_5(cloud: Cloud, server: dict):
    with cloud.client(cloud.token()) as admin:
        action = f"/compute/v2.1/servers/{server['id']}/action"
        r = admin.post(action, json={"os-getVNCConsole": {"type": "novnc"}})
        assert r.status_code == 200, r.text
        assert r.json()["console"]["type"] == "novnc" and "/ui/console/vnc.html?path=" in r.json()["console"]["url"]
        r = admin.post(action, json={"os-getSerialConsole": {"type": "serial"}})
        assert r.status_code == 200, r.text
        assert r.json()["console"]["url"].startswith("wss://")
        assert admin.post(action, json={"os-getVNCConsole": {"type": "serial"}}).status_code == 400
        assert admin.post(action, json={"os-getVNCConsole": {"type": "novnc"}}, headers=V26).status_code == 400


@pytest.mark.parametrize("protocol,kind,status", [
    ("spice", "spice-html5", 400), ("rdp", "rdp-html5", 400), ("vnc", "serial", 400), ("serial", "novnc", 400),
    ("telnet", "novnc", 400), ("mks", "webmks", 400),
])
def test_other_consoles_are_a_clear_400(cloud: Cloud, server: dict, protocol: str, kind: str, status: int):
    with cloud.client(cloud.token()) as admin:
        r = remote_console(admin, server["id"], protocol, kind)
        assert r.status_code == status, r.text
        assert r.json()["badRequest"]["message"]


def test_bad_requests_and_versions(cloud: Cloud, server: dict):
    with cloud.client(cloud.token()) as admin:
        url = f"/compute/v2.1/servers/{server['id']}/remote-consoles"
        assert remote_console(admin, server["id"], headers={"OpenStack-API-Version": "compute 2.5"}).status_code == 404
        for body in ({}, {"remote_console": {"protocol": "vnc"}}, {"remote_console": "vnc"},
                     {"remote_console": {"protocol": "vnc", "type": "novnc", "extra": 1}}):
            assert admin.post(url, json=body, headers=V26).status_code == 400, body
        assert remote_console(admin, "no-such-server").status_code == 404


def test_another_projects_server_is_404_and_a_reader_403(cloud: Cloud, server: dict):
    with cloud.client(cloud.token()) as admin:
        _, _, member = new_project_user(cloud, admin)
        project, reader_name, _ = new_project_user(cloud, admin, "reader")
    with cloud.client(member) as other:
        r = remote_console(other, server["id"])
        assert r.status_code == 404, r.text
    with cloud.client(cloud.token()) as admin:
        roles = {r["name"]: r["id"] for r in admin.get("/identity/v3/roles").json()["roles"]}
        admin_project = admin.get("/identity/v3/projects?name=admin").json()["projects"][0]["id"]
        user = admin.get(f"/identity/v3/users?name={reader_name}").json()["users"][0]["id"]
        grant = f"/identity/v3/projects/{admin_project}/users/{user}/roles/{roles['reader']}"
        assert admin.put(grant).status_code == 204
    with cloud.client(cloud.token(reader_name, "pw", project="admin")) as reader:
        r = remote_console(reader, server["id"])
        assert r.status_code == 403, r.text


def test_a_stopped_server_has_no_console(cloud: Cloud, tmp_path: Path):
    with cloud.client(cloud.token()) as admin:
        image = upload_image(admin, make_qcow2(tmp_path / "i.qcow2"))
        server = wait_server(admin, boot(admin, image["id"])["id"], {"ACTIVE"})
        assert admin.post(f"/compute/v2.1/servers/{server['id']}/action", json={"os-stop": None}).status_code == 202
        wait_server(admin, server["id"], {"SHUTOFF"})
        r = remote_console(admin, server["id"])
        assert r.status_code == 409, r.text


def test_console_auth_tokens_for_admins_from_2_31(cloud: Cloud, server: dict):
    with cloud.client(cloud.token()) as admin:
        token = token_of(remote_console(admin, server["id"]).json()["remote_console"]["url"])
        r = admin.get(f"/compute/v2.1/os-console-auth-tokens/{token}", headers=V231)
        assert r.status_code == 200, r.text
        console = r.json()["console"]
        assert console["instance_uuid"] == server["id"]
        assert console["host"] == admin.get(f"/compute/v2.1/servers/{server['id']}").json()["server"][
            "OS-EXT-SRV-ATTR:host"]
        assert admin.get(f"/compute/v2.1/os-console-auth-tokens/{token}", headers=V26).status_code == 401
        assert admin.get(f"/compute/v2.1/os-console-auth-tokens/{altered(token)}", headers=V231).status_code == 404
        expired = sealed(cloud, server_id=server["id"], issued_at=1, expires_at=2)
        assert admin.get(f"/compute/v2.1/os-console-auth-tokens/{expired}", headers=V231).status_code == 404
        _, _, member = new_project_user(cloud, admin)
    with cloud.client(member) as other:
        assert other.get(f"/compute/v2.1/os-console-auth-tokens/{token}", headers=V231).status_code == 403


async def test_the_proxy_refuses_what_no_token_allows(cloud: Cloud, server: dict):
    base = f"wss://127.0.0.1:{cloud.port}/console"
    assert await refused(cloud, f"{base}/vnc") == 401
    assert await refused(cloud, f"{base}/vnc?token=guessed") == 401
    assert await refused(cloud, f"{base}/serial?token={'A' * 140}") == 401
    with cloud.client(cloud.token()) as admin:
        url = socket_url(remote_console(admin, server["id"]).json()["remote_console"]["url"])
        serial = socket_url(remote_console(admin, server["id"], "serial", "serial").json()["remote_console"]["url"])
    token = token_of(url)
    assert await refused(cloud, f"{base}/vnc?token={altered(token)}") == 401  # altered
    assert await refused(cloud, f"{base}/serial?token={token}") == 401  # a vnc token
    assert await refused(cloud, f"{base}/vnc?token={token_of(serial)}") == 401  # a serial token
    expired = sealed(cloud, server_id=server["id"], issued_at=int(time.time()) - 700,
                     expires_at=int(time.time()) - 100)
    assert await refused(cloud, f"{base}/vnc?token={expired}") == 401
    # A good token for a fake guest, which has no console socket: 409, and the token is spent.
    assert await refused(cloud, url) == 409
    assert await refused(cloud, url) == 401
    with httpx.Client(verify=cloud.ssl_context()) as plain:  # no upgrade asked: a plain 400
        assert plain.get(f"{cloud.url}/console/vnc?token={token}").status_code == 400


async def test_a_token_from_before_a_restart_is_refused(new_cloud: Cloud, tmp_path: Path):
    """The guest's node remembers spent tokens in memory only: after a restart it refuses every
    token issued before it started, used or not (DESIGN.md)."""
    new_cloud.init()
    new_cloud.start()
    with new_cloud.client(new_cloud.token()) as admin:
        image = upload_image(admin, make_qcow2(tmp_path / "i.qcow2"))
        server = wait_server(admin, boot(admin, image["id"])["id"], {"ACTIVE"})
        before = socket_url(remote_console(admin, server["id"]).json()["remote_console"]["url"])
    new_cloud.stop()
    new_cloud.start()
    # 401 from the token check, before the server's state is read (a fake guest is gone after a
    # restart: that would be a 409).
    assert await refused(new_cloud, before) == 401

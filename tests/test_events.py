"""The live event stream (GET /cloudbox/v1/events): what commits become, who sees them, and the
stream's limits.  The hub's rules run in-process (trio, fake engine and identity); the rest against
a real node over HTTPS with the fake compute driver."""

from __future__ import annotations

import json
import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from cloudbox.compute import commands as compute_cmds
from cloudbox.compute import commands_records as compute_records_cmds
from cloudbox.errors import Unauthorized
from cloudbox.events import mapping
from cloudbox.events.api import accepts_stream
from cloudbox.events.hub import EventHub, Stream, TooManyStreams
from cloudbox.network import commands as network_cmds
from cloudbox.volume import commands as volume_cmds
from tests.cloud import Cloud, wait_for
from tests.compute_helpers import boot, make_qcow2, new_project_user, upload_image
from tests.events_reader import EventReader


# --- what commands become ------------------------------------------------------------------------
def test_commands_become_changes_with_owner_and_status() -> None:
    server = {"id": "s1", "project_id": "pA", "user_id": "u1", "status": "ACTIVE"}
    [change] = mapping.changes(compute_cmds.UpdateServer("s1", {"vm_state": "active"}), server)
    assert change.body() == {"service": "compute", "type": "server", "id": "s1", "project_id": "pA",
                             "action": "update", "status": "ACTIVE"}
    made = mapping.changes(compute_cmds.CreateServers(({"id": "s2"}, {"id": "s3"}), {}),
                           [{"id": "s2", "project_id": "pA", "status": "BUILD"},
                            {"id": "s3", "project_id": "pA", "status": "BUILD"}])
    assert [(c.id, c.action, c.status) for c in made] == [("s2", "create", "BUILD"), ("s3", "create", "BUILD")]
    volume = {"id": "v1", "project_id": "pB", "status": "available"}
    [change] = mapping.changes(volume_cmds.Transition("v1", ("creating",), "available", "t", {}), volume)
    assert (change.service, change.type, change.action, change.status) == ("volume", "volume", "update", "available")
    # A sub-resource's change is its parent's: a router interface is the router's update.
    [change] = mapping.changes(network_cmds.AddRouterInterface("r1", "sn", None, "p", "m", "t"),
                               {"id": "r1", "project_id": "pA", "subnet_id": "sn"})
    assert (change.type, change.id, change.project_id, change.action) == ("router", "r1", "pA", "update")
    # A key pair is its user's, in every project.
    [change] = mapping.changes(compute_cmds.DeleteKeypair("u1", "k"), None)
    assert (change.type, change.id, change.user_id, change.project_id) == ("keypair", "k", "u1", None)
    # Shared networks are everyone's; identity is the administrators'; bookkeeping is nothing.
    [net] = mapping.changes(network_cmds.CreateNetwork({"id": "n1", "project_id": "pA", "shared": 1}),
                            {"id": "n1", "project_id": "pA", "shared": True, "status": "ACTIVE"})
    assert net.public and mapping.visible(net, "pB", "u9", False)
    assert all(c.admin_only for c in mapping.changes(_identity_create(), {"id": "p9", "name": "x"}))
    assert mapping.changes(compute_records_cmds.RecordActions(("s1",), "req", "create", "pA", "u1", "t"), None) == []


def _identity_create() -> Any:
    from cloudbox.identity import commands as identity_cmds

    return identity_cmds.Create("project", {"id": "p9", "name": "x"})


def test_every_command_type_maps_without_error() -> None:
    """The generic rule reads any command: each registered type, with placeholder fields, maps to
    changes (or none) without raising, and a change of unknown owner reaches only administrators."""
    import dataclasses

    import cloudbox.services  # noqa: F401 - registers every store's commands
    from cloudbox.state.commands import REGISTRY

    for kind, cls in REGISTRY.items():
        args: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                continue
            text = str(f.type)
            args[f.name] = ({"id": "x"} if "dict" in text else () if text.startswith("tuple") else
                            1 if text == "int" else 1.0 if text == "float" else False if text == "bool" else "x")
        for change in mapping.changes(cls(**args), None):
            assert change.action in ("create", "update", "delete"), kind
            assert change.service == kind.split(".")[0], kind
            if not change.owned:
                assert not mapping.visible(change, "x", "someone", False), kind


def test_deletes_find_their_owner_from_earlier_events() -> None:
    hub = EventHub(_Engine(), _Identity())
    a = hub.open(_auth("pA", "uA"))
    b = hub.open(_auth("pB", "uB"))
    hub.on_commit(network_cmds.CreateRouter({"id": "r1", "project_id": "pA"}, None, "t"),
                  {"id": "r1", "project_id": "pA", "status": "ACTIVE"})
    hub.on_commit(network_cmds.DeleteRouter("r1", "t"), None)
    assert [json.loads(d.split(b"data: ")[1])["action"] for d in a.pending] == ["create", "delete"]
    assert not b.pending and not b.resync
    # A delete of something no event named (made before the node started): administrators get it,
    # every other stream is told to re-read, and learns nothing of what it was.
    admin = hub.open(_auth("pX", "admin", admin=True))
    hub.on_commit(network_cmds.DeleteRouter("r-old", "t"), None)
    assert b.resync and not b.pending
    assert b"r-old" in admin.pending[-1]


# --- the hub: limits, keep-alive, expiry (in-process, trio's clock) ------------------------------------
class _Engine:
    def __init__(self) -> None:
        self.listeners: list[Any] = []

    def add_listener(self, fn: Any) -> None:
        self.listeners.append(fn)


class _Identity:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.revoked: set[str] = set()

    def clock(self) -> float:
        return self.now

    async def authenticate(self, token: str) -> Any:
        if token in self.revoked:
            raise Unauthorized("The token was revoked.")
        return _auth("pA", "uA", token=token)


def _auth(project: str, user: str, *, admin: bool = False, token: str = "t", expires_at: float = 5000.0) -> Any:
    return SimpleNamespace(project_id=project, user_id=user, is_cloud_reader=admin, token=token,
                           payload=SimpleNamespace(expires_at=expires_at))


def _server_update(i: int, project: str = "pA") -> tuple[Any, Any]:
    return (compute_cmds.UpdateServer(f"s{i}", {}), {"id": f"s{i}", "project_id": project, "status": "ACTIVE"})


def _frames(data: bytes) -> list[tuple[str, Any]]:
    out = []
    for block in data.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n") if line.startswith(("event:", "data:")))
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


async def test_a_slow_reader_is_told_to_resync_and_holds_a_bounded_queue() -> None:
    hub = EventHub(_Engine(), _Identity(), queue_limit=16)
    stream = hub.open(_auth("pA", "uA"))
    messages = hub.messages(stream)
    assert (await messages.__anext__()).startswith(b"retry:")
    for i in range(10_000):  # the client reads nothing meanwhile
        hub.on_commit(*_server_update(i))
        assert len(stream.pending) <= 16
    assert stream.resync and not stream.pending
    hub.on_commit(*_server_update(10_001))  # after the drop, events flow again
    frames = _frames(await messages.__anext__())
    assert frames == [("resync", {})]
    hub.on_commit(*_server_update(10_002))
    assert [f[1]["id"] for f in _frames(await messages.__anext__())] == ["s10002"]
    await messages.aclose()
    assert stream not in hub.streams and hub.held_by("uA") == 0


async def test_keep_alive_and_expiry(autojump_clock: Any) -> None:
    identity = _Identity(now=1000.0)
    hub = EventHub(_Engine(), identity, keepalive=15.0)
    stream = hub.open(_auth("pA", "uA", expires_at=1000.0 + 40))
    messages = hub.messages(stream)
    await messages.__anext__()
    start = trio.current_time()
    assert await messages.__anext__() == b": keep-alive\n\n"
    assert trio.current_time() - start == pytest.approx(15.0)
    assert await messages.__anext__() == b": keep-alive\n\n"
    assert _frames(await messages.__anext__()) == [("expired", {"reason": "expired"})]
    assert trio.current_time() - start == pytest.approx(40.0)
    with pytest.raises(StopAsyncIteration):
        await messages.__anext__()
    assert not hub.streams


async def test_revocation_ends_the_stream_and_the_node_stopping_ends_all() -> None:
    identity = _Identity()
    hub = EventHub(_Engine(), identity)
    stream = hub.open(_auth("pA", "uA", token="tok"))
    messages = hub.messages(stream)
    await messages.__anext__()
    identity.revoked.add("tok")
    from cloudbox.identity import commands as identity_cmds

    hub.on_commit(identity_cmds.RevokeToken("audit", "2030-01-01T00:00:00Z", "t"), None)
    assert _frames(await messages.__anext__()) == [("expired", {"reason": "revoked"})]
    other = hub.messages(hub.open(_auth("pA", "uA", token="tok2")))
    await other.__anext__()
    hub.close()
    with pytest.raises(StopAsyncIteration):
        await other.__anext__()
    with pytest.raises(Exception, match="stopping"):
        hub.open(_auth("pA", "uA"))


def test_a_user_holds_a_bounded_number_of_streams() -> None:
    hub = EventHub(_Engine(), _Identity(), per_user=2)
    first, _ = hub.open(_auth("pA", "uA")), hub.open(_auth("pB", "uA"))
    with pytest.raises(TooManyStreams):
        hub.open(_auth("pA", "uA"))
    hub.open(_auth("pA", "uB"))  # another user is not counted against this one
    hub.release(first)
    hub.release(first)  # idempotent
    assert isinstance(hub.open(_auth("pA", "uA")), Stream)


def test_an_unread_body_gives_its_slot_back_when_dropped() -> None:
    import gc

    hub = EventHub(_Engine(), _Identity(), per_user=1)
    body = hub.body(hub.open(_auth("pA", "uA")))
    assert hub.held_by("uA") == 1
    del body
    gc.collect()
    assert hub.held_by("uA") == 0


def test_accept_header() -> None:
    assert accepts_stream("text/event-stream")
    assert accepts_stream("application/json, text/event-stream;q=0.5")
    assert not accepts_stream("*/*")
    assert not accepts_stream("text/event-stream;q=0")
    assert not accepts_stream("")


# --- a real node -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image_id(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> str:
    with cloud.client(cloud.token()) as admin:
        path = make_qcow2(tmp_path_factory.mktemp("events") / "tiny.qcow2", "1M")
        return upload_image(admin, path, f"events-{uuid.uuid4().hex[:6]}", visibility="public")["id"]


def _reader(cloud: Cloud, token: str | None, **kw: Any) -> EventReader:
    return EventReader(cloud.url, cloud.ca, token, **kw)


def test_projects_see_their_own_changes_live_and_admins_see_all(cloud: Cloud, image_id: str) -> None:
    with cloud.client(cloud.token()) as admin:
        project_a, _, token_a = new_project_user(cloud, admin)
        project_b, _, token_b = new_project_user(cloud, admin)
    with _reader(cloud, token_a) as a, _reader(cloud, token_b) as b, _reader(cloud, cloud.token()) as all_:
        assert (a.status, a.headers["content-type"].split(";")[0]) == (200, "text/event-stream")
        with cloud.client(token_a) as client_a:
            server = boot(client_a, image_id)
        created = a.wait_change(type="server", id=server["id"], action="create")
        assert created["project_id"] == project_a and created["service"] == "compute"
        active = a.wait_change(type="server", id=server["id"], status="ACTIVE")
        assert active["action"] == "update"
        all_.wait_change(type="server", id=server["id"], status="ACTIVE")
        with cloud.client(token_a) as client_a:
            r = client_a.post("/volume/v3/volumes", json={"volume": {"size": 1, "name": "events-vol"}})
            assert r.status_code == 202, r.text
            volume = r.json()["volume"]["id"]
        assert a.wait_change(type="volume", id=volume, action="create")["status"] == "creating"
        a.wait_change(type="volume", id=volume, status="available")
        # B makes a thing of its own afterwards: once B's stream shows it, anything of A's would
        # have come before it (one stream is in commit order).
        with cloud.client(token_b) as client_b:
            r = client_b.post("/network/v2.0/networks", json={"network": {"name": "b-net"}})
            assert r.status_code == 201, r.text
            b_net = r.json()["network"]["id"]
        b.wait_change(type="network", id=b_net, action="create")
        all_.wait_change(type="network", id=b_net, action="create")
        leaked = [e for e in b.seen() if project_a in json.dumps(e) or server["id"] in json.dumps(e)]
        assert leaked == [], leaked
        assert not b.seen("node")
        # A sees nothing of B's network either, and its server's delete reaches it.
        with cloud.client(token_a) as client_a:
            assert client_a.delete(f"/compute/v2.1/servers/{server['id']}").status_code == 204
        a.wait_change(type="server", id=server["id"], action="delete")
        assert not a.changes(id=b_net)


def test_the_stream_refuses_clearly(cloud: Cloud) -> None:
    with _reader(cloud, None) as anonymous:
        assert anonymous.status == 401
    token = cloud.token()
    with _reader(cloud, token, accept="*/*") as any_media:
        assert any_media.status == 406 and "text/event-stream" in any_media.error["message"]
    with cloud.client(token) as client:
        client.timeout = 10
        head = client.head("/cloudbox/v1/events", headers={"Accept": "text/event-stream"})
        assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")
        assert client.get("/cloudbox/v1/health").status_code == 200  # a HEAD holds no stream: the connection is free
    with cloud.client(cloud.token()) as admin:
        _, user, member = new_project_user(cloud, admin)
    readers = [_reader(cloud, member) for _ in range(8)]
    try:
        assert [r.status for r in readers] == [200] * 8
        with _reader(cloud, member) as ninth:
            assert ninth.status == 429 and ninth.error["code"] == 429
            assert "event streams open" in ninth.error["message"]
        readers.pop().close()  # the node notices the closed connection and gives the slot back

        def reopened() -> bool:
            r = _reader(cloud, member)
            readers.append(r)
            return r.status == 200

        from tests.cloud import wait_for

        wait_for(reopened, 20, "a stream slot to come back after a client left")
    finally:
        for r in readers:
            r.close()


def test_a_revoked_token_ends_its_stream(cloud: Cloud) -> None:
    with cloud.client(cloud.token()) as admin:
        _, _, member = new_project_user(cloud, admin)
        with _reader(cloud, member) as reader:
            r = admin.delete("/identity/v3/auth/tokens", headers={"X-Subject-Token": member})
            assert r.status_code == 204, r.text
            reader.wait(lambda x: x.seen("expired"), "the stream to say the token expired", 20)
            assert reader.seen("expired") == [{"reason": "revoked"}]
            assert reader.ended.wait(10), "the stream did not end after its expired event"


def test_an_expired_token_ends_its_stream(new_cloud: Cloud) -> None:
    new_cloud.init("--set", "token_expiration=4")
    new_cloud.start()
    token = new_cloud.token()
    issued = time.monotonic()
    with _reader(new_cloud, token) as reader:
        assert reader.status == 200
        assert reader.ended.wait(20), "the stream outlived its token"
        assert reader.seen("expired") == [{"reason": "expired"}]
        assert time.monotonic() - issued < 10


def test_the_stream_over_http2(cloud: Cloud) -> None:
    """Browsers speak HTTP/2 to the node (ALPN): the stream is one of its multiplexed streams."""
    import httpx

    token = cloud.token()
    name = f"events-h2-{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=cloud.url, verify=cloud.ssl_context(), http2=True, timeout=30) as client:
        headers = {"X-Auth-Token": token, "Accept": "text/event-stream"}
        with client.stream("GET", "/cloudbox/v1/events", headers=headers) as stream:
            assert stream.status_code == 200 and stream.http_version == "HTTP/2"
            lines = stream.iter_lines()
            assert ": connected" in [next(lines), next(lines)]
            # The same connection carries other requests meanwhile.
            r = client.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": name}}, headers={"X-Auth-Token": token})
            assert r.status_code == 200, r.text
            for line in lines:
                if line.startswith("data:") and json.loads(line[5:])["id"] == name:
                    assert json.loads(line[5:])["type"] == "keypair"
                    break


def test_an_accepted_transfer_moves_the_volume_between_streams() -> None:
    hub = EventHub(_Engine(), _Identity())
    giver, taker = hub.open(_auth("pA", "uA")), hub.open(_auth("pB", "uB"))
    transfer = {"id": "t1", "volume_id": "v1", "project_id": "pA"}
    hub.on_commit(volume_cmds.AcceptTransfer("t1", "h", "pB", "uB", {}, "at"), transfer)
    assert [_frames(d)[0][1]["type"] for d in giver.pending] == ["transfer", "volume"]
    assert [_frames(d)[0][1] for d in taker.pending] == [
        {"service": "volume", "type": "volume", "id": "v1", "project_id": "pB", "action": "update"}]
    hub.on_commit(volume_cmds.PurgeVolume("v1"), None)  # its owner is the taker's now
    assert len(giver.pending) == 2 and _frames(taker.pending[-1])[0][1]["action"] == "delete"


def test_a_browser_leaving_an_http2_stream_gives_its_slot_back(cloud: Cloud) -> None:
    """A browser that leaves the page resets its HTTP/2 stream (RST_STREAM): the node ends the
    stream and frees its slot, so a user who reloads twelve times still gets a stream."""
    import socket
    import ssl

    import h2.config
    import h2.connection
    import h2.errors
    import h2.events

    with cloud.client(cloud.token()) as admin:
        _, _, token = new_project_user(cloud, admin)
    context = ssl.create_default_context(cafile=cloud.ca)
    context.set_alpn_protocols(["h2"])
    with context.wrap_socket(socket.create_connection(("127.0.0.1", cloud.port), timeout=30),
                             server_hostname="127.0.0.1") as sock:
        assert sock.selected_alpn_protocol() == "h2"
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())

        def ask() -> bytes:
            stream_id = conn.get_next_available_stream_id()
            conn.send_headers(stream_id, [(":method", "GET"), (":path", "/cloudbox/v1/events"), (":scheme", "https"),
                                          (":authority", f"127.0.0.1:{cloud.port}"), ("x-auth-token", token),
                                          ("accept", "text/event-stream")], end_stream=True)
            sock.sendall(conn.data_to_send())
            status = None
            while status is None:
                for event in conn.receive_data(sock.recv(65536)):
                    if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                        status = dict(event.headers)[b":status"]
                sock.sendall(conn.data_to_send())
            if status == b"200":  # leave it as a browser leaves a page
                conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
                sock.sendall(conn.data_to_send())
            return status

        # The node frees a slot once it has seen the reset, which may come just after the next
        # request: a 429 is "not yet" for a moment, and for good if the slot leaked.
        for _ in range(12):
            wait_for(lambda: ask() == b"200", 5, "a stream slot back after an HTTP/2 reset")


def test_a_stalled_reader_is_told_to_resync(new_cloud: Cloud) -> None:
    """A client that stops reading: the node's socket buffers fill, the stream's queue reaches its
    bound and is dropped; when the client reads again it is told to resync, then events flow."""
    new_cloud.init()
    new_cloud.start()
    token = new_cloud.token()
    with new_cloud.client(token) as admin:
        project = admin.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token}).json()["token"]["project"]
        assert admin.put(f"/network/v2.0/quotas/{project['id']}", json={"quota": {"port": -1}}).status_code == 200
        r = admin.post("/network/v2.0/networks", json={"network": {"name": "stall"}})
        assert r.status_code == 201, r.text
        network = r.json()["network"]["id"]
        with EventReader(new_cloud.url, new_cloud.ca, token, read=False, receive_buffer=4096) as stalled:
            for _ in range(12):  # 1,200 ports, about 200 kB of events, in twelve commits (100 a request at most)
                r = admin.post("/network/v2.0/ports", json={"ports": [{"network_id": network}] * 100})
                assert r.status_code == 201, r.text
            stalled.start()
            stalled.wait(lambda x: x.seen("resync"), "a resync after the reader stalled")
            r = admin.post("/network/v2.0/ports", json={"port": {"network_id": network, "name": "after"}})
            assert r.status_code == 201, r.text
            stalled.wait_change(type="port", id=r.json()["port"]["id"])
            assert len(stalled.changes(type="port", action="create")) < 1201

"""Who administers what: OpenStack's personas, decided once in AuthContext and followed by every
service.  `admin` in any scope administers the cloud; `manager` administers the project its token
is scoped to; `member` works in it; `reader` only reads.  A cloud made before the `manager` role
existed gets it when it starts."""

from __future__ import annotations

from typing import Any

import httpx

from cloudbox import clock
from cloudbox.identity import commands as ic
from cloudbox.identity.core import AuthContext, TokenPayload
from cloudbox.node import DataDir
from cloudbox.services import STORES
from cloudbox.state.engine import StateEngine
from tests.cloud import Cloud
from tests.identity_helpers import V, Ident, password_auth, unique

N = "/network/v2.0"


def context(roles: set[str], scope: str | None, scope_id: str | None = None) -> AuthContext:
    payload = TokenPayload("u", ("password",), scope, scope_id, 0.0, 1.0, ("a",))
    return AuthContext(
        token="t", payload=payload, user={"id": "u"}, user_domain={"id": "default"},
        project={"id": scope_id, "domain_id": "default"} if scope == "project" else None,
        domain={"id": scope_id} if scope == "domain" else None, role_names=frozenset(roles),
    )


def test_persona_rules() -> None:
    """The rules themselves, as each service asks them (roles as a token holds them: implied
    ones included)."""
    admin = {"admin", "manager", "member", "reader"}
    manager, member, reader = {"manager", "member", "reader"}, {"member", "reader"}, {"reader"}
    cases: list[tuple[AuthContext, dict[str, bool]]] = [
        # admin on an ordinary project, on a domain, on the system: the whole cloud.
        (context(admin, "project", "p"), {"cloud_admin": True, "cloud_reader": True, "manage_p": True,
                                          "manage_q": True, "write_q": True, "read_q": True}),
        (context(admin, "domain", "d"), {"cloud_admin": True, "cloud_reader": True, "manage_q": True}),
        (context(admin, "system", "all"), {"cloud_admin": True, "cloud_reader": True, "write_q": True}),
        # manager: its own project only.
        (context(manager, "project", "p"), {"cloud_admin": False, "cloud_reader": False, "manage_p": True,
                                            "write_p": True, "read_p": True, "manage_q": False,
                                            "write_q": False, "read_q": False}),
        (context(manager, "domain", "d"), {"cloud_admin": False, "manage_domain_d": True,
                                           "manage_domain_e": False, "manage_q": False}),
        (context(member, "project", "p"), {"cloud_admin": False, "manage_p": False, "write_p": True,
                                           "read_p": True, "write_q": False}),
        (context(reader, "project", "p"), {"cloud_admin": False, "cloud_reader": False, "manage_p": False,
                                           "write_p": False, "read_p": True, "read_q": False}),
        # reader on the system reads everything and changes nothing.
        (context(reader, "system", "all"), {"cloud_admin": False, "cloud_reader": True, "read_q": True,
                                            "write_q": False, "manage_q": False}),
        (context(set(), None), {"cloud_admin": False, "cloud_reader": False, "read_p": False}),
    ]
    for ctx, expected in cases:
        got = {
            "cloud_admin": ctx.is_cloud_admin, "cloud_reader": ctx.is_cloud_reader,
            "manage_p": ctx.can_manage_project("p"), "manage_q": ctx.can_manage_project("q"),
            "write_p": ctx.can_write_project("p"), "write_q": ctx.can_write_project("q"),
            "read_p": ctx.can_read_project("p"), "read_q": ctx.can_read_project("q"),
            "manage_domain_d": ctx.can_manage_domain("d"), "manage_domain_e": ctx.can_manage_domain("e"),
        }
        assert {k: got[k] for k in expected} == expected, (ctx.scope, sorted(ctx.role_names))


def _project_user(ident: Ident, project: dict[str, Any], role: str) -> tuple[dict[str, Any], httpx.Client]:
    password = unique("pw")
    user = ident.user(password)
    ident.grant(f"projects/{project['id']}", user["id"], role)
    token = ident.token(password_auth(user["name"], password, {"project": {"id": project["id"]}}))
    return user, ident.cloud.client(token)


def test_admin_on_an_ordinary_project_administers_the_cloud(ident: Ident) -> None:
    """Tempest's dynamic credentials: admin on a fresh project, expected to be a cloud admin."""
    mine, other = ident.create("project", name=unique("p")), ident.create("project", name=unique("q"))
    _, admin = _project_user(ident, mine, "admin")
    with admin:
        assert admin.post(V + "/domains", json={"domain": {"name": unique("d")}}).status_code == 201
        user = admin.post(V + "/users", json={"user": {"name": unique("u"), "password": "pw"}})
        assert user.status_code == 201, user.text
        project = admin.post(V + "/projects", json={"project": {"name": unique("p")}})
        assert project.status_code == 201, project.text
        r = admin.put(f"{V}/projects/{other['id']}/users/{user.json()['user']['id']}/roles/{ident.roles['member']}")
        assert r.status_code == 204, r.text
        listed = {p["id"] for p in admin.get(V + "/projects").json()["projects"]}
        assert {mine["id"], other["id"], project.json()["project"]["id"]} <= listed
        # ...and sees and changes other projects' resources in the other services.
        net = ident.admin.post(N + "/networks", json={"network": {"name": unique("n"), "project_id": other["id"]}})
        assert net.status_code == 201, net.text
        assert net.json()["network"]["id"] in {n["id"] for n in admin.get(N + "/networks").json()["networks"]}
        r = admin.put(f"{N}/networks/{net.json()['network']['id']}", json={"network": {"name": "renamed"}})
        assert r.status_code == 200, r.text
        assert admin.get("/compute/v2.1/servers", params={"all_tenants": "1"}).status_code == 200
        assert admin.get("/compute/v2.1/os-hypervisors").status_code == 200


def test_manager_administers_its_own_project_only(ident: Ident) -> None:
    mine, other = ident.create("project", name=unique("p")), ident.create("project", name=unique("q"))
    _, manager = _project_user(ident, mine, "manager")
    password = unique("pw")
    worker = ident.user(password)
    roles = ident.roles
    with manager:
        # Hands out member, reader and manager on its project, and sees who holds what there.
        grant = f"{V}/projects/{mine['id']}/users/{worker['id']}/roles/{roles['member']}"
        assert manager.put(grant).status_code == 204
        token = ident.token(password_auth(worker["name"], password, {"project": {"id": mine["id"]}}))
        assert token
        seen = manager.get(V + "/role_assignments", params={"scope.project.id": mine["id"]})
        assert seen.status_code == 200, seen.text
        assert worker["id"] in {a["user"]["id"] for a in seen.json()["role_assignments"] if "user" in a}
        assert manager.get(f"{V}/projects/{mine['id']}/users/{worker['id']}/roles").status_code == 200
        assert manager.delete(grant).status_code == 204
        r = manager.patch(f"{V}/projects/{mine['id']}", json={"project": {"description": "ours"}})
        assert r.status_code == 200 and r.json()["project"]["description"] == "ours"
        # Works in it as a member does.
        net = manager.post(N + "/networks", json={"network": {"name": unique("n")}})
        assert net.status_code == 201 and net.json()["network"]["project_id"] == mine["id"]
        # Nothing beyond it.
        refused = [
            manager.put(f"{V}/projects/{mine['id']}/users/{worker['id']}/roles/{roles['admin']}"),
            manager.put(f"{V}/projects/{other['id']}/users/{worker['id']}/roles/{roles['member']}"),
            manager.get(V + "/role_assignments", params={"scope.project.id": other["id"]}),
            manager.patch(f"{V}/projects/{mine['id']}", json={"project": {"enabled": False}}),
            manager.patch(f"{V}/projects/{other['id']}", json={"project": {"description": "mine"}}),
            manager.post(V + "/projects", json={"project": {"name": unique("p")}}),
            manager.post(V + "/users", json={"user": {"name": unique("u")}}),
            manager.get(V + "/users"),
            manager.post(N + "/networks", json={"network": {"name": unique("n"), "project_id": other["id"]}}),
        ]
        for r in refused:
            assert r.status_code == 403, (r.request.method, r.request.url, r.text)
    assert ident.admin.get(f"{V}/projects/{mine['id']}").json()["project"]["enabled"] is True
    assert ident.admin.get(f"{V}/projects/{other['id']}").json()["project"]["description"] == ""
    held = ident.admin.get(V + "/role_assignments", params={"user.id": worker["id"]}).json()["role_assignments"]
    assert held == []


def test_reader_reads_only_in_every_service(ident: Ident) -> None:
    project = ident.create("project", name=unique("p"))
    _, reader = _project_user(ident, project, "reader")
    with reader:
        assert reader.get(N + "/networks").status_code == 200
        assert reader.get("/compute/v2.1/servers").status_code == 200
        assert reader.get("/image/v2/images").status_code == 200
        assert reader.post(N + "/networks", json={"network": {"name": unique("n")}}).status_code == 403
        group = {"server_group": {"name": unique("g"), "policies": ["affinity"]}}
        assert reader.post("/compute/v2.1/os-server-groups", json=group).status_code == 403
        assert reader.post("/image/v2/images", json={"name": unique("i")}).status_code == 403
        assert reader.get("/compute/v2.1/os-hypervisors").status_code == 403
        assert reader.get(V + "/users").status_code == 403


def test_a_cloud_made_before_the_manager_role_gets_it_at_start(new_cloud: Cloud) -> None:
    new_cloud.init()
    # Take the role away as a cloud of an older version never had it (the API refuses: built-in).
    engine = StateEngine(DataDir(new_cloud.data_dir).database, STORES)
    engine.open()
    try:
        role = engine.read_sync(lambda db: db.execute("SELECT id FROM roles WHERE name = 'manager'").fetchone()[0])
        engine.apply_now(ic.Delete("role", role, clock.iso(0.0, micro=True)))
    finally:
        engine.close()
    new_cloud.start()
    with new_cloud.client(new_cloud.token()) as admin:
        roles = {r["name"]: r["id"] for r in admin.get(V + "/roles").json()["roles"]}
        assert "manager" in roles and roles["manager"] != role
        implies = admin.get(f"{V}/roles/{roles['manager']}/implies").json()["role_inference"]["implies"]
        assert [r["name"] for r in implies] == ["member"]
        implies = admin.get(f"{V}/roles/{roles['admin']}/implies").json()["role_inference"]["implies"]
        assert "manager" in {r["name"] for r in implies}
    # A second start changes nothing.
    new_cloud.stop()
    new_cloud.start()
    with new_cloud.client(new_cloud.token()) as admin:
        again = {r["name"]: r["id"] for r in admin.get(V + "/roles").json()["roles"]}
    assert again == roles

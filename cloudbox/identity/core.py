"""Pure identity logic: password hashing, token payloads, policy, Keystone JSON shapes.

Nothing here touches the database, the clock or the network: time and
randomness come in as arguments.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from cloudbox import clock
from cloudbox.errors import BadRequest, Forbidden, Unauthorized

DEFAULT_DOMAIN_ID = "default"
ADMIN_PROJECT_NAME = "admin"
ROLE_ADMIN, ROLE_MANAGER, ROLE_MEMBER, ROLE_READER = "admin", "manager", "member", "reader"
ROLE_SERVICE = "service"  # what services calling each other hold (Keystone's bootstrap makes it too)
BUILTIN_ROLES = (ROLE_ADMIN, ROLE_MANAGER, ROLE_MEMBER, ROLE_READER, ROLE_SERVICE)
# Each built-in role implies the next (Keystone's bootstrap makes the same chain).
BUILTIN_IMPLICATIONS = ((ROLE_ADMIN, ROLE_MANAGER), (ROLE_MANAGER, ROLE_MEMBER), (ROLE_MEMBER, ROLE_READER))
# Roles a project or domain manager may grant and revoke: never admin, which is the cloud's.
MANAGED_ROLES = (ROLE_MANAGER, ROLE_MEMBER, ROLE_READER)
AUTH_FAILED = "The request you have made requires authentication."

# The entities of the generic list/show/delete endpoints, with the collection each is served as.
PLURAL = {
    "domain": "domains", "project": "projects", "user": "users", "group": "groups", "role": "roles",
    "region": "regions", "service": "services", "endpoint": "endpoints",
}
DOMAIN_OWNED = ("project", "user", "group")
CATALOG_ENTITIES = ("region", "service", "endpoint")


# --- secrets ------------------------------------------------------------------
def hash_password(password: str, salt: bytes, cost: int) -> str:
    n, r, p = 1 << cost, 8, 1
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${cost}${r}${p}${b64(salt)}${b64(digest)}"


def check_password(password: str, stored: str | None) -> bool:
    """Constant-time check; a missing hash is checked against a dummy so timing says nothing."""
    if not stored:
        hash_password(password, b"\0" * 16, 14)
        return False
    try:
        kind, cost, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        n = 1 << int(cost)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=n, r=int(r), p=int(p),
            maxmem=256 * n * int(r), dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def hash_secret(secret: str) -> str:
    """Application credential secrets are long and random: one sha256 suffices."""
    return "sha256$" + hashlib.sha256(secret.encode()).hexdigest()


def check_secret(secret: str, stored: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored)


# --- tokens -------------------------------------------------------------------
@dataclass(frozen=True)
class TokenPayload:
    user_id: str
    methods: tuple[str, ...]
    scope_type: str | None  # "project", "domain", "system" or None (unscoped)
    scope_id: str | None
    issued_at: float
    expires_at: float
    audit_ids: tuple[str, ...]
    app_cred_id: str | None = None

    def to_bytes(self) -> bytes:
        body = {
            "u": self.user_id, "m": list(self.methods), "t": self.scope_type, "s": self.scope_id,
            "i": round(self.issued_at, 6), "e": round(self.expires_at, 6), "a": list(self.audit_ids),
        }
        if self.app_cred_id:
            body["c"] = self.app_cred_id
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "TokenPayload":
        body = json.loads(data)
        return cls(
            user_id=body["u"], methods=tuple(body["m"]), scope_type=body["t"], scope_id=body["s"],
            issued_at=body["i"], expires_at=body["e"], audit_ids=tuple(body["a"]),
            app_cred_id=body.get("c"),
        )


class TokenCodec:
    """Fernet (AES-CBC + HMAC) over token payloads; the first key encrypts, all keys decrypt."""

    def __init__(self, keys: Iterable[str]) -> None:
        fernets = [Fernet(k.encode()) for k in keys]
        if not fernets:
            raise ValueError("no token keys")
        self._fernet = MultiFernet(fernets)

    def encode(self, payload: TokenPayload) -> str:
        return self._fernet.encrypt_at_time(payload.to_bytes(), int(payload.issued_at)).decode()

    def decode(self, token: str, now: float) -> TokenPayload:
        try:
            payload = TokenPayload.from_bytes(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError, KeyError, TypeError, UnicodeError) as exc:
            raise Unauthorized("The token is invalid or has expired.") from exc
        if payload.expires_at <= now:
            raise Unauthorized("The token is invalid or has expired.")
        return payload


# --- who is calling -------------------------------------------------------------
@dataclass(frozen=True)
class AuthContext:
    """A validated token: who, in what scope, with which roles."""

    token: str
    payload: TokenPayload
    user: dict[str, Any]
    user_domain: dict[str, Any]
    roles: tuple[dict[str, Any], ...] = ()
    project: dict[str, Any] | None = None
    project_domain: dict[str, Any] | None = None
    domain: dict[str, Any] | None = None
    is_admin_project: bool = False
    app_cred: dict[str, Any] | None = None
    role_names: frozenset[str] = field(default=frozenset())

    @property
    def user_id(self) -> str:
        return self.user["id"]

    @property
    def scope(self) -> str | None:
        return self.payload.scope_type

    @property
    def project_id(self) -> str | None:
        return self.project["id"] if self.project else None

    @property
    def domain_id(self) -> str | None:
        return self.domain["id"] if self.domain else None

    # OpenStack's personas, decided here and nowhere else (every service asks these):
    #   admin   in any scope (any project, a domain, the system) administers the whole cloud,
    #           as Keystone, Nova, Neutron and Glance treat it: admin is global;
    #   manager administers the project (or domain) its token is scoped to, nothing beyond;
    #   member  works in its project; reader only reads it;
    #   reader (or member) on the system reads the whole cloud.
    # The built-in implications admin > manager > member > reader make each include the next.
    @property
    def is_cloud_admin(self) -> bool:
        return ROLE_ADMIN in self.role_names and self.scope is not None

    @property
    def is_service(self) -> bool:
        """A service's own user (OpenStack's ``service`` role), for the APIs only services call."""
        return ROLE_SERVICE in self.role_names and self.scope is not None

    @property
    def is_cloud_reader(self) -> bool:
        return self.is_cloud_admin or (self.scope == "system" and ROLE_READER in self.role_names)

    def is_domain_admin(self, domain_id: str | None) -> bool:
        """A domain manager of ``domain_id``: its users, groups, projects and their grants."""
        return self.scope == "domain" and self.domain_id == domain_id and ROLE_MANAGER in self.role_names

    def is_domain_reader(self, domain_id: str | None) -> bool:
        return self.scope == "domain" and self.domain_id == domain_id and ROLE_READER in self.role_names

    def can_manage_domain(self, domain_id: str | None) -> bool:
        return self.is_cloud_admin or self.is_domain_admin(domain_id)

    def can_read_domain(self, domain_id: str | None) -> bool:
        return self.is_cloud_reader or self.is_domain_reader(domain_id)

    def can_manage_project(self, project_id: str) -> bool:
        """Manager of this project (its token scoped to it), or cloud admin: may change the
        project itself and who holds member, reader or manager on it."""
        if self.is_cloud_admin:
            return True
        return self.project_id == project_id and ROLE_MANAGER in self.role_names

    def can_write_project(self, project_id: str) -> bool:
        """Member (or manager) of this project, or cloud admin: may change the project's resources."""
        if self.is_cloud_admin:
            return True
        return self.project_id == project_id and bool({ROLE_MEMBER, ROLE_MANAGER} & self.role_names)

    def can_read_project(self, project_id: str) -> bool:
        return self.is_cloud_reader or (self.project_id == project_id and ROLE_READER in self.role_names)


def require(allowed: bool, action: str) -> None:
    if not allowed:
        raise Forbidden(f"You are not authorized to perform the requested action: {action}.")


# --- who may do what to identity's own resources ---------------------------------
def caller_domain(ctx: AuthContext) -> str:
    """The domain a resource made without a domain_id goes to: the caller's."""
    if ctx.project:
        return ctx.project["domain_id"]
    if ctx.domain:
        return ctx.domain["id"]
    return DEFAULT_DOMAIN_ID


def may_read(ctx: AuthContext, entity: str, row: dict[str, Any] | None) -> bool:
    """Whether ``ctx`` may see ``row`` of ``entity`` (``row`` None: may list the entity)."""
    if entity in CATALOG_ENTITIES:
        return True
    if entity == "domain":
        if row is None:
            return ctx.is_cloud_reader
        return ctx.is_cloud_reader or ctx.domain_id == row["id"] or (
            ctx.project is not None and ctx.project["domain_id"] == row["id"])
    if entity == "role":  # domain readers, and managers who hand roles out
        return ctx.is_cloud_reader or (ctx.scope == "domain" and ROLE_READER in ctx.role_names) or (
            ROLE_MANAGER in ctx.role_names)
    if row is None:  # listing
        return ctx.is_cloud_reader or ctx.is_domain_reader(ctx.domain_id)
    if entity == "user" and row["id"] == ctx.user_id:
        return True
    if entity == "project" and row["id"] == ctx.project_id:
        return True
    return ctx.can_read_domain(row["domain_id"])


def may_write(ctx: AuthContext, entity: str, row: dict[str, Any]) -> bool:
    if entity in DOMAIN_OWNED:
        return ctx.can_manage_domain(row["domain_id"])
    return ctx.is_cloud_admin


def check_protected(entity: str, row: dict[str, Any], *, deleting: bool = False,
                    changes: dict[str, Any] | None = None) -> None:
    """The admin project and the built-in roles hold the cloud together: they stay."""
    changes = changes or {}
    if entity == "project" and row["domain_id"] == DEFAULT_DOMAIN_ID and row["name"] == ADMIN_PROJECT_NAME:
        if deleting or changes.get("enabled") is False or changes.get("name", row["name"]) != row["name"]:
            raise Forbidden("The admin project cannot be deleted, disabled or renamed.")
    if entity == "role" and row["name"] in BUILTIN_ROLES and not row["domain_id"]:
        if deleting or changes.get("name", row["name"]) != row["name"]:
            raise Forbidden(f"The built-in role {row['name']!r} cannot be deleted or renamed.")


def pick(body: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The fields of an update body that may change; a null description means an empty one."""
    out = {k: body[k] for k in keys if k in body}
    if "description" in out and out["description"] is None:
        out["description"] = ""
    return out


def may_manage_app_credentials(ctx: AuthContext, user_id: str, write: bool) -> None:
    """A user manages their own application credentials (a restricted one cannot make more);
    cloud admins (write) and readers (read) those of anyone."""
    if ctx.user_id == user_id:
        if write and ctx.app_cred is not None and not ctx.app_cred["unrestricted"]:
            raise Forbidden("A restricted application credential cannot manage application credentials.")
        return
    require(ctx.is_cloud_admin if write else ctx.is_cloud_reader, "identity:application_credentials")


def app_credential_roles(held: Iterable[dict[str, Any]], wanted: list[dict[str, Any]] | None) -> list[str]:
    """Ids of the roles an application credential gets: each wanted one (by id or name) must be
    held by the token that makes it; none wanted means all the token holds."""
    held = list(held)
    out: list[str] = []
    for spec in wanted or held:
        match = [r for r in held if r["id"] == spec.get("id") or r["name"] == spec.get("name")]
        if not match:
            raise BadRequest(f"You do not hold the role {spec.get('id') or spec.get('name')!r} on this project.")
        out.append(match[0]["id"])
    return sorted(set(out))


def keystone_time(stored: str | None) -> str | None:
    """A stored time as Keystone shows an expiry it was given: microseconds and no zone letter
    (a client that sent datetime.isoformat() gets the same text back)."""
    if not stored:
        return stored
    return clock.iso(clock.parse_iso(stored), micro=True).rstrip("Z")


def app_credential_expiry(expires_at: str | None, now: float) -> str | None:
    """An application credential's expiry as stored (Keystone's format), checked to be ahead."""
    if not expires_at:
        return expires_at
    try:
        when = clock.parse_iso(expires_at)
        stored = clock.iso(when, micro=True)
    except (ValueError, OverflowError, OSError):
        raise BadRequest(f"expires_at is not an ISO 8601 time this cloud can store: {expires_at!r}") from None
    if when <= now:
        raise BadRequest("expires_at is in the past.")
    return stored


# --- role assignments ---------------------------------------------------------------
@dataclass(frozen=True)
class AssignmentQuery:
    """GET /role_assignments' filters; a scope given with an empty value still filters (by "")."""

    user_id: str | None = None
    group_id: str | None = None
    role_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    system: bool = False
    inherited_only: bool = False
    effective: bool = False
    include_names: bool = False

    def matches(self, row: dict[str, Any]) -> bool:
        """Whether an (effective) assignment passes the scope and role filters."""
        if self.project_id is not None and (row["target_type"], row["target_id"]) != ("project", self.project_id):
            return False
        if self.domain_id is not None and (row["target_type"], row["target_id"]) != ("domain", self.domain_id):
            return False
        if self.system and row["target_type"] != "system":
            return False
        return self.role_id is None or row["role_id"] == self.role_id


def render_assignment(row: dict[str, Any], known: dict[tuple[str, str], dict[str, Any]] | None,
                      base: str) -> dict[str, Any]:
    """One role assignment; with ``known`` rows (by (entity, id)), its actor, role and target
    carry their names and domains too (include_names)."""

    def named(entity: str, id: str) -> dict[str, Any]:
        out: dict[str, Any] = {"id": id}
        item = known.get((entity, id)) if known is not None else None
        if item:
            out["name"] = item["name"]
            if "domain_id" in item and entity != "role":
                domain = known.get(("domain", item["domain_id"])) if known is not None else None
                out["domain"] = {"id": item["domain_id"], "name": domain["name"] if domain else None}
        return out

    scope: dict[str, Any]
    if row["target_type"] == "system":
        scope = {"system": {"all": True}}
    else:
        scope = {row["target_type"]: named(row["target_type"], row["target_id"])}
    if row["inherited"]:
        scope["OS-INHERIT:inherited_to"] = "projects"
    # The URL of the grant itself, as the grant routes spell it.
    target = "/system" if row["target_type"] == "system" else f"/{row['target_type']}s/{row['target_id']}"
    link = f"{target}/{row['actor_type']}s/{row['actor_id']}/roles/{row['role_id']}"
    if row["inherited"]:
        link = f"/OS-INHERIT{link}/inherited_to_projects"
    return {
        row["actor_type"]: named(row["actor_type"], row["actor_id"]),
        "role": named("role", row["role_id"]),
        "scope": scope,
        "links": {"assignment": base + link},
    }


# --- Keystone JSON shapes --------------------------------------------------------
def ref(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"]}


def render_domain(row: dict[str, Any], base: str) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "description": row["description"],
        "enabled": row["enabled"], "tags": [], "options": {},
        "links": {"self": f"{base}/domains/{row['id']}"},
    }


def domain_as_project(domain: dict[str, Any]) -> dict[str, Any]:
    """A domain as Keystone serves it among projects: a project with is_domain, in no domain."""
    return {**domain, "domain_id": None, "parent_id": None, "is_domain": True, "tags": [], "extra": {}}


def render_project(row: dict[str, Any], base: str) -> dict[str, Any]:
    return {
        **row.get("extra", {}),  # attributes Keystone does not know, kept as given
        "id": row["id"], "name": row["name"], "domain_id": row["domain_id"],
        "description": row["description"], "enabled": row["enabled"],
        "parent_id": row["parent_id"] or row["domain_id"], "is_domain": bool(row.get("is_domain")),
        "tags": row["tags"], "options": {},
        "links": {"self": f"{base}/projects/{row['id']}"},
    }


def render_user(row: dict[str, Any], base: str) -> dict[str, Any]:
    body = {
        **row.get("extra", {}),  # attributes Keystone does not know, kept as given
        "id": row["id"], "name": row["name"], "domain_id": row["domain_id"],
        "enabled": row["enabled"], "password_expires_at": None, "options": {},
        "links": {"self": f"{base}/users/{row['id']}"},
    }
    if row.get("default_project_id"):
        body["default_project_id"] = row["default_project_id"]
    if row.get("description"):
        body["description"] = row["description"]
    if row.get("email"):
        body["email"] = row["email"]
    return body


def render_group(row: dict[str, Any], base: str) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "domain_id": row["domain_id"],
        "description": row["description"], "links": {"self": f"{base}/groups/{row['id']}"},
    }


def render_role(row: dict[str, Any], base: str) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "domain_id": row["domain_id"] or None,
        "description": row.get("description", ""), "options": {},
        "links": {"self": f"{base}/roles/{row['id']}"},
    }


def role_ref(row: dict[str, Any], base: str) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "links": {"self": f"{base}/roles/{row['id']}"}}


def render_role_inference(prior: dict[str, Any], implies: Any, base: str) -> dict[str, Any]:
    """A prior role and what it implies: one role (just made) or a list of them."""
    refs = role_ref(implies, base) if isinstance(implies, dict) else [role_ref(r, base) for r in implies]
    return {"prior_role": role_ref(prior, base), "implies": refs}


def unpaged_links(url: str) -> dict[str, Any]:
    """The links of a list served whole."""
    return {"self": url, "previous": None, "next": None}


def render_region(row: dict[str, Any], base: str) -> dict[str, Any]:
    return {
        "id": row["id"], "description": row["description"],
        "parent_region_id": row["parent_region_id"], "links": {"self": f"{base}/regions/{row['id']}"},
    }


def render_service(row: dict[str, Any], base: str) -> dict[str, Any]:
    return {
        "id": row["id"], "type": row["type"], "name": row["name"], "description": row["description"],
        "enabled": row["enabled"], "links": {"self": f"{base}/services/{row['id']}"},
    }


def render_endpoint(row: dict[str, Any], base: str) -> dict[str, Any]:
    return {
        "id": row["id"], "service_id": row["service_id"], "interface": row["interface"],
        "region_id": row["region_id"], "region": row["region_id"], "url": row["url"],
        "enabled": row["enabled"], "links": {"self": f"{base}/endpoints/{row['id']}"},
    }


def render_app_credential(row: dict[str, Any], roles: list[dict[str, Any]], base: str) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "description": row["description"],
        "user_id": row["user_id"], "project_id": row["project_id"], "expires_at": keystone_time(row["expires_at"]),
        "unrestricted": row["unrestricted"], "roles": [ref(r) for r in roles], "access_rules": [],
        "links": {"self": f"{base}/users/{row['user_id']}/application_credentials/{row['id']}"},
    }


RENDER = {
    "domain": render_domain, "project": render_project, "user": render_user, "group": render_group,
    "role": render_role, "region": render_region, "service": render_service, "endpoint": render_endpoint,
}


def render_catalog(services: list[dict[str, Any]], endpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_service: dict[str, list[dict[str, Any]]] = {}
    for ep in endpoints:
        if ep["enabled"]:
            by_service.setdefault(ep["service_id"], []).append({
                "id": ep["id"], "interface": ep["interface"], "region": ep["region_id"],
                "region_id": ep["region_id"], "url": ep["url"],
            })
    return [
        {"id": s["id"], "type": s["type"], "name": s["name"], "endpoints": by_service.get(s["id"], [])}
        for s in services
        if s["enabled"]
    ]


def scoped_catalog(catalog: list[dict[str, Any]], project_id: str | None) -> list[dict[str, Any]]:
    """The catalog of a token: Keystone's ``%(project_id)s`` / ``$(project_id)s`` (and tenant_id)
    in endpoint URLs filled with the token's project; such endpoints are left out without one."""
    if not any("(project_id)s" in e["url"] or "(tenant_id)s" in e["url"] for s in catalog for e in s["endpoints"]):
        return catalog
    out = []
    for service in catalog:
        endpoints = []
        for ep in service["endpoints"]:
            url = ep["url"]
            for key in ("%(project_id)s", "$(project_id)s", "%(tenant_id)s", "$(tenant_id)s"):
                if key in url:
                    url = url.replace(key, project_id) if project_id else ""
            if url:
                endpoints.append({**ep, "url": url})
        out.append({**service, "endpoints": endpoints})
    return out


def render_token(ctx: AuthContext, catalog: list[dict[str, Any]] | None) -> dict[str, Any]:
    p = ctx.payload
    body: dict[str, Any] = {
        "methods": list(p.methods),
        "user": {
            "id": ctx.user["id"], "name": ctx.user["name"], "domain": ref(ctx.user_domain),
            "password_expires_at": None,
        },
        "audit_ids": list(p.audit_ids),
        "issued_at": clock.iso(p.issued_at, micro=True),
        "expires_at": clock.iso(p.expires_at, micro=True),
    }
    if ctx.scope is not None:
        body["roles"] = [ref(r) for r in ctx.roles]
    if ctx.scope == "project" and ctx.project and ctx.project_domain:
        body["project"] = {**ref(ctx.project), "domain": ref(ctx.project_domain)}
        body["is_domain"] = False
        if ctx.is_admin_project:
            body["is_admin_project"] = True
    elif ctx.scope == "domain" and ctx.domain:
        body["domain"] = ref(ctx.domain)
    elif ctx.scope == "system":
        body["system"] = {"all": True}
    if ctx.app_cred:
        body["application_credential"] = {
            "id": ctx.app_cred["id"], "name": ctx.app_cred["name"],
            "restricted": not ctx.app_cred["unrestricted"],
        }
    if catalog is not None and ctx.scope is not None:
        body["catalog"] = catalog
    return {"token": body}


# --- catalog upkeep -------------------------------------------------------------
def plan_catalog(
    services: list[dict[str, Any]],
    endpoints: list[dict[str, Any]],
    wanted: list[tuple[str, str, str]],
    region: str,
) -> list[tuple[str, dict[str, Any]]]:
    """What to change so the catalog lists each wanted (type, name, url) on every interface.

    Returns (action, fields) steps: ("service", row), ("endpoint", row) to create,
    ("endpoint_url", {"id", "url"}) to update.  Ids are left for the caller to fill.
    """
    steps: list[tuple[str, dict[str, Any]]] = []
    for service_type, name, url in wanted:
        service = next((s for s in services if s["type"] == service_type), None)
        if service is None:
            service = {"id": None, "type": service_type, "name": name, "description": "", "enabled": True}
            steps.append(("service", service))
        mine = [e for e in endpoints if service["id"] and e["service_id"] == service["id"] and e["region_id"] == region]
        for interface in ("public", "internal", "admin"):
            current = next((e for e in mine if e["interface"] == interface), None)
            if current is None:
                steps.append(("endpoint", {"service": service, "interface": interface, "url": url,
                                           "region_id": region, "enabled": True}))
            elif current["url"] != url:
                steps.append(("endpoint_url", {"id": current["id"], "url": url}))
    return steps

"""The identity service: tokens, and the public async methods other services call.

``IdentityService`` issues and checks tokens and keeps the catalog.  Its parts for the API's
resources hang off it: ``resources`` (domains, projects, users, groups, roles, the catalog's
entities; service_resources.py), ``grants`` (role assignments, implied roles, application
credentials; service_grants.py) and ``extensions`` (credentials, policies, endpoint groups,
OAuth1 consumers, domain configuration, project tags; service_extensions.py).  Every method the API calls takes the caller's AuthContext and
checks what it may do.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Callable

import sqlite_utils
import trio
from cryptography.fernet import Fernet

from cloudbox import clock
from cloudbox.errors import BadRequest, Forbidden, NotFound, Unauthorized
from cloudbox.identity import commands as c
from cloudbox.identity import core, store
from cloudbox.identity.core import AUTH_FAILED, AuthContext, TokenPayload, require
from cloudbox.identity.service_ec2 import Ec2Tokens
from cloudbox.identity.service_extensions import Extensions
from cloudbox.identity.service_grants import Grants
from cloudbox.identity.service_resources import Resources
from cloudbox.state.engine import StateEngine

log = logging.getLogger("cloudbox.identity")

ADMIN_PROJECT_NAME = core.ADMIN_PROJECT_NAME
# Validated tokens kept in memory: about 2 KiB each once their rows are shared (8 KiB before;
# 10,000 of those held 80 MiB).  One unused for CACHE_IDLE seconds is dropped.
CACHE_SIZE = 2_000
CACHE_IDLE = 600.0


def new_id() -> str:
    return uuid.uuid4().hex


def new_audit_id() -> str:
    return secrets.token_urlsafe(16)[:22]


class IdentityService:
    def __init__(self, engine: StateEngine, settings: Any, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.generation = 0  # bumped by every identity command; invalidates caches
        # token -> (generation, context, last use), least recently used first
        self._contexts: OrderedDict[str, tuple[int, AuthContext, float]] = OrderedDict()
        # (user, scope, application credential) -> a cached context, whose rows the next token of
        # the same caller shares instead of holding its own copies
        self._callers: dict[tuple[Any, ...], AuthContext] = {}
        self._codec: tuple[int, core.TokenCodec] | None = None
        self._catalog: tuple[int, list[dict[str, Any]]] | None = None
        # A password hash or check (scrypt) takes 16 MiB and a core for its run: more at once than
        # there are cores only adds memory (40 logins at once would map 640 MiB), so they queue.
        self._scrypt = trio.CapacityLimiter(os.cpu_count() or 1)
        self.resources = Resources(self)
        self.grants = Grants(self)
        self.extensions = Extensions(self)
        self.ec2 = Ec2Tokens(self)
        engine.add_listener(self._on_commit)

    def _on_commit(self, cmd: Any, result: Any) -> None:
        if cmd.service == "identity":
            self.generation += 1
            self._contexts.clear()
            self._callers.clear()

    def now_iso(self) -> str:
        return clock.iso(self.clock(), micro=True)

    # --- state -------------------------------------------------------------
    async def propose(self, cmd: Any) -> Any:
        return await self.engine.propose(cmd)

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.engine.read(fn, *args)

    async def get(self, entity: str, id: str) -> dict[str, Any]:
        return await self.read(store.must_get, entity, id)

    async def create(self, entity: str, row: dict[str, Any]) -> dict[str, Any]:
        row = {"id": new_id(), **row, "created_at": self.now_iso()}
        return await self.propose(c.Create(entity, row))

    async def update(self, entity: str, id: str, changes: dict[str, Any], *, revoke_tokens: bool = False) -> dict[str, Any]:
        return await self.propose(
            c.Update(entity, id, changes, self.now_iso() if revoke_tokens else None)
        )

    async def delete(self, entity: str, id: str) -> None:
        await self.propose(c.Delete(entity, id, self.now_iso()))

    async def hash_password(self, password: str) -> str:
        salt = os.urandom(16)
        return await trio.to_thread.run_sync(
            core.hash_password, password, salt, self.settings.password_hash_cost, limiter=self._scrypt
        )

    async def admin_project_id(self) -> str | None:
        rows = await self.read(
            lambda db: store.find(db, "project", domain_id=core.DEFAULT_DOMAIN_ID, name=ADMIN_PROJECT_NAME))
        return rows[0]["id"] if rows else None

    # --- tokens ------------------------------------------------------------
    async def _token_codec(self) -> core.TokenCodec:
        generation = self.generation
        if self._codec is None or self._codec[0] != generation:
            keys = await self.read(store.token_keys)
            if not keys:
                raise Unauthorized("No token keys exist yet; the cloud is not initialised.")
            self._codec = (generation, core.TokenCodec(keys))
        return self._codec[1]

    async def authenticate(self, token: str) -> AuthContext:
        """Validate a token: the AuthContext of a valid one, else Unauthorized."""
        now = self.clock()
        hit = self._contexts.get(token)
        if hit is not None and hit[0] == self.generation and hit[1].payload.expires_at > now:
            self._contexts[token] = (hit[0], hit[1], now)
            self._contexts.move_to_end(token)
            return hit[1]
        generation = self.generation
        codec = await self._token_codec()
        payload = codec.decode(token, now)
        ctx = await self.read(_load_context, token, payload, now)
        if generation == self.generation:
            ctx = self._shared(ctx)
            self._contexts[token] = (generation, ctx, now)
            self.drop_idle_contexts(now)
        return ctx

    def _shared(self, ctx: AuthContext) -> AuthContext:
        """``ctx`` holding the same row objects as a cached context of the same caller and scope
        (loaded under the same generation, so they are equal)."""
        key = (ctx.user_id, ctx.payload.scope_type, ctx.payload.scope_id, ctx.payload.app_cred_id)
        base = self._callers.get(key)
        if base is None:
            if len(self._callers) >= CACHE_SIZE:
                self._callers.clear()
            self._callers[key] = ctx
            return ctx
        return replace(base, token=ctx.token, payload=ctx.payload)

    def drop_idle_contexts(self, now: float) -> None:
        """Keep the token cache within CACHE_SIZE, and drop what has not been used for CACHE_IDLE."""
        contexts = self._contexts
        while contexts and (len(contexts) > CACHE_SIZE or next(iter(contexts.values()))[2] < now - CACHE_IDLE):
            contexts.popitem(last=False)
        if not contexts:
            self._callers.clear()

    async def catalog(self) -> list[dict[str, Any]]:
        generation = self.generation
        if self._catalog is None or self._catalog[0] != generation:
            services, endpoints = await self.read(
                lambda db: (store.find(db, "service"), store.find(db, "endpoint"))
            )
            self._catalog = (generation, core.render_catalog(services, endpoints))
        return self._catalog[1]

    async def issue_token(self, auth: dict[str, Any], *, catalog: bool = True
                          ) -> tuple[AuthContext, list[dict[str, Any]] | None]:
        """POST /auth/tokens: check the identity, resolve the scope, mint a token; with the
        catalog unless the caller asked for none."""
        ctx = await self._issue(auth)
        return ctx, (core.scoped_catalog(await self.catalog(), ctx.project_id) if catalog else None)

    async def _issue(self, auth: dict[str, Any]) -> AuthContext:
        identity = auth["identity"]
        methods = list(dict.fromkeys(identity["methods"]))
        now = self.clock()
        expires_at = now + self.settings.token_expiration
        audit_ids = (new_audit_id(),)
        app_cred = None
        if "application_credential" in methods:
            app_cred = await self._check_app_credential(identity.get("application_credential") or {}, now)
            user_id = app_cred["user_id"]
            if app_cred.get("expires_at"):
                expires_at = min(expires_at, clock.parse_iso(app_cred["expires_at"]))
        elif "password" in methods:
            user_id = await self.check_password(identity.get("password") or {})
        elif "token" in methods:
            original = await self.authenticate((identity.get("token") or {}).get("id", ""))
            if original.app_cred:
                raise Forbidden("A token from an application credential cannot be rescoped.")
            user_id = original.user_id
            methods = list(dict.fromkeys(["token", *original.payload.methods]))
            expires_at = original.payload.expires_at
            audit_ids = (audit_ids[0], original.payload.audit_ids[-1])
        else:
            raise Unauthorized(AUTH_FAILED)

        scope_type, scope_id = await self._resolve_scope(auth.get("scope"), user_id, app_cred)
        payload = TokenPayload(
            user_id=user_id, methods=tuple(methods), scope_type=scope_type, scope_id=scope_id,
            issued_at=now, expires_at=expires_at, audit_ids=audit_ids,
            app_cred_id=app_cred["id"] if app_cred else None,
        )
        return await self.mint(payload)

    async def mint(self, payload: TokenPayload, *, token: bool = True) -> AuthContext:
        """The context of ``payload`` checked against current state, with a new token (or, for
        a request signed by other means, such as S3's, with none)."""
        text = (await self._token_codec()).encode(payload) if token else ""
        return await self.read(_load_context, text, payload, self.clock())

    async def _find_user(self, spec: dict[str, Any]) -> dict[str, Any] | None:
        def lookup(db: sqlite_utils.Database) -> dict[str, Any] | None:
            if spec.get("id"):
                return store.get(db, "user", spec["id"])
            domain = _find_domain(db, spec.get("domain") or {})
            if domain is None:
                return None
            rows = store.find(db, "user", domain_id=domain["id"], name=spec.get("name"))
            return rows[0] if rows else None

        return await self.read(lookup)

    async def check_password(self, spec: dict[str, Any]) -> str:
        """The id of the user a password spec ({"user": {id or name and domain, password}}) names,
        if the user is enabled and the password right; else Unauthorized, saying nothing of why."""
        user_spec = spec.get("user") or {}
        user = await self._find_user(user_spec)
        password = user_spec.get("password", "")
        ok = await trio.to_thread.run_sync(core.check_password, password, user and user["password_hash"],
                                           limiter=self._scrypt)
        if not ok or user is None or not user["enabled"]:
            log.info("password authentication failed", extra={"user": user_spec.get("id") or user_spec.get("name")})
            raise Unauthorized(AUTH_FAILED)
        return user["id"]

    async def _check_app_credential(self, spec: dict[str, Any], now: float) -> dict[str, Any]:
        def lookup(db: sqlite_utils.Database) -> dict[str, Any] | None:
            if spec.get("id"):
                return store.get(db, "app_credential", spec["id"])
            user_spec = spec.get("user") or {}
            user = None
            if user_spec.get("id"):
                user = store.get(db, "user", user_spec["id"])
            elif user_spec.get("name"):
                domain = _find_domain(db, user_spec.get("domain") or {})
                rows = store.find(db, "user", domain_id=domain["id"], name=user_spec["name"]) if domain else []
                user = rows[0] if rows else None
            if user is None:
                return None
            rows = store.find(db, "app_credential", user_id=user["id"], name=spec.get("name"))
            return rows[0] if rows else None

        cred = await self.read(lookup)
        if cred is None or not core.check_secret(spec.get("secret", ""), cred["secret_hash"]):
            raise Unauthorized(AUTH_FAILED)
        if cred["expires_at"] and clock.parse_iso(cred["expires_at"]) <= now:
            raise Unauthorized(AUTH_FAILED)
        return cred

    async def _resolve_scope(
        self, scope: Any, user_id: str, app_cred: dict[str, Any] | None
    ) -> tuple[str | None, str | None]:
        def resolve(db: sqlite_utils.Database) -> tuple[str | None, str | None]:
            if app_cred is not None:
                wanted = scope.get("project") if isinstance(scope, dict) else None
                if wanted and wanted.get("id") not in (None, app_cred["project_id"]):
                    raise Unauthorized("An application credential token is scoped to its own project only.")
                return "project", app_cred["project_id"]
            if scope == "unscoped":
                return None, None
            if not scope:
                user = store.get(db, "user", user_id)
                default = user and user.get("default_project_id")
                if default and store.direct_role_ids(db, user_id, "project", default):
                    return "project", default
                return None, None
            if "project" in scope:
                spec = scope["project"]
                if spec.get("id"):
                    project = store.get(db, "project", spec["id"])
                else:
                    domain = _find_domain(db, spec.get("domain") or {})
                    rows = store.find(db, "project", domain_id=domain["id"], name=spec.get("name")) if domain else []
                    project = rows[0] if rows else None
                if project is None:
                    raise Unauthorized(f"Could not find project: {spec.get('id') or spec.get('name')}.")
                return "project", project["id"]
            if "domain" in scope:
                domain = _find_domain(db, scope["domain"])
                if domain is None:
                    raise Unauthorized("Could not find the domain to scope to.")
                return "domain", domain["id"]
            if "system" in scope:
                return "system", "all"
            raise BadRequest("Unsupported scope.")

        return await self.read(resolve)

    # --- the token in X-Subject-Token ------------------------------------------------
    async def _subject(self, ctx: AuthContext, subject: str) -> AuthContext:
        if subject == ctx.token:
            return ctx
        try:
            return await self.authenticate(subject)
        except (Unauthorized, NotFound) as exc:  # the token is bad; any other fault is ours and stays one
            raise NotFound("Could not find token: the subject token is invalid, expired or revoked.") from exc

    async def validate_token(self, ctx: AuthContext, subject: str, *, catalog: bool = True
                             ) -> tuple[AuthContext, list[dict[str, Any]] | None]:
        """GET /auth/tokens: the subject token (its user's or a cloud reader's to see)."""
        found = await self._subject(ctx, subject)
        require(found.user_id == ctx.user_id or ctx.is_cloud_reader, "identity:validate_token")
        return found, (core.scoped_catalog(await self.catalog(), found.project_id) if catalog else None)

    async def check_token(self, ctx: AuthContext, subject: str) -> AuthContext:
        """HEAD /auth/tokens: whether the subject token is valid."""
        found = await self._subject(ctx, subject)
        require(found.user_id == ctx.user_id or ctx.is_cloud_reader, "identity:check_token")
        return found

    async def revoke_subject(self, ctx: AuthContext, subject: str) -> None:
        """DELETE /auth/tokens: revoke the subject token (its user's or a cloud admin's to do)."""
        found = await self._subject(ctx, subject)
        require(found.user_id == ctx.user_id or ctx.is_cloud_admin, "identity:revoke_token")
        await self.revoke_token(found)

    async def revoke_token(self, ctx: AuthContext) -> None:
        await self.propose(c.RevokeToken(ctx.payload.audit_ids[0], clock.iso(ctx.payload.expires_at, micro=True), self.now_iso()))

    # --- key rotation --------------------------------------------------------
    async def rotate_keys(self) -> int:
        """Make a new primary token key; drop keys and revocations no live token can need."""
        now = self.clock()
        keys = await self.read(store.token_key_times)
        horizon = now - self.settings.token_expiration
        drop = []
        # A key encrypted tokens until the next key was made; once that moment is older than a
        # token's lifetime, no valid token can need the key.
        for key, successor in zip(keys, keys[1:]):
            if clock.parse_iso(successor["created_at"]) < horizon:
                drop.append(key["id"])
        key_id = (keys[-1]["id"] + 1) if keys else 1
        await self.propose(
            c.RotateKeys(
                key_id=key_id, key=Fernet.generate_key().decode(), created_at=clock.iso(now, micro=True),
                drop_key_ids=tuple(drop), drop_revocations_before=clock.iso(horizon, micro=True),
            )
        )
        log.info("token keys rotated", extra={"key_id": key_id, "dropped": drop})
        return key_id

    async def ensure_builtin_roles(self) -> None:
        """A cloud made before the manager role existed gets it (admin > manager > member), by
        one command that changes nothing where the role exists, so nodes starting together agree."""
        have = await self.read(lambda db: store.find(db, "role", domain_id="", name=core.ROLE_MANAGER))
        if not have:
            await self.propose(c.EnsureRole(new_id(), core.ROLE_MANAGER, self.now_iso(),
                                            implied_by=(core.ROLE_ADMIN,), implies=(core.ROLE_MEMBER,)))
            log.info("built-in role added", extra={"role": core.ROLE_MANAGER})

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.ensure_builtin_roles()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._drop_idle_contexts_forever)
            task_status.started()
            await self._rotate_keys_forever()

    async def _drop_idle_contexts_forever(self) -> None:
        while True:  # a node that goes quiet lets go of its callers' tokens too
            await trio.sleep(CACHE_IDLE / 2)
            self.drop_idle_contexts(self.clock())

    async def _rotate_keys_forever(self) -> None:
        while True:
            newest = [k["created_at"] for k in (await self.read(store.token_key_times))[-1:]]
            due = (clock.parse_iso(newest[0]) + self.settings.token_key_rotation) if newest else 0
            wait = due - self.clock()
            if wait > 0:
                await trio.sleep(min(wait, 3600))
                continue
            try:
                await self.rotate_keys()
            except Exception:  # noqa: BLE001 - retry at the next turn
                log.exception("token key rotation failed")
                await trio.sleep(60)


# --- reading helpers (run in a reader thread) -----------------------------------
def _find_domain(db: sqlite_utils.Database, spec: dict[str, Any]) -> dict[str, Any] | None:
    if spec.get("id"):
        return store.get(db, "domain", spec["id"])
    if spec.get("name"):
        rows = store.find(db, "domain", name=spec["name"])
        return rows[0] if rows else None
    return None


def _load_context(db: sqlite_utils.Database, token: str, payload: TokenPayload, now: float) -> AuthContext:
    """Everything a request needs to know about its caller, checked against current state."""
    issued = clock.iso(payload.issued_at, micro=True)
    if store.is_revoked(db, payload.audit_ids[0], payload.user_id, issued):
        raise Unauthorized("The token has been revoked.")
    user = store.get(db, "user", payload.user_id)
    user_domain = user and store.get(db, "domain", user["domain_id"])
    if user is None or not user["enabled"] or user_domain is None or not user_domain["enabled"]:
        raise Unauthorized("The token's user is disabled or no longer exists.")
    app_cred = None
    if payload.app_cred_id:
        app_cred = store.get(db, "app_credential", payload.app_cred_id)
        if app_cred is None:
            raise Unauthorized("The token's application credential no longer exists.")
    project = project_domain = domain = None
    role_ids: set[str] = set()
    is_admin_project = False
    if payload.scope_type == "project":
        project = store.get(db, "project", payload.scope_id or "")
        project_domain = project and store.get(db, "domain", project["domain_id"])
        if project is None or not project["enabled"] or project_domain is None or not project_domain["enabled"]:
            raise Unauthorized("The token's project is disabled or no longer exists.")
        role_ids = store.direct_role_ids(db, user["id"], "project", project["id"])
        is_admin_project = project["domain_id"] == core.DEFAULT_DOMAIN_ID and project["name"] == ADMIN_PROJECT_NAME
    elif payload.scope_type == "domain":
        domain = store.get(db, "domain", payload.scope_id or "")
        if domain is None or not domain["enabled"]:
            raise Unauthorized("The token's domain is disabled or no longer exists.")
        role_ids = store.direct_role_ids(db, user["id"], "domain", domain["id"])
    elif payload.scope_type == "system":
        role_ids = store.direct_role_ids(db, user["id"], "system", "all")
    effective = store.global_role_ids(db, store.expand_implied(db, role_ids))
    if app_cred is not None:
        effective &= store.expand_implied(db, set(app_cred["roles"]))
    if payload.scope_type is not None and not effective:
        raise Unauthorized(f"User {user['id']} has no role on the requested {payload.scope_type} scope.")
    roles = store.roles_by_ids(db, effective)
    return AuthContext(
        token=token, payload=payload, user=user, user_domain=user_domain, roles=tuple(roles),
        project=project, project_domain=project_domain, domain=domain,
        is_admin_project=is_admin_project, app_cred=app_cred,
        role_names=frozenset(r["name"] for r in roles),
    )


def catalog_commands(
    db: sqlite_utils.Database, wanted: list[tuple[str, str, str]], region: str, now_iso: str
) -> list[Any]:
    """Commands that make the catalog list every wanted (type, name, url) in ``region``."""
    out: list[Any] = []
    if store.get(db, "region", region) is None:
        out.append(c.Create("region", {"id": region, "description": "", "parent_region_id": None, "created_at": now_iso}))
    steps = core.plan_catalog(store.find(db, "service"), store.find(db, "endpoint"), wanted, region)
    for action, fields in steps:
        if action == "service":
            fields["id"] = new_id()
            out.append(c.Create("service", {**fields, "created_at": now_iso}))
        elif action == "endpoint":
            service = fields.pop("service")
            out.append(c.Create("endpoint", {**fields, "id": new_id(), "service_id": service["id"], "created_at": now_iso}))
        else:
            out.append(c.Update("endpoint", fields["id"], {"url": fields["url"]}))
    return out

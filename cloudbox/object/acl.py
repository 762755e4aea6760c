"""Pure: who may do what to an account, its containers and objects (Swift's keystoneauth rules).

The account's own project may do everything (its readers only read). Others go through the
account's ACL (``X-Account-Access-Control``: read-only, read-write, admin), then, as callers
with no token do, through the container's ACLs:
- ``X-Container-Read``: ``.r:*`` (anyone reads objects; ``.r:<host>`` / ``.r:-<host>`` by
  Referer), ``.rlistings`` (those referrers list too), and grants ``<project>:<user>`` where
  either side may be ``*`` and a side is an id or a name;
- ``X-Container-Write``: grants only; they write and delete objects, never the container.
A refusal is 401 without a token and 403 with one.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass

from cloudbox.errors import BadRequest, Forbidden, Unauthorized

ACCOUNT_READ, ACCOUNT_WRITE = "account_read", "account_write"
CONTAINER_LIST, CONTAINER_WRITE = "container_list", "container_write"
OBJECT_READ, OBJECT_WRITE = "object_read", "object_write"
READS = (ACCOUNT_READ, CONTAINER_LIST, OBJECT_READ)
ACCOUNT_ACL = "x-account-access-control"  # where the account's ACL is kept in its metadata


@dataclass(frozen=True)
class Caller:
    project_id: str | None
    project_name: str | None
    user_id: str
    user_name: str
    can_read_own: bool  # may read its own project (any role there)
    can_write_own: bool  # may change it (member and above)


def entries(acl: str | None) -> list[str]:
    return [e.strip() for e in (acl or "").split(",") if e.strip()]


def _grants(acl: list[str], caller: Caller) -> bool:
    for entry in acl:
        if entry.startswith(".") or ":" not in entry:
            continue
        project, _, user = entry.partition(":")
        if project in ("*", caller.project_id, caller.project_name) and user in ("*", caller.user_id, caller.user_name):
            return True
    return False


def _referrer_allows(acl: list[str], referer: str | None) -> bool:
    host = urllib.parse.urlsplit(referer or "").hostname or ""
    allowed = False
    for entry in acl:
        if not entry.startswith(".r:") and not entry.startswith(".referrer:"):
            continue
        value = entry.split(":", 1)[1]
        deny = value.startswith("-")
        value = value.lstrip("-")
        matches = value == "*" or (host and (host == value or (value.startswith(".") and host.endswith(value))))
        if matches:
            allowed = not deny
    return allowed


ACCOUNT_LEVELS = ("read-only", "read-write", "admin")  # X-Account-Access-Control, least first
# What each account ACL level allows: read-only reads everything, read-write also writes
# containers and objects, admin is the owner (account metadata and ACLs too).
_LEVEL_OPS = {"read-only": READS, "read-write": (*READS, CONTAINER_WRITE, OBJECT_WRITE),
              "admin": (*READS, CONTAINER_WRITE, OBJECT_WRITE, ACCOUNT_WRITE)}


def parse_account_acl(text: str) -> dict[str, list[str]]:
    """X-Account-Access-Control: a JSON object of level → grants (``<project>:<user>``, ``*`` a
    wildcard on either side); BadRequest when it is not."""
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        raise BadRequest("X-Account-Access-Control must be a JSON object") from None
    if not isinstance(value, dict) or set(value) - set(ACCOUNT_LEVELS) or not all(
            isinstance(v, list) and all(isinstance(g, str) for g in v) for v in value.values()):
        raise BadRequest(f"X-Account-Access-Control keys are {', '.join(ACCOUNT_LEVELS)}, each a list of "
                         "<project>:<user> grants")
    return value


def account_level(caller: Caller, account_acl: str | None) -> str | None:
    """The highest account ACL level granted to ``caller``."""
    try:
        levels = parse_account_acl(account_acl or "")
    except BadRequest:
        return None
    granted = [level for level in ACCOUNT_LEVELS if _grants(levels.get(level, []), caller)]
    return granted[-1] if granted else None


def check(caller: Caller | None, account: str, op: str, *, read_acl: str | None = None,
          write_acl: str | None = None, referer: str | None = None, account_acl: str | None = None) -> None:
    """Raise Unauthorized / Forbidden unless ``caller`` may do ``op`` in ``account``."""
    if caller is not None and caller.project_id == account and caller.can_read_own:
        if op in READS or caller.can_write_own:
            return
        raise Forbidden("Access was denied to this resource.")
    if caller is not None and account_acl:
        level = account_level(caller, account_acl)
        if level is not None and op in _LEVEL_OPS[level]:
            return
    read, write = entries(read_acl), entries(write_acl)
    if op == OBJECT_READ and (_referrer_allows(read, referer) or (caller and _grants(read, caller))):
        return
    if op == CONTAINER_LIST:
        if caller and _grants(read, caller):
            return
        if ".rlistings" in read and _referrer_allows(read, referer):
            return
    if op == OBJECT_WRITE and caller and _grants(write, caller):
        return
    if caller is None:
        raise Unauthorized("This server could not verify that you are authorized to access the document "
                           "you requested.")
    raise Forbidden("Access was denied to this resource.")


def caller_of(ctx: object | None) -> Caller | None:
    """The Caller of an AuthContext (None without a token)."""
    if ctx is None:
        return None
    project = getattr(ctx, "project", None) or {}
    user = getattr(ctx, "user", None) or {}
    project_id = project.get("id")
    return Caller(project_id=project_id, project_name=project.get("name"), user_id=user.get("id", ""),
                  user_name=user.get("name", ""),
                  can_read_own=bool(project_id and ctx.can_read_project(project_id)),  # type: ignore[attr-defined]
                  can_write_own=bool(project_id and ctx.can_write_project(project_id)))  # type: ignore[attr-defined]

"""What a committed command changed, as the dashboard's live events name it (pure: no I/O).

One generic rule covers the commands of every service:

- the command's type names the service, the kind of thing and the verb:
  ``compute.server.update`` is service compute, type server, action update; a two-part type
  (``volume.create``, ``image.update``) names the service's main thing (``DEFAULT_TYPE``);
- the thing is the row apply returned (most applies return the row they wrote, or a list of
  rows), else the ``row``/``rows`` the command carries, else its ``id`` (or ``<type>_id``) field;
- its owner is the row's ``project_id``/``tenant_id``/``owner`` (else the command's
  ``project_id``), and it is public when every project lists it (``visibility`` public or
  community, ``is_public``, ``shared``, ``external``);
- ``status`` is the row's status, as the API shows it.

``NESTED`` names the sub-resources whose change is a change of a parent (a volume attachment
changes its volume, a router interface its router); ``SKIP`` the commands a dashboard has no use
for; ``ADMIN_TYPES`` the things only an administrator lists.  Object storage and the cluster's
members have small functions of their own.  A change whose owner the row does not say is
completed from a cache of what earlier events said (``Owners``, in the hub).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Iterable

from cloudbox.state import commands as cmds
from cloudbox.state.commands import Command

CREATE_VERBS = frozenset({"create", "create_many", "register", "put", "import", "consume"})
DELETE_VERBS = frozenset({"delete", "purge", "remove"})

# A two-part command type ("volume.create") changes the service's main thing.
DEFAULT_TYPE = {"compute": "server", "image": "image", "volume": "volume", "object": "object", "network": "network"}

# head of the command type → the type of the thing it changes, when its last part is not that name.
RENAMED = {
    "compute.host": "hypervisor",
    "network.secgroup": "security_group",
    "network.secgroup.rule": "security_group_rule",
    "volume.type": "volume_type",
    "volume.qos": "qos_spec",
    "network.auto_allocate": "network",
    "network.metering.label": "metering_label",
    "network.metering.rule": "metering_label_rule",
}
# head → (parent type, the command's field or row key holding the parent's id): a change to the parent.
NESTED: dict[str, tuple[str, str]] = {
    "compute.bdm": ("server", "server_id"),
    "network.router.interface": ("router", "router_id"),
    "network.server": ("port", "server_id"),  # a server's ports (re)made: each port in apply's result
    "image.member": ("image", "image_id"),
    "image.tag": ("image", "id"),
    "image.upload": ("image", "id"),
    "image.stage": ("image", "id"),
    "image.import": ("image", "image_id"),
    "image.task": ("image", "id"),
    "volume.attachment": ("volume", "volume_id"),
    "volume.upload": ("volume", "volume_id"),
}
SKIP = frozenset({
    "compute.action.record", "compute.action.finish", "compute.server.password",
    "identity.keys.rotate", "identity.token.revoke",
    "cluster.token.create", "cluster.node.heartbeat",
    "object.placed", "network.dhcp.pin",
})
SKIP_PREFIXES = ("image.metadef.",)
ADMIN_TYPES = frozenset({
    ("compute", "hypervisor"), ("compute", "aggregate"), ("compute", "migration"), ("volume", "backend"),
    ("volume", "qos_spec"), ("network", "metering_label"), ("network", "metering_label_rule"),
})
ADMIN_SERVICES = frozenset({"identity"})  # projects, users, roles: listed by administrators
OWNER_KEYS = ("project_id", "tenant_id", "owner")


@dataclass(frozen=True)
class Change:
    """One changed thing, with who may see it (the last four fields are never sent)."""

    service: str
    type: str
    id: str | None  # None: several things of this type changed; re-read the list
    action: str  # create | update | delete
    project_id: str | None = None
    status: str | None = None
    user_id: str | None = None  # a thing its user owns in every project (key pairs)
    public: bool = False  # every project lists it (public images and flavors, shared networks)
    admin_only: bool = False  # only administrators list it
    node: bool = False  # a cluster member's change (``event: node``)

    @property
    def owned(self) -> bool:
        """Whether who may see it is known (an owner, a user, public, or administrators only)."""
        return bool(self.project_id or self.user_id or self.public or self.admin_only)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"service": self.service, "type": self.type, "id": self.id,
                               "project_id": self.project_id, "action": self.action}
        if self.status is not None:
            out["status"] = self.status
        return out


def changes(cmd: Command, result: Any) -> list[Change]:
    """The changes a committed command made (empty for those a dashboard does not show)."""
    kind = cmd.TYPE
    if kind in SKIP or kind.startswith(SKIP_PREFIXES):
        return []
    service = cmd.service
    if service == "object":
        return _object(cmd)
    if service == "cluster":
        return _cluster(cmd)
    if kind == "network.bulk.create":
        return _bulk(cmd, result)
    if kind == "volume.transfer.accept" and isinstance(result, dict) and result.get("volume_id"):
        # The volume leaves the offering project's list for the accepting one's.
        volume = result["volume_id"]
        return [Change("volume", "transfer", result.get("id"), "delete", result.get("project_id")),
                Change("volume", "volume", volume, "update", result.get("project_id")),
                Change("volume", "volume", volume, "update", cmd.project_id)]
    if kind == "network.tags":
        return _generic(cmd, result, "network", cmd.table.rstrip("s"), "update", id_field="id")
    head, verb = kind.rsplit(".", 1)
    if head in NESTED:
        parent, field = NESTED[head]
        return _generic(cmd, result, service, parent, "update", id_field=field, nested=True)
    if head == service:
        thing = cmd.entity if service == "identity" and hasattr(cmd, "entity") else DEFAULT_TYPE.get(service, service)
    else:
        thing = RENAMED.get(head, head.rsplit(".", 1)[-1])
    action = "create" if verb in CREATE_VERBS else "delete" if verb in DELETE_VERBS else "update"
    return _generic(cmd, result, service, thing, action)


def _generic(cmd: Command, result: Any, service: str, thing: str, action: str, *,
             id_field: str | None = None, nested: bool = False) -> list[Change]:
    admin_only = service in ADMIN_SERVICES or (service, thing) in ADMIN_TYPES
    rows = _result_rows(result)
    if nested and thing == "port":  # apply's rows are the ports themselves
        return [_from_row(service, thing, r["id"], action, r, admin_only) for r in rows]
    wanted = _field(cmd, id_field) if id_field else None
    if nested:
        # The parent's id: the command's field, else the field in its row(s) or apply's result.
        rows_given = rows or _command_rows(cmd)
        if wanted is None:
            wanted = next((r.get(id_field) for r in rows_given if r.get(id_field)), None)  # type: ignore[arg-type]
        parent_rows = [r for r in rows if r.get("id") == wanted]
        row = parent_rows[0] if parent_rows else None
        owner_row = row or next(iter(rows_given), None)
        change = _from_row(service, thing, wanted, action, owner_row or {}, admin_only,
                           with_status=row is not None)
        return [_with_command_owner(change, cmd)]
    if not rows:
        rows = _command_rows(cmd)
    if rows:
        return [_with_command_owner(_from_row(service, thing, r.get("id") or _ident(cmd, thing), action, r,
                                              admin_only), cmd) for r in rows]
    return [_with_command_owner(Change(service, thing, _ident(cmd, thing), action, admin_only=admin_only), cmd)]


def _from_row(service: str, thing: str, ident: Any, action: str, row: dict[str, Any], admin_only: bool,
              *, with_status: bool = True) -> Change:
    owner = next((row[k] for k in OWNER_KEYS if isinstance(row.get(k), str) and row[k]), None)
    status = row.get("status") if with_status and isinstance(row.get("status"), str) else None
    user = row.get("user_id") if thing == "keypair" and isinstance(row.get("user_id"), str) else None
    public = (row.get("visibility") in ("public", "community") or bool(row.get("is_public"))
              or bool(row.get("shared")) or bool(row.get("external")))
    if thing == "keypair":
        ident, owner = row.get("name") or ident, None  # a key pair is its user's, named, in every project
    return Change(service, thing, _text(ident), action, owner, status, user, public, admin_only)


def _with_command_owner(change: Change, cmd: Command) -> Change:
    """The command's own project (or user, for key pairs) when the row did not say."""
    if change.owned:
        return change
    if change.type == "keypair":
        user = getattr(cmd, "user_id", None)
        return _replace(change, user_id=user) if isinstance(user, str) else change
    project = getattr(cmd, "project_id", None)
    return _replace(change, project_id=project) if isinstance(project, str) and project else change


def _replace(change: Change, **fields: Any) -> Change:
    return replace(change, **fields)


def _ident(cmd: Command, thing: str) -> str | None:
    if cmd.TYPE == "network.secgroup.default":
        return _text((getattr(cmd, "default_sg", None) or {}).get("id"))
    for name in ("id", f"{thing}_id", "name", "project_id" if thing == "quota" else ""):
        value = getattr(cmd, name, None) if name else None
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    return None


def _field(cmd: Command, name: str) -> str | None:
    value = getattr(cmd, name, None)
    return _text(value)


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    return str(value) if isinstance(value, (str, int)) else None


def _result_rows(result: Any) -> list[dict[str, Any]]:
    if isinstance(result, dict) and "id" in result:
        return [result]
    if isinstance(result, (list, tuple)) and result and all(isinstance(r, dict) and "id" in r for r in result):
        return list(result)
    return []


def _command_rows(cmd: Command) -> list[dict[str, Any]]:
    row = getattr(cmd, "row", None)
    if isinstance(row, dict):
        return [row]
    rows = getattr(cmd, "rows", None)
    if isinstance(rows, (list, tuple)):
        return [r for r in rows if isinstance(r, dict)]
    return []


def _bulk(cmd: Command, result: Any) -> list[Change]:
    out: list[Change] = []
    rows = result if isinstance(result, (list, tuple)) else [None] * len(cmd.commands)
    for item, row in zip(cmd.commands, rows):
        try:
            inner = cmds.decode(json.dumps(item))
        except Exception:  # noqa: BLE001 - an item that does not decode shows as nothing
            continue
        out.extend(changes(inner, row))
    return out


def _object(cmd: Command) -> list[Change]:
    row = getattr(cmd, "row", None) or {}
    account = getattr(cmd, "account", None) or row.get("account")
    kind = cmd.TYPE
    verb = kind.rsplit(".", 1)[1]
    action = "create" if verb == "put" else "delete" if verb == "delete" else "update"
    if kind.startswith("object.account."):
        return [Change("object", "account", account, "update", account)]
    if kind.startswith("object.container."):
        return [Change("object", "container", getattr(cmd, "name", None), action, account)]
    container = getattr(cmd, "container", None) or row.get("container")
    name = getattr(cmd, "name", None) or row.get("name")
    return [Change("object", "object", f"{container}/{name}", action, account)]


def _cluster(cmd: Command) -> list[Change]:
    kind = cmd.TYPE
    if kind in ("cluster.node.register", "cluster.token.consume"):
        row = cmd.row
        return [Change("cluster", "node", row.get("id"), "create", admin_only=True, node=True)]
    if kind == "cluster.node.remove":
        return [Change("cluster", "node", cmd.node_id, "delete", admin_only=True, node=True)]
    return []


def visible(change: Change, project_id: str | None, user_id: str, sees_all: bool) -> bool:
    """Whether a token (its project, user, and whether it reads the whole cloud) lists the thing."""
    if sees_all:
        return True
    if change.admin_only or change.node:
        return False
    if change.user_id is not None:
        return change.user_id == user_id
    if change.public:
        return True
    return project_id is not None and change.project_id == project_id


def all_of(pairs: Iterable[tuple[Command, Any]]) -> list[Change]:
    """The changes of several commands (tests and replays)."""
    return [c for cmd, result in pairs for c in changes(cmd, result)]

"""The replicated commands of the identity service.

Rows arrive complete: ids, timestamps, password and secret hashes are made by
the service before proposing, so apply only checks state and writes.
"""

from __future__ import annotations

from typing import Any

from cloudbox.state.commands import Command, command

# Tables whose rows are created, updated and deleted by the generic commands.
ENTITIES = ("domain", "project", "user", "group", "role", "region", "service", "endpoint", "app_credential",
            "credential", "policy", "endpoint_group", "consumer", "domain_config")


@command("identity.create")
class Create(Command):
    entity: str
    row: dict[str, Any]


@command("identity.update")
class Update(Command):
    entity: str
    id: str
    changes: dict[str, Any]
    # Tokens of this user issued before this instant stop validating
    # (a password change or a disabled user); None leaves tokens alone.
    revoke_user_tokens_at: str | None = None


@command("identity.delete")
class Delete(Command):
    entity: str
    id: str
    at: str


@command("identity.project.tag")
class TagProject(Command):
    """Add one tag to a project (``add``) or take it away; the project's other tags stay."""

    project_id: str
    tag: str
    add: bool


@command("identity.group.add_user")
class AddGroupMember(Command):
    group_id: str
    user_id: str


@command("identity.group.remove_user")
class RemoveGroupMember(Command):
    group_id: str
    user_id: str


@command("identity.role.imply")
class ImplyRole(Command):
    prior_role_id: str
    implied_role_id: str


@command("identity.role.unimply")
class UnimplyRole(Command):
    prior_role_id: str
    implied_role_id: str


@command("identity.role.ensure")
class EnsureRole(Command):
    """Make a global role unless one of that name exists, with implications named by role:
    each of ``implied_by`` implies it and it implies each of ``implies``.  How a cloud made
    before a built-in role existed gets it; a cloud that has one keeps it as it is."""

    id: str
    name: str
    created_at: str
    implied_by: tuple[str, ...] = ()
    implies: tuple[str, ...] = ()


@command("identity.assignment.grant")
class Grant(Command):
    actor_type: str  # "user" or "group"
    actor_id: str
    target_type: str  # "project", "domain" or "system"
    target_id: str  # "all" for the system
    role_id: str
    inherited: bool = False


@command("identity.assignment.revoke")
class Revoke(Command):
    actor_type: str
    actor_id: str
    target_type: str
    target_id: str
    role_id: str
    inherited: bool = False


@command("identity.token.revoke")
class RevokeToken(Command):
    audit_id: str
    expires_at: str
    at: str


@command("identity.keys.rotate")
class RotateKeys(Command):
    """Add a token key (the new primary) and drop keys and revocations no token can need."""

    key_id: int
    key: str
    created_at: str
    drop_key_ids: tuple[int, ...] = ()
    drop_revocations_before: str | None = None

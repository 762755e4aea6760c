"""Neutron v2.0 routes of security groups and their rules."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from cloudbox.api.routes import Route
from cloudbox.errors import BadRequest
from cloudbox.network import models
from cloudbox.network.service import NetworkService


def routes(svc: NetworkService, crud: Callable[..., list[Route]]) -> list[Route]:
    async def no_rule_update(ctx: Any, rule_id: str, body: Mapping[str, Any]) -> Any:
        raise BadRequest("Security group rules cannot be updated: delete the rule and create a new one.")

    return [
        *crud("security-groups", svc.create_security_group, svc.update_security_group, svc.delete_security_group,
              models.CREATE_SECURITY_GROUP, models.UPDATE_SECURITY_GROUP),
        *crud("security-group-rules", svc.create_rule, no_rule_update, svc.delete_rule, models.CREATE_RULE,
              {"type": "object"}),
    ]

"""Keystone's EC2 and S3 token routes: POST /ec2tokens and /s3tokens (no token needed; the
request's signature with an EC2 credential's secret is the proof).  Both answer 200 with a
token scoped to the credential's project, in X-Subject-Token and the body, as Keystone does."""

from __future__ import annotations

from typing import Any

from cloudbox.api.routes import Call, Reply, Route
from cloudbox.errors import BadRequest
from cloudbox.identity import core
from cloudbox.identity.core import AuthContext
from cloudbox.identity.service import IdentityService

CREDENTIALS = {"type": "object", "properties": {"credentials": {"type": "object"},
                                                "ec2Credentials": {"type": "object"}}}


def _credentials(call: Call) -> dict[str, Any]:
    found = call.body.get("credentials", call.body.get("ec2Credentials"))
    if not isinstance(found, dict):
        raise BadRequest("The body needs a \"credentials\" object.")
    return found


async def _reply(svc: IdentityService, ctx: AuthContext) -> Reply:
    return Reply(core.render_token(ctx, await svc.catalog()), 200, {"X-Subject-Token": ctx.token})


async def ec2_token(svc: IdentityService, call: Call) -> Reply:
    return await _reply(svc, await svc.ec2.ec2_token(_credentials(call)))


async def s3_token(svc: IdentityService, call: Call) -> Reply:
    return await _reply(svc, await svc.ec2.s3_token(_credentials(call)))


ROUTES = [
    Route("POST", "/ec2tokens", ec2_token, access="public", body=CREDENTIALS),
    Route("POST", "/s3tokens", s3_token, access="public", body=CREDENTIALS),
]

"""OS::Heat::WaitConditionHandle and OS::Heat::WaitCondition: a stack waits for signals sent from
inside a guest (its user data curls the handle's URL).

The handle's URL is signed: ``/orchestration/v1/signal/{stack_id}/{handle}?signature=...``, an
HMAC of the stack and handle under a secret chosen when the handle is made (kept in its row), so
the guest needs no token and the URL opens nothing but that one handle's signals.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

import trio

from cloudbox.orchestration.resources.base import POLL, Context, Plugin, ResourceFailed


def signature(secret: str, stack_id: str, handle_id: str) -> str:
    return hmac.new(secret.encode(), f"{stack_id}/{handle_id}".encode(), hashlib.sha256).hexdigest()


def signal_url(base: str, stack_id: str, handle_id: str, secret: str) -> str:
    return f"{base}/orchestration/v1/signal/{stack_id}/{handle_id}?signature={signature(secret, stack_id, handle_id)}"


class WaitConditionHandle(Plugin):
    type = "OS::Heat::WaitConditionHandle"
    description = "A URL a guest calls (POST, JSON {\"status\": \"SUCCESS\"}) to signal a WaitCondition."
    properties = {"signal_transport": "string"}
    attribute_names = frozenset({"show", "token", "endpoint", "curl_cli", "signal"})

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        ctx.data["secret"] = secrets.token_hex(32)
        return ctx.row_id

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        url = signal_url(f"https://{ctx.api.host}", ctx.stack["id"], ctx.physical_id, ctx.data.get("secret", ""))
        curl = ("curl -i -k -X POST -H 'Content-Type: application/json' -H 'Accept: application/json' "
                f"'{url}'")
        return {"token": "", "endpoint": url, "curl_cli": curl, "signal": {"alarm_url": url},
                "show": {"endpoint": url}}


class WaitCondition(Plugin):
    type = "OS::Heat::WaitCondition"
    description = "Waits until its handle has count SUCCESS signals (or one FAILURE) within timeout seconds."
    properties = {"handle": "string", "timeout": "number", "count": "integer"}
    required = frozenset({"handle", "timeout"})
    update_allowed = frozenset({"timeout", "count"})
    attribute_names = frozenset({"show", "data"})

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        ctx.data.update({"handle": str(props["handle"]), "timeout": float(props["timeout"]),
                         "count": int(props.get("count") or 1)})
        return ctx.physical_name

    async def _signals(self, ctx: Context) -> list[dict[str, Any]]:
        handle = await ctx.peer(ctx.data["handle"])
        if handle is None:
            raise ResourceFailed(f"the handle {ctx.data['handle']} is not a resource of this stack")
        return list(handle["data"].get("signals", []))

    async def wait(self, ctx: Context) -> None:
        with trio.move_on_after(ctx.data.get("timeout", 600)):
            while True:
                signals = await self._signals(ctx)
                failed = [s for s in signals if str(s.get("status", "SUCCESS")).upper() == "FAILURE"]
                if failed:
                    raise ResourceFailed(f"WaitConditionFailure: {failed[0].get('reason') or 'signalled FAILURE'}")
                if len(signals) >= ctx.data.get("count", 1):
                    return
                await trio.sleep(POLL)
        raise ResourceFailed(f"WaitConditionTimeout: {len(await self._signals(ctx))} of {ctx.data.get('count', 1)} "
                             "received")

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        ctx.data.update({"timeout": float(new["timeout"]), "count": int(new.get("count") or 1)})

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        data = {str(s.get("id") or i + 1): s.get("data") for i, s in enumerate(await self._signals(ctx))}
        return {"data": json.dumps(data), "show": {"data": data}}

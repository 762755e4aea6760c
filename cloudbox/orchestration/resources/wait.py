"""OS::Heat::WaitConditionHandle and OS::Heat::WaitCondition: a stack waits for signals sent from
inside a guest (its user data curls, or wgets, the handle's URL).

The handle's URL is signed: ``/orchestration/v1/signal/{stack_id}/{handle}?signature=...``, an
HMAC of the stack and handle under a secret chosen when the handle is made (kept in its row), so
the guest needs no token and the URL opens nothing but that one handle's signals.

A guest cannot reach the node's API (the network guards keep tenant networks off host addresses),
so the URL a handle gives (``endpoint``, ``curl_cli``, ``signal``) is on the metadata address
every tenant network reaches; the metadata listener passes only that POST on
(``orchestration/guest_signals.py``). The API serves the same path, so from outside a guest the
same URL works with the node's own base instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

import trio

from cloudbox.errors import BadRequest
from cloudbox.network.hostplan import METADATA_ADDRESS
from cloudbox.orchestration.resources.base import POLL, Context, Plugin, ResourceFailed

GUEST_BASE = f"http://{METADATA_ADDRESS}"  # what a guest reaches: the metadata service of its network
# Heat's transports. Each but NO_SIGNAL is answered by the same signed URL (there is no Zaqar nor a
# Swift temp URL to signal through, and a guest holds no credentials for HEAT_SIGNAL).
TRANSPORTS = ("CFN_SIGNAL", "TEMP_URL_SIGNAL", "HEAT_SIGNAL", "NO_SIGNAL", "ZAQAR_SIGNAL", "TOKEN_SIGNAL")


def signature(secret: str, stack_id: str, handle_id: str) -> str:
    return hmac.new(secret.encode(), f"{stack_id}/{handle_id}".encode(), hashlib.sha256).hexdigest()


def signal_url(base: str, stack_id: str, handle_id: str, secret: str) -> str:
    return f"{base}/orchestration/v1/signal/{stack_id}/{handle_id}?signature={signature(secret, stack_id, handle_id)}"


class WaitConditionHandle(Plugin):
    type = "OS::Heat::WaitConditionHandle"
    description = ("A URL a guest calls (POST, JSON {\"status\": \"SUCCESS\", \"data\": ...}) to signal a "
                   "WaitCondition, on the metadata address 169.254.169.254 which every tenant network reaches.")
    properties = {"signal_transport": "string"}
    defaults = {"signal_transport": "TOKEN_SIGNAL"}
    attribute_names = frozenset({"show", "token", "endpoint", "curl_cli", "signal"})

    def check(self, name: str, props: dict[str, Any]) -> None:
        super().check(name, props)
        transport = props.get("signal_transport")
        if transport is not None and transport not in TRANSPORTS:
            raise BadRequest(f"resources.{name}.properties.signal_transport: \"{str(transport)[:40]}\" is not an "
                             f"allowed value {list(TRANSPORTS)}")

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        ctx.data["secret"] = secrets.token_hex(32)
        ctx.data["transport"] = str(props.get("signal_transport") or "TOKEN_SIGNAL")
        return ctx.row_id

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        if ctx.data.get("transport") == "NO_SIGNAL":
            return {"token": None, "endpoint": None, "curl_cli": None, "signal": None, "show": {}}
        url = signal_url(GUEST_BASE, ctx.stack["id"], ctx.physical_id, ctx.data.get("secret", ""))
        # Heat's form: the template appends --data-binary '{"status": "SUCCESS", ...}' (no body: SUCCESS).
        curl = f"curl -i -X POST -H 'Content-Type: application/json' -H 'Accept: application/json' '{url}'"
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

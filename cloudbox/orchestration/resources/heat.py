"""Resources kept by the orchestration service itself: OS::Heat::RandomString, None, and the
software configs a server's user data can name (SoftwareConfig, CloudConfig, MultipartMime)."""

from __future__ import annotations

import secrets
import string
from typing import Any

from cloudbox.errors import BadRequest
from cloudbox.orchestration.resources.base import Context, Plugin

CLASSES = {"lettersdigits": string.ascii_letters + string.digits, "letters": string.ascii_letters,
           "lowercase": string.ascii_lowercase, "uppercase": string.ascii_uppercase, "digits": string.digits,
           "hexdigits": string.digits + "abcdef", "octdigits": string.octdigits}


class RandomString(Plugin):
    type = "OS::Heat::RandomString"
    description = "A random string, made once (and again only when its properties change)."
    properties = {"length": "integer", "sequence": "string", "character_classes": "list",
                  "character_sequences": "list", "salt": "string"}
    attribute_names = frozenset({"show", "value"})

    def check(self, name: str, props: dict[str, Any]) -> None:
        super().check(name, props)
        length = props.get("length", 32)
        if isinstance(length, dict):
            return  # a function, checked once resolved
        if isinstance(length, float) and length.is_integer():
            length = int(length)
        if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= 512:
            raise BadRequest(f"resources.{name}.properties.length: must be from 1 to 512")

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        length = int(props.get("length") or 32)
        pool, required = "", []
        for entry in props.get("character_classes") or []:
            chars = CLASSES.get(str(entry.get("class", "lettersdigits")), CLASSES["lettersdigits"])
            pool += chars
            required += [secrets.choice(chars) for _ in range(int(entry.get("min", 1)))]
        for entry in props.get("character_sequences") or []:
            chars = str(entry.get("sequence") or "")
            if chars:
                pool += chars
                required += [secrets.choice(chars) for _ in range(int(entry.get("min", 1)))]
        if not pool:
            pool = CLASSES.get(str(props.get("sequence") or "lettersdigits"), CLASSES["lettersdigits"])
        chars = required[:length] + [secrets.choice(pool) for _ in range(max(0, length - len(required)))]
        secrets.SystemRandom().shuffle(chars)
        ctx.data["value"] = "".join(chars)
        return ctx.data["value"]

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        return {"value": ctx.data.get("value", ""), "show": {"value": ctx.data.get("value", "")}}


class NoneResource(Plugin):
    type = "OS::Heat::None"
    description = "A resource that makes nothing (any properties are accepted)."
    update_allowed = frozenset()

    def check(self, name: str, props: dict[str, Any]) -> None:
        return None

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        return ctx.physical_name

    async def update(self, ctx: Context, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        return None


class SoftwareConfig(Plugin):
    type = "OS::Heat::SoftwareConfig"
    description = "A configuration script or document, for a server's user data."
    properties = {"config": "string", "group": "string", "inputs": "list", "outputs": "list", "options": "map"}
    attribute_names = frozenset({"show", "config"})

    def render(self, ctx: Context, props: dict[str, Any]) -> str:
        return str(props.get("config") or "")

    async def create(self, ctx: Context, props: dict[str, Any]) -> str:
        ctx.data["config"] = self.render(ctx, props)
        return ctx.row_id

    async def attributes(self, ctx: Context) -> dict[str, Any]:
        return {"config": ctx.data.get("config", ""), "show": {"id": ctx.physical_id,
                                                               "config": ctx.data.get("config", "")}}


class CloudConfig(SoftwareConfig):
    type = "OS::Heat::CloudConfig"
    description = "A cloud-init #cloud-config document, for a server's user data."
    properties = {"cloud_config": "map"}

    def render(self, ctx: Context, props: dict[str, Any]) -> str:
        import yaml  # at the first use: PyYAML is 0.7 MiB of a node's idle memory (issue 14)

        return "#cloud-config\n" + yaml.safe_dump(props.get("cloud_config") or {}, default_flow_style=False)


class MultipartMime(SoftwareConfig):
    type = "OS::Heat::MultipartMime"
    description = "Several configs in one multipart MIME user data."
    properties = {"parts": "list", "group": "string"}

    def render(self, ctx: Context, props: dict[str, Any]) -> str:
        import email.mime.multipart  # at the first use: email.mime and its policies are 0.6 MiB at idle
        import email.mime.text

        message = email.mime.multipart.MIMEMultipart()
        for index, part in enumerate(props.get("parts") or []):
            text = ctx.configs.get(str(part.get("config")), str(part.get("config") or ""))
            subtype = part.get("subtype") or ("cloud-config" if text.startswith("#cloud-config") else "x-shellscript")
            item = email.mime.text.MIMEText(text, subtype, "utf-8")
            item.add_header("Content-Disposition", "attachment", filename=part.get("filename") or f"part-{index}")
            message.attach(item)
        return message.as_string()

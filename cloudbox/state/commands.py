"""Commands: the only way cloud state changes.

A command is a frozen dataclass registered under a dotted type name whose
first part names the owning service ("identity.project.create").  Everything
apply needs (ids, timestamps, secrets, hashes) is a field, decided before the
command enters the log, so applying it is the same on every node.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar, TypeVar

from cloudbox.errors import InternalError


@dataclasses.dataclass(frozen=True)
class Command:
    TYPE: ClassVar[str] = ""

    @property
    def service(self) -> str:
        return self.TYPE.split(".", 1)[0]


REGISTRY: dict[str, type[Command]] = {}
C = TypeVar("C", bound=type[Command])


def command(type_name: str):
    """Class decorator: make a frozen dataclass command registered as ``type_name``."""

    def register(cls: C) -> C:
        if type_name in REGISTRY:
            raise ValueError(f"command type {type_name!r} registered twice")
        cls = dataclasses.dataclass(frozen=True)(cls)
        cls.TYPE = type_name
        REGISTRY[type_name] = cls
        return cls

    return register


def encode(cmd: Command) -> str:
    body = {"type": cmd.TYPE, "args": dataclasses.asdict(cmd)}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def decode(text: str) -> Command:
    try:
        body = json.loads(text)
        cls = REGISTRY[body["type"]]
        args: dict[str, Any] = body["args"]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        # JSON has no tuples; fields declared as tuples come back as lists.
        for name, value in args.items():
            if isinstance(value, list) and "tuple" in str(fields[name].type):
                args[name] = _tuples(value)
        return cls(**args)
    except (KeyError, TypeError, ValueError) as exc:
        # Only nodes write the log: a command that does not decode is our fault, never the client's.
        raise InternalError(f"undecodable command: {exc}") from exc


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value

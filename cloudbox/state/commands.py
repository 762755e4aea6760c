"""Commands: the only way cloud state changes.

A command is a frozen dataclass registered under a dotted type name whose
first part names the owning service ("identity.project.create").  Everything
apply needs (ids, timestamps, secrets, hashes) is a field, decided before the
command enters the log, so applying it is the same on every node.
"""

from __future__ import annotations

import dataclasses
import functools
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
    # The same text as json.dumps of dataclasses.asdict(cmd), without asdict's deep copy of every
    # value (JSON writes tuples as lists itself); nested dataclasses go through _plain.
    args = {name: getattr(cmd, name) for name in _field_names(type(cmd))}
    return json.dumps({"type": cmd.TYPE, "args": args}, sort_keys=True, separators=(",", ":"), default=_plain)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@functools.cache
def _field_names(cls: type[Command]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


@functools.cache
def _tuple_fields(cls: type[Command]) -> frozenset[str]:
    """The fields declared as tuples: JSON has none, so they come back as lists."""
    return frozenset(f.name for f in dataclasses.fields(cls) if "tuple" in str(f.type))


def decode(text: str) -> Command:
    try:
        body = json.loads(text)
        cls = REGISTRY[body["type"]]
        args: dict[str, Any] = body["args"]
        for name in _tuple_fields(cls) & args.keys():
            if isinstance(args[name], list):
                args[name] = _tuples(args[name])
        return cls(**args)
    except (KeyError, TypeError, ValueError) as exc:
        # Only nodes write the log: a command that does not decode is our fault, never the client's.
        raise InternalError(f"undecodable command: {exc}") from exc


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value

"""Commands: the only way cloud state changes.

A command is a frozen dataclass registered under a dotted type name whose
first part names the owning service ("identity.project.create").  Everything
apply needs (ids, timestamps, secrets, hashes) is a field, decided before the
command enters the log, so applying it is the same on every node.

Versions (rolling upgrades, issue 19): ``COMMAND_SCHEMA`` is the command schema this
code speaks; it goes up by one whenever a release adds a command kind or changes the
shape or meaning of one, and that kind is declared ``@command(name, since=N)``.  A
command of a kind newer than schema 1 carries ``"v": N`` in its log text (schema-1
texts are unchanged, so old logs replay byte for byte).  A node decodes only what it
understands: an unknown kind, or a ``v`` above its schema, raises ``NotUnderstood``,
and the engine stops applying there (it never skips).  Proposers send a command of
schema N only once every node of the cluster speaks N (``StateEngine.cluster_schema``).

History of the schema:
  1  every command kind up to the version gate (none carries "v")
  2  cluster.upgrade.finish (the cluster records that every node speaks a schema);
     volume.extend.remote (an in-use volume attached over NBD grows), volume.reimage (os-reimage)
     orchestration.resource.signal.bounded (a signal kept within its resource's bound);
     every orchestration.* kind (the landed release before the gate had no orchestration)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import reprlib
from typing import Any, ClassVar, TypeVar

from cloudbox.errors import InternalError

COMMAND_SCHEMA = 2
# Tests only: a node started with this variable speaks at most that schema, as an older release would.
SCHEMA_CAP_ENV = "CLOUDBOX_TEST_COMMAND_SCHEMA"


@functools.cache
def known_schema() -> int:
    """The command schema this process speaks (COMMAND_SCHEMA, or less under the tests' cap)."""
    cap = os.environ.get(SCHEMA_CAP_ENV, "")
    return min(COMMAND_SCHEMA, int(cap)) if cap.isdigit() and int(cap) >= 1 else COMMAND_SCHEMA


class NotUnderstood(InternalError):
    """A log entry this node cannot apply: its kind is unknown here, or newer than this node's schema."""

    def __init__(self, kind: str, version: int, known: int, why: str) -> None:
        super().__init__(why)
        self.kind, self.version, self.known = kind, version, known


@dataclasses.dataclass(frozen=True)
class Command:
    TYPE: ClassVar[str] = ""
    SINCE: ClassVar[int] = 1  # the command schema that introduced this kind in its current shape

    @property
    def service(self) -> str:
        return self.TYPE.split(".", 1)[0]


# What dataclass(frozen=True) writes into each of ~200 command classes, written once here: the
# generated copies cost ~1.4 MiB of idle memory (issue 14).  Same answers: equal when of the same
# class with equal fields, the hash of the field tuple, Kind(field=value, ...), and no field
# assigned or deleted after __init__ (which sets them through object.__setattr__).
def _values(cmd: Command) -> tuple[Any, ...]:
    return tuple([getattr(cmd, name) for name in _field_names(type(cmd))])


def _eq(self: Command, other: object) -> bool:
    if other.__class__ is self.__class__:
        return _values(self) == _values(other)  # type: ignore[arg-type]
    return NotImplemented


def _hash(self: Command) -> int:
    return hash(_values(self))


@reprlib.recursive_repr()
def _repr(self: Command) -> str:
    fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in _field_names(type(self)))
    return f"{type(self).__qualname__}({fields})"


def _setattr(self: Command, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Command, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


SHARED = {"__eq__": _eq, "__hash__": _hash, "__repr__": _repr, "__setattr__": _setattr, "__delattr__": _delattr}
for _name, _method in SHARED.items():
    _method.__qualname__ = f"Command.{_name}"
    setattr(Command, _name, _method)


REGISTRY: dict[str, type[Command]] = {}
C = TypeVar("C", bound=type[Command])


def command(type_name: str, since: int = 1):
    """Class decorator: make a frozen dataclass command registered as ``type_name``; ``since``
    is the command schema that introduced it (in its current shape)."""

    def register(cls: C) -> C:
        if type_name in REGISTRY:
            raise ValueError(f"command type {type_name!r} registered twice")
        if not 1 <= since <= COMMAND_SCHEMA:
            raise ValueError(f"command {type_name!r}: since={since} is outside schemas 1..{COMMAND_SCHEMA}")
        # Only __init__ is generated per class (it must set each field); the rest is Command's.
        cls = dataclasses.dataclass(frozen=True, eq=False, repr=False)(cls)
        del cls.__setattr__, cls.__delattr__  # frozen=True cannot be asked not to write these
        cls.TYPE = type_name
        cls.SINCE = since
        REGISTRY[type_name] = cls
        return cls

    return register


def encode(cmd: Command) -> str:
    # The same text as json.dumps of dataclasses.asdict(cmd), without asdict's deep copy of every
    # value (JSON writes tuples as lists itself); nested dataclasses go through _plain.
    args = {name: getattr(cmd, name) for name in _field_names(type(cmd))}
    body: dict[str, Any] = {"type": cmd.TYPE, "args": args}
    if cmd.SINCE > 1:  # schema-1 texts stay as they always were
        body["v"] = cmd.SINCE
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=_plain)


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
    """The command of a log text; NotUnderstood when this node does not know its kind or version."""
    try:
        body = json.loads(text)
        kind, version = body["type"], body.get("v", 1)
    except (KeyError, TypeError, ValueError) as exc:
        raise InternalError(f"undecodable command: {exc}") from exc
    known = known_schema()
    cls = REGISTRY.get(kind) if isinstance(kind, str) else None
    # A text older than its kind's current shape (v < SINCE) is read by this code: whoever
    # changes a kind keeps its earlier texts decodable (new fields get defaults).
    if cls is None or cls.SINCE > known or not isinstance(version, int) or version > cls.SINCE:
        why = (f"command {kind!r} is unknown to this node" if cls is None or cls.SINCE > known else
               f"command {kind!r} is of schema {version}, newer than this node's (it knows {cls.SINCE})")
        raise NotUnderstood(str(kind), version if isinstance(version, int) else 0, known, why)
    try:
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

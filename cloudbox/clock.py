"""Timestamps as the APIs write them: one place for formatting and parsing UTC times.

State keeps times as ISO 8601 text decided before a command enters the log; each API
renders them in its own precision: Keystone with microseconds, Nova, Glance and Neutron
in whole seconds.  Pure functions, no I/O except ``now_iso`` reading the clock.
"""

from __future__ import annotations

import datetime as dt
import time

_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
_MICROSECONDS = "%Y-%m-%dT%H:%M:%S.%fZ"


def iso(ts: float, *, micro: bool = False) -> str:
    """A unix time as UTC ISO 8601 with a Z: whole seconds, or microseconds with ``micro``."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime(_MICROSECONDS if micro else _SECONDS)


def parse_iso(text: str) -> float:
    """A unix time from ISO 8601 text; a time without a zone is UTC.  Raises ValueError."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


def now_iso(*, micro: bool = False) -> str:
    """The current time in the format of ``iso``."""
    return iso(time.time(), micro=micro)

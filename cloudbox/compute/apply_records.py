"""Apply of compute's records commands (commands_records.py): instance actions and server passwords."""

from __future__ import annotations

from cloudbox.state.migrations import Handler

HANDLERS: dict[type, Handler] = {}

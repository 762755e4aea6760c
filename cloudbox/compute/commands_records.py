"""The replicated commands of compute's records: instance actions and server passwords."""

from __future__ import annotations

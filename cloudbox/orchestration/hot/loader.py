"""Text to data: JSON or YAML, the way Heat reads them.

YAML timestamps stay text (``heat_template_version: 2016-04-08`` is the string
``"2016-04-08"``, not a date), and only the safe YAML subset is read. JSON is tried
first, as Heat does, so a JSON body never meets YAML's rules.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from cloudbox.orchestration.hot.errors import HotError

MAX_TEMPLATE_SIZE = 524288  # bytes; Heat's default max_template_size


class _Loader(yaml.SafeLoader):
    """SafeLoader whose timestamps are strings."""


def _as_text(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _as_text)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def load_document(body: str | bytes, what: str = "template") -> dict[str, Any]:
    """A template or environment body as a dict, or Heat's 400 for the parse error."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HotError(f"Error parsing {what}: not UTF-8 text ({exc.reason})") from exc
    if len(body) > MAX_TEMPLATE_SIZE:
        raise HotError(f"Template size ({len(body)} bytes) exceeds maximum allowed size "
                       f"({MAX_TEMPLATE_SIZE} bytes).")
    try:
        data = json.loads(body)
    except ValueError:
        try:
            data = load_yaml(body)
        except yaml.YAMLError as exc:
            root = "[root stack]" if what == "template" else what
            raise HotError(f"Error parsing {what} {root} {exc}") from exc
        if data is None:
            data = {}
    if not isinstance(data, dict):
        if what == "template":
            raise HotError("The template is not a JSON object or YAML mapping.")
        raise HotError(f"The {what} is not a JSON object or YAML mapping.")
    return data

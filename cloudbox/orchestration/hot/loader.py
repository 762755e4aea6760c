"""Text to data: JSON or YAML, the way Heat reads them.

YAML timestamps stay text (``heat_template_version: 2016-04-08`` is the string
``"2016-04-08"``, not a date), and only the safe YAML subset is read. JSON is tried
first, as Heat does, so a JSON body never meets YAML's rules.
"""

from __future__ import annotations

import datetime
import functools
import json
from typing import Any

from cloudbox.orchestration.hot.errors import HotError

MAX_TEMPLATE_SIZE = 524288  # bytes; Heat's default max_template_size
# Nesting no real template nears (tripleo's deepest are ~20 levels); the library walks
# templates recursively, so a deeper document is refused before it is walked.
MAX_DEPTH = 100


@functools.cache
def _loader() -> Any:
    """SafeLoader whose timestamps are strings; PyYAML is imported at the first template read, not
    with the node (0.7 MiB of its idle memory, issue 14)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def as_text(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        return loader.construct_scalar(node)  # type: ignore[arg-type]

    Loader.add_constructor("tag:yaml.org,2002:timestamp", as_text)
    return Loader


def load_yaml(text: str) -> Any:
    import yaml

    return yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass


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
    except RecursionError:
        raise HotError(f"The {what} is nested more than {MAX_DEPTH} levels deep.") from None
    except ValueError:
        import yaml

        try:
            data = load_yaml(body)
        except yaml.YAMLError as exc:
            root = "[root stack]" if what == "template" else what
            raise HotError(f"Error parsing {what} {root} {exc}") from exc
        except RecursionError:
            raise HotError(f"The {what} is nested more than {MAX_DEPTH} levels deep.") from None
        if data is None:
            data = {}
    check_depth(data, what)
    if not isinstance(data, dict):
        if what == "template":
            raise HotError("The template is not a JSON object or YAML mapping.")
        raise HotError(f"The {what} is not a JSON object or YAML mapping.")
    return data


def check_depth(data: Any, what: str = "template") -> None:
    """Refuse a document nested deeper than MAX_DEPTH (checked without recursion), or
    holding a value JSON cannot carry."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise HotError(f"The {what} is nested more than {MAX_DEPTH} levels deep.")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
            stack.extend((k, depth + 1) for k in node)
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif not isinstance(node, (str, int, float, bool, datetime.date)) and node is not None:
            # YAML's !!binary and !!set: nothing JSON (the API, the stored stack) can carry;
            # a date (from a caller's own YAML) is read as text where it matters
            raise HotError(f"The {what} holds a {type(node).__name__} value; only JSON's kinds "
                           "of value are allowed.")

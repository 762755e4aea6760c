"""``allowed_pattern`` matching that no template can turn into a stalled node.

Heat matches with Python's ``re``, which backtracks: ``(a+)+$`` against forty ``a``
and a ``!`` runs for minutes, and a node runs every request in one process. So a
pattern runs with RE2 (linear time) whenever RE2 reads it. RE2 has no lookaround
and no backreferences, which real templates use for password rules
(``(?=.*\\d)(?=.*[A-Z])...``); those patterns run with ``re``, but only when no
repetition in them holds another (the shape that backtracks exponentially), and
only on values of at most MAX_FALLBACK_LENGTH characters.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

MAX_FALLBACK_LENGTH = 4096

Matcher = Callable[[str], bool]


class PatternError(ValueError):
    """A pattern this cloud will not run; the text says why."""


def _re2_text(spec: str) -> str:
    """Python's escapes RE2 spells differently: ``\\uXXXX`` -> ``\\x{XXXX}``, ``\\Z`` -> ``\\z``."""
    spec = re.sub(r"(?<!\\)((?:\\\\)*)\\u([0-9a-fA-F]{4})", r"\1\\x{\2}", spec)
    spec = re.sub(r"(?<!\\)((?:\\\\)*)\\U([0-9a-fA-F]{8})", r"\1\\x{\2}", spec)
    return re.sub(r"(?<!\\)((?:\\\\)*)\\Z", r"\1\\z", spec)


@functools.lru_cache(maxsize=256)
def matcher(spec: str) -> Matcher:
    """A test of whether a whole value matches ``spec`` as Heat's does: the first match
    from the start (``re.match``) must cover the value. PatternError if it cannot run."""
    import re2  # at the first pattern: RE2's library is ~1.6 MiB of a node's idle memory (issue 14)

    options = re2.Options()
    options.log_errors = False
    try:
        compiled: Any = re2.compile(_re2_text(spec), options=options)
    except re2.error:
        return _fallback(spec)

    def test(text: str) -> bool:
        found = compiled.match(text)
        return found is not None and found.end() == len(text)

    return test


def _fallback(spec: str) -> Matcher:
    try:
        compiled = re.compile(spec)
        tree = re._parser.parse(spec)  # type: ignore[attr-defined]
    except (re.error, RecursionError) as exc:
        raise PatternError(str(exc)) from None
    if _nested_repeat(tree, inside=False):
        raise PatternError("it repeats a part that itself repeats, and it uses lookaround or "
                           "backreferences, which RE2 (linear time) cannot run")

    def test(text: str) -> bool:
        if len(text) > MAX_FALLBACK_LENGTH:
            raise PatternError(f"values over {MAX_FALLBACK_LENGTH} characters are not matched against "
                               "a pattern with lookaround or backreferences")
        found = compiled.match(text)
        return found is not None and found.end() == len(text)

    return test


_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}


def _nested_repeat(tree: Any, inside: bool) -> bool:
    """Whether an unbounded-or-many repetition holds another one (star height over 1)."""
    for op, arg in tree:
        name = str(op)
        if name in _REPEATS:
            low, high, sub = arg
            repeats = high is re._constants.MAXREPEAT or high > 1  # type: ignore[attr-defined]
            if repeats and inside:
                return True
            if _nested_repeat(sub, inside or repeats):
                return True
        elif name == "SUBPATTERN":
            if _nested_repeat(arg[-1], inside):
                return True
        elif name == "BRANCH":
            if any(_nested_repeat(branch, inside) for branch in arg[1]):
                return True
        elif name in ("ASSERT", "ASSERT_NOT"):
            if _nested_repeat(arg[1], inside):
                return True
        elif name == "GROUPREF_EXISTS":
            if any(part is not None and _nested_repeat(part, inside) for part in arg[1:]):
                return True
    return False

"""Schemathesis hooks for tests/test_fuzz.py, loaded by its CLI through SCHEMATHESIS_HOOKS.

Two environment variables, set by the test:

- CLOUDBOX_FUZZ_KNOWN (a JSON object): ids of real resources the test made, by the path
  segment before the parameter ("servers" → server ids, "tags" → tag names). A path
  parameter gets one of them about half the time, so the fuzzer reaches the answers a real
  resource gives (its shows, updates, actions) and not only 404s. A key written "{name}"
  names the parameter itself, for segments that carry more than a parameter (Swift's
  "AUTH_{account}") and parameters that follow another one ("{container}/{object}").
- CLOUDBOX_FUZZ_PROTECTED (a JSON list): what the run's own access rests on: its token, its
  user, its project, its domain and its role. Stateful testing reuses ids it saw in
  responses, and the admin's are in every listing; a request naming one of them is sent
  with a stand-in instead (which answers 404), because changing the admin's password,
  disabling its domain or revoking its role would end the run's access and turn every later
  answer into a 401 that tests nothing. Swift's account parameter is the project's id and is
  not replaced: no request to an account can take the project's access away.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import schemathesis
from hypothesis import strategies as st

# Glance's JSON-patch media types carry JSON.
for _media in ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch"):
    schemathesis.serializer.alias(_media, "application/json")

KNOWN: dict[str, list[Any]] = json.loads(os.environ.get("CLOUDBOX_FUZZ_KNOWN", "{}"))
PROTECTED = frozenset(json.loads(os.environ.get("CLOUDBOX_FUZZ_PROTECTED", "[]")))
STAND_IN = "fuzz-protected-stand-in"
_PARAM = re.compile(r"{(\w+)}")
UNPROTECTED = frozenset({"account"})


def known_values(path: str) -> dict[str, list[Any]]:
    """Path parameter → the real values the test made for it, found by the segment before it."""
    segments = path.split("/")
    out: dict[str, list[Any]] = {}
    for before, segment in zip(segments, segments[1:]):
        param = _PARAM.fullmatch(segment)
        if param and KNOWN.get(before):
            out[param.group(1)] = KNOWN[before]
    for name in _PARAM.findall(path):
        if KNOWN.get("{%s}" % name):
            out[name] = KNOWN["{%s}" % name]
    return out


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> st.SearchStrategy:
    choices = known_values(context.operation.path) if context.operation is not None else {}
    if not choices or not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    return st.fixed_dictionaries({
        name: st.one_of(st.just(value), st.sampled_from(choices[name])) if name in choices else st.just(value)
        for name, value in path_parameters.items()
    })


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    for location in (case.path_parameters, case.headers):
        for name, value in list((location or {}).items()):
            if name.lower() != "x-auth-token" and name not in UNPROTECTED and str(value) in PROTECTED:
                location[name] = STAND_IN

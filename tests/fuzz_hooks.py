"""Schemathesis hooks for tests/test_fuzz.py, loaded by its CLI through SCHEMATHESIS_HOOKS.

CLOUDBOX_FUZZ_PROTECTED (a JSON list) names what the fuzzer's own access rests on: its
token, its user, its project, its domain and its role. Stateful testing reuses ids it saw
in responses, and the admin user, project and domain are in every listing; a request
naming one of them is sent with a stand-in instead (which answers 404), because changing
the admin's password, disabling its domain or revoking its role would end the run's
access and turn every later answer into a 401 that tests nothing.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis

# Glance's JSON-patch media types carry JSON.
for _media in ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch"):
    schemathesis.serializer.alias(_media, "application/json")

PROTECTED = frozenset(json.loads(os.environ.get("CLOUDBOX_FUZZ_PROTECTED", "[]")))
STAND_IN = "fuzz-protected-stand-in"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    for location in (case.path_parameters, case.headers):
        for name, value in list((location or {}).items()):
            if name.lower() != "x-auth-token" and str(value) in PROTECTED:
                location[name] = STAND_IN

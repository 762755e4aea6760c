"""Random templates through the whole HOT library: whatever a client sends, the answer is a
value or a HotError (a 400), never another exception (a 500). Seeded, so a failure repeats."""

from __future__ import annotations

import random
from typing import Any

import pytest

from cloudbox.orchestration import hot
from cloudbox.orchestration.hot.versions import _CONDITION_FUNCTIONS, _FUNCTIONS, DATES

NAMES = [*_FUNCTIONS, *_CONDITION_FUNCTIONS, "template", "params", "for_each", "permutations"]
KEYS = ["template", "params", "for_each", "keys", "values", "scheme", "host", "port", "query", "path",
        "permutations", "a"]
SCALARS = [None, True, False, 0, -1, 3.5, "", "a", "%x%", "yes", "p", "r", "s", "c", [], {}, "1,2",
           "sha256", "http"]


def junk(rnd: random.Random, depth: int = 0) -> Any:
    roll = rnd.random()
    if depth > 4 or roll < 0.3:
        return rnd.choice(SCALARS)
    if roll < 0.55:
        return [junk(rnd, depth + 1) for _ in range(rnd.randint(0, 3))]
    if roll < 0.85:
        return {rnd.choice(NAMES): junk(rnd, depth + 1)}
    return {rnd.choice(KEYS): junk(rnd, depth + 1) for _ in range(rnd.randint(1, 3))}


def one_stack(rnd: random.Random) -> None:
    version = rnd.choice(DATES)
    kind, sensible = rnd.choice([("string", "a"), ("number", 2), ("json", {"a": [1]}),
                                 ("comma_delimited_list", "a,b"), ("boolean", True)])
    default = junk(rnd, 3) if rnd.random() < 0.3 else sensible
    body: dict[str, Any] = {
        "heat_template_version": version,
        "parameters": {"p": {"type": kind, "default": default}},
        "resources": {"r": {"type": "T", "properties": {"x": junk(rnd)}, "metadata": {"m": junk(rnd)}},
                      "s": {"type": "T"}},
        "outputs": {"o": {"value": junk(rnd)}},
    }
    if version >= "2016-10-14":
        body["conditions"] = {"c": junk(rnd, 2)}
    template = hot.parse_template(body)
    params = template.parameters(None, {"p": junk(rnd, 3)} if rnd.random() < 0.2 else {},
                                 validate_values=rnd.random() < 0.5)
    conditions = template.conditions(params)
    defs = template.resources(params, conditions)
    hot.order(defs)
    ctx = hot.StackContext(params.values, conditions, resource_id_of=lambda name: f"{name}-id",
                           attribute_of=lambda name, path: {"a": [1, {"b": "c"}]}, version=template.version)
    for name, definition in defs.items():
        hot.resolve(definition.properties, ctx, ["resources", name, "properties"])
        hot.resolve(definition.metadata, ctx, ["resources", name, "metadata"])
    for name, output in template.outputs(params, conditions).items():
        hot.resolve(output.value, ctx, ["outputs", name, "value"])
    hot.validate(template)
    hot.diff(defs, defs, lambda kind: {"x"})


@pytest.mark.parametrize("seed", range(4))
def test_random_templates_give_values_or_400s(seed):
    rnd = random.Random(seed)
    answered = refused = 0
    for _ in range(1500):
        try:
            one_stack(rnd)
            answered += 1
        except hot.HotError as exc:
            assert exc.status == 400 and exc.message
            refused += 1
    assert answered > 100 and refused > 100  # both kinds of input were really exercised

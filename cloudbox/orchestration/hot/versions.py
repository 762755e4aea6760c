"""Template versions and what each one allows (sections, functions, keys).

A version is a date; later versions are supersets of earlier ones except for the
CloudFormation-style functions, which 2014-10-16 dropped (all but ``Fn::Select``,
dropped in 2015-10-15). A function a version lacks is refused where it is used,
with Heat's wording, so a template written for an older Heat fails the same way.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass

from cloudbox.orchestration.hot.errors import HotError

VERSION_KEY = "heat_template_version"

# (date, release alias)
_DATES: tuple[tuple[str, str | None], ...] = (
    ("2013-05-23", None),
    ("2014-10-16", None),
    ("2015-04-30", None),
    ("2015-10-15", None),
    ("2016-04-08", None),
    ("2016-10-14", "newton"),
    ("2017-02-24", "ocata"),
    ("2017-09-01", "pike"),
    ("2018-03-02", "queens"),
    ("2018-08-31", "rocky"),
    ("2021-04-16", "wallaby"),
)
DATES: tuple[str, ...] = tuple(d for d, _ in _DATES)
ALIASES: dict[str, str] = {a: d for d, a in _DATES if a}

# function name -> (first version that has it, last version that has it or None, description)
_FUNCTIONS: dict[str, tuple[str, str | None, str]] = {
    "get_attr": ("2013-05-23", None, "A function for resolving resource attributes."),
    "get_file": ("2013-05-23", None, "A function for including a file inline."),
    "get_param": ("2013-05-23", None, "A function for resolving parameter references."),
    "get_resource": ("2013-05-23", None, "A function for resolving resource references."),
    "list_join": ("2013-05-23", None, "A function for joining strings."),
    "resource_facade": ("2013-05-23", None, "A function for retrieving resource data of the parent stack."),
    "str_replace": ("2013-05-23", None, "A function for performing string substitutions."),
    "Fn::Select": ("2013-05-23", "2015-04-30", "A function for selecting an item from a list or map."),
    "Fn::GetAZs": ("2013-05-23", "2013-05-23", "A function for retrieving the availability zones."),
    "Fn::Join": ("2013-05-23", "2013-05-23", "A function for joining strings."),
    "Fn::Split": ("2013-05-23", "2013-05-23", "A function for splitting strings."),
    "Fn::Replace": ("2013-05-23", "2013-05-23", "A function for performing string substitutions."),
    "Fn::Base64": ("2013-05-23", "2013-05-23", "A placeholder function for converting to base64."),
    "Fn::MemberListToMap": ("2013-05-23", "2013-05-23", "A function to convert lists with enumerated keys and values to mapping."),
    "Fn::ResourceFacade": ("2013-05-23", "2013-05-23", "A function for retrieving resource data of the parent stack."),
    "Ref": ("2013-05-23", "2013-05-23", "A function for resolving parameters or resource references."),
    "repeat": ("2015-04-30", None, "A function for iterating over a list of items."),
    "digest": ("2015-04-30", None, "A function for performing digest operations."),
    "str_split": ("2015-10-15", None, "A function for splitting delimited strings into a list."),
    "map_merge": ("2016-04-08", None, "A function for merging maps."),
    "yaql": ("2016-10-14", None, "A function for executing a yaql expression."),
    "map_replace": ("2016-10-14", None, "A function for performing substitutions on maps."),
    "if": ("2016-10-14", None, "A function to return corresponding value based on condition evaluation."),
    "filter": ("2017-02-24", None, "A function for filtering out values from lists."),
    "str_replace_strict": ("2017-02-24", None, "A function for performing string substitutions, failing if a param is unused."),
    "make_url": ("2017-09-01", None, "A function for constructing a URL from its components."),
    "list_concat": ("2017-09-01", None, "A function for concatenating lists."),
    "str_replace_vstrict": ("2017-09-01", None, "A function for performing string substitutions, failing on unused or empty params."),
    "list_concat_unique": ("2017-09-01", None, "A function for concatenating lists, keeping unique items."),
    "contains": ("2017-09-01", None, "A function for checking whether a value is in a sequence."),
}

# condition function name -> (first version, description); conditions exist from 2016-10-14
_CONDITION_FUNCTIONS: dict[str, tuple[str, str]] = {
    "get_param": ("2016-10-14", "A function for resolving parameter references."),
    "equals": ("2016-10-14", "A function for comparing whether two values are equal."),
    "not": ("2016-10-14", "A function that acts as a NOT operator on a condition."),
    "and": ("2016-10-14", "A function that acts as an AND operator on conditions."),
    "or": ("2016-10-14", "A function that acts as an OR operator on conditions."),
    "yaql": ("2017-09-01", "A function for executing a yaql expression."),
    "contains": ("2017-09-01", "A function for checking whether a value is in a sequence."),
}


# Asked for every map a template holds: computed once per version.
@functools.cache
def _functions(date: str) -> frozenset[str]:
    return frozenset(name for name, (first, last, _) in _FUNCTIONS.items()
                     if first <= date and (last is None or date <= last))


@functools.cache
def _known_functions(date: str) -> frozenset[str]:
    return frozenset(name for name, (first, _, _) in _FUNCTIONS.items() if first <= date)


@functools.cache
def _condition_functions(date: str) -> frozenset[str]:
    return frozenset(n for n, (first, _) in _CONDITION_FUNCTIONS.items() if first <= date)


@dataclass(frozen=True)
class Version:
    """What one ``heat_template_version`` allows."""

    date: str

    def at_least(self, date: str) -> bool:
        return self.date >= date

    @property
    def alias(self) -> str | None:
        return next((a for a, d in ALIASES.items() if d == self.date), None)

    @property
    def functions(self) -> frozenset[str]:
        return _functions(self.date)

    @property
    def known_functions(self) -> frozenset[str]:
        """Every function name Heat recognises in this version, removed ones included."""
        return _known_functions(self.date)

    @property
    def condition_functions(self) -> frozenset[str]:
        return _condition_functions(self.date)

    @property
    def sections(self) -> frozenset[str]:
        base = {VERSION_KEY, "description", "parameter_groups", "parameters", "resources", "outputs"}
        if self.at_least("2016-10-14"):
            base.add("conditions")
        return frozenset(base)

    @property
    def resource_keys(self) -> frozenset[str]:
        keys = {"type", "properties", "metadata", "depends_on", "deletion_policy",
                "update_policy", "description"}
        if self.at_least("2016-10-14"):
            keys |= {"external_id", "condition"}
        return frozenset(keys)

    @property
    def output_keys(self) -> frozenset[str]:
        keys = {"description", "value"}
        if self.at_least("2016-10-14"):
            keys.add("condition")
        return frozenset(keys)

    @property
    def parameter_keys(self) -> frozenset[str]:
        keys = {"type", "description", "default", "schema", "constraints", "hidden", "label",
                "immutable"}
        if self.at_least("2018-03-02"):
            keys.add("tags")
        return frozenset(keys)

    @property
    def constraint_kinds(self) -> frozenset[str]:
        kinds = {"length", "range", "allowed_values", "allowed_pattern", "custom_constraint"}
        if self.at_least("2017-02-24"):
            kinds.add("modulo")
        return frozenset(kinds)

    @property
    def deletion_policies(self) -> dict[str, str]:
        policies = {"Delete": "Delete", "Retain": "Retain", "Snapshot": "Snapshot"}
        if self.at_least("2016-10-14"):
            policies.update({"delete": "Delete", "retain": "Retain", "snapshot": "Snapshot"})
        return policies


LATEST = Version(DATES[-1])


def version_text(raw: object) -> str:
    """The version as written: YAML dates (when a caller parsed YAML itself) become text."""
    if isinstance(raw, (datetime.date, datetime.datetime)):
        return raw.strftime("%Y-%m-%d")
    return str(raw)


def find_version(raw: object) -> Version:
    """The Version for a ``heat_template_version`` value, or Heat's 400."""
    text = version_text(raw)
    date = ALIASES.get(text, text)
    if date not in DATES:
        available = ", ".join(sorted([*DATES, *ALIASES]))
        raise HotError(
            f'The template version is invalid: "{VERSION_KEY}: {text}". '
            f'"{VERSION_KEY}" should be one of: {available}'
        )
    return Version(date)


# The body of GET /template_versions (Heat lists aliases beside each date).
TEMPLATE_VERSIONS: list[dict[str, object]] = [
    {"version": f"{VERSION_KEY}.{d}", "type": "hot", "aliases": [f"{VERSION_KEY}.{a}"] if a else []}
    for d, a in _DATES
]


def template_functions(raw_version: str, with_condition_func: bool = False) -> list[dict[str, str]]:
    """The body items of GET /template_versions/{v}/functions, sorted by name.

    ``raw_version`` is ``heat_template_version.2016-10-14`` (or an alias); a bare date
    is accepted too. The caller answers 404 itself for a version it does not know.
    """
    text = raw_version.split(".", 1)[1] if raw_version.startswith(VERSION_KEY + ".") else raw_version
    version = find_version(text)
    if with_condition_func:
        return [{"functions": n, "description": _CONDITION_FUNCTIONS[n][1]}
                for n in sorted(version.condition_functions)]
    return [{"functions": n, "description": _FUNCTIONS[n][2]} for n in sorted(version.functions)]

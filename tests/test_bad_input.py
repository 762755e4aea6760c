"""Bad input refused where every service's bodies are parsed (issue 12, fault 2).

One parser (``cloudbox.api.routes.parse_json``) serves every service, so what it refuses is
refused by all: JSON nested 1,000 deep (RecursionError, a 500, before), strings holding a
lone UTF-16 surrogate (a UnicodeEncodeError in apply), NaN and the infinities (not JSON,
though Python's json takes them), numbers that overflow to infinity or past 64 bits. Each is a
400 with a clear message, and nothing is made. A 400 quotes only a short prefix of a value.
"""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest

from cloudbox.api.errors import MAX_MESSAGE
from tests.cloud import Cloud

# service -> (collection to POST to, body with %s where a raw JSON value goes, list key, style)
CREATES: dict[str, tuple[str, str, str | None, str]] = {
    "project": ("/identity/v3/projects", '{"project": {"name": %s, "domain_id": "default"}}', "projects", "keystone"),
    "flavor": ("/compute/v2.1/flavors", '{"flavor": {"name": "f", "ram": 64, "vcpus": 1, "disk": 1, "rxtx_factor": %s}}',
               "flavors", "nova"),
    "keypair": ("/compute/v2.1/os-keypairs", '{"keypair": {"name": %s}}', "keypairs", "nova"),
    "image": ("/image/v2/images", '{"name": %s, "disk_format": "raw", "container_format": "bare"}', "images", "glance"),
    "network": ("/network/v2.0/networks", '{"network": {"name": %s}}', "networks", "neutron"),
    "join-token": ("/cloudbox/v1/cluster/join-tokens", '{"name": %s}', None, "cloudbox"),
}
BAD_VALUES = {
    "nested 1,000 deep": ("[" * 1000 + "]" * 1000, "nested deeper than 64 levels"),
    "nested 65 deep": ('{"a":' * 65 + "1" + "}" * 65, "nested deeper than 64 levels"),
    "lone high surrogate": ('"x\\ud800y"', "lone UTF-16 surrogate"),
    "lone low surrogate in a key": ('{"x\\udc00": 1}', "lone UTF-16 surrogate"),
    "NaN": ("NaN", "NaN is not a JSON number"),
    "Infinity": ("Infinity", "Infinity is not a JSON number"),
    "-Infinity": ("-Infinity", "-Infinity is not a JSON number"),
    "1e999": ("1e999", "the number '1e999' is out of range"),
    "-1e999": ("-1e999", "the number '-1e999' is out of range"),
    "2**70": (str(2**70), "is out of range (64 bits at most)"),
    "5,000 digits": ("9" * 5000, "is out of range (64 bits at most)"),
}


def message_of(r: httpx.Response, style: str) -> str:
    body = r.json()
    if style == "nova":
        return body["badRequest"]["message"]
    if style == "neutron":
        return body["NeutronError"]["message"]
    return body["error"]["message"]


@pytest.fixture(scope="module")
def admin(cloud: Cloud) -> Iterator[httpx.Client]:
    with cloud.client(cloud.token()) as client:
        yield client


def count(admin: httpx.Client, collection: str, key: str | None) -> int | None:
    if key is None:
        return None
    r = admin.get(collection, params={"limit": 1000})
    assert r.status_code == 200, r.text
    return len(r.json()[key])


@pytest.mark.parametrize("service", list(CREATES))
def test_values_json_does_not_allow_are_refused_with_400_and_change_nothing(service: str, admin: httpx.Client) -> None:
    collection, template, key, style = CREATES[service]
    before = count(admin, collection, key)
    for name, (value, expected) in BAD_VALUES.items():
        r = admin.post(collection, content=(template % value).encode(), headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (name, r.text)
        assert expected in message_of(r, style), (name, r.text)
    assert count(admin, collection, key) == before


def test_a_surrogate_pair_is_text_and_accepted(admin: httpx.Client) -> None:
    """An escaped pair (an emoji) is valid UTF-16 and valid Unicode: only lone halves are refused."""
    r = admin.post("/network/v2.0/networks", content=b'{"network": {"name": "net-\\ud83d\\ude00"}}',
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert r.json()["network"]["name"] == "net-\U0001f600"
    assert admin.delete(f"/network/v2.0/networks/{r.json()['network']['id']}").status_code == 204


@pytest.mark.parametrize("service", ["project", "keypair", "image", "network", "join-token"])
def test_a_400_quotes_only_a_prefix_of_a_long_value(service: str, admin: httpx.Client) -> None:
    collection, template, key, style = CREATES[service]
    before = count(admin, collection, key)
    r = admin.post(collection, content=(template % ('"' + "a" * 100_000 + '"')).encode(),
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text[:300]
    message = message_of(r, style)
    assert len(message) <= MAX_MESSAGE and "a" * 200 not in message, message
    assert "name" in message
    assert count(admin, collection, key) == before


@pytest.mark.parametrize("path", ["/identity/v3/projects/%ED%A0%80", "/compute/v2.1/servers/%ED%A0%80",
                                  "/image/v2/images/%ED%A0%80", "/network/v2.0/networks/%ED%A0%80"])
def test_bytes_that_are_no_utf8_in_a_path_are_a_404(path: str, admin: httpx.Client) -> None:
    """Percent-escapes of a surrogate's bytes decode to U+FFFD, never to a lone surrogate."""
    assert admin.get(path).status_code == 404


@pytest.mark.parametrize("collection,key", [("/identity/v3/projects", "projects"), ("/compute/v2.1/servers", "servers"),
                                            ("/image/v2/images", "images"), ("/network/v2.0/networks", "networks")])
def test_bytes_that_are_no_utf8_in_a_query_match_nothing(collection: str, key: str, admin: httpx.Client) -> None:
    r = admin.get(collection + "?name=%ED%A0%80")
    assert r.status_code == 200, r.text
    assert r.json()[key] == []


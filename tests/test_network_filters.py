"""Every list endpoint of the network API with every filter and list parameter it takes, over real
HTTPS: bad or odd values get a 400, never a 5xx (a filter once named a column its table lacks).

The endpoints come from the API's own routes, the filters from ``core.FILTERS``, so a new
endpoint or filter is checked without editing this file.
"""

from __future__ import annotations

import uuid
from unittest.mock import MagicMock

import httpx
import pytest

from cloudbox.network import api, core, reads
from tests.cloud import Cloud
from tests.compute_helpers import new_project_user
from tests.test_network_api import N, err, make_net, ok

# Values that once broke something somewhere: plain text, booleans and numbers, empty, a lone
# surrogate (as %-encoded UTF-8 of U+D800, which is no valid UTF-8), very long text, a filter
# of fixed_ips, a negative and a huge number.
VALUES = ("x", "true", "1", "", "%ED%A0%80", "y" * 5000, "ip_address=10.0.0.5", "-1", "99999999999999999999999")
LIST_PARAMS = ("tags", "tags-any", "not-tags", "not-tags-any", "fixed_ips", "fields", "sort_key", "sort_dir", "limit",
               "marker", "page_reverse")


def list_endpoints() -> dict[str, dict[str, core.Field]]:
    """Collection path under /v2.0 -> its filters, for every GET route of the API that lists."""
    spec = api.build(MagicMock())
    tables = {collection: table for collection, (table, _) in api.COLLECTIONS.items()}
    out = {}
    for route in spec.routes:
        if route.method == "GET" and route.query == api.LIST_QUERY:
            collection = route.path.removeprefix(f"{api.V2}/")
            out[collection] = (reads.AVAILABILITY_FILTERS if collection == "network-ip-availabilities"
                               else core.FILTERS[tables[collection]])
    return out


def test_every_list_endpoint_is_checked() -> None:
    assert set(list_endpoints()) == {*api.COLLECTIONS, "network-ip-availabilities"}


@pytest.fixture(scope="module")
def clients(cloud: Cloud):
    """The cloud admin and a project member (with a network, so there is something to filter)."""
    with cloud.client(cloud.token()) as admin:
        _, _, token = new_project_user(cloud, admin)
        with cloud.client(token) as member:
            make_net(member, "10.123.0.0/24")
            yield admin, member


@pytest.mark.parametrize("collection", sorted(list_endpoints()))
def test_no_filter_of_a_list_answers_5xx(clients: tuple[httpx.Client, httpx.Client], collection: str) -> None:
    admin, member = clients
    names = [*list_endpoints()[collection], *LIST_PARAMS]
    # The member meets every value; the cloud admin (who sees every row: other SQL) the plain ones.
    for client, values in ((member, VALUES), (admin, VALUES[:3])):
        for name in names:
            for value in values:
                r = client.get(f"{N}/{collection}?{name}={value}")
                assert r.status_code in (200, 400, 403), f"{collection}?{name}={value[:40]}: {r.status_code} {r.text[:300]}"
                if r.status_code == 400:
                    assert len(r.text) < 2000, r.text[:300]  # a bad value is quoted short, never whole
        # Several filters at once, a repeated key (OR), and a sort over every key.
        r = client.get(f"{N}/{collection}", params=[(n, "a") for n in list_endpoints()[collection]] + [("id", "b")])
        assert r.status_code in (200, 400, 403), r.text[:300]
        for key in list_endpoints()[collection]:
            r = client.get(f"{N}/{collection}", params={"sort_key": key, "sort_dir": "desc"})
            assert r.status_code in (200, 400, 403), f"sort_key={key}: {r.status_code} {r.text[:300]}"


def test_security_group_rules_take_tags_and_filter_by_them(clients: tuple[httpx.Client, httpx.Client]) -> None:
    _, member = clients
    group = ok(member.post(f"{N}/security-groups", json={"security_group": {"name": f"g-{uuid.uuid4().hex[:6]}"}}),
               201)["security_group"]
    body = {"security_group_id": group["id"], "direction": "ingress", "protocol": "tcp", "port_range_min": 22,
            "port_range_max": 22, "tags": ["red"]}
    red = ok(member.post(f"{N}/security-group-rules", json={"security_group_rule": body}), 201)["security_group_rule"]
    assert red["tags"] == ["red"]
    plain = ok(member.post(f"{N}/security-group-rules", json={"security_group_rule": {
        **body, "port_range_min": 80, "port_range_max": 80, "tags": []}}), 201)["security_group_rule"]
    ok(member.put(f"{N}/security-group-rules/{plain['id']}/tags/blue"), 201)
    assert ok(member.get(f"{N}/security-group-rules/{plain['id']}/tags"))["tags"] == ["blue"]

    def listed(**params: str) -> set[str]:
        found = ok(member.get(f"{N}/security-group-rules", params={"security_group_id": group["id"], **params}))
        return {r["id"] for r in found["security_group_rules"]}

    everything = listed()
    assert listed(tags="red") == {red["id"]} and listed(**{"tags-any": "red,blue"}) == {red["id"], plain["id"]}
    assert listed(**{"not-tags": "red"}) == everything - {red["id"]}
    assert listed(**{"not-tags-any": "red,blue"}) == everything - {red["id"], plain["id"]}
    shown = ok(member.get(f"{N}/security-groups/{group['id']}"))["security_group"]
    assert {r["id"]: r["tags"] for r in shown["security_group_rules"]}[red["id"]] == ["red"]
    err(member.put(f"{N}/security-group-rules/{red['id']}/tags", json={"tags": ["a,b"]}), 400)
    ok(member.delete(f"{N}/security-groups/{group['id']}"), 204)

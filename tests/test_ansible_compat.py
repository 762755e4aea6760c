"""What Ansible's openstack.cloud modules ask of cloudbox beyond the plain API walk-throughs
(tests/test_ansible.py runs the modules themselves): each call here is one a module makes.

- ``security_group`` with ``security_group_rules`` makes its rules in one bulk request,
  ``POST /v2.0/security-group-rules {"security_group_rules": [...]}`` (openstacksdk's
  ``create_security_group_rules``), as Neutron serves it: all of one group, all made or none."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cloudbox.errors import BadRequest, Conflict
from cloudbox.network.service import NetworkService
from cloudbox.services import STORES
from cloudbox.state.engine import replay
from tests.cloud import Cloud
from tests.compute_helpers import new_project_user
from tests.test_network_api import N, err, ok
from tests.test_network_core import Ctx, service  # noqa: F401 - the fixture

ALICE = Ctx("alice")


def rule(group_id: str, port: int, **extra: object) -> dict[str, object]:
    return {"security_group_id": group_id, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
            "port_range_min": port, "port_range_max": port, "remote_ip_prefix": "0.0.0.0/0", **extra}


async def test_bulk_rules_are_made_together_or_not_at_all(service: NetworkService, tmp_path: Path):
    group = await service.create_security_group(ALICE, {"name": "web"})
    made = await service.create_bulk(ALICE, "security_group_rules", [rule(group["id"], 80), rule(group["id"], 443)])
    assert [(r["port_range_min"], r["security_group_id"]) for r in made] == [(80, group["id"]), (443, group["id"])]
    count = lambda g: len(g["security_group_rules"])  # noqa: E731
    before = count(await service.show(ALICE, "security_groups", group["id"]))
    # The second item repeats the first: refused in apply, and the first is not made either.
    with pytest.raises(Conflict, match="already exists"):
        await service.create_bulk(ALICE, "security_group_rules", [rule(group["id"], 22), rule(group["id"], 22)])
    # Rules of two groups in one request: Neutron refuses them (one group at a time).
    other = await service.create_security_group(ALICE, {"name": "other"})
    with pytest.raises(BadRequest, match="one security profile at a time"):
        await service.create_bulk(ALICE, "security_group_rules", [rule(group["id"], 25), rule(other["id"], 25)])
    assert count(await service.show(ALICE, "security_groups", group["id"])) == before
    assert count(await service.show(ALICE, "security_groups", other["id"])) == 2  # its two egress rules only
    assert replay(service.engine.log_entries(), tmp_path / "replayed.db", STORES) == service.engine.table_hashes()


@pytest.fixture(scope="module")
def member(cloud: Cloud):
    with cloud.client(cloud.token()) as admin:
        _, _, token = new_project_user(cloud, admin)
    with cloud.client(token) as client:
        yield client


def test_bulk_rules_over_http(member: httpx.Client):
    group = ok(member.post(f"{N}/security-groups", json={"security_group": {"name": "web"}}), 201)["security_group"]
    made = ok(member.post(f"{N}/security-group-rules", json={"security_group_rules": [
        rule(group["id"], 80), rule(group["id"], 8080, description="alt")]}), 201)["security_group_rules"]
    assert [(r["port_range_min"], r["description"]) for r in made] == [(80, ""), (8080, "alt")]
    shown = ok(member.get(f"{N}/security-groups/{group['id']}"))["security_group"]
    assert {r["id"] for r in made} <= {r["id"] for r in shown["security_group_rules"]}
    # Bad bodies change nothing: an empty list, an item the single create refuses, both forms at once.
    err(member.post(f"{N}/security-group-rules", json={"security_group_rules": []}), 400)
    err(member.post(f"{N}/security-group-rules", json={"security_group_rules": [
        rule(group["id"], 22), rule(group["id"], 23, bogus=1)]}), 400)
    err(member.post(f"{N}/security-group-rules", json={"security_group_rules": [rule(group["id"], 24)],
                                                       "security_group_rule": rule(group["id"], 25)}), 400)
    err(member.post(f"{N}/security-group-rules", json={"security_group_rules": [
        rule(group["id"], 26), rule(group["id"], 26)]}), 409)
    after = ok(member.get(f"{N}/security-groups/{group['id']}"))["security_group"]
    assert len(after["security_group_rules"]) == len(shown["security_group_rules"])

"""What Tempest's volume tests (tempest.api.volume) found in the volume API, kept as regular tests:
answers shaped per microversion as Cinder's (Tempest's schemas allow no extra field), os-hosts,
backend capabilities, the extensions list, and Cinder's 404s for unknown markers and snapshots
without a volume.
"""

from __future__ import annotations

import uuid

import httpx

from tests.cloud import Cloud
from tests.test_image_api import Tenant, admin, alpha  # noqa: F401 (fixtures)
from tests.test_volume_api import V, create, fault, unique, wait_snapshot

# Fields Cinder adds at later microversions, and those its show extensions add.
LATER = {"group_id", "provider_id", "shared_targets", "service_uuid", "cluster_name", "volume_type_id",
         "encryption_key_id", "consumes_quota"}
EXTENDED = {"os-vol-tenant-attr:tenant_id", "os-vol-host-attr:host", "os-vol-mig-status-attr:migstat",
            "os-vol-mig-status-attr:name_id", "volume_image_metadata"}


def at(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"volume {version}"}


def test_volume_fields_follow_the_microversion(alpha: Tenant, admin: httpx.Client):
    r = alpha.member.post(f"{V}/volumes", json={"volume": {"name": unique("shape"), "size": 1}})
    assert r.status_code == 202, r.text
    made = r.json()["volume"]
    # create's answer: the base fields only (no tenant attribute, no later fields)
    assert not (set(made) & (LATER | EXTENDED)), sorted(set(made) & (LATER | EXTENDED))
    volume = create(alpha.member)
    shown = admin.get(f"{V}/volumes/{volume['id']}").json()["volume"]
    assert not (set(shown) & LATER)
    assert shown["os-vol-tenant-attr:tenant_id"] == alpha.project_id
    assert shown["os-vol-host-attr:host"].count("@") == 1 and "#" in shown["os-vol-host-attr:host"]
    later = admin.get(f"{V}/volumes/{volume['id']}", headers=at("3.65")).json()["volume"]
    assert later["volume_type_id"] and later["consumes_quota"] is True and later["group_id"] is None
    assert "cluster_name" in later and "provider_id" in later  # admin-only fields, to an admin
    member = alpha.member.get(f"{V}/volumes/{volume['id']}", headers=at("3.65")).json()["volume"]
    assert "cluster_name" not in member and "os-vol-host-attr:host" not in member
    assert "volume_type_id" in member
    detail = alpha.member.get(f"{V}/volumes/detail", params={"name": volume["name"]}).json()["volumes"]
    assert [v["id"] for v in detail] == [volume["id"]] and not (set(detail[0]) & LATER)
    r = alpha.member.put(f"{V}/volumes/{volume['id']}", json={"volume": {"name": "renamed"}})
    assert r.status_code == 200 and "os-vol-tenant-attr:tenant_id" not in r.json()["volume"]
    assert alpha.member.delete(f"{V}/volumes/{made['id']}").status_code == 202


def test_snapshot_fields_follow_the_microversion_and_the_view(alpha: Tenant):
    volume = create(alpha.member)
    r = alpha.member.post(f"{V}/snapshots", json={"snapshot": {"volume_id": volume["id"], "name": unique("s")}})
    assert r.status_code == 202, r.text
    made = r.json()["snapshot"]
    assert "os-extended-snapshot-attributes:project_id" not in made and "user_id" not in made
    wait_snapshot(alpha.member, made["id"])
    shown = alpha.member.get(f"{V}/snapshots/{made['id']}").json()["snapshot"]
    assert shown["os-extended-snapshot-attributes:project_id"] == alpha.project_id
    assert shown["os-extended-snapshot-attributes:progress"] == "100%"
    assert not ({"user_id", "group_snapshot_id", "consumes_quota"} & set(shown))
    listed = alpha.member.get(f"{V}/snapshots", params={"volume_id": volume["id"]}).json()["snapshots"]
    assert [s["id"] for s in listed] == [made["id"]]
    assert "os-extended-snapshot-attributes:progress" not in listed[0]
    later = alpha.member.get(f"{V}/snapshots/{made['id']}", headers=at("3.65")).json()["snapshot"]
    assert later["group_snapshot_id"] is None and later["user_id"] and later["consumes_quota"] is True


def test_snapshot_without_a_volume_and_unknown_markers_are_404s(alpha: Tenant):
    before = alpha.member.get(f"{V}/snapshots").json()["snapshots"]
    for volume_id in (None, ""):
        r = alpha.member.post(f"{V}/snapshots", json={"snapshot": {"volume_id": volume_id, "name": "x"}})
        fault(r, 404, "volume_id")
    fault(alpha.member.post(f"{V}/snapshots", json={"snapshot": {"volume_id": 7}}), 400)
    assert alpha.member.get(f"{V}/snapshots").json()["snapshots"] == before
    for path in ("/snapshots", "/snapshots/detail", "/volumes", "/volumes/detail"):
        fault(alpha.member.get(V + path, params={"marker": str(uuid.uuid4())}), 404, "marker")


def test_type_answers_of_create_and_update(admin: httpx.Client, alpha: Tenant):
    r = admin.post(f"{V}/types", json={"volume_type": {"name": unique("shape-type")}})
    assert r.status_code == 200, r.text
    kind = r.json()["volume_type"]
    assert "qos_specs_id" not in kind and kind["os-volume-type-access:is_public"] is True
    r = admin.put(f"{V}/types/{kind['id']}", json={"volume_type": {"description": "d"}})
    assert r.status_code == 200, r.text
    assert set(r.json()["volume_type"]) == {"id", "name", "description", "is_public", "extra_specs"}
    shown = admin.get(f"{V}/types/{kind['id']}").json()["volume_type"]
    assert shown["qos_specs_id"] is None and shown["os-volume-type-access:is_public"] is True
    assert admin.delete(f"{V}/types/{kind['id']}").status_code == 202


def test_services_hosts_capabilities_and_extensions(cloud: Cloud, alpha: Tenant, admin: httpx.Client):
    services = admin.get(f"{V}/os-services").json()["services"]
    assert all(isinstance(s["updated_at"], str) and s["updated_at"] for s in services), services
    hosts = admin.get(f"{V}/os-hosts").json()["hosts"]
    assert {h["service"] for h in hosts} == {"cinder-scheduler", "cinder-volume"}
    backend = next(h["host_name"] for h in hosts if h["service"] == "cinder-volume")
    volume = create(alpha.member, size=2)
    usage = admin.get(f"{V}/os-hosts/{backend}").json()["host"]
    total = usage[0]["resource"]
    assert total["project"] == "(total)" and total["host"] == backend
    mine = next(u["resource"] for u in usage if u["resource"]["project"] == alpha.project_id)
    assert int(mine["volume_count"]) >= 1 and int(mine["total_volume_gb"]) >= volume["size"]
    assert int(total["total_volume_gb"]) >= int(mine["total_volume_gb"])
    fault(admin.get(f"{V}/os-hosts/nowhere@dir"), 404, "nowhere")
    fault(alpha.member.get(f"{V}/os-hosts"), 403)
    fault(alpha.member.get(f"{V}/os-hosts/{backend}"), 403)
    # the capabilities agree with get_pools, with or without the pool's suffix
    pools = admin.get(f"{V}/scheduler-stats/get_pools", params={"detail": "true"}).json()["pools"]
    pool = next(p for p in pools if p["name"].startswith(backend))
    for name in (backend, pool["name"]):
        caps = admin.get(f"{V}/capabilities/{name}".replace("#", "%23")).json()
        for key in ("vendor_name", "volume_backend_name", "storage_protocol"):
            assert caps[key] == pool["capabilities"][key]
        assert caps["namespace"].startswith("OS::Storage::Capabilities::")
    fault(admin.get(f"{V}/capabilities/nowhere@dir"), 404, "nowhere")
    fault(alpha.member.get(f"{V}/capabilities/{backend}"), 403)
    extensions = alpha.reader.get(f"{V}/extensions").json()["extensions"]
    assert "Hosts" in {e["name"] for e in extensions} and "os-hosts" in {e["alias"] for e in extensions}

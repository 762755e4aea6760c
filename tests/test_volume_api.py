"""The volume API (Cinder v3 at /volume/v3) over real HTTPS against a running node (dir driver).

Tests share the session ``cloud``; each makes its own projects (``Tenant``) and volumes.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cloud import Cloud, wait_for
from tests.test_image_api import Tenant, admin, alpha, beta  # noqa: F401 (fixtures)

V = "/volume/v3"
GB = 1 << 30


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def fault(r: httpx.Response, status: int, *fragments: str) -> str:
    """Cinder's error body: {"<fault>": {"code", "message"}}."""
    assert r.status_code == status, r.text
    (body,) = r.json().values()
    assert body["code"] == status
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    return body["message"]


def wait_volume(client: httpx.Client, volume_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        r = client.get(f"{V}/volumes/{volume_id}")
        assert r.status_code == 200, r.text
        volume = r.json()["volume"]
        return volume if volume["status"] in statuses else None

    return wait_for(done, timeout, f"volume {volume_id} to be {statuses}", every=0.1)


def wait_gone(client: httpx.Client, path: str, timeout: float = 60) -> None:
    wait_for(lambda: client.get(path).status_code == 404, timeout, f"{path} to go", every=0.1)


def wait_snapshot(client: httpx.Client, snapshot_id: str, status: str = "available") -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        snapshot = client.get(f"{V}/snapshots/{snapshot_id}").json()["snapshot"]
        return snapshot if snapshot["status"] == status else None

    return wait_for(done, 60, f"snapshot {snapshot_id} to be {status}", every=0.1)


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", unique("vol"))
    fields.setdefault("size", 1)
    r = client.post(f"{V}/volumes", json={"volume": fields})
    assert r.status_code == 202, r.text
    volume = r.json()["volume"]
    assert volume["status"] == "creating"
    return wait_volume(client, volume["id"], {"available", "error"})


def volume_file(cloud: Cloud, volume_id: str) -> Path:
    return cloud.data_dir / "volumes" / f"volume-{volume_id}.raw"


# --- discovery ---------------------------------------------------------------------------------
def test_version_documents_and_microversions(cloud: Cloud, alpha: Tenant):
    with cloud.client() as anonymous:
        r = anonymous.get("/volume")
        assert r.status_code == 300
        (v3,) = r.json()["versions"]
        assert (v3["id"], v3["min_version"], v3["version"]) == ("v3.0", "3.0", "3.71")
        assert v3["links"][-1]["href"] == cloud.url + "/volume/v3/"
        r = anonymous.get("/volume/v3")
        assert r.status_code == 200 and r.json()["versions"][0]["version"] == "3.71"
    r = alpha.member.get(f"{V}/volumes", headers={"OpenStack-API-Version": "volume 3.60"})
    assert r.status_code == 200 and r.headers["OpenStack-API-Version"] == "volume 3.60"
    r = alpha.member.get(f"{V}/volumes", headers={"OpenStack-API-Version": "volume 3.72"})
    fault(r, 406, "maximum is 3.71")
    r = alpha.member.get(f"{V}/volumes", headers={"OpenStack-API-Version": "volume three"})
    fault(r, 400, "Invalid format")


def test_catalog_lists_block_storage_and_volumev3(cloud: Cloud, alpha: Tenant):
    r = alpha.member.get("/identity/v3/auth/catalog")
    assert r.status_code == 200, r.text
    types = {e["type"]: e for e in r.json()["catalog"]}
    for kind in ("block-storage", "volumev3"):
        urls = {ep["url"] for ep in types[kind]["endpoints"]}
        assert urls == {cloud.url + "/volume/v3"}


# --- volumes ---------------------------------------------------------------------------------------
def test_blank_volume_lifecycle(cloud: Cloud, alpha: Tenant, admin: httpx.Client):
    volume = create(alpha.member, description="first", metadata={"purpose": "test"})
    assert volume["status"] == "available", volume
    assert volume["size"] == 1 and volume["bootable"] == "false" and volume["attachments"] == []
    assert volume["volume_type"] == "__DEFAULT__" and volume["metadata"] == {"purpose": "test"}
    assert volume["os-vol-tenant-attr:tenant_id"] == alpha.project_id and volume["encrypted"] is False
    assert "os-vol-host-attr:host" not in volume  # admins only
    assert "os-vol-host-attr:host" in admin.get(f"{V}/volumes/{volume['id']}").json()["volume"]
    path = volume_file(cloud, volume["id"])
    assert path.stat().st_size == GB and path.stat().st_blocks == 0  # sparse: reads zeros
    # The project in the path, as older endpoints carry it.
    r = alpha.member.get(f"{V}/{alpha.project_id}/volumes/{volume['id']}")
    assert r.status_code == 200 and r.json()["volume"]["id"] == volume["id"]
    fault(alpha.member.get(f"{V}/{uuid.uuid4().hex}/volumes/{volume['id']}"), 400, "not the token's project")

    r = alpha.member.put(f"{V}/volumes/{volume['id']}", json={"volume": {"name": "renamed", "description": "d"}})
    assert r.status_code == 200 and r.json()["volume"]["name"] == "renamed"
    # metadata
    base = f"{V}/volumes/{volume['id']}/metadata"
    assert alpha.member.post(base, json={"metadata": {"a": "1"}}).json()["metadata"] == {"purpose": "test", "a": "1"}
    assert alpha.member.put(f"{base}/a", json={"meta": {"a": "2"}}).json() == {"meta": {"a": "2"}}
    assert alpha.member.get(f"{base}/a").json() == {"meta": {"a": "2"}}
    assert alpha.member.delete(f"{base}/a").status_code == 200
    fault(alpha.member.get(f"{base}/a"), 404)
    assert alpha.member.put(base, json={"metadata": {"b": "3"}}).json()["metadata"] == {"b": "3"}
    fault(alpha.reader.put(base, json={"metadata": {}}), 403)
    # actions
    action = f"{V}/volumes/{volume['id']}/action"
    assert alpha.member.post(action, json={"os-set_bootable": {"bootable": "True"}}).status_code == 200
    assert alpha.member.post(action, json={"os-update_readonly_flag": {"readonly": True}}).status_code == 202
    shown = alpha.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]
    assert shown["bootable"] == "true"
    assert alpha.member.post(action, json={"os-extend": {"new_size": 2}}).status_code == 202
    extended = wait_volume(alpha.member, volume["id"], {"available", "error_extending"})
    assert extended["status"] == "available" and extended["size"] == 2
    assert volume_file(cloud, volume["id"]).stat().st_size == 2 * GB
    fault(alpha.member.post(action, json={"os-extend": {"new_size": 1}}), 400, "greater than")
    fault(alpha.member.post(action, json={"os-reset_status": {"status": "error"}}), 403)
    fault(alpha.member.post(action, json={"os-frobnicate": {}}), 400, "no such action")
    assert admin.post(action, json={"os-reset_status": {"status": "error"}}).status_code == 202
    assert alpha.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]["status"] == "error"
    assert alpha.member.delete(f"{V}/volumes/{volume['id']}").status_code == 202
    wait_gone(alpha.member, f"{V}/volumes/{volume['id']}")
    assert not volume_file(cloud, volume["id"]).exists()


def test_list_filters_sorts_and_pages(alpha: Tenant, beta: Tenant):
    tag = unique("page")
    made = [create(alpha.member, name=f"{tag}-{i}", metadata={"tag": tag}) for i in range(3)]
    r = alpha.member.get(f"{V}/volumes/detail", params={"metadata": str({"tag": tag}), "sort": "name:asc"})
    assert r.status_code == 200, r.text
    assert [v["name"] for v in r.json()["volumes"]] == [f"{tag}-{i}" for i in range(3)]
    r = alpha.member.get(f"{V}/volumes", params={"name": f"{tag}-1"})
    assert [v["id"] for v in r.json()["volumes"]] == [made[1]["id"]]
    assert set(r.json()["volumes"][0]) == {"id", "name", "links"}
    seen, marker = [], None
    while True:
        params = {"limit": 2, "sort_key": "name", "sort_dir": "asc", "metadata": str({"tag": tag})}
        if marker:
            params["marker"] = marker
        body = alpha.member.get(f"{V}/volumes/detail", params=params).json()
        seen += [v["name"] for v in body["volumes"]]
        if "volumes_links" not in body:
            break
        marker = body["volumes"][-1]["id"]
    assert seen == [f"{tag}-{i}" for i in range(3)]
    fault(alpha.member.get(f"{V}/volumes", params={"sort": "nonsense:asc"}), 400, "sort key")
    fault(alpha.member.get(f"{V}/volumes", params={"marker": str(uuid.uuid4())}), 404, "marker")
    assert beta.member.get(f"{V}/volumes", params={"name": f"{tag}-1"}).json()["volumes"] == []
    summary = alpha.member.get(f"{V}/volumes/summary").json()["volume-summary"]
    assert summary["total_count"] >= 3 and summary["metadata"]["tag"] == [tag]
    assert beta.member.get(f"{V}/volumes/summary").json()["volume-summary"]["metadata"].get("tag") is None
    for volume in made:
        alpha.member.delete(f"{V}/volumes/{volume['id']}")


def test_snapshots_clones_and_cascade(cloud: Cloud, alpha: Tenant):
    volume = create(alpha.member)
    path = volume_file(cloud, volume["id"])
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(b"marker-of-the-source")
    r = alpha.member.post(f"{V}/snapshots", json={"snapshot": {"volume_id": volume["id"], "name": "snap1",
                                                               "metadata": {"k": "v"}}})
    assert r.status_code == 202, r.text
    snapshot = wait_snapshot(alpha.member, r.json()["snapshot"]["id"])
    assert snapshot["size"] == 1 and snapshot["volume_id"] == volume["id"] and snapshot["metadata"] == {"k": "v"}
    r = alpha.member.put(f"{V}/snapshots/{snapshot['id']}", json={"snapshot": {"description": "described"}})
    assert r.status_code == 200 and r.json()["snapshot"]["description"] == "described"
    assert alpha.member.post(f"{V}/snapshots/{snapshot['id']}/metadata",
                             json={"metadata": {"x": "y"}}).json()["metadata"] == {"k": "v", "x": "y"}
    listed = alpha.member.get(f"{V}/snapshots/detail", params={"volume_id": volume["id"]}).json()["snapshots"]
    assert [s["id"] for s in listed] == [snapshot["id"]]

    from_snapshot = create(alpha.member, snapshot_id=snapshot["id"], size=2)
    clone = create(alpha.member, source_volid=volume["id"])
    for made, size in ((from_snapshot, 2), (clone, 1)):
        assert made["status"] == "available" and made["size"] == size
        data = volume_file(cloud, made["id"]).read_bytes()[4096:4096 + 20]
        assert data == b"marker-of-the-source"
    assert clone["source_volid"] == volume["id"] and from_snapshot["snapshot_id"] == snapshot["id"]

    # A volume with snapshots is not deleted, unless with cascade.
    fault(alpha.member.delete(f"{V}/volumes/{volume['id']}"), 400, "snapshots")
    assert alpha.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]["status"] == "available"
    assert alpha.member.delete(f"{V}/volumes/{volume['id']}", params={"cascade": "true"}).status_code == 202
    wait_gone(alpha.member, f"{V}/snapshots/{snapshot['id']}")
    wait_gone(alpha.member, f"{V}/volumes/{volume['id']}")
    assert not list((cloud.data_dir / "snapshots").glob(f"*{snapshot['id']}*"))
    for made in (from_snapshot, clone):  # the copies stand alone
        assert alpha.member.get(f"{V}/volumes/{made['id']}").json()["volume"]["status"] == "available"
        alpha.member.delete(f"{V}/volumes/{made['id']}")


def upload_image(client: httpx.Client, tmp_path: Path, *, visibility: str = "private",
                 name: str | None = None) -> dict[str, Any]:
    image = tmp_path / "image.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(image), "64M"], check=True, capture_output=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 4k", str(image)], check=True,
                   capture_output=True)
    r = client.post("/image/v2/images", json={"name": name or unique("img"), "disk_format": "qcow2",
                                               "container_format": "bare", "visibility": visibility})
    assert r.status_code == 201, r.text
    image_id = r.json()["id"]
    r = client.put(f"/image/v2/images/{image_id}/file", content=image.read_bytes(),
                   headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    return client.get(f"/image/v2/images/{image_id}").json()


def test_volume_from_image_is_bootable_raw_data(cloud: Cloud, alpha: Tenant, beta: Tenant, tmp_path: Path):
    image = upload_image(alpha.member, tmp_path)
    volume = create(alpha.member, imageRef=image["id"], size=1)
    assert volume["status"] == "available", volume
    assert volume["bootable"] == "true"
    assert volume["volume_image_metadata"]["image_id"] == image["id"]
    assert volume["volume_image_metadata"]["disk_format"] == "qcow2"
    data = volume_file(cloud, volume["id"]).read_bytes()
    assert len(data) == GB and data[1 << 20:(1 << 20) + 4096] == b"\x5a" * 4096
    # Another project's private image does not exist for beta; nothing is made.
    before = beta.member.get(f"{V}/volumes").json()["volumes"]
    fault(beta.member.post(f"{V}/volumes", json={"volume": {"size": 1, "imageRef": image["id"]}}), 404)
    fault(beta.member.post(f"{V}/volumes", json={"volume": {"size": 1, "imageRef": str(uuid.uuid4())}}), 404)
    assert beta.member.get(f"{V}/volumes").json()["volumes"] == before
    alpha.member.delete(f"{V}/volumes/{volume['id']}")


def test_bad_input_and_other_projects_change_nothing(cloud: Cloud, alpha: Tenant, beta: Tenant):
    volume = create(alpha.member)
    files = sorted(p.name for p in (cloud.data_dir / "volumes").iterdir())
    for bad in ({"size": 0}, {"size": -1}, {"size": "big"}, {"size": 1.5}, {"size": True}, {},
                {"size": 1, "availability_zone": "elsewhere"}, {"size": 1, "volume_type": "no-such-type"},
                {"size": 1, "metadata": {"k": 5}}, {"size": 1, "snapshot_id": str(uuid.uuid4())}):
        r = alpha.member.post(f"{V}/volumes", json={"volume": bad})
        assert r.status_code in (400, 404), (bad, r.text)
    fault(alpha.member.post(f"{V}/volumes", content=b'{"volume": ', headers={"Content-Type": "application/json"}),
          400)
    # beta meets alpha's volume nowhere.
    for method, path, body in (("GET", f"/volumes/{volume['id']}", None),
                               ("PUT", f"/volumes/{volume['id']}", {"volume": {"name": "x"}}),
                               ("DELETE", f"/volumes/{volume['id']}", None),
                               ("POST", f"/volumes/{volume['id']}/action", {"os-extend": {"new_size": 5}}),
                               ("POST", "/snapshots", {"snapshot": {"volume_id": volume["id"]}}),
                               ("POST", "/volumes", {"volume": {"source_volid": volume["id"]}})):
        r = beta.member.request(method, V + path, json=body)
        fault(r, 404)
    fault(alpha.reader.post(f"{V}/volumes", json={"volume": {"size": 1}}), 403)
    fault(alpha.reader.delete(f"{V}/volumes/{volume['id']}"), 403)
    assert sorted(p.name for p in (cloud.data_dir / "volumes").iterdir()) == files
    shown = alpha.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]
    assert (shown["status"], shown["size"], shown["name"]) == ("available", 1, volume["name"])
    alpha.member.delete(f"{V}/volumes/{volume['id']}")


def test_quotas_are_checked_and_reported(cloud: Cloud, admin: httpx.Client):
    tenant = Tenant(cloud, admin)
    try:
        pid = tenant.project_id
        r = admin.put(f"{V}/os-quota-sets/{pid}", json={"quota_set": {"volumes": 2, "gigabytes": 3, "snapshots": 1}})
        assert r.status_code == 200, r.text
        assert r.json()["quota_set"]["volumes"] == 2
        fault(admin.put(f"{V}/os-quota-sets/{pid}", json={"quota_set": {"bogus": 1}}), 400, "Bad key")
        fault(admin.put(f"{V}/os-quota-sets/{pid}", json={"quota_set": {"volumes": -5}}), 400)
        fault(tenant.member.put(f"{V}/os-quota-sets/{pid}", json={"quota_set": {"volumes": 100}}), 403)
        first = create(tenant.member, size=2)
        fault(tenant.member.post(f"{V}/volumes", json={"volume": {"size": 2}}), 413, "gigabytes")
        second = create(tenant.member, size=1)
        fault(tenant.member.post(f"{V}/volumes", json={"volume": {"size": 1}}), 413, "volumes")
        fault(tenant.member.post(f"{V}/volumes/{second['id']}/action", json={"os-extend": {"new_size": 2}}), 413)
        assert tenant.member.get(f"{V}/volumes/{second['id']}").json()["volume"]["status"] == "available"
        # snapshots count in gigabytes too (Cinder's rule): 3 GB used, a 1 GB snapshot is refused.
        fault(tenant.member.post(f"{V}/snapshots", json={"snapshot": {"volume_id": second["id"]}}), 413)
        usage = tenant.member.get(f"{V}/os-quota-sets/{pid}", params={"usage": "true"}).json()["quota_set"]
        assert usage["volumes"] == {"limit": 2, "in_use": 2, "reserved": 0, "allocated": 0}
        assert usage["gigabytes"]["in_use"] == 3 and usage["volumes___DEFAULT__"]["in_use"] == 2
        limits = tenant.member.get(f"{V}/limits").json()["limits"]["absolute"]
        assert (limits["maxTotalVolumes"], limits["totalVolumesUsed"], limits["totalGigabytesUsed"]) == (2, 2, 3)
        defaults = tenant.member.get(f"{V}/os-quota-sets/{pid}/defaults").json()["quota_set"]
        assert defaults["volumes"] == 10 and defaults["gigabytes"] == 1000
        assert admin.delete(f"{V}/os-quota-sets/{pid}").status_code == 200
        assert tenant.member.get(f"{V}/os-quota-sets/{pid}").json()["quota_set"]["volumes"] == 10
        zones = tenant.member.get(f"{V}/os-availability-zone").json()["availabilityZoneInfo"]
        assert zones == [{"zoneName": "nova", "zoneState": {"available": True}}]
        for volume in (first, second):
            tenant.member.delete(f"{V}/volumes/{volume['id']}")
    finally:
        tenant.close()


def test_types_extra_specs_access_and_retype(alpha: Tenant, beta: Tenant, admin: httpx.Client):
    name = unique("gold")
    r = admin.post(f"{V}/types", json={"volume_type": {"name": name, "os-volume-type-access:is_public": False,
                                                       "extra_specs": {"tier": "gold"}}})
    assert r.status_code == 200, r.text
    kind = r.json()["volume_type"]
    assert kind["is_public"] is False and kind["extra_specs"] == {"tier": "gold"}
    fault(admin.post(f"{V}/types", json={"volume_type": {"name": name}}), 409)
    fault(alpha.member.post(f"{V}/types", json={"volume_type": {"name": unique("t")}}), 403)
    assert name not in [t["name"] for t in alpha.member.get(f"{V}/types").json()["volume_types"]]
    fault(alpha.member.post(f"{V}/volumes", json={"volume": {"size": 1, "volume_type": name}}), 404)
    r = admin.post(f"{V}/types/{kind['id']}/action", json={"addProjectAccess": {"project": alpha.project_id}})
    assert r.status_code == 202, r.text
    access = admin.get(f"{V}/types/{kind['id']}/os-volume-type-access").json()["volume_type_access"]
    assert access == [{"volume_type_id": kind["id"], "project_id": alpha.project_id}]
    assert name in [t["name"] for t in alpha.member.get(f"{V}/types").json()["volume_types"]]
    assert name not in [t["name"] for t in beta.member.get(f"{V}/types").json()["volume_types"]]
    r = admin.post(f"{V}/types/{kind['id']}/extra_specs", json={"extra_specs": {"speed": "fast"}})
    assert r.json()["extra_specs"] == {"speed": "fast"}  # Cinder answers the specs it was given
    assert admin.get(f"{V}/types/{kind['id']}/extra_specs").json()["extra_specs"] == {"tier": "gold", "speed": "fast"}
    assert admin.delete(f"{V}/types/{kind['id']}/extra_specs/speed").status_code == 202
    assert admin.get(f"{V}/types/{kind['id']}/extra_specs/tier").json() == {"tier": "gold"}

    volume = create(alpha.member, volume_type=name)
    assert volume["volume_type"] == name
    r = alpha.member.post(f"{V}/volumes/{volume['id']}/action", json={"os-retype": {"new_type": "__DEFAULT__"}})
    assert r.status_code == 202, r.text
    assert alpha.member.get(f"{V}/volumes/{volume['id']}").json()["volume"]["volume_type"] == "__DEFAULT__"
    assert alpha.member.post(f"{V}/volumes/{volume['id']}/action",
                             json={"os-retype": {"new_type": name}}).status_code == 202
    fault(admin.delete(f"{V}/types/{kind['id']}"), 400, "in use")
    alpha.member.delete(f"{V}/volumes/{volume['id']}")
    wait_gone(alpha.member, f"{V}/volumes/{volume['id']}")
    assert admin.post(f"{V}/types/{kind['id']}/action",
                      json={"removeProjectAccess": {"project": alpha.project_id}}).status_code == 202
    assert admin.delete(f"{V}/types/{kind['id']}").status_code == 202
    fault(admin.get(f"{V}/types/{kind['id']}"), 404)


def test_admin_force_delete_and_all_tenants(alpha: Tenant, admin: httpx.Client):
    volume = create(alpha.member)
    assert admin.post(f"{V}/volumes/{volume['id']}/action",
                      json={"os-reset_status": {"status": "maintenance"}}).status_code == 202
    fault(alpha.member.delete(f"{V}/volumes/{volume['id']}"), 400, "maintenance")
    fault(alpha.member.post(f"{V}/volumes/{volume['id']}/action", json={"os-force_delete": {}}), 403)
    listed = admin.get(f"{V}/volumes", params={"all_tenants": "1", "project_id": alpha.project_id}).json()
    assert volume["id"] in [v["id"] for v in listed["volumes"]]
    assert admin.post(f"{V}/volumes/{volume['id']}/action", json={"os-force_delete": {}}).status_code == 202
    wait_gone(alpha.member, f"{V}/volumes/{volume['id']}")


def test_errors_have_cinder_fault_names_and_odd_filters_are_refused(alpha: Tenant, admin: httpx.Client):
    r = alpha.member.get(f"{V}/volumes/{uuid.uuid4()}")
    assert r.status_code == 404 and set(r.json()) == {"itemNotFound"}
    r = alpha.member.post(f"{V}/volumes", json={"volume": {"size": 0}})
    assert r.status_code == 400 and set(r.json()) == {"badRequest"}
    for value in ("not a dict", "{" * 5000, "[" * 200 + "]" * 200, "{'a': " * 100):
        fault(alpha.member.get(f"{V}/volumes", params={"metadata": value}), 400, "metadata filter")


def test_per_type_quota(cloud: Cloud, admin: httpx.Client):
    tenant = Tenant(cloud, admin)
    name = unique("tiny")
    try:
        kind = admin.post(f"{V}/types", json={"volume_type": {"name": name}}).json()["volume_type"]
        r = admin.put(f"{V}/os-quota-sets/{tenant.project_id}", json={"quota_set": {f"volumes_{name}": 1}})
        assert r.status_code == 200 and r.json()["quota_set"][f"volumes_{name}"] == 1
        first = create(tenant.member, volume_type=name)
        fault(tenant.member.post(f"{V}/volumes", json={"volume": {"size": 1, "volume_type": name}}), 413,
              f"volumes_{name}")
        other = create(tenant.member)  # the default type is not limited
        for volume in (first, other):
            tenant.member.delete(f"{V}/volumes/{volume['id']}")
            wait_gone(tenant.member, f"{V}/volumes/{volume['id']}")
        assert admin.delete(f"{V}/types/{kind['id']}").status_code == 202
    finally:
        tenant.close()

"""Volume backups (Cinder's /backups) over HTTPS against the shared node (dir driver): full and
incremental backups of known bytes, restores into a new and an existing volume, the backup's
objects in its owner's object store only, and bad input that is a clear 4xx changing nothing."""

from __future__ import annotations

import base64
import json
import os
import uuid
from typing import Any

import httpx

from tests.cloud import Cloud, wait_for
from tests.test_image_api import Tenant, admin, alpha, beta  # noqa: F401 (fixtures)
from tests.test_volume_api import GB, V, create, fault, unique, volume_file, wait_gone, wait_volume

AT = {"OpenStack-API-Version": "volume 3.60"}
CHUNK = 4 << 20


def wait_backup(client: httpx.Client, backup_id: str, status: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        r = client.get(f"{V}/backups/{backup_id}", headers=AT)
        assert r.status_code == 200, r.text
        found = r.json()["backup"]
        assert found["status"] != "error", found
        return found if found["status"] == status else None

    return wait_for(done, 120, f"backup {backup_id} to be {status}", every=0.2)


def back_up(client: httpx.Client, volume_id: str, **fields: Any) -> dict[str, Any]:
    r = client.post(f"{V}/backups", headers=AT, json={"backup": {"volume_id": volume_id, **fields}})
    assert r.status_code == 202, r.text
    return wait_backup(client, r.json()["backup"]["id"], "available")


def write_at(cloud: Cloud, volume_id: str, offset: int, data: bytes) -> None:
    fd = os.open(volume_file(cloud, volume_id), os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def read_all(cloud: Cloud, volume_id: str, size: int = GB) -> bytes:
    with open(volume_file(cloud, volume_id), "rb") as f:
        return f.read(size).ljust(size, b"\0")


def restore(client: httpx.Client, backup_id: str, **fields: Any) -> dict[str, Any]:
    r = client.post(f"{V}/backups/{backup_id}/restore", headers=AT, json={"restore": fields})
    assert r.status_code == 202, r.text
    return r.json()["restore"]


def test_full_incremental_restore_and_isolation(cloud: Cloud, alpha: Tenant, beta: Tenant):
    volume = create(alpha.member, size=1, metadata={"kept": "yes"})
    first = os.urandom(3 * CHUNK + 1000)
    write_at(cloud, volume["id"], 0, first)
    write_at(cloud, volume["id"], 700 << 20, b"tail" * 1000)
    full = back_up(alpha.member, volume["id"], name="full")
    assert (full["is_incremental"], full["size"], full["container"]) == (False, 1, "volumebackups")
    assert wait_volume(alpha.member, volume["id"], {"available"})["status"] == "available"
    # Only the chunks that differ go into the incremental backup.
    write_at(cloud, volume["id"], CHUNK + 5, b"changed")
    expected = read_all(cloud, volume["id"])
    incremental = back_up(alpha.member, volume["id"], name="incr", incremental=True)
    assert incremental["is_incremental"] is True
    assert incremental["object_count"] == 2  # one changed chunk and the manifest
    assert full["object_count"] == 6  # four chunks of data, the tail's chunk, the manifest
    assert alpha.member.get(f"{V}/backups/{full['id']}", headers=AT).json()["backup"]["has_dependent_backups"]
    listed = {b["id"] for b in alpha.member.get(f"{V}/backups/detail", headers=AT).json()["backups"]}
    assert {full["id"], incremental["id"]} <= listed
    assert not beta.member.get(f"{V}/backups", headers=AT).json()["backups"]
    # The objects are the owner's: listed in its account, refused to another project.
    swift = f"/object-store/v1/AUTH_{alpha.project_id}/volumebackups"
    r = alpha.member.get(swift, params={"format": "json"})
    assert r.status_code == 200, r.text
    names = [o["name"] for o in r.json()]
    assert f"volume_{volume['id']}/{full['id']}/manifest" in names
    assert f"volume_{volume['id']}/{incremental['id']}/manifest" in names
    assert beta.member.get(swift).status_code == 403
    assert beta.member.get(f"{swift}/volume_{volume['id']}/{full['id']}/manifest").status_code == 403
    # The volume goes; the incremental backup restores into a new volume with the same bytes.
    assert alpha.member.delete(f"{V}/volumes/{volume['id']}").status_code == 202
    wait_gone(alpha.member, f"{V}/volumes/{volume['id']}")
    answer = restore(alpha.member, incremental["id"], name="restored")
    assert answer["backup_id"] == incremental["id"] and answer["volume_name"] == "restored"
    restored = wait_volume(alpha.member, answer["volume_id"], {"available", "error_restoring"})
    assert restored["status"] == "available" and restored["size"] == 1
    assert restored["metadata"] == {"kept": "yes"}  # the source volume's, as Cinder's restore
    assert read_all(cloud, restored["id"]) == expected
    assert wait_backup(alpha.member, incremental["id"], "available")["status"] == "available"
    # Into an existing (larger) volume: the full backup's bytes, the rest of the volume as it was.
    target = create(alpha.member, size=2)
    write_at(cloud, target["id"], GB + 10, b"kept")
    answer = restore(alpha.member, full["id"], volume_id=target["id"])
    assert answer["volume_id"] == target["id"]
    assert wait_volume(alpha.member, target["id"], {"available", "error_restoring"})["status"] == "available"
    data = read_all(cloud, target["id"], 2 * GB)
    assert data[:len(first)] == first and data[CHUNK + 5:CHUNK + 12] != b"changed"
    assert data[GB + 10:GB + 14] == b"kept"
    # Renamed at 3.9+ (Cinder answers id, links, name).
    r = alpha.member.put(f"{V}/backups/{full['id']}", headers=AT, json={"backup": {"name": "renamed"}})
    assert r.status_code == 200 and r.json()["backup"]["name"] == "renamed", r.text
    fault(alpha.member.put(f"{V}/backups/{full['id']}", headers={"OpenStack-API-Version": "volume 3.8"},
                           json={"backup": {"name": "x"}}), 404)
    # A parent with children stays; the child goes, then the parent, and their objects with them.
    fault(alpha.member.delete(f"{V}/backups/{full['id']}", headers=AT), 400, "incremental")
    assert alpha.member.delete(f"{V}/backups/{incremental['id']}", headers=AT).status_code == 202
    wait_gone(alpha.member, f"{V}/backups/{incremental['id']}")
    assert alpha.member.delete(f"{V}/backups/{full['id']}", headers=AT).status_code == 202
    wait_gone(alpha.member, f"{V}/backups/{full['id']}")
    left = alpha.member.get(swift, params={"format": "json"}).json()
    assert not [o for o in left if o["name"].startswith(f"volume_{volume['id']}/")]


def test_bad_input_changes_nothing(cloud: Cloud, admin: httpx.Client, alpha: Tenant, beta: Tenant):
    volume = create(alpha.member, size=1)
    fault(alpha.member.post(f"{V}/backups", headers=AT, json={"backup": {"volume_id": unique("nope")}}), 404)
    fault(alpha.member.post(f"{V}/backups", headers=AT, json={"backup": {}}), 400, "volume_id")
    fault(alpha.member.post(f"{V}/backups", headers=AT,
                            json={"backup": {"volume_id": volume["id"], "incremental": True}}), 400, "full backup")
    fault(beta.member.post(f"{V}/backups", headers=AT, json={"backup": {"volume_id": volume["id"]}}), 404)
    fault(alpha.member.post(f"{V}/backups", headers=AT,
                            json={"backup": {"volume_id": volume["id"], "container": "a/b"}}), 400)
    # An in-use volume needs force (reserved here by the legacy attach actions).
    action = f"{V}/volumes/{volume['id']}/action"
    assert alpha.member.post(action, json={"os-reserve": None}).status_code == 202
    assert alpha.member.post(action, json={"os-attach": {"instance_uuid": "6f0b1f3e-0a4c-4d1e-9a57-7c7c3f1d0d99",
                                                          "mountpoint": "/dev/vdb"}}).status_code == 202
    assert wait_volume(alpha.member, volume["id"], {"in-use"})["status"] == "in-use"
    fault(alpha.member.post(f"{V}/backups", headers=AT, json={"backup": {"volume_id": volume["id"]}}), 400, "force")
    assert alpha.member.get(f"{V}/backups", headers=AT).json()["backups"] == []
    forced = back_up(alpha.member, volume["id"], force=True)
    assert wait_volume(alpha.member, volume["id"], {"in-use"})["status"] == "in-use"
    # Restores: another project's backup, a volume too small, a volume in use.
    fault(beta.member.post(f"{V}/backups/{forced['id']}/restore", headers=AT, json={"restore": {}}), 404)
    fault(beta.member.get(f"{V}/backups/{forced['id']}", headers=AT), 404)
    fault(beta.member.delete(f"{V}/backups/{forced['id']}", headers=AT), 404)
    theirs = create(beta.member, size=1)
    fault(alpha.member.post(f"{V}/backups/{forced['id']}/restore", headers=AT,
                            json={"restore": {"volume_id": theirs["id"]}}), 404)
    fault(alpha.member.post(f"{V}/backups/{forced['id']}/restore", headers=AT,
                            json={"restore": {"volume_id": volume["id"]}}), 400, "in-use")
    fault(alpha.member.post(f"{V}/backups/{unique('x')}/restore", headers=AT, json={"restore": {}}), 404)
    small = create(alpha.member, size=1)
    big = create(alpha.member, size=2)
    big_backup = back_up(alpha.member, big["id"])
    fault(alpha.member.post(f"{V}/backups/{big_backup['id']}/restore", headers=AT,
                            json={"restore": {"volume_id": small["id"]}}), 400, "smaller")
    assert alpha.member.get(f"{V}/volumes/{small['id']}").json()["volume"]["status"] == "available"
    assert alpha.member.get(f"{V}/backups/{big_backup['id']}", headers=AT).json()["backup"]["status"] == "available"
    # Members may not force a delete; admins may.
    fault(alpha.member.post(f"{V}/backups/{forced['id']}/action", headers=AT, json={"os-force_delete": {}}), 403)
    assert admin.post(f"{V}/backups/{forced['id']}/action", headers=AT, json={"os-force_delete": {}}).status_code == 202
    wait_gone(alpha.member, f"{V}/backups/{forced['id']}")


def test_backup_of_a_snapshot_and_export_import(cloud: Cloud, admin: httpx.Client, alpha: Tenant):
    volume = create(alpha.member, size=1)
    write_at(cloud, volume["id"], 0, b"at the snapshot")
    r = alpha.member.post(f"{V}/snapshots", json={"snapshot": {"volume_id": volume["id"], "name": unique("s")}})
    assert r.status_code == 202, r.text
    snapshot_id = r.json()["snapshot"]["id"]
    wait_for(lambda: alpha.member.get(f"{V}/snapshots/{snapshot_id}").json()["snapshot"]["status"] == "available",
             60, "the snapshot")
    write_at(cloud, volume["id"], 0, b"after it        ")
    made = back_up(alpha.member, volume["id"], snapshot_id=snapshot_id)
    assert made["snapshot_id"] == snapshot_id
    # An admin exports its record and imports it under another id; the import restores.
    fault(alpha.member.get(f"{V}/backups/{made['id']}/export_record", headers=AT), 403)
    record = admin.get(f"{V}/backups/{made['id']}/export_record", headers=AT).json()["backup-record"]
    assert record["backup_service"].startswith("cinder.backup.drivers")
    fields = json.loads(base64.b64decode(record["backup_url"]))
    new_id = str(uuid.uuid4())
    url = base64.b64encode(json.dumps({**fields, "id": new_id}).encode()).decode()
    fault(admin.post(f"{V}/backups/import_record", headers=AT, json={"backup-record": {
        "backup_service": record["backup_service"], "backup_url": "bm90IGpzb24="}}), 400)
    fault(admin.post(f"{V}/backups/import_record", headers=AT, json={"backup-record": record}), 400, "exists")
    r = admin.post(f"{V}/backups/import_record", headers=AT, json={"backup-record": {
        "backup_service": record["backup_service"], "backup_url": url}})
    assert r.status_code == 201, r.text
    assert r.json()["backup"]["id"] == new_id
    # As Cinder's, the import is the importing project's, with its own copy of the objects: it
    # restores after the original is gone.
    assert new_id in [b["id"] for b in admin.get(f"{V}/backups", headers=AT).json()["backups"]]
    fault(alpha.member.get(f"{V}/backups/{new_id}", headers=AT), 404)
    assert wait_backup(admin, new_id, "available")["volume_id"] == volume["id"]
    assert alpha.member.delete(f"{V}/backups/{made['id']}", headers=AT).status_code == 202
    wait_gone(alpha.member, f"{V}/backups/{made['id']}")
    answer = restore(admin, new_id)
    assert wait_volume(admin, answer["volume_id"], {"available", "error_restoring"})["status"] == "available"
    with open(volume_file(cloud, answer["volume_id"]), "rb") as f:
        assert f.read(15) == b"at the snapshot"

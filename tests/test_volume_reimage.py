"""Cinder's os-reimage (3.68) on the session cloud (dir driver): refusals that change nothing (an
older microversion, no or an unknown image, another project's image, an image larger than the
volume, a volume in use, another project's volume), then a volume written over with an image:
downloading, then available, bootable, its volume_image_metadata the image's, its data the
image's; a reserved volume (Nova's rebuild of a volume-backed server) with reimage_reserved,
back to reserved."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from tests.cloud import Cloud
from tests.test_image_api import Tenant, admin, alpha, beta  # noqa: F401 (fixtures)
from tests.test_volume_api import GB, V, create, fault, upload_image, volume_file, wait_volume

MV = {"OpenStack-API-Version": "volume 3.68"}


def reimage(client: httpx.Client, vid: str, headers: dict[str, str] | None = MV, **args: object) -> httpx.Response:
    return client.post(f"{V}/volumes/{vid}/action", json={"os-reimage": args}, headers=headers or {})


def test_a_volume_is_written_over_with_an_image(cloud: Cloud, alpha: Tenant, beta: Tenant, admin: httpx.Client,
                                                tmp_path: Path):
    image = upload_image(alpha.member, tmp_path)
    r = alpha.member.post("/image/v2/images", json={"name": "big", "disk_format": "raw", "container_format": "bare",
                                                    "min_disk": 2})
    big = r.json()
    assert alpha.member.put(f"/image/v2/images/{big['id']}/file", content=b"\0" * 512,
                            headers={"Content-Type": "application/octet-stream"}).status_code == 204
    theirs = upload_image(beta.member, tmp_path)
    volume = create(alpha.member)
    with volume_file(cloud, volume["id"]).open("r+b") as f:
        f.write(b"OLD-DATA")
    vid = volume["id"]

    # Refused, nothing changed.
    fault(reimage(alpha.member, vid, {"OpenStack-API-Version": "volume 3.67"}, image_id=image["id"]), 404)
    fault(reimage(alpha.member, vid), 400, "image_id")
    fault(reimage(alpha.member, vid, image_id=str(uuid.uuid4())), 404)
    fault(reimage(alpha.member, vid, image_id=theirs["id"]), 404)
    fault(reimage(alpha.member, vid, image_id=big["id"]), 400, "at least 2 GB")
    fault(reimage(beta.member, vid, image_id=image["id"]), 404)
    fault(reimage(alpha.member, vid, image_id=image["id"], reimage_reserved="maybe"), 400)
    r = admin.post(f"{V}/volumes/{vid}/action", json={"os-reset_status": {"status": "in-use"}})
    assert r.status_code == 202, r.text
    fault(reimage(alpha.member, vid, image_id=image["id"]), 400, "in-use")
    assert admin.post(f"{V}/volumes/{vid}/action", json={"os-reset_status": {"status": "available"}}).status_code == 202
    shown = alpha.member.get(f"{V}/volumes/{vid}").json()["volume"]
    assert (shown["status"], shown["bootable"], shown.get("volume_image_metadata")) == ("available", "false", None)
    assert volume_file(cloud, vid).read_bytes()[:8] == b"OLD-DATA"

    # Reimaged: downloading, then available with the image's data and metadata.
    r = reimage(alpha.member, vid, image_id=image["id"])
    assert r.status_code == 202, r.text
    assert alpha.member.get(f"{V}/volumes/{vid}").json()["volume"]["status"] in ("downloading", "available")
    done = wait_volume(alpha.member, vid, {"available", "error"})
    assert (done["status"], done["bootable"], done["size"]) == ("available", "true", 1), done
    assert done["volume_image_metadata"]["image_id"] == image["id"]
    data = volume_file(cloud, vid).read_bytes()
    assert len(data) == GB and data[:8] == b"\0" * 8 and data[1 << 20:(1 << 20) + 4096] == b"\x5a" * 4096

    # Reserved (an attachment without a connector, as Nova's rebuild makes): only with
    # reimage_reserved, and reserved again after.
    r = alpha.member.post(f"{V}/attachments", json={"attachment": {"volume_uuid": vid, "instance_uuid": str(
        uuid.uuid4())}}, headers={"OpenStack-API-Version": "volume 3.27"})
    assert r.status_code == 200, r.text
    assert wait_volume(alpha.member, vid, {"reserved"})
    fault(reimage(alpha.member, vid, image_id=image["id"]), 400, "reimage_reserved")
    assert reimage(alpha.member, vid, image_id=image["id"], reimage_reserved=True).status_code == 202
    assert wait_volume(alpha.member, vid, {"reserved", "error"})["status"] == "reserved"
    attachment = r.json()["attachment"]["id"]
    assert alpha.member.delete(f"{V}/attachments/{attachment}",
                               headers={"OpenStack-API-Version": "volume 3.27"}).status_code == 200
    wait_volume(alpha.member, vid, {"available"})
    alpha.member.delete(f"{V}/volumes/{vid}")

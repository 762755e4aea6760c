"""Nova's volume swap (``PUT /servers/{id}/os-volume_attachments/{old}`` with a new volumeId, an
admin's; cloudbox/compute/volume_swap.py) on the session cloud (compute's in-memory hypervisor,
the dir volume driver): refusals that change nothing (among them a swap the volume service did not
ask for: 409, as Nova since its bug 2112187), then a swap while the old volume is migrating, whose
new volume carries the old one's data, in-use on the server while the old one is available again."""

from __future__ import annotations

from typing import Any

import httpx

from tests.cloud import Cloud, wait_for
from tests.test_compute_volumes import S, attach, attachments, image, server_of, volume  # noqa: F401 (fixture)
from tests.test_image_api import Tenant, admin, alpha, beta  # noqa: F401 (fixtures)
from tests.test_volume_api import V, create, fault, volume_file, wait_volume


def test_an_admin_swaps_a_servers_volume_and_the_data_follows(cloud: Cloud, alpha: Tenant, beta: Tenant,
                                                              admin: httpx.Client, image: dict[str, Any]):
    sid = server_of(alpha, image)
    old, new, busy, small = (create(alpha.member) for _ in range(4))
    theirs, big, big_old = create(beta.member), create(alpha.member, size=2), create(alpha.member, size=2)
    assert attach(alpha.member, sid, old["id"]).status_code == 200
    with volume_file(cloud, old["id"]).open("r+b") as f:
        f.write(b"DATA-OF-THE-OLD-VOLUME\n")
    path = f"{S}/{sid}/os-volume_attachments/{old['id']}"

    def swap(vid: str, client: httpx.Client = admin, at: str = path) -> httpx.Response:
        return client.put(at, json={"volumeAttachment": {"volumeId": vid}})

    # Refused, nothing changed: a member (403), a volume not attached (404), an unknown volume
    # (404), one in use (400), a volume of another project (400), a smaller one (400); a swap
    # while the volume service is not migrating the old volume (409).
    fault(swap(new["id"], alpha.member), 403)
    fault(swap(new["id"]), 409, "not being migrated")
    for vid in (old["id"], big_old["id"]):  # what the volume service's migration would set
        r = admin.post(f"{V}/volumes/{vid}/action", json={"os-reset_status": {
            "status": "in-use" if vid == old["id"] else "available", "migration_status": "migrating"}})
        assert r.status_code == 202, r.text
    fault(swap(old["id"], at=f"{S}/{sid}/os-volume_attachments/{new['id']}"), 404)
    fault(swap("00000000-0000-4000-8000-000000000000"), 404)
    other = server_of(alpha, image)
    assert attach(alpha.member, other, busy["id"]).status_code == 200
    fault(swap(busy["id"]), 400, "status must be 'available'")
    fault(swap(theirs["id"]), 400, "another project")
    assert attach(alpha.member, other, big_old["id"]).status_code == 200
    fault(swap(small["id"], at=f"{S}/{other}/os-volume_attachments/{big_old['id']}"), 400, "smaller")
    assert volume(alpha.member, old["id"])["status"] == "in-use"
    assert {volume(alpha.member, v["id"])["status"] for v in (new, small)} == {"available"}
    assert volume(beta.member, theirs["id"])["status"] == "available"

    # Swapped: 202 at once, then the new volume in-use on the server with the old one's data.
    r = swap(big["id"])
    assert r.status_code == 202, r.text
    assert wait_volume(alpha.member, big["id"], {"in-use"})["attachments"][0]["server_id"] == sid
    assert wait_volume(alpha.member, old["id"], {"available"})["attachments"] == []
    assert [a["volumeId"] for a in attachments(alpha.member, sid)] == [big["id"]]
    with volume_file(cloud, big["id"]).open("rb") as f:
        assert f.read(23) == b"DATA-OF-THE-OLD-VOLUME\n"
    assert volume_file(cloud, big["id"]).stat().st_size == 2 << 30
    for server in (sid, other):
        assert alpha.member.delete(f"{S}/{server}").status_code == 204
    wait_for(lambda: volume(alpha.member, big["id"])["status"] == "available", 60, "the new volume to be freed")

"""The services this build of cloudbox runs: their stores and their catalog entries.

Adding a service: its StoreSpec to STORES, its (type, name, prefix) to CATALOG,
and its construction and ApiSpec to ``cloudbox.server.Node``.  A test checks
that CATALOG and the mounted APIs agree.
"""

from __future__ import annotations

from cloudbox.cluster import store as cluster_store
from cloudbox.compute import store as compute_store
from cloudbox.identity import store as identity_store
from cloudbox.image import store as image_store
from cloudbox.network import store as network_store
from cloudbox.object import store as object_store
from cloudbox.orchestration import store as orchestration_store
from cloudbox.state.migrations import StoreSpec
from cloudbox.volume import store as volume_store

STORES: list[StoreSpec] = [identity_store.STORE, compute_store.STORE, image_store.STORE, network_store.STORE,
                          cluster_store.STORE, volume_store.STORE, object_store.STORE, orchestration_store.STORE]

# (service type, service name, path prefix) of every API in the service catalog.
CATALOG: list[tuple[str, str, str]] = [
    ("identity", "keystone", "/identity/v3"),
    ("cloudbox", "cloudbox", "/cloudbox/v1"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image/v2"),
    ("network", "neutron", "/network"),
    # openstacksdk and the CLI look for block-storage, then its aliases volumev3, volumev2, volume.
    ("block-storage", "cinder", "/volume/v3"),
    ("volumev3", "cinderv3", "/volume/v3"),
    # Swift's URL names the account: clients take it from the endpoint, so the project is in it.
    ("object-store", "swift", "/object-store/v1/AUTH_%(project_id)s"),
    # S3 on the same objects, path-style (boto3's and awscli's --endpoint-url): cloudbox.object.s3_api.
    ("s3", "s3", "/s3"),
    # Heat's URL names the project, as python-heatclient expects it in the endpoint.
    ("orchestration", "heat", "/orchestration/v1/%(project_id)s"),
]


def wanted_catalog(base_url: str) -> list[tuple[str, str, str]]:
    return [(t, n, base_url + p) for t, n, p in CATALOG]

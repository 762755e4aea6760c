"""The cluster service talks to other services through their public methods (issue 12): no SQL on
their tables, no web request objects, typed dependencies instead of the whole node."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from cloudbox.cluster import service
from cloudbox.cluster.store import MIGRATIONS

CLUSTER = Path(service.__file__).parent


def test_cluster_code_queries_only_cluster_tables():
    own = set(re.findall(r"CREATE TABLE (\w+)", " ".join(MIGRATIONS)))
    assert {"cluster_nodes", "cluster_join_tokens", "cluster_upgrades"} <= own
    for path in CLUSTER.glob("*.py"):
        named = set(re.findall(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)", path.read_text()))
        assert named <= own, f"{path.name} queries tables of another service: {sorted(named - own)}"


def test_the_cluster_service_takes_plain_data_and_typed_dependencies():
    source = inspect.getsource(service)
    assert "quart" not in source and ".full_path" not in source
    hints = inspect.signature(service.ClusterService.__init__).parameters
    assert [(n, p.annotation) for n, p in hints.items() if n != "self"] == [
        ("engine", "StateEngine"), ("data_dir", "DataDir"), ("settings", "Settings"), ("me", "ThisNode")]
    forward = inspect.signature(service.ClusterService.forward).parameters
    assert "Any" not in {forward[n].annotation for n in ("host", "method", "path", "headers")}

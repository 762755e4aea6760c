"""The OpenAPI document tells the truth: its response schemas, and a schema-driven fuzzer against a node.

``test_api_answers_as_documented`` runs schemathesis (its CLI, hooks in tests/fuzz_hooks.py)
against ``/openapi.json`` of a fresh node with fake drivers, as the cloud's admin, for
FUZZ_SECONDS, and fails on any 5xx and on any answer the document does not describe (an
undocumented status, a media type or a body that does not match its schema). Its seed is
fixed so a failure comes back on the next run; set CLOUDBOX_FUZZ_SEED to explore others
and CLOUDBOX_FUZZ_SECONDS to fuzz longer. What a run found is kept in FOUND (and the stalled
connection test), asked every time, since a time-bounded run does not reach everything twice.
The other tests check the document itself against answers of the shared node.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.cloud import ROOT, Cloud
from tests.compute_helpers import LATEST, boot, make_qcow2, upload_image, wait_server

FUZZ_SECONDS = int(os.environ.get("CLOUDBOX_FUZZ_SECONDS", "150"))
FUZZ_SEED = os.environ.get("CLOUDBOX_FUZZ_SEED", "20261206")
TOOL_ERRORS = ("Runtime Error", "Failed Health Check")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"

# Operations the fuzzer leaves alone ("METHOD /path" → why). None need it today: what the run's
# own access rests on (its token, user, project, domain, role) is guarded by fuzz_hooks.py, and
# the rest is safe to fuzz on a node of its own:
# - POST /cloudbox/v1/token-keys/rotate keeps the keys of live tokens, so the run's token stays good;
# - DELETE /cloudbox/v1/nodes/{node_key} refuses to remove the node that answers (409);
# - the catalog (services, endpoints, regions) may be rewritten: the fuzzer never reads it;
# - servers and networks run on the fake drivers, and every upload is bounded by the body limit.
EXCLUDED: dict[str, str] = {}


def _document(node: Cloud) -> dict[str, Any]:
    with node.client() as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    return response.json()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in document["paths"].items() for method, op in ops.items()]


def _response_schema(document: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    answer = document["paths"][path][method.lower()]["responses"][str(status)]
    schema = answer["content"]["application/json"]["schema"]
    return {**schema, "components": document["components"]}  # for the error bodies' $refs


def _matches(document: dict[str, Any], method: str, path: str, status: int, body: Any) -> None:
    jsonschema.validate(body, _response_schema(document, method, path, status),
                        cls=jsonschema.Draft202012Validator)


def test_document_describes_every_answer(cloud: Cloud) -> None:
    from cloudbox.api.responses import doc_for

    document = _document(cloud)
    jsonschema.Draft202012Validator.check_schema({"$defs": document["components"]["schemas"]})
    for method, path, op in _operations(document):
        assert doc_for(method, path) is not None, f"{method} {path} has no entry in cloudbox.api.responses"
        successes = [int(s) for s in op["responses"] if int(s) < 400]
        assert successes, f"{method} {path} documents no success"
        for status, answer in op["responses"].items():
            for media in answer.get("content", {}).values():
                jsonschema.Draft202012Validator.check_schema(media["schema"])
            if int(status) >= 400 and method != "HEAD":
                assert "content" in answer, f"{method} {path} {status}: the error body is not described"
    # Statuses the issue found documented wrongly.
    keypairs = document["paths"]["/compute/v2.1/os-keypairs"]
    assert {"200", "201"} <= set(keypairs["post"]["responses"])
    assert {"202", "204"} <= set(document["paths"]["/compute/v2.1/os-keypairs/{name}"]["delete"]["responses"])
    patch = document["paths"]["/image/v2/images/{image_id}"]["patch"]
    assert "415" in patch["responses"]
    assert set(patch["requestBody"]["content"]) == {
        "application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch"}


def test_key_pair_statuses_follow_the_microversion(cloud: Cloud) -> None:
    """Nova's base microversion answers a key pair's create 200 and delete 202; 2.2 and later 201 and 204."""
    document = _document(cloud)
    with cloud.client(cloud.token()) as client:
        for version, created, deleted in (("2.1", 200, 202), ("2.2", 201, 204), ("2.91", 201, 204)):
            headers = {"OpenStack-API-Version": f"compute {version}"}
            name = f"fuzz-doc-{version}"
            r = client.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": name}}, headers=headers)
            assert r.status_code == created, r.text
            _matches(document, "POST", "/compute/v2.1/os-keypairs", created, r.json())
            r = client.get(f"/compute/v2.1/os-keypairs/{name}", headers=headers)
            assert r.status_code == 200, r.text
            _matches(document, "GET", "/compute/v2.1/os-keypairs/{name}", 200, r.json())
            r = client.delete(f"/compute/v2.1/os-keypairs/{name}", headers=headers)
            assert r.status_code == deleted, r.text
            assert r.content == b""
        r = client.get("/compute/v2.1/os-keypairs/nothing-here")
        assert r.status_code == 404
        _matches(document, "GET", "/compute/v2.1/os-keypairs/{name}", 404, r.json())


def test_image_update_needs_the_json_patch_media_type(cloud: Cloud) -> None:
    document = _document(cloud)
    path = "/image/v2/images/{image_id}"
    with cloud.client(cloud.token()) as client:
        r = client.post("/image/v2/images", json={"name": "fuzz-doc", "disk_format": "raw", "container_format": "bare"})
        assert r.status_code == 201, r.text
        _matches(document, "POST", "/image/v2/images", 201, r.json())
        image_id = r.json()["id"]
        change = [{"op": "replace", "path": "/name", "value": "fuzz-doc-renamed"}]
        r = client.patch(f"/image/v2/images/{image_id}", json=change)
        assert r.status_code == 415, r.text
        _matches(document, "PATCH", path, 415, r.json())
        r = client.patch(f"/image/v2/images/{image_id}", content=json.dumps(change),
                         headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
        assert r.status_code == 200, r.text
        _matches(document, "PATCH", path, 200, r.json())
        assert r.json()["name"] == "fuzz-doc-renamed"
        assert client.delete(f"/image/v2/images/{image_id}").status_code == 204


# What the fuzzer found, kept as requests that must get the answer the document gives them:
# (method, URL, status, documented path). Found by seeds or bounds the run does not always reach.
FOUND = [
    ("GET", "/network/v2.0/security-group-rules?tags=x", 200, "/network/v2.0/security-group-rules"),
    ("GET", "/network/v2.0/security-group-rules?not-tags-any=x", 200, "/network/v2.0/security-group-rules"),
    ("GET", f"/image/v2/images?size_min={2**63}", 400, "/image/v2/images"),
    ("GET", f"/image/v2/images?size_max={2**63}", 400, "/image/v2/images"),
    ("GET", f"/compute/v2.1/os-aggregates/{2**63}", 404, "/compute/v2.1/os-aggregates/{aggregate_id}"),
    ("DELETE", f"/compute/v2.1/os-aggregates/{10**30}", 404, "/compute/v2.1/os-aggregates/{aggregate_id}"),
]


@pytest.mark.parametrize(("method", "url", "status", "path"), FOUND, ids=[f"{m} {u}"[:60] for m, u, _, _ in FOUND])
def test_fuzzer_findings_answer_as_documented(cloud: Cloud, method: str, url: str, status: int, path: str) -> None:
    document = _document(cloud)
    with cloud.client(cloud.token()) as client:
        r = client.request(method, url)
    assert r.status_code == status, r.text
    _matches(document, method, path, status, r.json())


def test_a_refused_body_does_not_stall_the_connection(cloud: Cloud) -> None:
    """Found by the fuzzer as read timeouts: after a 405 to the first request of a connection, one with
    a body, the next request on that keep-alive connection sometimes got no answer for 10 s, then a
    closed connection."""
    token = cloud.token()
    refusals = [("POST", "/identity/v3/projects/x"), ("TRACE", "/identity/v3/services"),
                ("DELETE", "/identity/v3/projects"), ("PUT", "/identity/v3/auth/catalog")]
    for round in range(40):  # it happened in about one connection of ten
        method, path = refusals[round % len(refusals)]
        with cloud.client(token) as client:
            client.timeout = 5
            refused = client.request(method, path, content=b'{"x": 1}', headers={"Content-Type": "application/json"})
            assert refused.status_code == 405, refused.text
            try:
                answer = client.get("/identity/v3/auth/catalog")
            except httpx.TransportError as exc:
                pytest.fail(f"after a 405 to {method} {path} with a body, the next request got no answer: {exc!r}")
            assert answer.status_code == 200, answer.text


def _made(response: Any, key: str | None = None, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    return body[key] if key else body


def populate(node: Cloud, token: str, workdir: Path) -> dict[str, list[str]]:
    """One of each resource, for the fuzzer to find; returns their ids by the path segment that names them."""
    with node.client(token) as c:
        v3, nova, net = "/identity/v3", "/compute/v2.1", "/network/v2.0"
        domain = _made(c.post(f"{v3}/domains", json={"domain": {"name": "fuzz-domain"}}), "domain")
        project = _made(c.post(f"{v3}/projects", json={"project": {"name": "fuzz-project"}}), "project")
        user = _made(c.post(f"{v3}/users", json={"user": {"name": "fuzz-user", "password": "fuzz-pw"}}), "user")
        group = _made(c.post(f"{v3}/groups", json={"group": {"name": "fuzz-group"}}), "group")
        role = _made(c.post(f"{v3}/roles", json={"role": {"name": "fuzz-role"}}), "role")
        region = _made(c.post(f"{v3}/regions", json={"region": {"id": "fuzz-region"}}), "region")
        service = _made(c.post(f"{v3}/services", json={"service": {"type": "fuzz", "name": "fuzz"}}), "service")
        endpoint = _made(c.post(f"{v3}/endpoints", json={"endpoint": {
            "service_id": service["id"], "interface": "public", "url": "https://127.0.0.1:1/fuzz"}}), "endpoint")
        assert c.put(f"{v3}/projects/{project['id']}/users/{user['id']}/roles/{role['id']}").status_code == 204
        assert c.put(f"{v3}/groups/{group['id']}/users/{user['id']}").status_code == 204

        flavor = _made(c.post(f"{nova}/flavors", json={"flavor": {
            "name": "fuzz-flavor", "ram": 64, "vcpus": 1, "disk": 1, "os-flavor-access:is_public": False}}),
            "flavor", 200)
        assert c.post(f"{nova}/flavors/{flavor['id']}/os-extra_specs",
                      json={"extra_specs": {"fuzz:spec": "1"}}).status_code == 200
        keypair = _made(c.post(f"{nova}/os-keypairs", json={"keypair": {"name": "fuzz-key"}}), "keypair", 200)
        group_ = _made(c.post(f"{nova}/os-server-groups", json={"server_group": {
            "name": "fuzz-group", "policies": ["anti-affinity"]}}), "server_group", 200)
        aggregate = _made(c.post(f"{nova}/os-aggregates", json={"aggregate": {"name": "fuzz-agg"}}), "aggregate", 200)
        hosts = [h["hypervisor_hostname"] for h in c.get(f"{nova}/os-hypervisors").json()["hypervisors"]]

        image = upload_image(c, make_qcow2(workdir / "fuzz.qcow2", "1M"), "fuzz-image", visibility="shared")
        assert c.post(f"/image/v2/images/{image['id']}/members", json={"member": project["id"]}).status_code == 200
        assert c.put(f"/image/v2/images/{image['id']}/tags/fuzz").status_code == 204

        network = _made(c.post(f"{net}/networks", json={"network": {"name": "fuzz-net", "tags": ["fuzz"]}}), "network")
        subnet = _made(c.post(f"{net}/subnets", json={"subnet": {
            "network_id": network["id"], "cidr": "10.77.0.0/24", "ip_version": 4}}), "subnet")
        port = _made(c.post(f"{net}/ports", json={"port": {"network_id": network["id"]}}), "port")
        external = _made(c.post(f"{net}/networks", json={"network": {"name": "fuzz-ext", "router:external": True}}),
                         "network")
        _made(c.post(f"{net}/subnets", json={"subnet": {
            "network_id": external["id"], "cidr": "192.0.2.0/24", "ip_version": 4}}), "subnet")
        router = _made(c.post(f"{net}/routers", json={"router": {
            "name": "fuzz-router", "external_gateway_info": {"network_id": external["id"]}}}), "router")
        assert c.put(f"{net}/routers/{router['id']}/add_router_interface",
                     json={"subnet_id": subnet["id"]}).status_code == 200
        floatingip = _made(c.post(f"{net}/floatingips", json={"floatingip": {
            "floating_network_id": external["id"]}}), "floatingip")
        secgroup = _made(c.post(f"{net}/security-groups", json={"security_group": {"name": "fuzz-sg"}}),
                         "security_group")
        rule = _made(c.post(f"{net}/security-group-rules", json={"security_group_rule": {
            "security_group_id": secgroup["id"], "direction": "ingress", "protocol": "tcp",
            "port_range_min": 22, "port_range_max": 22}}), "security_group_rule")

        server = boot(c, image["id"], name="fuzz-server", networks=[{"uuid": network["id"]}],
                      metadata={"fuzz": "1"}, tags=["fuzz"], key_name=keypair["name"])
        wait_server(c, server["id"], {"ACTIVE"})
        assert c.put(f"{nova}/servers/{server['id']}/tags/fuzz", headers=LATEST).status_code in (201, 204)
    return {
        "domains": [domain["id"]], "projects": [project["id"]], "users": [user["id"]], "groups": [group["id"]],
        "roles": [role["id"]], "implies": [role["id"]], "regions": [region["id"]], "services": [service["id"]],
        "endpoints": [endpoint["id"]], "flavors": [flavor["id"], "42"], "os-extra_specs": ["fuzz:spec"],
        "os-keypairs": [keypair["name"]], "os-server-groups": [group_["id"]],
        "os-aggregates": [aggregate["id"]], "os-hypervisors": hosts, "servers": [server["id"]],
        "metadata": ["fuzz"], "tags": ["fuzz"], "images": [image["id"]], "members": [project["id"]],
        "schemas": ["image", "images", "member", "members"], "os-quota-sets": [project["id"]],
        "os-simple-tenant-usage": [project["id"]], "quotas": [project["id"]],
        "auto-allocated-topology": [project["id"]], "networks": [network["id"], external["id"]],
        "network-ip-availabilities": [network["id"]], "subnets": [subnet["id"]], "ports": [port["id"]],
        "routers": [router["id"]], "floatingips": [floatingip["id"]], "security-groups": [secgroup["id"]],
        "security-group-rules": [rule["id"]], "extensions": ["router", "security-group"],
    }


def _failures_section(output: str) -> str:
    """The report's FAILURES and ERRORS sections (each failing operation with a curl to reproduce it)."""
    found = re.search(r"^=+ (ERRORS|FAILURES) =+$.*?(?=^=+ (WARNINGS|SUMMARY) =+$)", output, re.M | re.S)
    return found.group(0) if found else output[-20000:]


@pytest.mark.slow
def test_api_answers_as_documented(new_cloud: Cloud, tmp_path: Path) -> None:
    new_cloud.init()
    new_cloud.start()
    token = new_cloud.token()
    with new_cloud.client(token) as client:
        r = client.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token})
        assert r.status_code == 200, r.text
        scope = r.json()["token"]
    protected = [token, scope["user"]["id"], scope["user"]["domain"]["id"], scope["project"]["id"],
                 scope["project"]["domain"]["id"], *(role["id"] for role in scope["roles"])]
    known = populate(new_cloud, token, tmp_path)
    # Swift's account is the token's project; one container with one object in it.
    account = f"/object-store/v1/AUTH_{scope['project']['id']}"
    with new_cloud.client(token) as client:
        assert client.put(f"{account}/fuzz-container").status_code == 201
        assert client.put(f"{account}/fuzz-container/fuzz/object", content=b"fuzz").status_code == 201
    known.update({"{account}": [scope["project"]["id"]], "{container}": ["fuzz-container"],
                  "{object}": ["fuzz/object"]})
    report = tmp_path / "schemathesis.json"
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", new_cloud.url + "/openapi.json",
        "--tls-verify", new_cloud.ca, "-H", f"X-Auth-Token: {token}",
        "--checks", CHECKS, "--max-time", str(FUZZ_SECONDS), "--seed", FUZZ_SEED, "--workers", "2",
        "--request-timeout", "30", "--generation-database", "none", "--no-color",
        "--report", "json", "--report-json-path", str(report),
    ]
    for operation in EXCLUDED:
        command += ["--exclude-name", operation]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks", "PYTHONPATH": str(ROOT),
           "CLOUDBOX_FUZZ_PROTECTED": json.dumps(protected), "CLOUDBOX_FUZZ_KNOWN": json.dumps(known),
           "COLUMNS": "120"}
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=FUZZ_SECONDS + 300)
    (tmp_path / "schemathesis.out").write_text(proc.stdout + proc.stderr)
    # The node is still up and still answers its admin: nothing the fuzzer sent stopped it or locked it out.
    new_cloud.wait_serving(10)
    with new_cloud.client(token) as client:
        assert client.get("/identity/v3/auth/projects").status_code == 200
    summary = json.loads(report.read_text()) if report.exists() else {}
    tested = summary.get("operations", {}).get("tested", 0)
    assert tested > 200, f"schemathesis tested only {tested} operations:\n{proc.stdout[-5000:]}{proc.stderr[-5000:]}"
    # Errors of the generator itself (a Hypothesis health check, an internal fault) say nothing of the API;
    # every other error does (a dropped connection, a timeout, a schema it cannot use).
    api_errors = [e for e in summary.get("errors", []) if e.get("title") not in TOOL_ERRORS]
    assert not summary.get("failures") and not api_errors, (
        f"schemathesis found answers the document does not allow (seed {FUZZ_SEED}; "
        f"full output in {tmp_path / 'schemathesis.out'}):\n{_failures_section(proc.stdout)}"
    )

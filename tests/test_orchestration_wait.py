"""WaitCondition and WaitConditionHandle: a stack waits for signals to the handle's signed URL
(what a guest's user data curls), counts them, fails on a FAILURE or a timeout."""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.cloud import Cloud, wait_for
from tests.test_orchestration_cli import cli, heat_url, user_env  # noqa: F401 (the fixture)

TEMPLATE = {
    "heat_template_version": "2017-02-24",
    "parameters": {"count": {"type": "number", "default": 2}, "timeout": {"type": "number", "default": 120}},
    "resources": {
        "handle": {"type": "OS::Heat::WaitConditionHandle"},
        "waiter": {"type": "OS::Heat::WaitCondition", "properties": {
            "handle": {"get_resource": "handle"}, "count": {"get_param": "count"},
            "timeout": {"get_param": "timeout"}}},
        "after": {"type": "OS::Heat::RandomString", "depends_on": "waiter"},
    },
    "outputs": {"curl": {"value": {"get_attr": ["handle", "curl_cli"]}},
                "url": {"value": {"get_attr": ["handle", "endpoint"]}},
                "data": {"value": {"get_attr": ["waiter", "data"]}}},
}


def stack_of(link: str, headers: dict[str, str], ca: str) -> dict[str, Any]:
    return requests.get(link, headers=headers, verify=ca, timeout=30).json()["stack"]


def create(cloud: Cloud, url: str, headers: dict[str, str], name: str, **params: Any) -> str:
    answer = requests.post(f"{url}/stacks", json={"stack_name": name, "template": TEMPLATE, "parameters": params},
                           headers=headers, verify=cloud.ca, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()["stack"]["links"][0]["href"]


def signal_url(cloud: Cloud, link: str, headers: dict[str, str]) -> str:
    """The handle's URL, once the handle is made (the waiter is waiting then)."""
    def ready() -> str | None:
        resources = requests.get(link + "/resources", headers=headers, verify=cloud.ca, timeout=30).json()
        states = {r["resource_name"]: r["resource_status"] for r in resources["resources"]}
        if states.get("handle") != "CREATE_COMPLETE" or states.get("waiter") != "CREATE_IN_PROGRESS":
            return None
        output = requests.get(link + "/outputs/url", headers=headers, verify=cloud.ca, timeout=30).json()
        return output["output"]["output_value"]

    return wait_for(ready, 30, "the wait condition to wait", every=0.2)


def on_api(cloud: Cloud, guest_url: str) -> str:
    """A handle's URL is on the metadata address (what a guest reaches); the API serves the same path."""
    assert guest_url.startswith("http://169.254.169.254/orchestration/v1/signal/"), guest_url
    return cloud.url + guest_url[len("http://169.254.169.254"):]


def test_wait_condition_counts_signals_to_the_signed_url(new_cloud: Cloud, user_env: dict[str, str]):
    cloud, env = new_cloud, user_env
    url, token = heat_url(cloud, env)
    headers = {"X-Auth-Token": token}
    link = create(cloud, url, headers, "waits")
    guest_url = signal_url(cloud, link, headers)
    endpoint = on_api(cloud, guest_url)
    # The curl command a template hands its guest calls the same URL.
    curl = requests.get(link + "/outputs/curl", headers=headers, verify=cloud.ca, timeout=30).json()
    command = curl["output"]["output_value"]
    assert command.startswith("curl -i -X POST") and f"'{guest_url}'" in command

    # No token is needed, but the signature is: a wrong one is a 404 and counts nothing.
    forged = endpoint.rsplit("=", 1)[0] + "=" + "0" * 64
    assert requests.post(forged, json={"status": "SUCCESS"}, verify=cloud.ca, timeout=30).status_code == 404
    assert requests.post(endpoint, json={"status": "MAYBE"}, verify=cloud.ca, timeout=30).status_code == 400
    first = requests.post(endpoint, json={"status": "SUCCESS", "data": "booted", "id": "vm1"}, verify=cloud.ca,
                          timeout=30)
    assert first.status_code == 200, first.text
    assert stack_of(link, headers, cloud.ca)["stack_status"] == "CREATE_IN_PROGRESS"  # one of two
    assert requests.post(endpoint, json={"status": "SUCCESS", "data": "ready", "id": "vm2"}, verify=cloud.ca,
                         timeout=30).status_code == 200
    stack = wait_for(lambda: (lambda s: s if s["stack_status"] != "CREATE_IN_PROGRESS" else None)(
        stack_of(link, headers, cloud.ca)), 30, "waits to end", every=0.2)
    assert stack["stack_status"] == "CREATE_COMPLETE", stack
    outputs = {o["output_key"]: o["output_value"] for o in stack["outputs"]}
    assert json.loads(outputs["data"]) == {"vm1": "booted", "vm2": "ready"}
    events = cli(cloud, env, "stack", "event", "list", "waits")
    assert [e["resource_status_reason"] for e in events if e["resource_status"] == "SIGNAL_COMPLETE"] == \
        ["Signal: status:SUCCESS reason:Signal 1 received", "Signal: status:SUCCESS reason:Signal 2 received"]


def test_a_failure_signal_or_a_timeout_fails_the_stack(new_cloud: Cloud, user_env: dict[str, str]):
    cloud, env = new_cloud, user_env
    url, token = heat_url(cloud, env)
    headers = {"X-Auth-Token": token}
    link = create(cloud, url, headers, "fails", count=1)
    endpoint = on_api(cloud, signal_url(cloud, link, headers))
    assert requests.post(endpoint, json={"status": "FAILURE", "reason": "disk full"}, verify=cloud.ca,
                         timeout=30).status_code == 200
    stack = wait_for(lambda: (lambda s: s if s["stack_status"] != "CREATE_IN_PROGRESS" else None)(
        stack_of(link, headers, cloud.ca)), 30, "fails to end", every=0.2)
    assert stack["stack_status"] == "CREATE_FAILED" and "disk full" in stack["stack_status_reason"], stack

    link = create(cloud, url, headers, "late", count=1, timeout=1)
    stack = wait_for(lambda: (lambda s: s if s["stack_status"] != "CREATE_IN_PROGRESS" else None)(
        stack_of(link, headers, cloud.ca)), 30, "late to end", every=0.2)
    assert stack["stack_status"] == "CREATE_FAILED" and "WaitConditionTimeout" in stack["stack_status_reason"]
    names = {r["resource_name"]: r["resource_status"] for r in cli(cloud, env, "stack", "resource", "list", "late")}
    assert names == {"handle": "CREATE_COMPLETE", "waiter": "CREATE_FAILED"}  # "after" was never started

"""A WaitCondition signalled from inside a guest (issue 18, acceptance 4): the handle's URL is on
the metadata address, the metadata listener passes that one POST to orchestration, and the
signature decides.

The fast test runs real listeners in a namespace and our test guest's own busybox wget (what its
user data runs); the slow one boots a real TCG guest whose user data signals a stack's handle."""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from cloudbox.errors import BadRequest, NotFound
from cloudbox.network.metadata_server import MetadataListeners, request_query
from cloudbox.orchestration import guest_signals
from cloudbox.orchestration.resources.base import Context
from cloudbox.orchestration.resources.wait import GUEST_BASE, WaitConditionHandle, signal_url
from tests.cloud import Cloud, wait_for
from tests.compute_helpers import member_with_network
from tests.test_compute_libvirt import console
from tests.test_compute_records_guest import node  # noqa: F401 - a real node with the test guest as "cirros"
from tests.test_network_guests import checks, wait_booted
from tests.test_network_metadata import Lab, Recorder, guest_fetch, lab, raw_exchange  # noqa: F401 - lab: a fixture

ROOT = Path(__file__).resolve().parents[1]
BUSYBOX = ROOT / "firmware" / "build" / "work" / "initramfs" / "bin" / "busybox"
STACK, HANDLE, SECRET = "5f0c1a2e-0000-4000-8000-00000000aaaa", "9b7e4c1d-0000-4000-8000-00000000bbbb", "s" * 64


class Signals:
    """The orchestration service's signal_by_url, as the listener's hook sees it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def signal_by_url(self, stack_id: str, handle_id: str, signature: str, body: Any) -> None:
        url = signal_url("", STACK, HANDLE, SECRET)
        if f"/{stack_id}/{handle_id}?signature={signature}" != url[len("/orchestration/v1/signal"):]:
            raise NotFound("No such signal URL.")
        self.calls.append((stack_id, handle_id, body))


def test_request_query_is_the_raw_query():
    assert request_query(b"/a/b?signature=ab12&x=1") == "signature=ab12&x=1"
    assert request_query(b"http://169.254.169.254/a?signature=ff#frag") == "signature=ff"
    assert request_query(b"/a/b") == ""


async def test_the_metadata_service_passes_only_the_signed_signal_path(lab: Lab):
    assert BUSYBOX.exists(), "build-guest.sh keeps the unpacked initramfs in build/work"
    signals = Signals()
    recorder = Recorder(lab.network_id, lab.guest_ip)
    listeners = MetadataListeners(recorder)
    listeners.signal = functools.partial(guest_signals.answer, signals)
    lab.add_metadata_address()
    url = signal_url(GUEST_BASE, STACK, HANDLE, SECRET)
    path = url[len(GUEST_BASE):]

    async def wget(target: str, body: str) -> subprocess.CompletedProcess[bytes]:
        """What the test guest's user data runs: busybox wget's POST with a JSON header."""
        with trio.fail_after(20):
            return await trio.run_process(
                ["ip", "netns", "exec", lab.guest, str(BUSYBOX), "timeout", "10", str(BUSYBOX), "wget", "-q",
                 "-O", "-", "--header", "Content-Type: application/json", "--post-data", body, target],
                capture_stdout=True, capture_stderr=True, check=False)

    async def post(target: str, body: bytes = b"") -> bytes:
        return await raw_exchange(lab, f"POST {target} HTTP/1.1\r\nHost: 169.254.169.254\r\n"
                                       f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    async with trio.open_nursery() as nursery:
        await nursery.start(listeners.run)
        await listeners.sync({lab.dhcp: lab.network_id})
        with trio.fail_after(10):
            await listeners.wait_listening(lab.dhcp)
        sent = await wget(url, '{"status": "SUCCESS", "id": "vm1", "data": "booted"}')
        assert sent.returncode == 0, sent.stderr
        assert signals.calls == [(STACK, HANDLE, {"status": "SUCCESS", "id": "vm1", "data": "booted"})]
        # A forged signature is the service's 404 in Heat's error shape, and counts nothing.
        forged = await wget(url[:-64] + "0" * 64, '{"status": "SUCCESS"}')
        assert forged.returncode != 0 and b"404" in forged.stderr
        answer = await post(path[:-64] + "0" * 64, b"{}")
        assert answer.startswith(b"HTTP/1.1 404 ")
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["message"] == "No such signal URL."
        # Heat's curl_cli with no --data-binary: an empty POST is a SUCCESS without data.
        assert (await post(path)).startswith(b"HTTP/1.1 200 ")
        assert signals.calls[-1] == (STACK, HANDLE, {})
        # What cirros and cloud-init images run: the handle's curl_cli, as Heat's templates use it
        # (here with 2 kB of data: curl asks "Expect: 100-continue" first).
        handle = Context(api=None, stack={"id": STACK}, name="h", row_id=HANDLE,  # type: ignore[arg-type]
                         physical_id=HANDLE, data={"secret": SECRET, "transport": "TOKEN_SIGNAL"})
        curl_cli = (await WaitConditionHandle().attributes(handle))["curl_cli"]
        data = "k" * 2000
        with trio.fail_after(20):
            curled = await trio.run_process(
                ["ip", "netns", "exec", lab.guest, "sh", "-c",
                 f"{curl_cli} -sS --max-time 10 --data-binary '{{\"status\": \"SUCCESS\", \"data\": \"{data}\"}}'"],
                capture_stdout=True, capture_stderr=True, check=False)
        assert curled.returncode == 0 and curled.stdout.startswith(b"HTTP/1.1 200 "), curled
        assert signals.calls[-1] == (STACK, HANDLE, {"status": "SUCCESS", "data": data})
        assert len(signals.calls) == 3

        # Nothing else of the API: other orchestration paths are 404, other POSTs the listener's 405,
        # and a GET of the signal path is the metadata tree's own 404 (never passed on).
        for other in ("/orchestration/v1/signal/" + STACK, path.split("?")[0] + "/x?" + path.split("?")[1],
                      f"/orchestration/v1/{STACK}/stacks", "/orchestration/v1/signal//" + HANDLE):
            assert (await post(other, b"{}")).startswith(b"HTTP/1.1 404 "), other
        assert (await post("/identity/v3/auth/tokens", b"{}")).startswith(b"HTTP/1.1 405 ")
        assert (await post("/compute/v2.1/servers", b"{}")).startswith(b"HTTP/1.1 405 ")
        code, _ = await guest_fetch(lab, url)
        assert code == 404 and recorder.calls[-1][2] == path.split("?")[0]

        # Bounded bodies: the signal's own bound (16 KiB), then the listener's (64 KiB); bad JSON is 400.
        assert (await post(path, b'{"data": "' + b"x" * guest_signals.BODY_MAX + b'"}')).startswith(
            b"HTTP/1.1 413 ")
        assert (await post(path, b"x" * 70000)).startswith(b"HTTP/1.1 413 ")
        for bad in (b"status=SUCCESS", b'["SUCCESS"]', b"\xff\xfe"):
            assert (await post(path, bad)).startswith(b"HTTP/1.1 400 "), bad
        assert len(signals.calls) == 3  # none of those reached the service
        nursery.cancel_scope.cancel()


# --- a real guest ------------------------------------------------------------------------------

USER_DATA_SCRIPT = """#!/bin/sh
# As a Heat template's user data does with curl_cli, with what our guest has: busybox wget.
U='wc_url'
if wget -q -O /dev/null --header 'Content-Type: application/json' --post-data '{"status": "SUCCESS"}' \\
    "${U%signature=*}signature=forged" 2>/tmp/err; then echo "CHECK forged accepted"; \\
    else echo "CHECK forged $(cat /tmp/err)"; fi
if wget -q -O /dev/null --header 'Content-Type: application/json' \\
    --post-data "{\\"status\\": \\"SUCCESS\\", \\"id\\": \\"guest\\", \\"data\\": \\"up on $(hostname)\\"}" "$U"; \\
    then echo "CHECK signal ok"; else echo "CHECK signal failed"; fi
"""


def template(network: str) -> dict[str, Any]:
    return {
        "heat_template_version": "2018-08-31",
        "resources": {
            "handle": {"type": "OS::Heat::WaitConditionHandle"},
            "server": {"type": "OS::Nova::Server", "properties": {
                "name": "signaller", "image": "cirros", "flavor": "m1.nano", "networks": [{"network": network}],
                "user_data_format": "RAW", "user_data": {"str_replace": {
                    "template": USER_DATA_SCRIPT, "params": {"wc_url": {"get_attr": ["handle", "endpoint"]}}}}}},
            "waiter": {"type": "OS::Heat::WaitCondition", "depends_on": "server",
                       "properties": {"handle": {"get_resource": "handle"}, "timeout": 240}},
        },
        "outputs": {"data": {"value": {"get_attr": ["waiter", "data"]}},
                    "curl": {"value": {"get_attr": ["handle", "curl_cli"]}}},
    }


@pytest.mark.slow
def test_a_real_guest_signals_its_wait_condition_through_the_metadata_address(node: Cloud):
    project, member, net = member_with_network(node, "waits", "192.168.9.0/24")
    heat = f"/orchestration/v1/{project}"
    created = member.post(f"{heat}/stacks", json={"stack_name": "signalled", "template": template(net["id"])})
    assert created.status_code == 201, created.text
    stack_id = created.json()["stack"]["id"]
    link = f"{heat}/stacks/signalled/{stack_id}"

    def settled() -> dict[str, Any] | None:
        stack = member.get(link).json()["stack"]
        return None if stack["stack_status"] == "CREATE_IN_PROGRESS" else stack

    stack = wait_for(settled, 240, "the guest to signal its stack", every=1)
    server_id = next(r["physical_resource_id"] for r in member.get(f"{link}/resources").json()["resources"]
                     if r["resource_name"] == "server")
    log = wait_booted(node, server_id, timeout=60) if stack["stack_status"] == "CREATE_COMPLETE" else \
        console(node, server_id)
    assert stack["stack_status"] == "CREATE_COMPLETE", (stack, log[-3000:])
    found = checks(log)
    assert "404" in found["forged"], log[-2000:]  # the forged signature was refused, from inside the guest
    assert found["signal"] == "ok", log[-2000:]
    outputs = {o["output_key"]: o["output_value"] for o in stack["outputs"]}
    assert json.loads(outputs["data"]) == {"guest": "up on signaller"}
    assert outputs["curl"].startswith("curl -i -X POST")
    assert f"'{GUEST_BASE}/orchestration/v1/signal/" in outputs["curl"]
    events = member.get(f"{link}/events", params={"resource_name": "handle"}).json()["events"]
    assert [e["resource_status_reason"] for e in events if e["resource_status"] == "SIGNAL_COMPLETE"] == \
        ["Signal: status:SUCCESS reason:Signal 1 received"]  # one signal counted: the forged one never was
    member.close()  # the node's teardown removes the guest


async def test_handle_attributes_point_guests_at_the_metadata_address():
    handle = WaitConditionHandle()
    handle.check("h", {"signal_transport": "CFN_SIGNAL"})
    with pytest.raises(BadRequest, match=r"resources\.h\.properties\.signal_transport: \"PIGEON\""):
        handle.check("h", {"signal_transport": "PIGEON"})
    ctx = Context(api=None, stack={"id": STACK}, name="h", row_id=HANDLE, physical_id=HANDLE)  # type: ignore[arg-type]
    assert await handle.create(ctx, {}) == HANDLE and ctx.data["transport"] == "TOKEN_SIGNAL"
    found = await handle.attributes(ctx)
    url = signal_url(GUEST_BASE, STACK, HANDLE, ctx.data["secret"])
    assert url.startswith("http://169.254.169.254/orchestration/v1/signal/")
    assert found["endpoint"] == url and found["signal"] == {"alarm_url": url} and found["token"] == ""
    assert found["curl_cli"] == ("curl -i -X POST -H 'Content-Type: application/json' "
                                 f"-H 'Accept: application/json' '{url}'")
    await handle.create(ctx, {"signal_transport": "NO_SIGNAL"})
    assert (await handle.attributes(ctx))["endpoint"] is None

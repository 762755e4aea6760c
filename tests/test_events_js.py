"""web/js/events.js, the page's client of the event stream, run by Node.js (its fetch and stream
reader are the browser's) against a real node: it opens, delivers changes to ``on`` handlers by
filter, and stops for good when the token is revoked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.cloud import ROOT, Cloud, wait_for
from tests.compute_helpers import new_project_user

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")

CLIENT = """
import { connect } from "%s";
const [base, token] = process.argv.slice(2);
const say = (what) => console.log(JSON.stringify(what));
const stream = connect(token, (event) => say({ event }), (state) => say({ state }), { base });
stream.on({ service: "compute", type: "keypair" }, (event) => say({ keypair: event }));
process.stdin.on("data", () => { stream.close(); process.exit(0); });
"""


class NodeClient:
    def __init__(self, cloud: Cloud, token: str, workdir: Path) -> None:
        script = workdir / "client.mjs"
        # The module's bytes as a .mjs: Node before 20.19 takes a .js outside a "type": "module"
        # package for CommonJS (Debian 12's Node is 18).
        module = workdir / "events.mjs"
        module.write_bytes((ROOT / "web" / "js" / "events.js").read_bytes())
        script.write_text(CLIENT % module.as_posix())
        self.proc = subprocess.Popen(["node", str(script), cloud.url, token], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "NODE_EXTRA_CA_CERTS": cloud.ca})
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw.append(line)
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass

    def wait(self, match: Any, what: str, timeout: float = 30) -> Any:
        return wait_for(lambda: next((x for x in self.lines if match(x)), None), timeout,
                        lambda: f"{what}; node printed: {''.join(self.raw)[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def test_the_page_module_follows_the_stream(cloud: Cloud, tmp_path: Path) -> None:
    with cloud.client(cloud.token()) as admin:
        _, _, token = new_project_user(cloud, admin)
        client = NodeClient(cloud, token, tmp_path)
        try:
            client.wait(lambda x: x.get("state") == "open", "the module to open the stream")
            name = f"events-js-{uuid.uuid4().hex[:6]}"
            with cloud.client(token) as member:
                r = member.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": name}})
                assert r.status_code == 200, r.text
            got = client.wait(lambda x: x.get("keypair", {}).get("id") == name, "the key pair's change by filter")
            assert got["keypair"]["action"] == "create"
            assert any(x.get("event", {}).get("id") == name for x in client.lines)  # onEvent saw it too
            r = admin.delete("/identity/v3/auth/tokens", headers={"X-Subject-Token": token})
            assert r.status_code == 204, r.text
            client.wait(lambda x: x.get("state") == "expired", "the module to stop for good")
            assert {"event": {"service": "cloudbox", "type": "expired", "reason": "revoked"}} in client.lines
        finally:
            client.stop()

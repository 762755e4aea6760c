"""OpenStack's Tempest against a fresh cloudbox node: bring the node up, describe it honestly in
tempest.conf, run the API tests, and count passed, failed and skipped per service.

    python -m tests.tempest.runner [--tempest PATH] [--workdir DIR] [--concurrency N] [SELECTION ...]

A SELECTION is a service (identity, compute, image, network, volume, orchestration), `all`, `fast`
(the subset the test suite runs) or a regex of test ids.  `orchestration` is heat-tempest-plugin's
API tests (installed beside Tempest); only a run that selects it claims Heat in tempest.conf.
The node uses the real libvirt and Linux network drivers.
tempest.conf claims Cinder in every run while features.CINDER_FOR_ALL is on (it is); with it off,
only a run of `volume` or one with --cinder claims it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.cloud import Cloud, free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SERVICES = ("identity", "compute", "image", "network")
# Test ids are tempest.api.<service>...; "all" is the four services cloudbox serves today.
SELECTIONS = {name: rf"^tempest\.api\.{name}\." for name in SERVICES}
SELECTIONS["all"] = r"^tempest\.api\.(identity|compute|image|network)\."
SELECTIONS["volume"] = r"^tempest\.api\.volume\."
# heat-tempest-plugin's API tests (gabbi); Tempest itself has had no orchestration tests since 2018.
HEAT_API_TESTS = "heat_tempest_plugin.tests.api."
SELECTIONS["orchestration"] = "^" + HEAT_API_TESTS.replace(".", r"\.")


def fast_regex() -> str:
    """The fast subset: one regex a line in fast.txt, comments and blank lines skipped."""
    lines = [line.strip() for line in (HERE / "fast.txt").read_text().splitlines()]
    return "|".join(f"(?:{line})" for line in lines if line and not line.startswith("#"))


def bring_up(workdir: Path, port: int, slot: int) -> Cloud:
    """A fresh node with the real drivers, on its own external bridge and range (one per slot, so
    several runs can share a host)."""
    node = Cloud(workdir / "data", port)
    node.init("--set", f"external_bridge=cbxtempest{slot}", "--set", f"external_cidr=172.24.{9 + slot}.0/24",
              compute="libvirt")
    node.start(timeout=120)
    return node


def prepare_cloud(node: Cloud) -> dict[str, str]:
    """The images and flavors tempest.conf names: our test guest twice, two small flavors."""
    client = node.client(node.token())
    guest = ROOT / "firmware" / "build" / "guest.qcow2"
    if not guest.exists():
        subprocess.run([str(ROOT / "firmware" / "build-guest.sh")], check=True)
    images = []
    for name in ("cirros", "cirros-alt"):
        image = client.post("/image/v2/images", json={
            "name": name, "disk_format": "qcow2", "container_format": "bare", "visibility": "public"})
        image.raise_for_status()
        image_id = image.json()["id"]
        with guest.open("rb") as data:
            upload = client.put(f"/image/v2/images/{image_id}/file", content=data,
                                headers={"Content-Type": "application/octet-stream"}, timeout=300)
        upload.raise_for_status()
        images.append(image_id)
    flavors = {f["name"]: f["id"] for f in client.get("/compute/v2.1/flavors").json()["flavors"]}
    public = [n for n in client.get("/network/v2.0/networks?router:external=true").json()["networks"]]
    return {"image_ref": images[0], "image_ref_alt": images[1], "flavor_ref": flavors["m1.tiny"],
            "flavor_ref_alt": flavors["m1.small"], "public_network_id": public[0]["id"],
            "public_network_name": public[0]["name"]}


def prepare_heat_user(node: Cloud) -> dict[str, str]:
    """The static user heat-tempest-plugin's API tests act as: a member of a project of its own."""
    client = node.client(node.token())
    names = {"username": "heat-tempest", "password": "heat-tempest-secret", "project_name": "heat-tempest"}
    project = client.post("/identity/v3/projects", json={"project": {"name": names["project_name"],
                                                                     "domain_id": "default"}})
    project.raise_for_status()
    user = client.post("/identity/v3/users", json={"user": {
        "name": names["username"], "password": names["password"], "domain_id": "default",
        "default_project_id": project.json()["project"]["id"]}})
    user.raise_for_status()
    roles = {r["name"]: r["id"] for r in client.get("/identity/v3/roles").json()["roles"]}
    grant = client.put(f"/identity/v3/projects/{project.json()['project']['id']}/users/"
                       f"{user.json()['user']['id']}/roles/{roles['member']}")
    grant.raise_for_status()
    return names


def tempest_conf(node: Cloud, refs: dict[str, str], workdir: Path, cinder: bool = False,
                 heat_user: dict[str, str] | None = None) -> str:
    """What the cloud offers, as Tempest's options say it; features we do not serve are off."""
    from tests.tempest.features import render

    return render(node=node, refs=refs, log_dir=workdir / "logs", cinder=cinder, heat_user=heat_user)


def run_tempest(tempest: Path, workdir: Path, regex: str, concurrency: int,
                extra_env: dict[str, str] | None = None) -> Path:
    """Run the selection; return the subunit stream's file."""
    venv_bin = tempest.parent
    stream = workdir / "results.subunit"
    with stream.open("wb") as out:
        subprocess.run([str(tempest), "run", "--regex", regex, "--concurrency", str(concurrency), "--subunit"],
                       cwd=workdir, stdout=out, env={"PATH": f"{venv_bin}:/usr/bin:/bin", **(extra_env or {})})
    return stream


def outcomes(tempest: Path, stream: Path) -> dict[str, str]:
    """Test id -> passed, failed or skipped (a failed class setup is one id, as Tempest counts it)."""
    # subunit2csv exits 1 when the stream holds failures: its output is what we want either way.
    csv_text = subprocess.run([str(tempest.parent / "subunit2csv"), "--no-passthrough"], stdin=stream.open("rb"),
                              capture_output=True).stdout.decode()
    names = {"success": "passed", "failure": "failed", "fail": "failed", "skip": "skipped"}
    # gabbi names two steps of one file alike ("delete envstack" twice): their ids keep them apart
    return {row["test"] if row["test"].startswith(HEAT_API_TESTS) else row["test"].split("[", 1)[0]:
            names.get(row["status"], row["status"]) for row in csv.DictReader(io.StringIO(csv_text))}


def summarise(results: dict[str, str]) -> dict[str, Counter]:
    """Per service: how many passed, failed and were skipped."""
    table: dict[str, Counter] = {}
    for test, outcome in results.items():
        parts = test.split(".")
        service = parts[2] if len(parts) > 2 and parts[1] == "api" else "other"
        if test.startswith(HEAT_API_TESTS):
            service = "orchestration"
        table.setdefault(service, Counter())[outcome] += 1
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("selection", nargs="*", default=["all"])
    parser.add_argument("--tempest", default=str(ROOT / ".tempest-venv" / "bin" / "tempest"))
    parser.add_argument("--workdir", default="/tmp/cloudbox-tempest")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--slot", type=int, default=0, choices=range(0, 8),
                        help="runs on one host at once each take their own slot (bridge and range)")
    parser.add_argument("--cinder", action="store_true",
                        help="claim the volume service (implied by the `volume` selection)")
    parser.add_argument("--keep", action="store_true", help="leave the node running afterwards")
    args = parser.parse_args(argv)
    regex = "|".join(fast_regex() if s == "fast" else SELECTIONS.get(s, s) for s in args.selection)
    workdir = Path(args.workdir)
    if workdir.exists():
        old = Cloud(workdir / "data", 0)
        subprocess.run([sys.executable, "-m", "cloudbox", "stop", "--data-dir", str(old.data_dir)],
                       capture_output=True)
        subprocess.run([sys.executable, "-m", "cloudbox", "teardown-host-network", "--data-dir",
                        str(old.data_dir)], capture_output=True)
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    started = time.monotonic()
    node = bring_up(workdir, free_port(), args.slot)
    try:
        refs = prepare_cloud(node)
        tempest = Path(args.tempest)
        # Tempest remembers workspaces by name (~/.tempest/workspace.yaml): forget the last run's.
        subprocess.run([str(tempest), "workspace", "remove", "--name", f"cloudbox-{args.slot}"], capture_output=True)
        subprocess.run([str(tempest), "init", "--name", f"cloudbox-{args.slot}", str(workdir / "tempest")], check=True,
                       capture_output=True)
        (workdir / "logs").mkdir(exist_ok=True)
        conf = workdir / "tempest" / "etc" / "tempest.conf"
        cinder = args.cinder or "volume" in args.selection
        heat_user = prepare_heat_user(node) if "orchestration" in args.selection else None
        conf.write_text(tempest_conf(node, refs, workdir, cinder, heat_user))
        # gabbi (heat-tempest-plugin's API tests) takes no CA file, only httpx's SSL_CERT_FILE
        extra_env = {"SSL_CERT_FILE": node.ca} if heat_user else None
        stream = run_tempest(tempest, workdir / "tempest", regex, args.concurrency, extra_env)
        results = outcomes(tempest, stream)
        table = summarise(results)
        failed = sorted(test for test, outcome in results.items() if outcome == "failed")
        (workdir / "failed.txt").write_text("".join(test + "\n" for test in failed))
    finally:
        if not args.keep:
            node.stop()
            subprocess.run([sys.executable, "-m", "cloudbox", "teardown-host-network", "--data-dir",
                            str(node.data_dir)], capture_output=True)
    minutes = (time.monotonic() - started) / 60
    print(f"\nTempest against cloudbox ({minutes:.1f} min, selection: {' '.join(args.selection)})")
    width = max([10, *map(len, table)])
    print(f"{'service':<{width}} {'passed':>7} {'failed':>7} {'skipped':>8}")
    totals: Counter = Counter()
    for service in sorted(table):
        counts = table[service]
        totals.update(counts)
        print(f"{service:<{width}} {counts['passed']:>7} {counts['failed']:>7} {counts['skipped']:>8}")
    print(f"{'total':<{width}} {totals['passed']:>7} {totals['failed']:>7} {totals['skipped']:>8}")
    print(f"failed tests: {workdir / 'failed.txt'} ({len(failed)}); logs: {workdir / 'tempest'}")
    (workdir / "summary.json").write_text(json.dumps({s: dict(c) for s, c in table.items()}, indent=1))
    return 1 if totals["failed"] or not totals["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""The `cloudbox` command."""

from __future__ import annotations

import json
import os
import logging
import signal
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from cloudbox import __version__, logs
from cloudbox.errors import CloudboxError, SetupError
from cloudbox.node import DataDir, default_advertise, split_listen
from cloudbox.settings import BY_NAME, Settings

DATA_DIR_HELP = "Where the node keeps its state [env CLOUDBOX_DATA_DIR; default /var/lib/cloudbox]."


@click.group()
@click.version_option(__version__, prog_name="cloudbox")
def cli() -> None:
    """cloudbox: a private cloud, one process per node."""


@cli.command()
@click.option("--data-dir", help=DATA_DIR_HELP)
@click.option("--listen", default=BY_NAME["listen"].default, show_default=True, help="HOST:PORT of the HTTPS API.")
@click.option("--advertise", default=None, help="Host or address clients use to reach this node [default: first non-loopback address].")
@click.option("--region", default=BY_NAME["region"].default, show_default=True, help="Region name of the service catalog.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Any other setting (see README); repeatable.")
@click.option("--force", is_flag=True, help="Replace an existing cloud in the data dir (its state is lost).")
@click.option("--no-user-config", is_flag=True, help="Do not add the cloud to ~/.config/openstack/clouds.yaml.")
@click.option("--name", default=None, help="This node's name [default: the host name].")
def init(data_dir: str | None, listen: str, advertise: str | None, region: str, sets: tuple[str, ...],
         force: bool, no_user_config: bool, name: str | None) -> None:
    """Create a new cloud on this node: CA, certificates, database, admin, catalog, clouds.yaml."""
    from cloudbox.bootstrap import init_cloud

    extra = _settings_option(sets)
    directory = DataDir.from_option(data_dir)
    user_yaml = None if no_user_config else Path.home() / ".config" / "openstack" / "clouds.yaml"
    if advertise is None:
        # Clients reach a node listening on one address at that address; on all addresses, at its own.
        host, _port = split_listen(listen)
        advertise = host if host not in ("0.0.0.0", "::") else default_advertise()
    result = init_cloud(
        directory, listen=listen, advertise=advertise, region=region,
        force=force, user_clouds_yaml=user_yaml, extra_settings=extra, node_name=name,
    )
    click.echo(f"Created a cloud in {directory.root}")
    click.echo(f"  API:           {result.url}  (start it with: cloudbox serve --data-dir {directory.root})")
    click.echo(f"  Web UI:        {result.url}/")
    click.echo(f"  Admin:         user admin, project admin, password {result.password}")
    click.echo(f"  clouds.yaml:   {result.clouds_yaml}" + (f" (also added to {result.user_clouds_yaml})" if result.user_clouds_yaml else ""))
    click.echo(f"  openrc:        {directory.openrc}")
    click.echo(f"  CA:            {directory.ca_cert}  sha256 {result.ca_fingerprint}")
    if _start_unit(directory):
        click.echo(f"  Serving:       started {SYSTEMD_UNIT} (journalctl -u cloudbox; logs also in {directory.log_file})")
    click.echo("Then: openstack --os-cloud cloudbox token issue")


SYSTEMD_UNIT = "cloudbox.service"


def _start_unit(directory: DataDir) -> bool:
    """With the .deb under systemd, a cloud made in the default data dir is served by its unit."""
    from cloudbox.node import DEFAULT_DATA_DIR

    installed = any(Path(d, SYSTEMD_UNIT).exists() for d in ("/lib/systemd/system", "/etc/systemd/system"))
    if directory.root != Path(DEFAULT_DATA_DIR) or not installed or not Path("/run/systemd/system").is_dir():
        return False
    proc = subprocess.run(["systemctl", "start", SYSTEMD_UNIT], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        click.echo(f"cloudbox: systemctl start {SYSTEMD_UNIT} failed: {proc.stderr.strip()}", err=True)
        return False
    return True


def _settings_option(sets: tuple[str, ...]) -> dict[str, str]:
    extra = {}
    for item in sets:
        name, sep, value = item.partition("=")
        if not sep or name not in BY_NAME or name in ("listen", "advertise", "region"):
            raise SetupError(f"--set takes NAME=VALUE with a setting name from README.md, not {item!r}")
        extra[name] = value
    return extra


@cli.command()
@click.argument("token")
@click.option("--data-dir", help=DATA_DIR_HELP)
@click.option("--listen", default=BY_NAME["listen"].default, show_default=True, help="HOST:PORT of the HTTPS API.")
@click.option("--advertise", default=None, help="This node's address for clients and the other nodes [default: first non-loopback address].")
@click.option("--name", default=None, help="This node's name [default: the name the token was made for].")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="A node setting (see README); repeatable.")
@click.option("--no-serve", is_flag=True, help="Only set up the data dir; start it later with `cloudbox serve`.")
def join(token: str, data_dir: str | None, listen: str, advertise: str | None, name: str | None,
         sets: tuple[str, ...], no_serve: bool) -> None:
    """Join an existing cloud with a token from `cloudbox cluster add` on one of its nodes."""
    from cloudbox.cluster.joining import join as do_join

    directory = DataDir.from_option(data_dir)
    if advertise is None:
        host, _port = split_listen(listen)
        advertise = host if host not in ("0.0.0.0", "::") else default_advertise()
    joined = do_join(token, directory, listen=listen, advertise=advertise, name=name,
                     extra_settings=_settings_option(sets))
    click.echo(f"Joined the cloud as node {joined.name} ({joined.node_id}); "
               f"{'an etcd voter' if joined.voter else 'an etcd client'}; state copied at revision {joined.revision}")
    if no_serve:
        click.echo(f"Start it with: cloudbox serve --data-dir {directory.root}")
        return
    if _start_unit(directory):  # the .deb under systemd: its unit serves the node, so apt's upgrades restart it
        click.echo(f"  Serving:       started {SYSTEMD_UNIT} (journalctl -u cloudbox)")
        click.echo(f"  API: {joined.url}")
        return
    try:
        _serve_background(directory)
    except SetupError as exc:
        joined.undo(directory)
        raise SetupError(f"{exc}\nthe join was undone: the node is out of the cluster again and {directory.root} removed") from exc
    click.echo(f"  API: {joined.url}")


@cli.group()
def cluster() -> None:
    """The nodes of this cloud: add (a join token), list, remove."""


def _node_api(directory: DataDir, method: str, path: str, body: Any = None) -> Any:
    """Call this node's own API on its peer port with the node's certificate (root on a member)."""
    import httpx

    directory.require_cloud()
    host, port, settings = _local_address(directory)
    ctx = ssl.create_default_context(cafile=str(directory.ca_cert))
    try:
        ctx.load_cert_chain(str(directory.node_cert), str(directory.node_key))
    except OSError as exc:
        raise SetupError(f"cannot read this node's certificate ({exc}); run as root") from exc
    url = f"https://{host}:{settings.peer_port or port + 1}{path}"
    try:
        with httpx.Client(verify=ctx, timeout=60) as client:
            resp = client.request(method, url, json=body)
    except httpx.HTTPError as exc:
        raise SetupError(f"this node's API at {url} does not answer ({exc}); is `cloudbox serve` running?") from exc
    if resp.status_code >= 400:
        try:
            detail = next(iter(resp.json().values()))["message"]
        except (ValueError, StopIteration, KeyError, TypeError, AttributeError):
            detail = resp.text[:300]
        raise SetupError(f"{detail} ({resp.status_code})")
    return resp.json() if resp.content else None


@cluster.command("add")
@click.argument("name")
@click.option("--data-dir", help=DATA_DIR_HELP)
@click.option("--ttl", default=3600, show_default=True, help="Seconds the token stays valid.")
def cluster_add(name: str, data_dir: str | None, ttl: int) -> None:
    """Print a one-time join token for a new node NAME (run `cloudbox join TOKEN` there)."""
    directory = DataDir.from_option(data_dir)
    reply = _node_api(directory, "POST", "/cloudbox/v1/cluster/join-tokens", {"name": name, "ttl": ttl})
    click.echo(f"On the new node, as root, within {ttl} s:  cloudbox join <token below>", err=True)
    click.echo(reply["join_token"]["token"])


@cluster.command("list")
@click.option("--data-dir", help=DATA_DIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cluster_list(data_dir: str | None, as_json: bool) -> None:
    """Every node of the cloud: role, address, health, capacity."""
    directory = DataDir.from_option(data_dir)
    nodes = _node_api(directory, "GET", "/cloudbox/v1/nodes")["nodes"]
    if as_json:
        click.echo(json.dumps([{k: n[k] for k in ("name", "id", "role", "address", "up", "capacity", "heartbeat_at")}
                               for n in nodes], indent=2))
        return
    click.echo(f"{'NAME':<16} {'ROLE':<7} {'STATUS':<6} {'ADDRESS':<28} {'SERVERS':>7} {'VCPUS':>5} {'RAM MB':>8}  LAST HEARTBEAT")
    for n in sorted(nodes, key=lambda n: n["name"]):
        cap = n["capacity"]
        click.echo(f"{n['name']:<16} {n['role']:<7} {n['status']:<6} {n['address']:<28} {cap.get('servers', ''):>7} "
                   f"{cap.get('vcpus', ''):>5} {cap.get('memory_mb', ''):>8}  {n['heartbeat_at']}")


@cluster.command("finish-upgrade")
@click.option("--data-dir", help=DATA_DIR_HELP)
@click.option("--force", is_flag=True, help="Even though some node speaks an older command schema "
              "(it stops applying the log until it is upgraded).")
def cluster_finish_upgrade(data_dir: str | None, force: bool) -> None:
    """Once every node runs the new release: let the cluster use its new commands (older nodes may not join)."""
    directory = DataDir.from_option(data_dir)
    view = _node_api(directory, "POST", "/cloudbox/v1/cluster/upgrade", {"force": force})
    click.echo(f"the cluster speaks command schema {view['finished_schema']}")


@cluster.command("remove")
@click.argument("name")
@click.option("--data-dir", help=DATA_DIR_HELP)
@click.option("--force", is_flag=True, help="Remove it even though servers are still placed on it.")
def cluster_remove(name: str, data_dir: str | None, force: bool) -> None:
    """Take node NAME out of the cloud (its etcd member too); refused while it has servers unless --force."""
    directory = DataDir.from_option(data_dir)
    _node_api(directory, "DELETE", f"/cloudbox/v1/nodes/{name}" + ("?force=true" if force else ""))
    click.echo(f"node {name} removed")


@cli.command()
@click.option("--data-dir", help=DATA_DIR_HELP)
@click.option("--background", is_flag=True, help="Start in the background, wait until it serves, print where.")
def serve(data_dir: str | None, background: bool) -> None:
    """Run this node: every service and the HTTPS API, until SIGTERM or SIGINT."""
    directory = DataDir.from_option(data_dir)
    if background:
        _serve_background(directory)
        return
    from cloudbox import memory

    memory.configure_allocator()  # before any thread starts
    memory.start_tracing_from_env()  # before the imports, so debug snapshots see what they hold
    import trio

    from cloudbox.server import open_node, serve as run_serve

    settings = Settings.load(directory.root) if directory.root.is_dir() else None
    logs.setup(settings.log_level if settings else "info")
    node = open_node(directory)
    _log_to_data_dir(directory)
    trio.run(memory.serve_with_debug, run_serve, node)


def _log_to_data_dir(directory: DataDir) -> None:
    """Records go to stderr (under systemd: the journal) and to the data dir's log file, unless
    stderr already is a file (`serve --background`, tests) that keeps them."""
    import logging.handlers

    try:
        if stat.S_ISREG(os.fstat(2).st_mode):
            return
    except OSError:
        pass
    directory.log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.WatchedFileHandler(directory.log_file)  # reopens after logrotate moves it
    handler.setFormatter(logs.JsonFormatter())
    logging.getLogger().addHandler(handler)


def _serve_background(directory: DataDir) -> None:
    directory.require_cloud()
    pid = directory.running_pid()
    if pid:
        click.echo(f"cloudbox serve already runs on {directory.root} (pid {pid})")
        return
    directory.log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.log_file, "ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cloudbox", "serve", "--data-dir", str(directory.root)],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = directory.log_file.read_text(errors="replace").splitlines()[-5:]
            raise SetupError("cloudbox serve exited at once:\n  " + "\n  ".join(tail))
        health = _health(directory)
        if health is not None:
            click.echo(f"cloudbox serve runs in the background (pid {proc.pid}), log in {directory.log_file}")
            return
        time.sleep(0.2)
    raise SetupError(f"cloudbox serve did not answer within 60 s; see {directory.log_file}")


def _local_address(directory: DataDir) -> tuple[str, int, Settings]:
    """(host for a URL, API port, settings) to reach this node's own API from this host."""
    from cloudbox.node import url_host

    settings = Settings.load(directory.root)
    host, port = split_listen(settings.listen)
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return url_host(host), port, settings


def _health(directory: DataDir) -> dict | None:
    host, port, _settings = _local_address(directory)
    ctx = ssl.create_default_context(cafile=str(directory.ca_cert))
    try:
        with urllib.request.urlopen(
            f"https://{host}:{port}/cloudbox/v1/health", context=ctx, timeout=3
        ) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


@cli.command()
@click.option("--data-dir", help=DATA_DIR_HELP)
def status(data_dir: str | None) -> None:
    """What runs, where, and whether it is healthy (exit 1 if not)."""
    directory = DataDir.from_option(data_dir)
    directory.require_cloud()
    settings = Settings.load(directory.root)
    info = directory.node_info()
    pid = directory.running_pid()
    health = _health(directory) if pid else None
    click.echo(f"node:      {info['name']} ({info['id']})")
    click.echo(f"data dir:  {directory.root}")
    click.echo(f"listen:    {settings.listen}  advertise: {settings.advertise}")
    click.echo(f"process:   {'running, pid %d' % pid if pid else 'not running'}")
    if health:
        click.echo(f"api:       {health['status']} (version {health['version']}, "
                   f"command schema {health.get('command_schema', 1)})")
        for name, state in sorted(health["services"].items()):
            click.echo(f"  {name:<10} {state}")
        if health.get("stalled"):
            click.echo(f"log:       STOPPED: {health['stalled']['message']}")
        _echo_versions(directory)
    elif pid:
        click.echo("api:       not answering")
    ok = bool(health and health["status"] == "ok" and all(v == "running" for v in health["services"].values()))
    click.echo(f"healthy:   {'yes' if ok else 'no'}")
    sys.exit(0 if ok else 1)


def _echo_versions(directory: DataDir) -> None:
    """Each node's release and command schema (a rolling upgrade's progress); skipped without the node key."""
    try:
        nodes = _node_api(directory, "GET", "/cloudbox/v1/nodes")["nodes"]
        upgrade = _node_api(directory, "GET", "/cloudbox/v1/cluster/upgrade")
    except SetupError:
        return
    if upgrade["finished_schema"] > 1:
        click.echo(f"versions:  the cluster finished its upgrade to command schema {upgrade['finished_schema']}; "
                   f"its nodes speak at least {upgrade['lowest_schema']}")
    else:  # no upgrade recorded: a cloud made by this release, or never upgraded
        click.echo(f"versions:  no upgrade recorded; the cluster's nodes speak at least command schema "
                   f"{upgrade['lowest_schema']}")
    for n in sorted(nodes, key=lambda n: n["name"]):
        click.echo(f"  {n['name']:<16} {n['status']:<5} cloudbox {n.get('version', '?'):<12} "
                   f"command schema {n.get('command_schema', '?')}")


@cli.command()
@click.option("--data-dir", help=DATA_DIR_HELP)
@click.option("--timeout", default=30, show_default=True, help="Seconds to wait for it to stop.")
def stop(data_dir: str | None, timeout: int) -> None:
    """Stop the `cloudbox serve` of this data dir (guests keep running)."""
    directory = DataDir.from_option(data_dir)
    pid = directory.running_pid()
    if not pid:
        raise SetupError(f"no cloudbox serve runs on {directory.root}")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if directory.running_pid() is None:
            click.echo(f"stopped (pid {pid})")
            return
        time.sleep(0.1)
    raise SetupError(f"pid {pid} did not stop within {timeout} s")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--data-dir", help=DATA_DIR_HELP)
def backup(file: str, data_dir: str | None) -> None:
    """Write a consistent copy of this node's state and keys to FILE (mode 0600), serving or not."""
    from cloudbox.backup import backup as do_backup

    directory = DataDir.from_option(data_dir)
    info = do_backup(directory, Path(file))
    click.echo(f"backup of node {info.node_name} written to {info.path} "
               f"({info.path.stat().st_size} bytes; state hash {info.state_hash})")
    click.echo("It holds the CA key and password hashes: keep it as safe as the node itself.")


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--data-dir", help=DATA_DIR_HELP + " Must be empty or absent.")
def restore(file: str, data_dir: str | None) -> None:
    """Restore a `cloudbox backup` FILE into a fresh data dir, then `cloudbox serve` it."""
    from cloudbox.backup import restore as do_restore

    directory = DataDir.from_option(data_dir)
    manifest = do_restore(Path(file), directory)
    click.echo(f"restored node {manifest['node']['name']} (backup of {manifest['created_at']}, "
               f"cloudbox {manifest['cloudbox_version']}) into {directory.root}; state hash {manifest['state_hash']}")
    if _start_unit(directory):
        click.echo(f"started {SYSTEMD_UNIT}")
    else:
        click.echo(f"Start it with: cloudbox serve --data-dir {directory.root}")


@cli.command()
@click.option("--data-dir", help=DATA_DIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--min-free-gb", default=2.0, show_default=True, help="Least free disk space in the data dir.")
def doctor(data_dir: str | None, as_json: bool, min_free_gb: float) -> None:
    """Check this host for running a node (virtualization, libvirt, network, ports, disk, time,
    etcd) and say what to fix; exit 1 when something is wrong."""
    from cloudbox import doctor as dr

    directory = DataDir.from_option(data_dir)
    settings = Settings.load(directory.root) if directory.root.is_dir() else Settings.resolve({})
    pid = directory.running_pid()
    found = [f for f in dr.host_checks(directory, settings, pid) if f.check != "disk"]
    found.append(dr.check_disk(directory.root, int(min_free_gb * (1 << 30))))
    if directory.exists():
        in_cluster = dr.clustered(directory)
        view, error = None, None
        if in_cluster:
            try:
                view = _node_api(directory, "GET", "/cloudbox/v1/cluster/etcd")
            except SetupError as exc:
                error = str(exc)
        found.append(dr.check_etcd(in_cluster, view, error))
    if as_json:
        click.echo(json.dumps([f.as_dict() for f in found], indent=2))
    else:
        for f in found:
            click.echo(f"{f.status.upper():<5} {f.check:<10} {f.message}")
            if f.fix and f.status != dr.OK:
                click.echo(f"{'':<16} fix: {f.fix}")
    failed = [f.check for f in found if f.status == dr.FAIL]
    if not as_json:
        click.echo(f"{len(failed)} problem(s) to fix: {', '.join(failed)}" if failed else "no problems found")
    sys.exit(1 if failed else 0)


@cli.command("teardown-host-network")
@click.option("--data-dir", help=DATA_DIR_HELP)
def teardown_host_network(data_dir: str | None) -> None:
    """Remove everything this node made on the host's network (taps, bridges, namespaces,
    dnsmasq, nftables tables); `cloudbox stop` leaves them so that guests' traffic goes on.
    The node must be stopped; its next `serve` makes them again."""
    import trio

    from cloudbox.server import network_driver

    directory = DataDir.from_option(data_dir)
    directory.require_cloud()
    if directory.running_pid():
        raise SetupError(f"cloudbox serve still runs on {directory.root}; stop it first")
    settings = Settings.load(directory.root)
    trio.run(network_driver(settings, directory.node_info()["id"]).teardown_all)
    click.echo("host network of this node removed")


def main() -> None:
    try:
        cli(standalone_mode=False)
    except SetupError as exc:
        click.echo(f"cloudbox: {exc}", err=True)
        sys.exit(1)
    except CloudboxError as exc:
        click.echo(f"cloudbox: {exc.message}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)

"""`cloudbox serve`: one trio process running every service of this node.

Start order: the state engine, then each service's run() in the root nursery,
then hypercorn serving the one app over HTTPS.  SIGTERM or SIGINT stops
hypercorn gracefully (in-flight requests finish), then cancels the rest.

Nothing a client sends reaches the root nursery: each connection runs under
``api.serving``'s guard, each request under the app's error handlers, and the
services after the state engine under ``guard.supervise`` (STYLE.md item 12).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import ssl
import time
from typing import Any, Callable

import trio
from hypercorn.config import Config as HypercornConfig
from quart import Response, request

from cloudbox import __version__, guard
from cloudbox.api import serving
from cloudbox.api.app import create_app
from cloudbox.cluster import api as cluster_api
from cloudbox.cluster.service import ClusterService, ThisNode
from cloudbox.compute import api as compute_api
from cloudbox.console import proxy as console_proxy
from cloudbox.compute import views as compute_views
from cloudbox.compute.service import ComputeService
from cloudbox.errors import SetupError
from cloudbox.events import api as events_api
from cloudbox.events.hub import EventHub
from cloudbox.identity import api as identity_api
from cloudbox.identity.service import IdentityService, catalog_commands
from cloudbox.image import api as image_api
from cloudbox.image.service import ImageService
from cloudbox.network import api as network_api
from cloudbox.network.dataplane import DataPlane
from cloudbox.network.metadata_server import MetadataListeners
from cloudbox.network.service import NetworkService
from cloudbox.node import DataDir, bind_error, split_listen, url_host
from cloudbox.object import api as object_api
from cloudbox.object import s3_api
from cloudbox.object.service import ObjectService
from cloudbox.orchestration import api as orchestration_api
from cloudbox.orchestration import api_plans as orchestration_plans_api
from cloudbox.orchestration import guest_signals
from cloudbox.orchestration.service import OrchestrationService
from cloudbox.services import STORES, wanted_catalog
from cloudbox.settings import Settings
from cloudbox.state.engine import StateEngine
from cloudbox.volume import api as volume_api
from cloudbox.volume.service import VolumeService

log = logging.getLogger("cloudbox.server")


class Node:
    """The services of one node, wired together."""

    def __init__(self, data_dir: DataDir, settings: Settings) -> None:
        self.data_dir = data_dir
        self.settings = settings
        info = data_dir.node_info()
        self.node_id, self.name = info["id"], info["name"]
        host, self.port = split_listen(settings.listen)
        self.host = host
        self.url = f"https://{url_host(settings.advertise or host)}:{self.port}"
        self.tunnel_ip = settings.advertise or (host if host not in ("0.0.0.0", "::") else "127.0.0.1")
        self.peer_port = settings.peer_port or self.port + 1
        self.peer_url = f"https://{url_host(self.tunnel_ip)}:{self.peer_port}"
        self.started = time.monotonic()
        self.engine = StateEngine(data_dir.database, STORES)
        self.cluster = ClusterService(self.engine, data_dir, settings, ThisNode(
            self.node_id, self.name, self.url, self.peer_url, self.peer_port, self.tunnel_ip))
        self.identity = IdentityService(self.engine, settings)
        self.checks: dict[str, Callable[[], bool]] = {
            "state": lambda: self.engine.running,
            "identity": lambda: True,
            "cluster": lambda: self.cluster.running,
        }
        self.image = ImageService(self.engine, settings, data_dir.root / "images", self.node_id)
        self.image.cluster = self.cluster
        self.checks["image"] = lambda: self.image.running
        self.network = NetworkService(self.engine, self.settings, self.node_id, self.name,
                                      admin_project=self.identity.admin_project_id, up_nodes=self.cluster.up_nodes)
        self.checks["network"] = lambda: self.network.running
        # The metadata listeners answer through compute, made after the data plane they serve.
        self.metadata = MetadataListeners(lambda *request: self.compute.metadata_answer(*request))
        self.dataplane = DataPlane(self.engine, self.node_id, self.name, settings, self._network_driver(),
                                   self.network, metadata=self.metadata, up_nodes=self.cluster.up_nodes)
        self.compute = ComputeService(self.engine, settings, self._compute_driver(), node_id=self.node_id,
                                      host=self.name, data_dir=data_dir.root, images=self.image,
                                      network=self.network, dataplane=self.dataplane, cluster=self.cluster)
        self.cluster.compute = self.compute  # made with the cluster service, which asks it for capacity
        self.checks["compute"] = lambda: self.compute.running
        self.volume = VolumeService(self.engine, settings, self._volume_driver(), node_id=self.node_id,
                                    host=self.name, images=self.image)
        self.volume.cluster = self.cluster  # os-services says which nodes' backends are up
        self.compute.volume_service = self.volume  # attaching volumes to servers
        self.checks["volume"] = lambda: self.volume.running
        self.object = ObjectService(self.engine, settings, data_dir.root / "objects", node_id=self.node_id)
        self.object.cluster, self.object.peer_port = self.cluster, self.peer_port  # copies on other nodes
        self.volume.objects = self.object  # volume backups are objects of their owner
        self.checks["object"] = lambda: self.object.running
        self.specs = [identity_api.build(self.identity), cluster_api.build(self), compute_api.build(self.compute),
                      image_api.build(self.image), network_api.build(self.network), volume_api.build(self.volume),
                      volume_api.alias(), object_api.build(self.object), object_api.alias(), object_api.info_spec(),
                      object_api.peer_spec(self.object)]
        self.specs.append(s3_api.catalog_spec())  # S3 is served by its gateway (app(), below)
        self.events = EventHub(self.engine, self.identity, self.cluster)  # the dashboard's live stream
        self.specs.append(events_api.build(self.events))
        # Stacks act on the cloud through this node's own app (set in app()), as their owners.
        self.orchestration = OrchestrationService(self.engine, settings, node_id=self.node_id, identity=self.identity)
        self.orchestration.host = self.url.split("://", 1)[1]
        self.orchestration.up_nodes = self.cluster.up_nodes  # a down node's stacks are taken over
        self.checks["orchestration"] = lambda: self.orchestration.running
        self.specs += [orchestration_api.build(self.orchestration), orchestration_api.alias(),
                       orchestration_plans_api.build(self.orchestration)]
        # A guest reaches one path of the API, a wait handle's signed URL, through its metadata service.
        self.metadata.signal = lambda *request: guest_signals.answer(self.orchestration, *request)

    def service_failed(self, name: str, error: BaseException) -> None:
        """A service failed after it started (guard.supervise logged it): health says so."""
        self.checks[name] = lambda: False

    def _compute_driver(self) -> Any:
        """The hypervisor driver this node's settings ask for."""
        if self.settings.compute_driver == "fake":
            from cloudbox.compute.driver.fake import FakeDriver

            return FakeDriver()
        if self.settings.compute_driver != "libvirt":
            raise SetupError(f"compute_driver must be libvirt or fake, not {self.settings.compute_driver!r}")
        from cloudbox.compute.driver.real import LibvirtDriver

        root = self.data_dir.root
        uri = self.settings.libvirt_uri or f"qemu:///embed?root={root / 'libvirt'}"
        return LibvirtDriver(uri, root / "instances", guest_user=self.settings.guest_user)

    def _volume_driver(self) -> Any:
        """The storage driver of this node's volumes."""
        from cloudbox.volume.driver import make_driver

        try:
            return make_driver(self.settings.volume_driver, self.data_dir.root, self.settings.volume_group,
                               self.settings.volume_format)
        except ValueError as exc:
            raise SetupError(str(exc)) from exc

    def _network_driver(self) -> Any:
        """The network data plane driver this node's settings ask for."""
        return network_driver(self.settings, self.node_id)

    def app(self) -> Any:
        def extra(app: Any) -> None:
            @app.route("/identity", methods=["GET"])
            @app.route("/identity/", methods=["GET"])
            async def identity_versions() -> Response:
                base = request.host_url.rstrip("/") + "/identity/v3"
                body = {"versions": {"values": [identity_api.version_document(base)]}}
                return Response(json.dumps(body), status=300, content_type="application/json")

            @app.route("/compute", methods=["GET"])
            @app.route("/compute/", methods=["GET"])
            async def compute_versions() -> Response:
                """The compute API's versions document: v2.0 (legacy, served as 2.1) first, as Nova lists them."""
                base = request.host_url.rstrip("/") + "/compute"
                body = {"versions": [compute_views.version_document(base + "/v2", legacy=True),
                                     compute_views.version_document(base + "/v2.1")]}
                return Response(json.dumps(body), status=200, content_type="application/json")

            @app.route("/compute/v2", methods=["GET"])
            @app.route("/compute/v2/", methods=["GET"])
            async def compute_v2_version() -> Response:
                base = request.host_url.rstrip("/") + "/compute/v2"
                body = {"version": compute_views.version_document(base, legacy=True)}
                return Response(json.dumps(body), status=200, content_type="application/json")

            app.asgi_app = compute_v2_as_v2_1(app.asgi_app)
            app.asgi_app = s3_api.S3Gateway(
                self.object, self.identity.ec2.signer, region=self.settings.region, domain=self.settings.s3_domain,
                read_barrier=self.cluster.read_barrier).wrap(app.asgi_app)

            image_api.mount_versions(app)
            volume_api.mount_versions(app)
            orchestration_api.mount_versions(app)
            console_proxy.mount(app, self.compute)  # /console/vnc and /console/serial (websockets)

            @app.before_request
            async def read_barrier() -> None:
                if request.method in ("GET", "HEAD"):
                    await self.cluster.read_barrier()

        app = create_app(
            self.specs,
            authenticate=self.identity.authenticate,
            max_body_bytes=self.settings.max_body_bytes,
            max_limit=self.settings.api_max_limit,
            extra_routes=extra,
        )
        self.orchestration.app = app
        return app

    async def ensure_catalog(self) -> None:
        """Keep the catalog listing every API this node serves at its advertised URL."""
        at = self.identity.now_iso()
        cmds = await self.engine.read(catalog_commands, wanted_catalog(self.url), self.settings.region, at)
        for cmd in cmds:
            await self.engine.propose(cmd)
        if cmds:
            log.info("service catalog updated", extra={"changes": len(cmds)})


def compute_v2_as_v2_1(inner: Any) -> Any:
    """Nova's legacy v2 endpoint is its v2.1 API without microversions: a request under
    /compute/v2/ is answered by /compute/v2.1/ at microversion 2.1 (its version headers dropped)."""
    legacy = "/compute/v2/"
    ignored = (b"openstack-api-version", b"x-openstack-nova-api-version")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(legacy) and len(path) > len(legacy):
            rest = path[len(legacy) - 1:]
            scope = {**scope, "path": "/compute/v2.1" + rest, "raw_path": ("/compute/v2.1" + rest).encode(),
                     "headers": [(k, v) for k, v in scope["headers"] if k.lower() not in ignored]}
        await inner(scope, receive, send)

    return app


def network_driver(settings: Settings, node_id: str) -> Any:
    if settings.network_driver == "fake":
        from cloudbox.network.driver.fake import FakeNetworkDriver

        return FakeNetworkDriver(node_id)
    if settings.network_driver != "linux":
        raise SetupError(f"network_driver must be linux or fake, not {settings.network_driver!r}")
    from cloudbox.network.driver.real import LinuxNetworkDriver

    return LinuxNetworkDriver(node_id)


def check_port_free(host: str, port: int) -> None:
    exc = bind_error(host, port)
    if exc is None:
        return
    if exc.errno == errno.EADDRINUSE:
        raise SetupError(f"port {port} on {host} is already in use (is another cloudbox serve running?)") from exc
    if exc.errno == errno.EADDRNOTAVAIL:
        raise SetupError(f"cannot listen on {host}: no such address on this host") from exc
    if exc.errno == errno.EACCES:
        raise SetupError(f"no permission to listen on port {port}") from exc
    raise SetupError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def open_node(data_dir: DataDir) -> Node:
    """Everything that can fail before serving, with errors a person can act on."""
    data_dir.require_cloud()
    settings = Settings.load(data_dir.root)
    node = Node(data_dir, settings)
    check_port_free(node.host, node.port)
    check_port_free(node.host, node.peer_port)
    node.engine.open()
    return node


async def serve(node: Node, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    config = HypercornConfig()
    config.bind = [f"{url_host(node.host)}:{node.port}"]
    config.certfile = str(node.data_dir.node_cert)
    config.keyfile = str(node.data_dir.node_key)
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 10
    config.keep_alive_timeout = 75
    shutdown = trio.Event()
    app = node.app()
    try:
        async with trio.open_nursery() as nursery:
            # The command log and its consensus are the node: if they fail it stops, and its
            # supervisor restarts it to replay. Any other service that fails once started is
            # logged and shown stopped in /health, and the rest of the node keeps serving.
            await nursery.start(node.cluster.run)
            await nursery.start(node.engine.run)
            await node.cluster.wait_writable()
            await nursery.start(guard.supervise, "identity", node.identity.run, node.service_failed)
            await nursery.start(guard.supervise, "image", node.image.run, node.service_failed)
            await nursery.start(guard.supervise, "network", node.network.run, node.service_failed)
            await node.network.ensure_external_network(node.settings.external_cidr)
            await nursery.start(guard.supervise, "metadata", node.metadata.run, node.service_failed)
            await nursery.start(guard.supervise, "dataplane", node.dataplane.run, node.service_failed)
            await nursery.start(guard.supervise, "compute", node.compute.run, node.service_failed)
            await nursery.start(guard.supervise, "volume", node.volume.run, node.service_failed)
            await nursery.start(guard.supervise, "object", node.object.run, node.service_failed)
            await nursery.start(guard.supervise, "events", node.events.run, node.service_failed)
            await node.ensure_catalog()
            await node.cluster.start_background()
            nursery.start_soon(_watch_signals, shutdown)
            served = trio.Event()

            async def run_http(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
                try:
                    await serving.serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
                finally:
                    served.set()

            await nursery.start(run_http)
            peer_config = _peer_config(node, config)

            async def run_peer(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
                await serving.serve(app, peer_config, shutdown_trigger=shutdown.wait, task_status=task_status)

            await nursery.start(run_peer)
            # Stacks resume once the app they act through serves (its startup has run).
            await nursery.start(guard.supervise, "orchestration", node.orchestration.run, node.service_failed)
            node.data_dir.pid_file.write_text(f"{os.getpid()}\n")
            log.info("serving", extra={"url": node.url, "version": __version__, "pid": os.getpid()})
            task_status.started(node.url)
            await shutdown.wait()
            node.events.close()  # open event streams end, or hypercorn waits for them
            # hypercorn returns once in-flight requests are done; then stop the services.
            with trio.move_on_after(config.graceful_timeout + 1):
                await served.wait()
            nursery.cancel_scope.cancel()
    finally:
        node.engine.close()
        try:
            if node.data_dir.pid_file.read_text().strip() == str(os.getpid()):
                node.data_dir.pid_file.unlink()
        except OSError:
            pass
        log.info("stopped", extra={"pid": os.getpid()})


def _peer_config(node: Node, api: HypercornConfig) -> HypercornConfig:
    """The node-to-node listener: the same app, but TLS demands a certificate of the cluster CA."""
    config = HypercornConfig()
    config.bind = [f"{url_host(node.host)}:{node.peer_port}"]
    config.certfile, config.keyfile = api.certfile, api.keyfile
    config.ca_certs = str(node.data_dir.ca_cert)
    config.verify_mode = ssl.CERT_REQUIRED
    config.accesslog = None
    config.errorlog = api.errorlog
    config.graceful_timeout = 2
    return config


async def _watch_signals(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("shutting down", extra={"signal": signal.Signals(signum).name})
            shutdown.set()
            return

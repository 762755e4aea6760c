"""``svc.qos``: QoS specs (admins), their association with volume types, and the volume
services list (os-services)."""

from __future__ import annotations

import uuid
from typing import Any, Mapping

from cloudbox.errors import BadRequest, NotFound
from cloudbox.identity.core import require
from cloudbox.volume import commands_attach as c
from cloudbox.volume import core_attach as rules
from cloudbox.volume import store, store_attach


class QosService:
    def __init__(self, svc: Any) -> None:
        self.svc = svc

    async def create(self, ctx: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        require(ctx.is_cloud_admin, "volume_extension:qos_specs_manage:create")
        values = dict(body)
        name = values.pop("name", None)
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise BadRequest("Invalid input received: QoS specs need a name of 1 to 255 characters.")
        consumer = rules.check_consumer(values.pop("consumer", "back-end"))
        at = self.svc.now()
        row = {"id": str(uuid.uuid4()), "name": name.strip(), "consumer": consumer,
               "specs": rules.check_qos_specs(values), "created_at": at, "updated_at": at}
        return await self.svc.propose(c.CreateQos(row))

    async def get(self, ctx: Any, qos_id: str) -> dict[str, Any]:
        require(ctx.is_cloud_admin, "volume_extension:qos_specs_manage:get")
        return await self.svc.read(store_attach.must_qos, qos_id)

    async def list(self, ctx: Any, marker: str | None, limit: int) -> list[dict[str, Any]]:
        require(ctx.is_cloud_admin, "volume_extension:qos_specs_manage:get_all")
        return await self.svc.read(store_attach.list_qos, marker, limit)

    async def update(self, ctx: Any, qos_id: str, body: Mapping[str, Any]) -> dict[str, str]:
        """Set keys (and the consumer); answers what was set, as Cinder does."""
        require(ctx.is_cloud_admin, "volume_extension:qos_specs_manage:update")
        values = dict(body)
        consumer = rules.check_consumer(values.pop("consumer")) if "consumer" in values else None
        if not values and consumer is None:
            raise BadRequest("Invalid input received: give the QoS keys to set.")
        specs = rules.check_qos_specs(values)
        await self.svc.propose(c.UpdateQos(qos_id, specs, (), consumer, self.svc.now()))
        return {**specs, **({"consumer": consumer} if consumer else {})}

    async def delete_keys(self, ctx: Any, qos_id: str, keys: Any) -> None:
        require(ctx.is_cloud_admin, "volume_extension:qos_specs_manage:delete_keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise BadRequest("Invalid input received: keys must be a list of QoS keys.")
        await self.svc.propose(c.UpdateQos(qos_id, {}, tuple(keys), None, self.svc.now()))

    async def delete(self, ctx: Any, qos_id: str, force: bool) -> None:
        require(ctx.is_cloud_admin, "volume_extension:qos_specs_manage:delete")
        await self.svc.propose(c.DeleteQos(qos_id, force))

    async def associations(self, ctx: Any, qos_id: str) -> list[dict[str, Any]]:
        require(ctx.is_cloud_admin, "volume_extension:qos_specs_manage:get")

        def read(db: Any) -> list[dict[str, Any]]:
            store_attach.must_qos(db, qos_id)
            return store_attach.qos_types(db, qos_id)

        return await self.svc.read(read)

    async def associate(self, ctx: Any, qos_id: str, type_id: str | None, associate: bool) -> None:
        """Associate a type (or disassociate it; with no type and ``associate`` false: every type)."""
        require(ctx.is_cloud_admin, "volume_extension:qos_specs_manage:update")
        if type_id is not None and await self.svc.read(store.get_type, type_id) is None:
            raise NotFound(f"Volume type {type_id} could not be found.")
        await self.svc.propose(c.AssociateQos(qos_id, type_id, associate))

    # --- volume services (os-services), hosts (os-hosts), backend capabilities --------------------------
    async def services(self, ctx: Any) -> list[dict[str, Any]]:
        """Each node's backend (cinder-volume, host ``node@driver``) and the scheduler of the node
        that answers: every node schedules its own requests (the proposing node keeps the volume).
        The scheduler runs in the process of this node's backend, so it was updated when that was."""
        require(ctx.is_cloud_reader, "volume_extension:services:index")
        backends = await self.svc.read(store_attach.backends)
        up = await self.svc.up_nodes()
        mine = [b["registered_at"] for b in backends if b["host"] == self.svc.host]
        started = mine[0] if mine else min((b["registered_at"] for b in backends), default=self.svc.now())
        return [{"binary": "cinder-scheduler", "host": self.svc.host, "zone": self.svc.availability_zone,
                 "state": "up", "updated_at": started},
                *[{"binary": "cinder-volume", "host": f"{b['host']}@{b['driver']}", "zone": b["availability_zone"],
                   "state": "up" if up is None or b["node_id"] in up else "down", "updated_at": b["registered_at"]}
                  for b in backends]]

    async def backend(self, ctx: Any, host: str) -> dict[str, Any]:
        """The cinder-volume service named ``node@driver`` (a ``#pool`` suffix is allowed), or 404."""
        require(ctx.is_cloud_admin, "volume_extension:capabilities")
        name = host.split("#", 1)[0]
        for service in await self.services(ctx):
            if service["binary"] == "cinder-volume" and service["host"] == name:
                return service
        raise NotFound(f"Volume backend {host[:80]} could not be found.")

    async def host_usage(self, ctx: Any, host: str) -> list[dict[str, Any]]:
        """os-hosts show: the volumes and snapshots a backend keeps, in total and per project."""
        require(ctx.is_cloud_admin, "volume_extension:hosts")
        backend = await self.backend(ctx, host)
        return await self.svc.read(store.host_usage, backend["host"].split("@", 1)[0])

"""Swift v1 routes at /object-store/v1/AUTH_<project_id> (``build(service) -> ApiSpec``), and /info.

Every route is public in the route table: a request without a token may still be allowed by a
container's ACL (or a TempURL), so each handler decides through ``authorize`` (acl.py's rules).
"""

from __future__ import annotations

import functools
import json
import urllib.parse
from typing import Any

from cloudbox.api.routes import ApiSpec, Call, Reply, Route
from cloudbox.errors import BadRequest, NotFound
from cloudbox.object import acl, bulk, core, cors, formpost, large, staticweb, tempurl, views
from cloudbox.object.api_objects import object_routes
from cloudbox.object.peers import peer_spec
from cloudbox.object.service import ObjectService

PREFIX = "/object-store/v1"
ACCOUNT = "/AUTH_{account}"
CONTAINER = ACCOUNT + "/{container}"
LISTING_QUERY = ("format", "prefix", "delimiter", "marker", "end_marker", "limit", "reverse")


def info_document() -> dict[str, Any]:
    """GET /info: what this cloud serves of Swift, and nothing it does not."""
    return {"swift": {"version": "2.34.0-cloudbox", **core.LIMITS, "policies": [{"name": "default", "default": True}]},
            "slo": {"max_manifest_segments": large.SLO_MAX_SEGMENTS, "max_manifest_size": large.SLO_MAX_MANIFEST,
                    "min_segment_size": 1},
            "dlo": {"max_get_time": 86400}, "keystoneauth": {},
            "container_quotas": {}, "staticweb": {}, "formpost": {"allowed_digests": sorted(tempurl.DIGESTS)},
            "versioned_writes": {"allowed_flags": ["x-versions-location", "x-history-location"]},
            "bulk_delete": {"max_deletes_per_request": bulk.BULK_DELETE_LIMIT,
                            "max_failed_deletes": bulk.BULK_DELETE_LIMIT},
            "tempurl": {"methods": list(tempurl.METHODS), "allowed_digests": sorted(tempurl.DIGESTS),
                        "incoming_remove_headers": [], "incoming_allow_headers": [],
                        "outgoing_remove_headers": [], "outgoing_allow_headers": []}}


class Access:
    """The authorization step every handler starts with."""

    def __init__(self, svc: ObjectService) -> None:
        self.svc = svc

    async def __call__(self, call: Call, account: str, op: str, container: str | None = None,
                       object_name: str | None = None) -> None:
        if object_name is not None and container is not None and "temp_url_sig" in call.query:
            await self._temp_url(call, account, container, object_name)
            return
        caller = acl.caller_of(call.auth)
        metadata: dict[str, str] = {}
        account_acl = None
        if not owns(call, account):
            if caller is not None:
                account_acl = (await self.svc.head_account(account)).metadata.get(acl.ACCOUNT_ACL)
            if container is not None:
                try:
                    metadata = (await self.svc.head_container(account, container)).metadata
                except NotFound:
                    pass
        acl.check(caller, account, op, read_acl=metadata.get("x-container-read"),
                  write_acl=metadata.get("x-container-write"), referer=call.request.headers.get("Referer"),
                  account_acl=account_acl)

    async def _temp_url(self, call: Call, account: str, container: str, object_name: str) -> None:
        """A TempURL stands in for a token: signed with a key of the account or the container."""
        keys = tempurl.keys_of((await self.svc.head_account(account)).metadata, "x-account-meta-")
        try:
            keys += tempurl.keys_of((await self.svc.head_container(account, container)).metadata,
                                    "x-container-meta-")
        except NotFound:
            pass
        tempurl.check(call.query, call.request.method, call.request.path, object_name, keys, self.svc.clock())


def owns(call: Call, account: str) -> bool:
    """Whether the caller's token is of the account's project (it sees keys and ACLs)."""
    caller = acl.caller_of(call.auth)
    return caller is not None and caller.project_id == account and caller.can_read_own


def metadata_changes(headers: Any, kind: str) -> tuple[dict[str, str], list[str]]:
    """(set, removed) of an account's or container's metadata from X-<kind>-Meta-*, X-Remove-*
    and (containers) the ACL and versioning headers; full lowercased header names."""
    prefix, remove = f"x-{kind}-", f"x-remove-{kind}-"
    kept = ("read", "write") if kind == "container" else ("access-control",)
    versioning = ("x-versions-location", "x-history-location") if kind == "container" else ()
    changes: dict[str, str] = {}
    removed: list[str] = []
    for key, value in headers.items():
        low = key.lower()
        if low.startswith(prefix + "meta-") or low[len(prefix):] in kept:
            changes[low] = value.strip()
        elif low.startswith(remove + "meta-") or (low.startswith(remove) and low[len(remove):] in kept):
            removed.append(prefix + low[len(remove):])
        elif low in versioning:
            changes[low] = value.strip()
        elif low.startswith("x-remove-") and "x-" + low[len("x-remove-"):] in versioning:
            removed.append("x-" + low[len("x-remove-"):])
    core.check_metadata({k[len(prefix + "meta-"):]: v for k, v in changes.items() if "-meta-" in k},
                        f"X-{kind.capitalize()}-Meta-")
    if changes.get(acl.ACCOUNT_ACL):
        changes[acl.ACCOUNT_ACL] = json.dumps(acl.parse_account_acl(changes[acl.ACCOUNT_ACL]), sort_keys=True)
    for key in (core.QUOTA_BYTES, core.QUOTA_COUNT):
        if kind == "container" and changes.get(key) and not changes[key].isdigit():
            raise BadRequest(f"Invalid {key.title()}: a whole number of {key.rsplit('-', 1)[1]} is needed.")
    versions = [k for k in versioning if changes.get(k)]
    if len(versions) > 1:
        raise BadRequest("Only one of X-Versions-Location or X-History-Location may be given")
    for key in versions:
        changes[key] = core.check_container_name(urllib.parse.unquote(changes[key]))
        removed += [other for other in versioning if other != key]  # one mode at a time
    return changes, removed


def listing_reply(body: str, fmt: str, empty: bool, headers: dict[str, str]) -> Reply:
    if empty and fmt == "plain":
        return Reply(None, 204, headers)
    return Reply(body, 200, {**headers, "Content-Type": views.MEDIA[fmt]})


def build(svc: ObjectService) -> ApiSpec:
    authorize = Access(svc)

    # --- accounts -------------------------------------------------------------------------------
    async def account_listing(call: Call, account: str) -> Reply:
        await authorize(call, account, acl.ACCOUNT_READ)
        opts = core.list_options(call.query, core.ACCOUNT_LISTING_LIMIT)
        info = await svc.head_account(account)
        entries = await svc.list_containers(account, prefix=opts.prefix, delimiter=opts.delimiter,
                                            marker=opts.marker, end_marker=opts.end_marker, limit=opts.limit,
                                            reverse=opts.reverse)
        fmt = views.listing_format(call.query.get("format"), call.request.headers.get("Accept"))
        return listing_reply(views.container_listing("AUTH_" + account, entries, fmt), fmt, not entries,
                             views.account_headers(info, owner=owns(call, account)))

    async def account_head(call: Call, account: str) -> Reply:
        await authorize(call, account, acl.ACCOUNT_READ)
        return Reply(None, 204, views.account_headers(await svc.head_account(account), owner=owns(call, account)))

    async def account_post(call: Call, account: str) -> Reply:
        if "bulk-delete" in call.query:
            return await bulk_delete(call, account)
        await authorize(call, account, acl.ACCOUNT_WRITE)
        changes, removed = metadata_changes(call.request.headers, "account")
        info = await svc.update_account(account, changes, removed)
        return Reply(None, 204, views.account_headers(info))

    async def bulk_delete(call: Call, account: str) -> Reply:
        async def delete(container: str, name: str | None) -> None:
            if name is None:
                await authorize(call, account, acl.CONTAINER_WRITE)
                await svc.delete_container(account, container)
            else:
                await authorize(call, account, acl.OBJECT_WRITE, container)
                await svc.delete_object(account, container, name)

        report = await bulk.run(await bulk.read_lines(call.request.body), delete)
        body, media = bulk.render(report, call.request.headers.get("Accept", ""))
        return Reply(body, 200, {"Content-Type": media})

    objects, (website, serve_plain) = object_routes(svc, authorize)

    # --- containers -----------------------------------------------------------------------------
    async def container_site(call: Call, account: str, container: str) -> Any:
        """GET of "<container>/": a static website's home, else the container's listing."""
        await authorize(call, account, acl.OBJECT_READ, container)
        site = await website(call, account, container)
        if site is None:
            return await container_listing(call, account, container)
        serve = functools.partial(serve_plain, account, container)
        return await staticweb.directory(svc, call, account, container, "", site, serve)

    async def container_listing(call: Call, account: str, container: str) -> Reply:
        site = await website(call, account, container)
        if site is not None and (site.get(staticweb.META + "index") or site.get(staticweb.META + "listings")):
            return staticweb.redirect(call.request.path + "/")
        await authorize(call, account, acl.CONTAINER_LIST, container)
        opts = core.list_options(call.query, core.CONTAINER_LISTING_LIMIT)
        prefix, delimiter = opts.prefix, opts.delimiter
        if "path" in call.query:  # Swift's older form: the names directly under a pseudo-folder
            path = call.query["path"]
            prefix, delimiter = (path.rstrip("/") + "/" if path else ""), "/"
        info = await svc.head_container(account, container)
        entries = await svc.list_objects(account, container, prefix=prefix, delimiter=delimiter,
                                         marker=opts.marker, end_marker=opts.end_marker, limit=opts.limit,
                                         reverse=opts.reverse)
        fmt = views.listing_format(call.query.get("format"), call.request.headers.get("Accept"))
        return listing_reply(views.object_listing(container, entries, fmt), fmt, not entries,
                             views.container_headers(info, owner=owns(call, account)))

    async def container_head(call: Call, account: str, container: str) -> Reply:
        await authorize(call, account, acl.CONTAINER_LIST, container)
        return Reply(None, 204, views.container_headers(await svc.head_container(account, container),
                                                        owner=owns(call, account)))

    async def container_put(call: Call, account: str, container: str) -> Reply:
        await authorize(call, account, acl.CONTAINER_WRITE)
        core.check_container_name(container)
        changes, removed = metadata_changes(call.request.headers, "container")
        created = await svc.create_container(account, container, changes, removed)
        return Reply(None, 201 if created else 202, {"Content-Length": "0"})

    async def container_post(call: Call, account: str, container: str) -> Reply:
        if formpost.is_form(call):  # signed by a temp-url key instead of a token
            return await formpost.handle(svc, call, account, container, "")
        await authorize(call, account, acl.CONTAINER_WRITE)
        changes, removed = metadata_changes(call.request.headers, "container")
        await svc.update_container(account, container, changes, removed)
        return Reply(None, 204)

    async def container_delete(call: Call, account: str, container: str) -> Reply:
        await authorize(call, account, acl.CONTAINER_WRITE)
        await svc.delete_container(account, container)
        return Reply(None, 204)

    account_routes = [
        Route("GET", ACCOUNT, account_listing, access="public", summary="List the account's containers",
              query=LISTING_QUERY),
        Route("HEAD", ACCOUNT, account_head, access="public", summary="Show the account's metadata", status=204),
        Route("POST", ACCOUNT, account_post, access="public", status=204, raw_body=True, query=("bulk-delete",),
              summary="Set or remove account metadata; with bulk-delete, delete the objects the body lists"),
    ]
    container_routes = [
        Route("GET", CONTAINER, container_listing, access="public", summary="List a container's objects",
              query=LISTING_QUERY + ("path",)),
        Route("HEAD", CONTAINER, container_head, access="public", summary="Show a container's metadata", status=204),
        Route("PUT", CONTAINER, container_put, access="public", summary="Create a container (or update it)",
              status=201, raw_body=True),
        Route("POST", CONTAINER, container_post, access="public", summary="Set or remove container metadata",
              status=204, raw_body=True),
        Route("DELETE", CONTAINER, container_delete, access="public", summary="Delete an empty container",
              status=204),
    ]
    container_routes.append(Route("GET", CONTAINER + "/", container_site, access="public",
                                  summary="A static website's home page (else the container's listing)",
                                  query=LISTING_QUERY))
    routes = account_routes + cors.with_cors(svc, container_routes + objects)
    return ApiSpec("object-store", PREFIX, "swift", routes)


__all__ = ["alias", "build", "info_spec", "peer_spec"]


def alias() -> ApiSpec:
    """The catalog entry: Swift's URL names the account, so the endpoint carries the project."""
    return ApiSpec("swift", PREFIX + "/AUTH_%(project_id)s", "swift", [], catalog=("object-store", "swift"))


def info_spec() -> ApiSpec:
    """GET /info at the root, where python-swiftclient asks for it (and under /object-store)."""
    async def info(call: Call) -> Any:
        return info_document()

    return ApiSpec("swift-info", "/info", "swift", [Route("GET", "", info, access="public",
                                                          summary="The Swift features this cloud serves")])

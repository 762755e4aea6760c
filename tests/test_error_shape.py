"""The error body of every API style, pinned (issue 12, "Errors").

Each OpenStack API has its own error shape and clients parse it: Keystone (and Glance and
cloudbox's own API, which share it) ``{"error": {"code", "title", "message"}}``, Nova
``{"<fault name>": {"code", "message"}}``, Neutron ``{"NeutronError": {"type", "message",
"detail"}}``. A real node answers the errors clients meet every day; an app in-process
raises every class of ``cloudbox.errors`` under every style.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

import httpx
import pytest

from cloudbox import errors
from cloudbox.api import errors as api_errors
from cloudbox.api.app import create_app
from cloudbox.api.routes import ApiSpec, Call, Route
from tests.cloud import Cloud

REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MISSING = "00000000-0000-0000-0000-000000000000"

# style -> (a path that does not exist under its prefix, a collection to POST to, a path that has no DELETE)
APIS = {
    "keystone": (f"/identity/v3/projects/{MISSING}", "/identity/v3/projects", "/identity/v3"),
    "nova": (f"/compute/v2.1/servers/{MISSING}", "/compute/v2.1/servers", "/compute/v2.1/flavors"),
    "glance": (f"/image/v2/images/{MISSING}", "/image/v2/images", "/image/v2/images"),
    "neutron": (f"/network/v2.0/networks/{MISSING}", "/network/v2.0/networks", "/network/v2.0/networks"),
    "cloudbox": ("/cloudbox/v1/no-such-thing", "/cloudbox/v1/cluster/join-tokens", "/cloudbox/v1/health"),
}
NOVA_FAULTS = {400: "badRequest", 401: "unauthorized", 404: "itemNotFound", 405: "badMethod", 413: "overLimit"}
NEUTRON_TYPES = {400: "BadRequest", 401: "NotAuthorized", 404: "NotFound", 405: "MethodNotAllowed",
                 413: "RequestEntityTooLarge"}
TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
          413: "Request Entity Too Large"}


def assert_shape(style: str, r: httpx.Response, status: int) -> str:
    """The body is exactly the style's error object for ``status``; returns the message."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert REQUEST_ID.match(r.headers["x-openstack-request-id"])
    body = r.json()
    if style == "nova":
        assert body == {NOVA_FAULTS[status]: {"code": status, "message": body[NOVA_FAULTS[status]]["message"]}}
        message = body[NOVA_FAULTS[status]]["message"]
    elif style == "neutron":
        assert body == {"NeutronError": {"type": NEUTRON_TYPES[status], "message": body["NeutronError"]["message"],
                                         "detail": ""}}
        message = body["NeutronError"]["message"]
    else:
        assert body == {"error": {"code": status, "title": TITLES[status], "message": body["error"]["message"]}}
        message = body["error"]["message"]
    assert isinstance(message, str) and message.strip()
    return message


@pytest.fixture(scope="module")
def admin(cloud: Cloud) -> Iterator[httpx.Client]:
    with cloud.client(cloud.token()) as client:
        yield client


def provoke(status: int, style: str, cloud: Cloud, admin: httpx.Client) -> httpx.Response:
    """The request that meets ``status`` in ``style``'s API, as clients meet it."""
    missing, collection, no_delete = APIS[style]
    json_body = {"Content-Type": "application/json"}
    if status == 404:
        return admin.get(missing)
    if status == 400:
        return admin.post(collection, content=b'{"x": ', headers=json_body)
    if status == 401:
        # cloudbox's join-token route is public (it checks its caller itself); rotation needs a token.
        with cloud.client() as anonymous:
            return anonymous.post("/cloudbox/v1/token-keys/rotate" if style == "cloudbox" else collection, json={})
    if status == 405:
        return admin.delete(no_delete)
    return admin.post(collection, content=b" " * ((1 << 20) + 1), headers=json_body)


@pytest.mark.parametrize("status", [400, 401, 404, 405, 413])
@pytest.mark.parametrize("style", list(APIS))
def test_error_body(style: str, status: int, cloud: Cloud, admin: httpx.Client) -> None:
    r = provoke(status, style, cloud, admin)
    message = assert_shape(style, r, status)
    if status == 400:
        assert "not valid JSON" in message
    if status == 401:
        assert r.headers["WWW-Authenticate"] == f'Keystone uri="{cloud.url}/identity/v3"'
    if status == 413:
        assert r.headers["Connection"] == "close"
    if status == 405:  # RFC 9110: the answer names the methods the resource has
        assert "GET" in r.headers["Allow"].split(", ") and "DELETE" not in r.headers["Allow"]


# --- every class, in-process ------------------------------------------------------------------
ERROR_CLASSES = [cls for cls in vars(errors).values()
                 if isinstance(cls, type) and issubclass(cls, errors.CloudboxError) and cls is not errors.CloudboxError]
STYLES = ["keystone", "nova", "glance", "neutron", "cloudbox"]


def test_every_status_has_a_class_of_its_own() -> None:
    """A status is set on a class, never on an instance; each status has one class (OverQuota is
    a Forbidden with its own title), and a "should never happen" fault is an InternalError."""
    by_status: dict[int, list[str]] = {}
    for cls in ERROR_CLASSES:
        by_status.setdefault(cls.status, []).append(cls.__name__)
    assert by_status == {
        400: ["BadRequest"], 401: ["Unauthorized"], 403: ["Forbidden", "OverQuota"], 404: ["NotFound"],
        405: ["MethodNotAllowed"], 406: ["NotAcceptable"], 408: ["RequestTimeout"], 409: ["Conflict"],
        413: ["PayloadTooLarge"], 415: ["UnsupportedMediaType"], 416: ["RangeNotSatisfiable"],
        500: ["InternalError"], 503: ["Unavailable"],
    }
    assert issubclass(errors.OverQuota, errors.Forbidden)


def _app() -> Any:
    async def fail(call: Call, kind: str) -> Any:
        if kind == "unexpected":
            raise KeyError("a bug")
        raise next(cls for cls in ERROR_CLASSES if cls.__name__ == kind)(f"a {kind} happened")

    specs = [ApiSpec(style, f"/{style}", style, [Route("GET", "/fail/{kind}", fail, access="public")])
             for style in STYLES]

    async def authenticate(token: str) -> Any:
        raise errors.Unauthorized()

    return create_app(specs, authenticate=authenticate, max_body_bytes=1 << 20, max_limit=100)


@pytest.mark.parametrize("style", STYLES)
async def test_every_class_renders_in_every_style(style: str) -> None:
    client = _app().test_client()
    for cls in ERROR_CLASSES:
        r = await client.get(f"/{style}/fail/{cls.__name__}")
        body = await r.get_json()
        assert r.status_code == cls.status
        assert body == api_errors.render(cls(f"a {cls.__name__} happened"), style)[0]
        message = f"a {cls.__name__} happened"
        if style == "nova":
            fault = {403: "forbidden", 409: "conflictingRequest", 415: "badMediaType", 503: "serviceUnavailable",
                     **NOVA_FAULTS}.get(cls.status, "computeFault")
            assert body == {fault: {"code": cls.status, "message": message}}
        elif style == "neutron":
            assert set(body) == {"NeutronError"} and body["NeutronError"]["message"] == message
        else:
            assert body == {"error": {"code": cls.status, "title": cls.title, "message": message}}


@pytest.mark.parametrize("style", STYLES)
async def test_an_unexpected_exception_is_a_500_that_tells_nothing_of_it(style: str) -> None:
    r = await _app().test_client().get(f"/{style}/fail/unexpected")
    body = await r.get_json()
    assert r.status_code == 500
    assert "a bug" not in str(body) and "KeyError" not in str(body)
    assert body == api_errors.render(errors.InternalError(
        "An unexpected error prevented the server from fulfilling your request."), style)[0]


def test_a_long_message_is_cut_in_its_middle() -> None:
    error = errors.BadRequest("Invalid input for field 'name': '" + "a" * 100_000 + "' is too long")
    body, status = api_errors.render(error, "keystone")
    message = body["error"]["message"]  # type: ignore[index]
    assert status == 400 and len(message) <= api_errors.MAX_MESSAGE
    assert message.startswith("Invalid input for field 'name': 'aaa") and message.endswith("' is too long")

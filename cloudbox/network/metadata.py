"""Answers of the metadata service (169.254.169.254), as Nova lays them out.

Pure: ``respond(files, path)`` takes one server's config-drive files (the dict
``cloudbox.compute.core.config_drive_files`` builds, keyed by paths relative to
the drive's root) and a request path, and returns (status, content type,
body).  Serving the very same files as the config drive means the two can
never disagree, and nothing here knows what a server is.

The layout (Nova's ``nova/api/metadata``; cloud-init's OpenStack and EC2
datasources, cirros and our firmware/ guest read it):

    /                                   EC2 versions, then "latest", one a line
    /openstack                          OpenStack versions, then "latest"
    /openstack/<version>                the files of that version
    /openstack/<version>/<file>         the file (JSON as application/json)
    /<ec2 version>                      "meta-data/" and "user-data" (if any)
    /<ec2 version>/meta-data/...        the EC2 JSON walked key by key
    /<ec2 version>/user-data            the user data, or 404
    /ec2/...                            the same as /... (Nova accepts both)

Paths are normalised first ("//", ".", "..", a trailing "/" do not matter),
as Nova does, so "/openstack/" and "/openstack" are the same request.
Listings have no trailing newline (as Nova's).  Every answer is text/plain
except the JSON files; user data goes out as text/plain too, because that is
what Nova sends (its default type), whatever the bytes are.
"""

from __future__ import annotations

import json
from typing import Any

TEXT = "text/plain"
JSON = "application/json"

# (status, content type, body): the shape the HTTP shell sends.
Response = tuple[int, str, bytes]

NOT_FOUND: Response = (404, TEXT, b"404 Not Found")

# The order Nova lists a version's files in; a file the drive holds that is
# not named here (none today) comes after these, by name.
_OPENSTACK_FILE_ORDER = ("meta_data.json", "user_data", "password", "vendor_data.json",
                         "network_data.json", "vendor_data2.json")
# Nova's directory of injected file contents: never a version, never listed.
_CONTENT_DIR = "content"


def _normalise(path: str) -> list[str]:
    """The path's segments, with ".", "..", empty segments and any query dropped.

    posixpath.normpath would keep a leading "//" (POSIX allows it), so this
    walks the segments itself; ".." never climbs above the root.
    """
    path = path.split("?", 1)[0].split("#", 1)[0]
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    return segments


def _version_key(version: str) -> tuple[int, str]:
    # "latest" goes last; the others are dates (or EC2's "1.0"), which sort as strings.
    return (1, "") if version == "latest" else (0, version)


def _listing(lines: list[str]) -> Response:
    return 200, TEXT, "\n".join(lines).encode()


def _versions(files: dict[str, bytes], tree: str) -> list[str]:
    """The version directories under ``tree`` ("openstack" or "ec2"), "latest" last."""
    found = {
        parts[1]
        for parts in (name.split("/") for name in files)
        if len(parts) == 3 and parts[0] == tree and parts[1] != _CONTENT_DIR
    }
    return sorted(found, key=_version_key)


def respond(files: dict[str, bytes], path: str) -> Response:
    """The answer to GET ``path`` for the server whose drive holds ``files``."""
    segments = _normalise(path)
    if segments and segments[0] == "openstack":
        return _openstack(files, segments[1:])
    if segments and segments[0] == "ec2":
        segments = segments[1:]
    return _ec2(files, segments)


# --- OpenStack tree -----------------------------------------------------------------


def _openstack(files: dict[str, bytes], segments: list[str]) -> Response:
    if not segments:
        return _listing(_versions(files, "openstack"))
    version, rest = segments[0], segments[1:]
    if version == _CONTENT_DIR:
        # Nova: no listing of the content directory, each item by its key.
        if len(rest) != 1:
            return NOT_FOUND
        body = files.get(f"openstack/{_CONTENT_DIR}/{rest[0]}")
        return NOT_FOUND if body is None else (200, TEXT, body)
    prefix = f"openstack/{version}/"
    names = [name[len(prefix):] for name in files if name.startswith(prefix) and "/" not in name[len(prefix):]]
    if not names:
        return NOT_FOUND  # an unknown version
    if not rest:
        order = {name: index for index, name in enumerate(_OPENSTACK_FILE_ORDER)}
        return _listing(sorted(names, key=lambda name: (order.get(name, len(order)), name)))
    if len(rest) != 1 or rest[0] not in names:
        return NOT_FOUND
    name = rest[0]
    return 200, JSON if name.endswith(".json") else TEXT, files[prefix + name]


# --- EC2 tree -----------------------------------------------------------------------


def _ec2(files: dict[str, bytes], segments: list[str]) -> Response:
    if not segments:
        return _listing(_versions(files, "ec2"))
    version, rest = segments[0], segments[1:]
    raw = files.get(f"ec2/{version}/meta-data.json")
    if raw is None:
        return NOT_FOUND  # an unknown version
    user_data = files.get(f"ec2/{version}/user-data")
    if not rest:
        return _listing(["meta-data/"] + (["user-data"] if user_data is not None else []))
    if rest[0] == "user-data":
        if len(rest) != 1 or user_data is None:
            return NOT_FOUND
        return 200, TEXT, user_data
    if rest[0] != "meta-data":
        return NOT_FOUND
    try:
        node: Any = json.loads(raw)
    except ValueError:
        return NOT_FOUND  # a drive we built ourselves never has this; do not 500 on it
    for depth, key in enumerate(rest[1:]):
        if not isinstance(node, dict) or key not in node:
            return NOT_FOUND
        node = node[key]
        if depth == 0 and key == "public-keys" and len(rest) == 2 and isinstance(node, dict):
            return _listing(_public_key_lines(files, node))
    if isinstance(node, dict):
        return _listing([f"{key}/" if isinstance(value, dict) else key for key, value in sorted(node.items())])
    if isinstance(node, list):
        return _listing([_scalar(item) for item in node])
    return 200, TEXT, _scalar(node).encode()


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _public_key_lines(files: dict[str, bytes], keys: dict[str, Any]) -> list[str]:
    """meta-data/public-keys/ lists "<index>=<key name>", not "<index>/" (EC2's quirk).

    Clients (cloud-init's EC2 reader) read "0=name" as "fetch 0/openssh-key
    and call it name".  The EC2 JSON on the drive has no key names, so they
    come from the OpenStack meta_data.json of the same drive.
    """
    names: list[str] = []
    raw = files.get("openstack/latest/meta_data.json")
    if raw is not None:
        try:
            meta = json.loads(raw)
        except ValueError:
            meta = {}
        names = [str(key.get("name", "")) for key in meta.get("keys") or [] if isinstance(key, dict)]
    lines = []
    for index in sorted(keys, key=lambda index: (not index.isdigit(), int(index) if index.isdigit() else 0, index)):
        position = int(index) if index.isdigit() else -1
        name = names[position] if 0 <= position < len(names) and names[position] else f"key-{index}"
        lines.append(f"{index}={name}")
    return lines

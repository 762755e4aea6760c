"""Swift v1 answers, by route (paths under /object-store/v1/AUTH_{account}), and GET /info.

Listings are plain text, JSON or XML (the ``format`` parameter or Accept), objects any media type
they were stored with, so their bodies are documented as raw bytes of any type. Errors are
Swift's short HTML pages (the "swift" style of cloudbox.api.errors).
"""

from __future__ import annotations

from cloudbox.api.responses.shapes import INT, STR, Doc, Raw, obj

P = "/object-store/v1"
ACCOUNT = P + "/AUTH_{account}"
CONTAINER = ACCOUNT + "/{container}"
OBJECT = CONTAINER + "/{object}"
ANY = Raw("*/*")
PEER = "/cloudbox/v1/cluster/object-data/{data_id}"
INFO = obj({"swift": obj({"max_file_size": INT, "container_listing_limit": INT, "max_object_name_length": INT,
                          "version": STR})})


def docs() -> dict[tuple[str, str], Doc]:
    return {
        ("GET", "/info"): Doc({200: INFO}, anonymous=True),
        ("GET", ACCOUNT): Doc({200: ANY, 204: None}, errors=(412,)),
        ("HEAD", ACCOUNT): Doc({204: None}),
        ("POST", ACCOUNT): Doc({204: None, 200: Raw("*/*")}),  # 200: a bulk delete's report
        ("GET", CONTAINER): Doc({200: ANY, 204: None, 301: None}, errors=(412,)),
        ("GET", CONTAINER + "/"): Doc({200: ANY, 204: None}, errors=(412,)),
        ("HEAD", CONTAINER): Doc({204: None}),
        ("PUT", CONTAINER): Doc({201: None, 202: None}),
        ("POST", CONTAINER): Doc({204: None, 201: Raw("text/html"), 303: None}),  # 201/303: a form post
        ("DELETE", CONTAINER): Doc({204: None}),
        ("GET", OBJECT): Doc({200: ANY, 206: ANY, 301: None, 304: None}, errors=(412, 416)),
        ("HEAD", OBJECT): Doc({200: None, 304: None}, errors=(412,)),
        ("PUT", OBJECT): Doc({201: None}, errors=(411, 412, 422)),
        ("POST", OBJECT): Doc({202: Raw("text/html"), 201: Raw("text/html"), 303: None}),
        ("DELETE", OBJECT): Doc({204: None}),
        ("COPY", OBJECT): Doc({201: None}, errors=(412,)),
        ("OPTIONS", CONTAINER): Doc({200: None}),
        ("OPTIONS", CONTAINER + "/"): Doc({200: None}),
        ("OPTIONS", OBJECT): Doc({200: None}),
        # Node to node (peer port): the bytes of an object's copy.
        ("GET", PEER): Doc({200: Raw("application/octet-stream")}),
        ("PUT", PEER): Doc({201: obj({"md5": STR, "size": INT})}),
    }

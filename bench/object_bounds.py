"""Bounds on one object stream that no object store on this machine can beat, measured beside
bench/object.py's baselines in the same run: Swift's and S3's ETag (md5 over every byte, in one
stream), and HTTPS's transport alone (TLS over loopback with Python's ssl at both ends, as the
bench's client and the node use it; no HTTP, no disk).  A PUT pays for both and the write, and
the client encrypts on the same CPUs, so the PUT ratio's ceiling is below the smaller of the two.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

CHUNK = 1 << 20


def md5_seconds(data: bytes) -> float:
    started = time.perf_counter()
    digest = hashlib.md5()
    view = memoryview(data)
    for offset in range(0, len(data), CHUNK):
        digest.update(view[offset:offset + CHUNK])
    return time.perf_counter() - started


def _contexts(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem"), "-subj", "/CN=localhost",
                    "-days", "1"], check=True, capture_output=True)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    client = ssl.create_default_context(cafile=str(tmp / "cert.pem"))
    return server, client


def tls_seconds(data: bytes) -> float:
    """Seconds to send ``data`` over one TLS connection on loopback to a reader that only counts."""
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        server_ctx, client_ctx = _contexts(Path(tmp))
        with socket.create_server(("127.0.0.1", 0)) as listener:
            received = [0]

            def serve() -> None:
                conn, _ = listener.accept()
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    while received[0] < len(data):
                        chunk = tls.recv(CHUNK)
                        if not chunk:
                            break
                        received[0] += len(chunk)

            reader = threading.Thread(target=serve)
            reader.start()
            with client_ctx.wrap_socket(socket.create_connection(listener.getsockname()),
                                        server_hostname="localhost") as tls:
                started = time.perf_counter()
                view = memoryview(data)
                for offset in range(0, len(data), CHUNK):
                    tls.sendall(view[offset:offset + CHUNK])
                reader.join()
                elapsed = time.perf_counter() - started
    if received[0] != len(data):
        raise RuntimeError(f"the TLS reader got {received[0]} of {len(data)} bytes")
    return elapsed

"""A network namespace of its own for the test browser, with TCP forwarders across it.

Chromium cancels requests in flight (net::ERR_NETWORK_CHANGED) whenever an address appears or goes
on the host, and these hosts add and remove interfaces all the time (every guest's tap, every test
node's bridges). In a namespace holding only its loopback, Chromium sees none of that. The cloud and
Selenium stay on the host: ``Namespace.forward_in(port)`` lets the browser reach the host's
127.0.0.1:port at its own 127.0.0.1:port, and ``forward_out(port)`` lets the host reach a port
opened in the namespace (chromedriver's).

A socket belongs to the namespace its creating thread was in; ``setns`` moves only the calling
thread, so each socket is made in a short switch, and every other thread stays on the host.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
import uuid
from typing import Callable

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                sock.shutdown(how)
            except OSError:
                pass


class Namespace:
    def __init__(self) -> None:
        self.name = f"cbxweb-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
        self._host_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        self._ns_fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        self._listeners: dict[tuple[str, int], socket.socket] = {}
        self._lock = threading.Lock()
        self._closed = False

    def socket_inside(self) -> socket.socket:
        """A TCP socket of the namespace (made by this thread while it is switched there)."""
        with self._lock:
            _setns(self._ns_fd)
            try:
                return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                _setns(self._host_fd)

    def run_inside(self, argv: list[str]) -> list[str]:
        """A command line that runs ``argv`` inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def forward_in(self, port: int) -> None:
        """The browser's 127.0.0.1:port reaches the host's 127.0.0.1:port (idempotent)."""
        def target() -> socket.socket:
            return socket.create_connection(("127.0.0.1", port), timeout=30)

        self._listen("in", port, self.socket_inside(), target)

    def forward_out(self, port: int) -> None:
        """The host's 127.0.0.1:port reaches the namespace's 127.0.0.1:port."""
        def target() -> socket.socket:
            sock = self.socket_inside()
            sock.settimeout(30)
            sock.connect(("127.0.0.1", port))
            return sock

        self._listen("out", port, socket.socket(socket.AF_INET, socket.SOCK_STREAM), target)

    def _listen(self, way: str, port: int, listener: socket.socket, target: Callable[[], socket.socket]) -> None:
        if (way, port) in self._listeners:
            listener.close()
            return
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        self._listeners[(way, port)] = listener

        def accept() -> None:
            while not self._closed:
                try:
                    client, _ = listener.accept()
                except OSError:
                    return
                try:
                    upstream = target()
                    upstream.settimeout(None)
                except OSError:
                    client.close()
                    continue
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pump, args=(a, b), daemon=True).start()

        threading.Thread(target=accept, daemon=True, name=f"forward-{way}-{port}").start()

    def close(self) -> None:
        self._closed = True
        for listener in self._listeners.values():
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        os.close(self._ns_fd)
        os.close(self._host_fd)
        subprocess.run(["ip", "netns", "del", self.name], check=False)

"""Network namespaces without forking the cloudbox process.

pyroute2's ``netns.create`` and ``NetNS`` fork the calling Python process to do
their work in a child.  cloudbox is multithreaded (trio's worker threads,
libvirt's event loop, the metadata listeners), and a forked copy of a
multithreaded process can block forever on a lock another thread held at the
fork: we saw a reconcile pass hang on such a child, and with it `cloudbox stop`.
So namespaces are made by `ip netns add` (fork + exec: no Python runs in the
child), and a netlink socket inside a namespace is opened by the calling thread
itself: it enters the namespace with setns(2), opens the socket (a socket stays
in the namespace it was made in) and returns to its own namespace at once.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import subprocess
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:  # imported where used: 8 MiB a node with the fake network driver never needs
    from cloudbox.network.netlink import IPRoute

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace open at ``fd``."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def create(name: str) -> None:
    """Make the named namespace (as `ip netns add` does: a bind mount under /run/netns).

    A file of that name that is no namespace (an `ip netns add` or delete cut short leaves an
    empty, unmounted file) is removed first; `ip netns add` would refuse it."""
    path = os.path.join(NETNS_DIR, name)
    if os.path.exists(path) and not _mounted(path):
        os.unlink(path)
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)


def _mounted(path: str) -> bool:
    """Is ``path`` a namespace bind mount (on another file system than its directory)?"""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except FileNotFoundError:
        return False


def remove_broken(prefixes: tuple[str, ...], older_than: float = 10.0) -> list[str]:
    """Remove files under /run/netns named with ``prefixes`` that are no namespace and are older
    than ``older_than`` seconds (younger ones may be an `ip netns add` under way)."""
    import time

    removed = []
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return removed
    for name in names:
        path = os.path.join(NETNS_DIR, name)
        try:
            if name.startswith(prefixes) and not _mounted(path) and time.time() - os.stat(path).st_mtime > older_than:
                os.unlink(path)
                removed.append(name)
        except FileNotFoundError:
            continue
    return removed


def listnetns() -> list[str]:
    """Names of the namespaces under /run/netns, without files there that are no namespace."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if _mounted(os.path.join(NETNS_DIR, n)))


def in_fresh_thread(function: Callable[..., Any], *args: Any) -> Any:
    """Run ``function`` in a thread of its own that ends with it.

    setns(2) moves only the calling thread; a pooled worker thread left in a tenant's
    namespace (if returning failed) would run later, unrelated work there.  A thread made for
    the purpose cannot leak.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="cloudbox-netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def made_inside(name: str, factory: Callable[[], Any]) -> Any:
    """``factory()`` called with the calling thread inside namespace ``name`` (which must exist):
    a socket it makes lives there.  The thread enters, calls and returns at once."""
    target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(target)
        try:
            return factory()
        finally:
            try:
                setns(home)
            except OSError:
                # This (pooled) thread would run later work inside a tenant's namespace: stop the
                # node rather than make host links there.  Guests and their traffic carry on.
                logging.getLogger("cloudbox.network").critical("a thread could not leave namespace %s", name)
                os.abort()
    finally:
        os.close(target)
        os.close(home)


@contextmanager
def iproute(name: str) -> Iterator[IPRoute]:
    """An IPRoute whose netlink socket lives in namespace ``name`` (which must exist).

    Opened by the calling thread (pyroute2 binds an IPRoute to the thread that made it).
    """
    from cloudbox.network.netlink import IPRoute

    ipr = made_inside(name, IPRoute)
    try:
        yield ipr
    finally:
        ipr.close()


def packet_socket(name: str) -> socket.socket:
    """A raw AF_PACKET socket in namespace ``name`` (for frames sent on one of its links)."""
    return made_inside(name, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))

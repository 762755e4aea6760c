"""The one place cloudbox imports libvirt, so its logging is set up first.

libvirt's own log goes to stderr unless told otherwise before the library
initialises (at import), and it logs every failed lookup and the "tainted:
high-privileges" of QEMU run as root.  Every error that matters reaches us as
an exception, and QEMU's own log is <root>/log/qemu/<domain>.log, so the
default is silence; set LIBVIRT_LOG_OUTPUTS (e.g. "1:file:/tmp/libvirt.log",
with LIBVIRT_LOG_FILTERS="1:*") to debug libvirt itself.
"""

from __future__ import annotations

import os

os.environ.setdefault("LIBVIRT_LOG_OUTPUTS", "4:file:/dev/null")

import libvirt  # noqa: E402

__all__ = ["libvirt"]

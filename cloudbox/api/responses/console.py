"""The console proxy's websocket routes (cloudbox.console.proxy), as far as HTTP sees them.

A websocket upgrade answers 101; a refused one answers before the upgrade: 401 for a console
token that is unknown, changed, expired or used, 404 for a server that is gone, 409 for one
without that console, 503 when the guest's node does not answer; a plain GET (no upgrade) 400.
"""

from __future__ import annotations

from cloudbox.api.responses.shapes import Doc


def docs() -> dict[tuple[str, str], Doc]:
    upgrade = Doc({101: None}, errors=(400, 401, 404, 409, 503), anonymous=True)
    return {("GET", "/console/vnc"): upgrade, ("GET", "/console/serial"): upgrade}

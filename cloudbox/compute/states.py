"""Server states (Nova's) and the power actions that move a server between them.

A request makes a row in BUILD (task "scheduling"); the scheduler claims a host (task
"spawning"); the host's build makes the guest and sets ACTIVE, or ERROR with a fault.
Actions set a task_state while they run and clear it when the guest reached its new
state.  Lifecycle events from the driver update power state only for servers with no
task running.

| status    | vm_state  | set by                                     |
|-----------|-----------|--------------------------------------------|
| BUILD     | building  | create, rebuild                            |
| ACTIVE    | active    | build done, start, reboot, unpause, resume |
| SHUTOFF   | stopped   | stop, guest powered off, crashed or killed |
| PAUSED    | paused    | pause                                      |
| SUSPENDED | suspended | suspend                                    |
| ERROR     | error     | build failed, guest vanished               |
| RESCUE    | rescued   | rescue (the guest boots a rescue disk)     |
| SHELVED_OFFLOADED | shelved_offloaded | shelve (no host, no guest) |
| VERIFY_RESIZE | resized | resize or migrate, until confirm/revert  |

The lifecycle actions (``lifecycle.py``) hold a server in a status the guest's state does
not show (``HELD_STATUSES``): the reconciler and the driver's events leave those alone.

| action        | from                              | tasks                             | ends              |
|---------------|-----------------------------------|-----------------------------------|-------------------|
| rescue        | ACTIVE, SHUTOFF, ERROR            | rescuing                          | RESCUE            |
| unrescue      | RESCUE                            | unrescuing                        | ACTIVE            |
| shelve        | ACTIVE, SHUTOFF, PAUSED, SUSPENDED| shelving, shelving_image_uploading, shelving_offloading | SHELVED_OFFLOADED |
| shelveOffload | SHELVED                           | shelving_offloading               | SHELVED_OFFLOADED |
| unshelve      | SHELVED, SHELVED_OFFLOADED        | unshelving, spawning              | ACTIVE            |
| resize/migrate| ACTIVE, SHUTOFF                   | resize_prep, resize_migrating, resize_finish | VERIFY_RESIZE |
| confirmResize | VERIFY_RESIZE                     | (none)                            | ACTIVE or SHUTOFF |
| revertResize  | VERIFY_RESIZE                     | resize_reverting (REVERT_RESIZE)  | ACTIVE or SHUTOFF |

Power actions (``POWER_ACTIONS``): each is allowed from the statuses listed, runs under
its task_state, and ends in a driver state.  One action may be *queued* behind another
that is still running (``QUEUED_BEHIND``): a start asked for while a stop powers the guest
off is accepted (202), recorded as task "powering-on", and runs as soon as the stop is
done, so `openstack server stop x; openstack server start x` works as typed.  Nova
refuses that start with 409; a queued start is the one place cloudbox is more lenient.

| action  | from                              | task         | ends   | may queue behind |
|---------|-----------------------------------|--------------|--------|------------------|
| os-stop | ACTIVE, ERROR, PAUSED, SUSPENDED  | powering-off | shutoff|                  |
| os-start| SHUTOFF                           | powering-on  | running| powering-off     |
| pause   | ACTIVE                            | pausing      | paused |                  |
| unpause | PAUSED                            | unpausing    | running|                  |
| suspend | ACTIVE, SHUTOFF                   | suspending   | suspended |               |
| resume  | SUSPENDED                         | resuming     | running|                  |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloudbox.clock import now_iso
from cloudbox.compute.driver import CRASHED, PAUSED, RUNNING, SHUTOFF, SUSPENDED

STATE_VIEW = {
    # observed domain state → (status, vm_state, power_state)
    RUNNING: ("ACTIVE", "active", 1),
    SHUTOFF: ("SHUTOFF", "stopped", 4),
    PAUSED: ("PAUSED", "paused", 3),
    SUSPENDED: ("SUSPENDED", "suspended", 4),
    # A guest that crashed or whose QEMU was killed is off: the user can start it again.
    CRASHED: ("SHUTOFF", "stopped", 4),
}


@dataclass(frozen=True)
class PowerAction:
    allowed: tuple[str, ...]  # statuses it may start from
    task: str  # task_state while it runs
    operation: str  # the driver's method
    final: str  # the driver state it ends in


POWER_ACTIONS = {
    "os-stop": PowerAction(("ACTIVE", "ERROR", "PAUSED", "SUSPENDED"), "powering-off", "stop", SHUTOFF),
    "os-start": PowerAction(("SHUTOFF",), "powering-on", "start", RUNNING),
    "pause": PowerAction(("ACTIVE",), "pausing", "pause", PAUSED),
    "unpause": PowerAction(("PAUSED",), "unpausing", "unpause", RUNNING),
    "suspend": PowerAction(("ACTIVE", "SHUTOFF"), "suspending", "suspend", SUSPENDED),
    "resume": PowerAction(("SUSPENDED",), "resuming", "resume", RUNNING),
}
BY_TASK = {a.task: a for a in POWER_ACTIONS.values()}
QUEUED_BEHIND = {"powering-on": "powering-off"}  # task → the running task it may wait for


def observed(state: str) -> dict[str, Any]:
    """The columns that show a driver state (task_state left as it is)."""
    status, vm_state, power = STATE_VIEW[state]
    return {"status": status, "vm_state": vm_state, "power_state": power, "updated_at": now_iso(micro=True)}


def settled(state: str) -> dict[str, Any]:
    """The columns of a server whose guest reached ``state`` with no task left running."""
    return {**observed(state), "task_state": None}


# Statuses the guest's observed state does not decide (a rescued guest runs, yet is not ACTIVE).
HELD_STATUSES = frozenset({"RESCUE", "VERIFY_RESIZE", "SHELVED", "SHELVED_OFFLOADED"})


def follows_guest(server: dict[str, Any]) -> bool:
    """Whether the server's status follows what its guest does (not while held, see HELD_STATUSES)."""
    return server["status"] not in HELD_STATUSES and not held_in_error(server)


def held_in_error(server: dict[str, Any]) -> bool:
    """An administrator's os-resetState to error (no fault): kept in ERROR whatever the guest does,
    as Nova keeps it, until a reset to active, a rebuild or a delete."""
    return server["status"] == "ERROR" and not server.get("fault")

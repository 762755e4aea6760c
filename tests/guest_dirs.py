"""Where tests put real guests' files: outside pytest's tmp root.

QEMU runs as an unprivileged user (libvirt-qemu) and must search every
directory above a guest's files.  cloudbox makes its own directories
searchable for it but never changes the host's above them, and pytest's
/tmp/pytest-of-<user> is 0700; pytest also takes group and other permissions
off it at the start of every session, so a grant there would race with every
other test run on the machine.  Real guests' directories therefore live under
GUEST_TMP (searchable, not listable), each named after its pytest session; a
directory goes once pytest has removed its session's tmp dir.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

GUEST_TMP = Path("/var/tmp/cbx-guests")  # short: libvirt roots under it keep QEMU's socket paths short
_SESSION = re.compile(r"^(pytest-\d+)-")


def guest_dir(pytest_path: Path, name: str, mode: int = 0o711) -> Path:
    """A new directory for real guests of the pytest session that ``pytest_path`` belongs to."""
    parts = Path(pytest_path).parts
    index = next((i for i, part in enumerate(parts) if re.fullmatch(r"pytest-\d+", part)), None)
    session = parts[index] if index is not None else "nosession"
    GUEST_TMP.mkdir(parents=True, exist_ok=True)
    GUEST_TMP.chmod(0o711)
    if index is not None:
        _prune(Path(*parts[:index]))
    path = Path(tempfile.mkdtemp(prefix=f"{session}-{name}-", dir=GUEST_TMP))
    path.chmod(mode)
    return path


def _prune(sessions: Path) -> None:
    """Remove the directories of sessions whose pytest tmp dir is gone."""
    for entry in GUEST_TMP.iterdir():
        match = _SESSION.match(entry.name)
        if match and not (sessions / match.group(1)).exists():
            shutil.rmtree(entry, ignore_errors=True)

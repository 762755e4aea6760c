"""The cloudbox installer, started by the live system on its primary console.

Unattended when an answer file is found (answers.find_answer_file), else interactive.
Progress lines go to every console named on the kernel command line, so a serial log
shows an unattended install too.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

from . import install
from .answers import cmdline_args, find_answer_file, parse

VERSION_FILE = install.LIVE_MEDIUM / "live" / "cloudbox.version"


def consoles(cmdline: str) -> list[str]:
    """/dev paths of the console= devices (tty0 is the active virtual terminal)."""
    found = []
    for word in cmdline.split():
        if word.startswith("console="):
            name = word.removeprefix("console=").split(",")[0]
            found.append("/dev/tty1" if name == "tty0" else f"/dev/{name}")
    return found or ["/dev/tty1"]


def main() -> int:
    cmdline = Path("/proc/cmdline").read_text()
    args = cmdline_args(cmdline)
    own = os.ttyname(0) if os.isatty(0) else ""
    others = [c for c in consoles(cmdline) if c != own and os.path.exists(c)]
    started = time.monotonic()

    def say(line: str) -> None:
        text = f"cloudbox-installer [{time.monotonic() - started:5.0f}s]: {line}\n"
        sys.stdout.write(text)
        sys.stdout.flush()
        for dev in others:
            try:
                with open(dev, "w") as out:
                    out.write(text.replace("\n", "\r\n"))
            except OSError:
                pass
        with install.LOG.open("a") as log:
            log.write(text)

    version = VERSION_FILE.read_text().strip() if VERSION_FILE.exists() else "?"
    say(f"cloudbox {version}")
    try:
        found = find_answer_file(args)
        if found:
            where, text = found
            say(f"unattended: answers from {where}")
            answers = parse(text)
        else:
            from . import ui
            answers = ui.collect()
        install.install(answers, say)
    except Exception as exc:  # noqa: BLE001 - every failure ends on the screen, then a shell
        say(f"FAILED: {exc}")
        for line in traceback.format_exc().splitlines()[-6:]:
            say(f"  {line}")
        say(f"the log is {install.LOG}; a shell follows (type 'exit' to run the installer again)")
        subprocess.run(["/bin/bash", "-l"], check=False)
        return 1
    say("INSTALLED: rebooting into the new system" if answers.reboot else "INSTALLED: powering off")
    time.sleep(2)
    subprocess.run(["systemctl", "reboot" if answers.reboot else "poweroff"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

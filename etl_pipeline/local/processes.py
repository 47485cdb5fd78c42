"""Which processes are running, read from /proc.

Not from `ps`: its output is cut to the terminal's width when it has one, so a long command line (a
server's data directory at the end of it) would be missed in a terminal and found in CI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    pid: int
    command_line: str


def running_processes() -> list[Process]:
    """Every process whose command line can be read (kernel threads have none)."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # ended between the listing and the read, or not ours to read
        if raw:
            found.append(
                Process(int(entry.name), raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace"))
            )
    return found


def processes_mentioning(text: str | os.PathLike[str]) -> list[Process]:
    """The processes (other than this one) whose full command line contains `text`."""
    needle = str(text)
    return [p for p in running_processes() if needle in p.command_line and p.pid != os.getpid()]

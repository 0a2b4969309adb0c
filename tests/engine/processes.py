"""What the sandbox tests look for in /proc: the processes a test's handler started."""

from __future__ import annotations

import os
from pathlib import Path


def marked(mark: str) -> list[int]:
    """The processes running `sleep MARK` (a mark no other process on the host uses)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline[:2] == [b"sleep", mark.encode()]:
                found.append(int(entry))
    return found

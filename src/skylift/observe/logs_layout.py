"""Where stored logs live: `.skylift/logs/FUNCTION/STREAM.bin`, as CloudWatch groups them.

A function is a log group (`/aws/lambda/FUNCTION`), an instance a log stream named as
Lambda names them (`2024/01/31/[$LATEST]` and 32 hex digits). A stream's file is split
into segments (`STREAM.bin`, `STREAM.1.bin`, ...) so retention can drop the oldest part
of a long-lived instance's log. A file holds frames of invocations (`logs_frame.py`),
which the reader turns into CloudWatch's events (`records.invocation_events`); state
folders written before hold `STREAM.jsonl` files, one invocation a JSON line, read alike.
"""

from __future__ import annotations

import re
from pathlib import Path

DIRECTORY = "logs"
SUFFIX = ".bin"  # what the store writes
LINES = ".jsonl"  # what it wrote before: read still
# 2024-01-31-<32 hex>[.N].bin: the stream's date and id, then the segment number.
_FILE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})-([0-9a-f]{32})(?:\.(\d+))?(\.bin|\.jsonl)$")


def root(state_dir: Path) -> Path:
    return state_dir / DIRECTORY


def group_name(function: str) -> str:
    return f"/aws/lambda/{function}"


def file_name(stream_key: str, segment: int) -> str:
    """`stream_key` is `YYYY-MM-DD-HEX`; segment 0 has no number."""
    return f"{stream_key}{SUFFIX}" if segment == 0 else f"{stream_key}.{segment}{SUFFIX}"


def stream_name(path: Path) -> str | None:
    """CloudWatch's name for the stream a file belongs to, or None if it is not a log."""
    match = _FILE.match(path.name)
    if match is None:
        return None
    year, month, day, hex_id, _, _ = match.groups()
    return f"{year}/{month}/{day}/[$LATEST]{hex_id}"


def stream_key(path: Path) -> str:
    """The `YYYY-MM-DD-HEX` of a log file's name (what `file_name` was given)."""
    match = _FILE.match(path.name)
    if match is None:
        raise ValueError(f"{path.name} is not a log file's name")
    year, month, day, hex_id, _, _ = match.groups()
    return f"{year}-{month}-{day}-{hex_id}"


def in_lines(path: Path) -> bool:
    """Whether a log file holds JSON lines (a state folder's from before frames)."""
    return path.name.endswith(LINES)


def base(path: Path) -> str:
    """A log file's name without its suffix."""
    return path.name.removesuffix(LINES if in_lines(path) else SUFFIX)


def segment(path: Path) -> int:
    match = _FILE.match(path.name)
    return int(match.group(5) or 0) if match else 0


def log_files(directory: Path, function: str | None = None) -> list[tuple[str, Path]]:
    """(function, file) for every stored log file, of one function or all."""
    found: list[tuple[str, Path]] = []
    if not directory.is_dir():
        return found
    groups = [directory / function] if function else sorted(directory.iterdir())
    for group in groups:
        if not group.is_dir():
            continue
        for path in sorted(group.iterdir(), key=lambda p: (p.name.split(".")[0], segment(p))):
            if stream_name(path) is not None:
                found.append((group.name, path))
    return found


def functions(directory: Path) -> list[str]:
    """The functions that have stored logs."""
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.is_dir())

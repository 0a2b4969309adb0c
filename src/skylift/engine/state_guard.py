"""The app's SQLite databases are checked before anything uses them.

A database that held data and is now missing, emptied or damaged stops the start with a
message naming the file, what is wrong and how to recover; it is never silently replaced by
an empty one. To tell "never created" from "lost", `.skylift/databases` lists every database
skylift created there, one name a line.

The check is SQLite's ``PRAGMA quick_check`` (every page and index readable and consistent,
O(size): 76 ms for a 115 MiB database in the page cache) plus the schema version in
``PRAGMA user_version``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from skylift.errors import SkyliftError
from skylift.queues.sqlite_store import SCHEMA_VERSION

MARKER = "databases"
DATABASES = ("queues.db", "async.db")
_HEADER = (
    "# Databases skylift created in this folder, one a line. A database listed here that is\n"
    "# missing, empty or damaged stops `skylift up` instead of being recreated empty.\n"
    "# `skylift reset-db NAME` sets a database aside and removes its line.\n"
)
# What each database holds, for the messages.
_HOLDS = {"queues.db": "the app's queues and their messages", "async.db": "pending async events"}


class DamagedState(SkyliftError):
    """Raised when a database under `.skylift/` is missing, emptied or damaged.

    `path` is the database, `problem` says what is wrong; the message says how to recover.
    """

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        holds = _HOLDS.get(path.name, "the app's state")
        shown = _shown(path)
        super().__init__(
            f"{shown} {problem}.\nIt holds {holds}; skylift will not start with an empty "
            "one in its place. To recover, either\n"
            f"  restore it from a backup:   rm -f {shown}-wal {shown}-shm && "
            f"cp BACKUP {shown}\n"
            f"  or set it aside and start with none:   skylift reset-db {path.name}"
            " (in the app's folder)"
        )


def check(directory: Path, name: str) -> bool:
    """Check the database `name` in `directory`; True if it exists and passes.

    False means it was never created here, so creating it is safe. Raises `DamagedState`
    when it is listed in the marker but missing, or exists but is empty or damaged.
    """
    path = directory / name
    listed = name in recorded(directory)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        if listed:
            raise DamagedState(path, "is missing, but skylift created it here before") from None
        return False
    # skylift's databases are never 0 bytes: switching to WAL writes the first page. An
    # unlisted empty file next to a marker is a creation that was cut off.
    if size == 0 and (listed or not (directory / MARKER).exists()):
        raise DamagedState(path, "is empty (0 bytes): its contents were lost")
    problem, blank = _inspect(path)
    if blank and not listed:
        return False  # a creation cut off before its schema was written
    if problem is not None:
        raise DamagedState(path, problem)
    if not listed:
        record(directory, name)  # created by a skylift without the marker, or by hand
    return True


def recorded(directory: Path) -> set[str]:
    """The names the marker lists."""
    try:
        text = (directory / MARKER).read_text()
    except FileNotFoundError:
        return set()
    return {line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"}


def record(directory: Path, name: str) -> None:
    """List `name` in the marker (written whole, then renamed: never half a list)."""
    names = recorded(directory) | {name}
    _write_marker(directory, names)


def reset(directory: Path, name: str) -> list[Path]:
    """Move database `name` (and its WAL files) aside and unlist it; the moved paths."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    moved = []
    for suffix in ("", "-wal", "-shm"):
        source = directory / f"{name}{suffix}"
        if source.exists():
            target = directory / f"{name}.set-aside-{stamp}{suffix}"
            source.rename(target)
            moved.append(target)
    _write_marker(directory, recorded(directory) - {name})
    return moved


def _write_marker(directory: Path, names: set[str]) -> None:
    tmp = directory / f".{MARKER}.tmp"
    tmp.write_text(_HEADER + "".join(f"{n}\n" for n in sorted(names)))
    os.replace(tmp, directory / MARKER)


def _inspect(path: Path) -> tuple[str | None, bool]:
    """(what is wrong with the database at `path` or None, whether it is a blank one)."""
    try:
        # Read-write, not read-only: a WAL left by a killed server must be replayable.
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=rw", uri=True)) as db:
            db.execute("PRAGMA busy_timeout=5000")
            rows = db.execute("PRAGMA quick_check(5)").fetchall()
            if rows != [("ok",)]:
                found = "; ".join(str(row[0]) for row in rows)
                return f"is damaged (SQLite's quick_check found: {found})", False
            (version,) = db.execute("PRAGMA user_version").fetchone()
            (tables,) = db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        return f"is damaged (SQLite: {exc})", False
    if version == 0 and tables == 0:
        return "holds no data any more (a blank SQLite database): it was emptied", True
    if version == 0:
        return f"is not a skylift database ({tables} tables of something else)", False
    if version != SCHEMA_VERSION:
        return (
            f"has schema version {version}, and this skylift reads version {SCHEMA_VERSION}: "
            "it was written by another skylift version; use that version",
            False,
        )
    return None, False


def _shown(path: Path) -> str:
    """The path as a user would type it from the current folder."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)

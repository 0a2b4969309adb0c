"""What an exporter produces: a plan of files, built whole before anything is written.

An exporter only plans (`Exporter.plan(app) -> Plan`); `write` executes a plan and
`table` shows one (`--dry-run`). A plan is immutable, so what `--dry-run` shows is what
a write would do, and a failure while planning leaves the output folder untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from skylift.errors import SkyliftError
from skylift.export.model import AppModel


class ExportError(SkyliftError):
    """Raised when an app cannot be exported as asked; says what to change."""


@dataclass(frozen=True)
class File:
    """One file of a plan: `path` relative to the output folder, and its text.

    `source`, when set, is a file to copy instead of `text` (app code, skylift's own
    source for an image build). `kind` and `name` describe it for the plan's table.
    """

    path: str
    text: str = ""
    kind: str = "file"
    name: str = ""
    source: str | None = None

    @property
    def size(self) -> int:
        if self.source is not None:
            return os.path.getsize(self.source)
        return len(self.text.encode("utf-8"))


@dataclass(frozen=True)
class Plan:
    """The files an export writes under its output folder, and notes for the user."""

    files: tuple[File, ...]
    notes: tuple[str, ...] = ()

    def file(self, path: str) -> File:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise KeyError(path)


class Exporter(Protocol):
    """One export format. `plan` reads the app and never touches the disk."""

    def plan(self, app: AppModel) -> Plan: ...


def write(plan: Plan, out: str | os.PathLike[str]) -> list[Path]:
    """Write every file of `plan` under `out` (created if missing); return their paths.

    Each file is written beside its destination and renamed over it, so an export that
    fails halfway never leaves a half-written manifest.
    """
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ExportError(f"{root} is a file: pass a folder with --out")
    written: list[Path] = []
    for entry in plan.files:
        target = root / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.skylift-tmp")
        if entry.source is not None:
            temporary.write_bytes(Path(entry.source).read_bytes())
        else:
            temporary.write_text(entry.text, encoding="utf-8")
        os.replace(temporary, target)
        written.append(target)
    return written


def table(plan: Plan, rows: Iterable[File] | None = None) -> str:
    """The plan as a table (kind, name, path, size), one line per file."""
    entries = list(plan.files if rows is None else rows)
    header = ("KIND", "NAME", "FILE", "BYTES")
    lines = [(f.kind, f.name or "-", f.path, str(f.size)) for f in entries]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(4)]
    text = [
        "  ".join(
            cell.ljust(widths[i]) if i < 3 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in [header, *lines]
    ]
    return "\n".join(line.rstrip() for line in text) + "\n"

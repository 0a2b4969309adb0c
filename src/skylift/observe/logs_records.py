"""A stored log file as records: the frames of invocations the store writes
(`logs_frame.py`), or, in a state folder from before frames, JSON lines of one invocation
each; and each stored invocation as `records.py` formats it.

Files are read from an offset in growing chunks (the file open only while it is read),
each record whole: one being written now is read next time. A file's identity is a hash
of its first record's first `HEAD` bytes (they hold its first request id): a file
removed by retention and created again under its name is known for another.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from skylift.engine.instance import InvocationResult
from skylift.log_config import LogConfig
from skylift.observe import logs_frame as framing
from skylift.observe import logs_layout as layout
from skylift.spec import FunctionSpec

FIRST_READ = 2048  # bytes read of a file at first: a record or a few (a page may
# start every stored file at once: this much each is what it holds of them)
MAX_READ = 1024 * 1024  # reads double up to this (or to what a frame needs)
HEAD = 256  # bytes of a file's first record that make its identity
HEADS = 64 * 1024  # bytes read at once when walking frames by their headers

# A record: where it starts and ends, its bytes, and its rows (a frame's; none for a
# JSON line, which its reader parses if it wants it).
Record = framing.Frame
_NO_ROWS: list[framing.Row] = []
# What records.py formats: the function, the result, its end, and the result's size when
# only its digest was kept.
Invocation = tuple[FunctionSpec, InvocationResult, int, int | None]


def identity(path: Path) -> int | None:
    """A hash of the first HEAD bytes of the file's first record, which never change once
    written (records are appended whole); None when it has no whole record yet."""
    try:
        with path.open("rb") as file:
            head = file.read(HEAD)
            size = file.seek(0, 2)
    except FileNotFoundError:
        return None
    if not layout.in_lines(path):
        length = framing.whole_frame(head)
        if length is None:  # damaged from its first byte: those bytes, once there
            return None if len(head) < HEAD else of(head)
        return None if size < length else of(head[:length])
    newline = head.find(b"\n")
    if newline < 0 and len(head) < HEAD:
        return None
    return of(head if newline < 0 else head[:newline])


def of(record: bytes) -> int:
    """The identity of a file whose first record is `record`."""
    return int.from_bytes(hashlib.blake2b(record[:HEAD], digest_size=6).digest(), "big")


def records(path: Path, offset: int) -> Iterator[Record]:
    """Each whole record of the file from `offset` (a record's start)."""
    if layout.in_lines(path):
        return _read(path, offset, _lines, lambda data: 0)
    return _read(path, offset, framing.split, _frame_needs)


def _read(
    path: Path,
    offset: int,
    split: Callable[[bytes], Iterator[Record]],
    needs: Callable[[bytes], int],
) -> Iterator[Record]:
    size = FIRST_READ
    data = b""
    at = offset  # the file offset of data[0]
    while True:
        try:
            with path.open("rb") as file:
                file.seek(at + len(data))
                chunk = file.read(size)
        except FileNotFoundError:
            return
        if not chunk:
            return
        data += chunk
        begin = 0
        for start, end, record, rows in split(data):
            yield at + start, at + end, record, rows
            begin = end
        data = data[begin:]
        at += begin
        size = max(min(size * 2, MAX_READ), needs(data))


def _frame_needs(data: bytes) -> int:
    """How much more to read for the frame `data` starts with to be whole."""
    length = framing.whole_frame(data)
    return 0 if length is None else length - len(data)


def _lines(data: bytes) -> Iterator[Record]:
    begin = 0
    while (newline := data.find(b"\n", begin)) >= 0:
        yield begin, newline + 1, data[begin:newline], _NO_ROWS
        begin = newline + 1


def tail_start(path: Path, keep: int) -> int:
    """Where to start reading the file to get its last `keep` bytes or so: the start of
    the record holding the byte `keep` from the end (a line cut there is skipped)."""
    with path.open("rb") as file:
        size = file.seek(0, 2)
        start = max(0, size - keep)
        if start == 0:
            return 0
        if not layout.in_lines(path):
            return _frame_holding(file.fileno(), path, start)
        file.seek(start - 1)
        newline = file.read(keep + 1).find(b"\n")
        return start + newline if newline >= 0 else start + keep


def _frame_holding(fd: int, path: Path, start: int) -> int:
    """The start of the frame holding byte `start`, found from the file's start by the
    headers' lengths (a body's bytes are no guide: one may hold a frame), in blocks of
    `HEADS` bytes (their headers only are read); past damage, by reading the frames."""
    at = 0
    block, block_at = b"", 0
    while True:
        if at + framing.HEADER.size > block_at + len(block):
            block, block_at = os.pread(fd, HEADS, at), at
        length = framing.whole_frame(block, at - block_at)
        if length is None:
            break  # damaged, or the end: a header not yet written whole
        if at + length > start:
            return at  # whole, or being written: read once whole
        at += length
    for begin, end, _, _ in records(path, at):
        if end > start:
            return begin
        at = end
    return at


def row_invocation(function: str, row: framing.Row) -> Invocation:
    """A stored invocation (a frame's row), as records.py takes it."""
    spec = FunctionSpec(
        name=function,
        handler="",
        code_dir="",
        memory=row.memory_mb,
        log_config=LogConfig(format="JSON" if row.json_format else "Text"),
    )
    result = InvocationResult(
        request_id=row.request_id,
        payload=b"null" if row.body is None else row.body,  # kept as its digest: null
        error="Unhandled" if row.failed else None,
        logs=row.output,
        duration_ms=row.duration_ms,
        init_ms=row.init_ms,
        max_memory_mb=row.max_memory_mb,
    )
    digest = row.body_digest
    return spec, result, row.end_ms, None if digest is None else digest[1]


def line_invocation(function: str, raw: dict[str, Any]) -> Invocation:
    """What a JSON line (of a state folder from before frames) kept of an invocation,
    as records.py takes it."""
    spec = FunctionSpec(
        name=function,
        handler="",
        code_dir="",
        memory=int(raw["memoryMB"]),
        log_config=LogConfig(format=str(raw["format"])),
    )
    error = raw.get("error")
    init = raw.get("initMs")
    result = InvocationResult(
        request_id=str(raw["requestId"]),
        payload=error.encode() if error is not None else b"null",
        error=None if error is None else "Unhandled",
        logs=str(raw["output"]).encode(),
        duration_ms=float(raw["durationMs"]),
        init_ms=None if init is None else float(init),
        max_memory_mb=int(raw["maxMemoryMB"]),
    )
    return spec, result, int(raw["end"]), None

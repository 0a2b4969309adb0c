"""Reading stored logs: every event since a time, by function, filter and request id,
and following the files for new ones. Reads the state folder only, so it works with or
without a running server (the server appends whole frames with O_APPEND).

A file is a series of records: frames of invocations (`logs_frame.py`), or, in a state
folder written before frames, JSON lines of one invocation each. A reader keeps a
position in each file (the byte offset of a record, how many of that record's events
were taken, and the file's identity), so a page can stop after any event and the next
one starts right after it: `page(limit)` merges the streams by time (each stream is in
time order: an instance runs one invocation at a time) and reads only as far as the page
needs. `positions()` and `resume()` carry the positions elsewhere (the logs API's token).
A file's identity is a hash of its first record's first bytes (they hold its first
request id): a file removed by retention and created again under its name starts over at
its beginning, not at the old file's offset.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from skylift.engine.instance import InvocationResult
from skylift.log_config import LogConfig
from skylift.observe import logs_frame as framing
from skylift.observe import logs_layout as layout
from skylift.observe.log_filter import Filter
from skylift.observe.records import invocation_events
from skylift.spec import FunctionSpec

FIRST_READ = 2048  # bytes read of a file at first: a line or a few (a page may
# start every stored file at once: this much each is what it holds of them)
MAX_READ = 1024 * 1024  # reads double up to this
HEAD = 256  # bytes of a file's first line that make its identity
# A file last written this long before `since` holds none of its events (their times
# are at most the file's last write, unless the clock stepped back by more than this).
SINCE_SLACK_MS = 60_000


@dataclass(frozen=True, slots=True)
class LogEvent:
    function: str
    stream: str
    timestamp: int
    message: str
    request_id: str
    ingestion_time: int
    event_id: str = ""  # where it is stored: unique, and the same on every read

    def to_dict(self) -> dict[str, object]:
        """The event as CloudWatch's FilterLogEvents returns one, with its group's name."""
        return {
            "logGroupName": layout.group_name(self.function),
            "logStreamName": self.stream,
            "timestamp": self.timestamp,
            "message": self.message,
            "ingestionTime": self.ingestion_time,
        }


@dataclass
class Query:
    """Which events: of `function` (None: all), at or after `since` (epoch ms), matching."""

    function: str | None = None
    since: int | None = None
    filter: Filter = field(default_factory=Filter)
    request_id: str | None = None

    def matches(self, event: LogEvent) -> bool:
        if self.since is not None and event.timestamp < self.since:
            return False
        if self.request_id is not None and event.request_id != self.request_id:
            return False
        return self.filter.matches(event.message)


# A position in a file: the offset of a line, how many of its events were taken, and
# the file's identity (`identity`; 0 at offset 0, where there is nothing to check).
Position = tuple[int, int, int]
START: Position = (0, 0, 0)


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
        if len(head) < framing.HEADER.size:
            return None
        length = framing.HEADER.size + framing.HEADER.unpack_from(head)[1]
        return None if size < length else _identity(head[:length])
    newline = head.find(b"\n")
    if newline < 0 and len(head) < HEAD:
        return None
    return _identity(head if newline < 0 else head[:newline])


def _identity(line: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(line[:HEAD], digest_size=6).digest(), "big")


class Reader:
    """Reads new events from a log folder; `poll` returns what appeared since the last."""

    def __init__(self, directory: Path, query: Query) -> None:
        self.directory = directory
        self.query = query
        self._positions: dict[Path, Position] = {}
        self._unchanged: dict[Path, tuple[int, int, int, int]] = {}  # stat at the end

    def tail(self, keep: int) -> None:
        """Start at most `keep` bytes before the end of each file, not at its beginning:
        a viewer wants the latest lines, not a read of every stored megabyte. A line
        cut by the start is skipped whole."""
        for _, path in layout.log_files(self.directory, self.query.function):
            try:
                start = _tail_start(path, keep)
            except FileNotFoundError:
                continue
            ident = identity(path) if start > 0 else 0
            if ident is not None:
                self._positions[path] = (start, 0, ident)

    def positions(self) -> dict[str, Position]:
        """Where the reader is in each file it started, by `FUNCTION/FILE` name."""
        return {
            f"{path.parent.name}/{path.name}": position
            for path, position in self._positions.items()
            if position[:2] != (0, 0)
        }

    def resume(self, positions: dict[str, Position]) -> None:
        """Go on from `positions` (as `positions()` gave them); names of files that are no
        longer stored are dropped, and any other name is never read. A file whose
        identity is not the position's is read from its beginning."""
        for function, path in layout.log_files(self.directory, self.query.function):
            found = positions.get(f"{function}/{path.name}")
            if found is not None:
                self._positions[path] = found

    def poll(self) -> list[LogEvent]:
        """Matching events written since the last poll, oldest first."""
        return self.page(None)[0]

    def page(
        self, limit: int | None, max_bytes: int | None = None, max_scan: int | None = None
    ) -> tuple[list[LogEvent], bool]:
        """At most `limit` matching events (and about `max_bytes` of messages), oldest
        first, and whether more are stored now. Events of the same time keep their
        files' order, and their order within a file. `max_scan` bounds the bytes of
        lines read (once an event is taken): a page it cuts may hold few events or none,
        and says that more are stored."""
        streams: list[_Stream] = []
        rid = self.query.request_id
        scanned = _Scanned(max_scan, rid)
        since = self.query.since
        for function, path in layout.log_files(self.directory, self.query.function):
            try:
                info = os.stat(path)
            except FileNotFoundError:
                continue
            if since is not None and info.st_mtime_ns // 1_000_000 < since - SINCE_SLACK_MS:
                continue  # last written before `since`: its events are no newer
            offset, skip, ident = self._start(path, info)
            if info.st_size <= offset:
                continue  # nothing new
            streams.append(_Stream(function, path, (offset, skip, ident), scanned))
        for path in [p for p in self._positions if not p.exists()]:
            del self._positions[path]  # removed by retention
            self._unchanged.pop(path, None)
        if limit is None and max_bytes is None and max_scan is None:
            return self._everything(streams), False
        heap: list[tuple[int, int, LogEvent, _Stream]] = []
        for order, stream in enumerate(streams):
            self._push(heap, order, stream)
        found: list[LogEvent] = []
        size = 0
        taken = False
        while heap:
            if (
                (limit is not None and len(found) >= limit)
                or (max_bytes is not None and size >= max_bytes)
                or (max_scan is not None and taken and scanned.read >= max_scan)
            ):
                return found, True
            _, order, event, stream = heapq.heappop(heap)
            taken = True
            self._positions[stream.path] = stream.after
            if self.query.matches(event):
                found.append(event)
                size += len(event.message)
            self._push(heap, order, stream)
        for stream in streams:  # read to the end: past any damaged or event-less lines
            self._positions[stream.path] = stream.after
        return found, scanned.cut

    def _start(self, path: Path, info: os.stat_result) -> Position:
        """Where to read `path` from: its position, or its beginning when the file there
        now is not the one the position was taken in (smaller, or another first line).
        A file unchanged since it was last read to its end is not opened."""
        position = self._positions.get(path, START)
        if position[:2] == (0, 0):
            return position
        if info.st_size == position[0]:
            return position  # nothing to read: whichever file it is, its growth is checked
        seen = (info.st_ino, info.st_dev, info.st_size, info.st_mtime_ns)
        if self._unchanged.get(path) == seen:
            return position
        if info.st_size < position[0] or identity(path) != position[2]:
            self._positions.pop(path, None)
            self._unchanged.pop(path, None)
            return START
        self._unchanged[path] = seen
        return position

    def _everything(self, streams: list[_Stream]) -> list[LogEvent]:
        """What pages would give, at once: when each file is in time order (as they
        are) a stable sort of all their events is that merge, at C's speed."""
        runs = [stream.rest() for stream in streams]
        for stream in streams:
            self._positions[stream.path] = stream.after
        if all(_in_order(run) for run in runs):
            found = [e for run in runs for e in run if self.query.matches(e)]
            found.sort(key=_time)
            return found
        merged = heapq.merge(*runs, key=_time)
        return [e for e in merged if self.query.matches(e)]

    def _push(
        self, heap: list[tuple[int, int, LogEvent, _Stream]], order: int, stream: _Stream
    ) -> None:
        # One event per stream in the heap, so (time, order) decides: ties go to the file
        # listed first, as a stable sort of every file's events would put them.
        event = next(stream.events, None)
        if event is not None:
            heapq.heappush(heap, (event.timestamp, order, event, stream))
        else:  # read to its end, or to the page's most: nothing of it is pending
            self._positions[stream.path] = stream.after


def _time(event: LogEvent) -> int:
    return event.timestamp


def _in_order(events: list[LogEvent]) -> bool:
    return all(a.timestamp <= b.timestamp for a, b in itertools.pairwise(events))


class _Scanned:
    """The bytes of records a page's streams read, together; what a record must hold."""

    def __init__(self, most: int | None, request_id: str | None) -> None:
        self.read = 0
        self.most = most  # a stream stops at a record's end once they read this much
        self.cut = False  # ... as one did
        self.request_id = request_id
        # (a request id as a JSON line holds it: others' lines are not parsed)
        self.needle = None if request_id is None else orjson.dumps(request_id)


class _Stream:
    """One file's events from a position, read lazily; `after` is the position past the
    last event taken (past the last whole record once all are)."""

    def __init__(self, function: str, path: Path, at: Position, scanned: _Scanned) -> None:
        self.function = function
        self.path = path
        self.after: Position = at
        self.lines = layout.in_lines(path)
        self.ident = at[2]  # of a file read from 0: its first record's, once read
        if at[0] == 0 and not self.lines:
            self.ident = identity(path) or 0
        self.scanned = scanned
        self.name = layout.stream_name(path) or path.stem
        self.key = f"{function}/{layout.base(path)}"  # for event ids
        self.events = self._events(at[0], at[1])

    def _record(
        self, start: int, end: int, record: bytes, rows: list[framing.Row]
    ) -> list[LogEvent]:
        """The events of one record; none when it is damaged (that invocation only)."""
        self.scanned.read += end - start
        if self.lines:
            if start == 0:
                self.ident = _identity(record)
            if self.scanned.needle is not None and self.scanned.needle not in record:
                return []  # another request id's
            try:
                return self._parse(start, [_invocation(self.function, orjson.loads(record))])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                return []
        wanted = self.scanned.request_id
        if wanted is not None and all(row.request_id != wanted for row in rows):
            return []  # as a line of another request id's: not formatted
        return self._parse(start, [_row(self.function, row) for row in rows])

    def _events(self, offset: int, skip: int) -> Iterator[LogEvent]:
        for start, end, record, rows in _records(self.path, offset):
            events = self._record(start, end, record, rows)
            for index in range(skip, len(events)):
                after = (start, index + 1) if index + 1 < len(events) else (end, 0)
                self.after = (*after, self.ident)
                yield events[index]
            skip = 0
            self.after = (end, 0, self.ident)
            if self.scanned.most is not None and self.scanned.read >= self.scanned.most:
                self.scanned.cut = True
                return

    def rest(self) -> list[LogEvent]:
        """Every event from the position on, at once (not with `events`)."""
        offset, skip, _ = self.after
        found: list[LogEvent] = []
        for start, end, record, rows in _records(self.path, offset):
            found += self._record(start, end, record, rows)[skip:]
            skip = 0
            self.after = (end, 0, self.ident)
        return found

    def _parse(
        self, start: int, invocations: list[tuple[FunctionSpec, InvocationResult, int]]
    ) -> list[LogEvent]:
        where = f"{self.key}:{self.ident:012x}:{start}"  # the identity: unique across reuse
        found: list[LogEvent] = []
        for spec, result, ended in invocations:
            rid = result.request_id
            events = enumerate(invocation_events(spec, result, ended), len(found))
            found += (
                LogEvent(self.function, self.name, ms, message, rid, ended, f"{where}:{i}")
                for i, (ms, message) in events
            )
        return found


_NO_ROWS: list[framing.Row] = []


def _records(path: Path, offset: int) -> Iterator[tuple[int, int, bytes, list[framing.Row]]]:
    """(start, end, record, its rows) of each whole record from `offset`: a frame and its
    rows, or a JSON line (its rows are for the caller to parse)."""
    if not layout.in_lines(path):
        yield from framing.frames(path, offset)
        return
    for start, end, line in _lines(path, offset):
        yield start, end, line, _NO_ROWS


def _tail_start(path: Path, keep: int) -> int:
    """Where the last `keep` bytes of a file start, moved on to a record's start."""
    with path.open("rb") as file:
        size = file.seek(0, 2)
        start = max(0, size - keep)
        if start == 0:
            return 0
        if not layout.in_lines(path):  # frames: found from the first (a body is no guide)
            for begin, end, _, _ in framing.frames(path, 0):
                if end > start:
                    return begin
            return size
        file.seek(start - 1)
        newline = file.read(keep + 1).find(b"\n")
        return start + newline if newline >= 0 else start + keep


def _lines(path: Path, offset: int) -> Iterator[tuple[int, int, bytes]]:
    """(start, end, line) of each whole line from `offset`; a line being written now is
    read next time. The file is open only while it is read, not between lines."""
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
        while (newline := data.find(b"\n", begin)) >= 0:
            yield at + begin, at + newline + 1, data[begin:newline]
            begin = newline + 1
        data = data[begin:]
        at += begin
        size = min(size * 2, MAX_READ)


def _row(function: str, row: framing.Row) -> tuple[FunctionSpec, InvocationResult, int]:
    """A stored invocation, as records.py takes it."""
    spec = FunctionSpec(
        name=function,
        handler="",
        code_dir="",
        memory=row.memory_mb,
        log_config=LogConfig(format="JSON" if row.json_format else "Text"),
    )
    result = InvocationResult(
        request_id=row.request_id,
        payload=b"null" if row.body is None else row.body,
        error="Unhandled" if row.failed else None,
        logs=row.output,
        duration_ms=row.duration_ms,
        init_ms=row.init_ms,
        max_memory_mb=row.max_memory_mb,
    )
    return spec, result, row.end_ms


def _invocation(function: str, raw: dict[str, Any]) -> tuple[FunctionSpec, InvocationResult, int]:
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
    return spec, result, int(raw["end"])

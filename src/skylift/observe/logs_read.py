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

import heapq
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from skylift.observe import logs_frame as framing
from skylift.observe import logs_layout as layout
from skylift.observe import logs_records as stored
from skylift.observe.log_filter import Filter
from skylift.observe.records import invocation_events

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


# A position in a file: the offset of a record, how many of its events were taken, and
# the file's identity (`logs_records.identity`; 0 at offset 0, where there is nothing to
# check, and in a frames file whose first bytes were damaged when it was read).
Position = tuple[int, int, int]
START: Position = (0, 0, 0)


class Reader:
    """Reads new events from a log folder; `poll` returns what appeared since the last."""

    def __init__(self, directory: Path, query: Query) -> None:
        self.directory = directory
        self.query = query
        self._positions: dict[Path, Position] = {}
        self._unchanged: dict[Path, tuple[int, int, int, int]] = {}  # stat at the end

    def tail(self, keep: int) -> None:
        """Start at most `keep` bytes before the end of each file, not at its beginning:
        a viewer wants the latest events, not a read of every stored megabyte (a record
        cut by the start: a line is skipped, a frame read whole)."""
        for _, path in layout.log_files(self.directory, self.query.function):
            try:
                start = stored.tail_start(path, keep)
            except FileNotFoundError:
                continue
            ident = stored.identity(path) if start > 0 else 0
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
        records read (once an event is taken): a page it cuts may hold few events or none,
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
        for stream in streams:  # read to the end: past any damaged or event-less records
            self._positions[stream.path] = stream.after
        return found, scanned.cut

    def _start(self, path: Path, info: os.stat_result) -> Position:
        """Where to read `path` from: its position, or its beginning when the file there
        now is not the one the position was taken in (smaller, or another first record).
        A file unchanged since it was last read to its end is not opened."""
        position = self._positions.get(path, START)
        if position[:2] == (0, 0):
            return position
        if info.st_size == position[0]:
            return position  # nothing to read: whichever file it is, its growth is checked
        seen = (info.st_ino, info.st_dev, info.st_size, info.st_mtime_ns)
        if self._unchanged.get(path) == seen:
            return position
        known = position[2] != 0  # (0: a frames file's first bytes were damaged then)
        if info.st_size < position[0] or (known and stored.identity(path) != position[2]):
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
        if (at[0] == 0 or not at[2]) and not self.lines:  # (a damaged first frame is
            self.ident = stored.identity(path) or 0  # not read; nor known before 256 bytes)
        self.scanned = scanned
        self.name = layout.stream_name(path) or path.stem
        self.key = f"{function}/{layout.base(path)}"  # for event ids
        self.events = self._events(at[0], at[1])

    def _record(
        self, start: int, end: int, record: bytes, rows: list[framing.Row]
    ) -> list[LogEvent]:
        """The events of one record; none when it is damaged (that invocation only)."""
        self.scanned.read += end - start
        if start == 0:
            self.ident = stored.of(record)
        if self.lines:
            if self.scanned.needle is not None and self.scanned.needle not in record:
                return []  # another request id's
            try:
                invocation = stored.line_invocation(self.function, orjson.loads(record))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                return []
            return self._parse(start, [invocation])
        wanted = self.scanned.request_id
        if wanted is not None and all(row.request_id != wanted for row in rows):
            return []  # as a line of another request id's: not formatted
        return self._parse(start, [stored.row_invocation(self.function, row) for row in rows])

    def _events(self, offset: int, skip: int) -> Iterator[LogEvent]:
        for start, end, record, rows in stored.records(self.path, offset):
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
        for start, end, record, rows in stored.records(self.path, offset):
            found += self._record(start, end, record, rows)[skip:]
            skip = 0
            self.after = (end, 0, self.ident)
        return found

    def _parse(self, start: int, invocations: list[stored.Invocation]) -> list[LogEvent]:
        where = f"{self.key}:{self.ident:012x}:{start}"  # the identity: unique across reuse
        found: list[LogEvent] = []
        for spec, result, ended, produced in invocations:
            rid = result.request_id
            try:
                events = invocation_events(spec, result, ended, produced)
            except (KeyError, TypeError, ValueError, OverflowError, AttributeError):
                continue  # what no server stores (damage): that invocation only
            found += (
                LogEvent(self.function, self.name, ms, message, rid, ended, f"{where}:{i}")
                for i, (ms, message) in enumerate(events, len(found))
            )
        return found

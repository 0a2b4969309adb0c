"""Reading stored logs: every event since a time, by function, filter and request id,
and following the files for new ones. Reads the state folder only, so it works with or
without a running server (the server appends whole lines with O_APPEND)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from skylift.observe import logs_layout as layout
from skylift.observe.log_filter import Filter


@dataclass(frozen=True)
class LogEvent:
    function: str
    stream: str
    timestamp: int
    message: str
    request_id: str
    ingestion_time: int

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


class Reader:
    """Reads new lines from a log folder; `poll` returns what appeared since the last."""

    def __init__(self, directory: Path, query: Query) -> None:
        self.directory = directory
        self.query = query
        self._offsets: dict[Path, int] = {}

    def poll(self) -> list[LogEvent]:
        """Matching events written since the last poll, oldest first."""
        found: list[LogEvent] = []
        for function, path in layout.log_files(self.directory, self.query.function):
            found.extend(self._read(function, path))
        for path in [p for p in self._offsets if not p.exists()]:
            del self._offsets[path]  # removed by retention
        # Stable: events with the same time keep their order within a stream.
        found.sort(key=lambda e: e.timestamp)
        return found

    def _read(self, function: str, path: Path) -> Iterator[LogEvent]:
        offset = self._offsets.get(path, 0)
        try:
            with path.open("rb") as file:
                file.seek(offset)
                data = file.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # a line being written now is read next time
        self._offsets[path] = offset + end
        stream = layout.stream_name(path) or path.stem
        for line in data[:end].splitlines():
            try:
                raw = orjson.loads(line)
                event = LogEvent(
                    function,
                    stream,
                    int(raw["timestamp"]),
                    str(raw["message"]),
                    str(raw.get("requestId", "")),
                    int(raw.get("ingestionTime", raw["timestamp"])),
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a damaged line costs that line only
            if self.query.matches(event):
                yield event

"""Reading stored logs: every event since a time, by function, filter and request id,
and following the files for new ones. Reads the state folder only, so it works with or
without a running server (the server appends whole lines with O_APPEND)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from skylift.engine.instance import InvocationResult
from skylift.log_config import LogConfig
from skylift.observe import logs_layout as layout
from skylift.observe.log_filter import Filter
from skylift.observe.records import invocation_events
from skylift.spec import FunctionSpec


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

    def tail(self, keep: int) -> None:
        """Start at most `keep` bytes before the end of each file, not at its beginning:
        a viewer wants the latest lines, not a read of every stored megabyte. A line
        cut by the start is skipped whole."""
        for _, path in layout.log_files(self.directory, self.query.function):
            try:
                with path.open("rb") as file:
                    start = max(0, file.seek(0, 2) - keep)
                    if start > 0:
                        file.seek(start - 1)
                        newline = file.read(keep + 1).find(b"\n")
                        start = start + newline if newline >= 0 else start + keep
            except FileNotFoundError:
                continue
            self._offsets[path] = start

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
                spec, result, ended = _invocation(function, raw)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                continue  # a damaged line costs that invocation only
            for ms, message in invocation_events(spec, result, ended):
                event = LogEvent(function, stream, ms, message, result.request_id, ended)
                if self.query.matches(event):
                    yield event


def _invocation(function: str, raw: dict[str, Any]) -> tuple[FunctionSpec, InvocationResult, int]:
    """What `logs_store.stored` kept of an invocation, as records.py takes it."""
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

"""Every invocation's event and result, kept with its stored log for `skylift replay`.

The log store's frame for an invocation (`logs_frame.py`) carries its event and, on
success, its result, so they live and go with the log (the same files, the same
retention). An event or result over `LIMIT` bytes is kept as its SHA-256 digest and size
only: such an invocation cannot be replayed, and replay says so. (The JSON lines of state
folders written before frames are read too.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from skylift.observe import logs_frame as framing
from skylift.observe import logs_layout as layout

LIMIT = framing.LIMIT  # bytes of event (or result) kept whole


def _kept(raw: dict[str, Any], name: str) -> str | None:
    """A stored event or result as JSON text, from either of its two forms."""
    if name in raw:
        return orjson.dumps(raw[name]).decode()
    text = raw.get(name + "Text")
    return text if isinstance(text, str) else None


@dataclass(frozen=True)
class Invocation:
    """A past invocation as kept: what it ran on and what it answered."""

    function: str
    request_id: str
    end_ms: int
    event: str | None  # None: not kept whole (see event_digest)
    event_digest: dict[str, Any] | None
    result: str | None  # the answer on success, the error payload on failure
    error: bool
    result_digest: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "requestId": self.request_id,
            "end": self.end_ms,
            "event": self.event,
            "eventDigest": self.event_digest,
            "result": self.result,
            "error": self.error,
            "resultDigest": self.result_digest,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Invocation:
        return cls(
            function=str(raw["function"]),
            request_id=str(raw["requestId"]),
            end_ms=int(raw["end"]),
            event=raw.get("event"),
            event_digest=raw.get("eventDigest"),
            result=raw.get("result"),
            error=bool(raw.get("error")),
            result_digest=raw.get("resultDigest"),
        )

    def unreplayable(self) -> str | None:
        """Why this invocation cannot be replayed, or None."""
        if self.event is not None:
            return None
        if self.event_digest is not None:
            size = self.event_digest.get("size", "?")
            why = (
                f"was over the {LIMIT // 1024} KiB kept whole"
                if not isinstance(size, int) or size > LIMIT
                else "was not JSON"
            )
            return (
                f"its event ({size} bytes) {why}; only its SHA-256 digest "
                f"({self.event_digest.get('sha256')}) was kept"
            )
        return (
            "no event was kept with it (it was invoked without one, or ran before skylift "
            "kept events with its log)"
        )


def side(text: str | None, failed: bool, digest: dict[str, Any] | None = None) -> dict[str, Any]:
    """One result as replay shows it: `status`, `payload` (parsed), `error` on failure."""
    payload: Any = None
    if text is not None:
        try:
            payload = orjson.loads(text)
        except orjson.JSONDecodeError:
            payload = text
    shown: dict[str, Any] = {"status": "error" if failed else "success", "payload": payload}
    if failed and isinstance(payload, dict):
        shown["error"] = f"{payload.get('errorType', 'Unhandled')}: {payload.get('errorMessage')}"
    if text is None and digest is not None:
        shown["payload_digest"] = digest
    return shown


def find(state_dir: Path, request_id: str) -> Invocation | None:
    """The invocation with this request id in the stored logs (its last attempt), or None."""
    found: Invocation | None = None
    for candidate in _candidates(layout.root(state_dir), request_id):
        if found is None or candidate.end_ms >= found.end_ms:
            found = candidate
    return found


def _candidates(directory: Path, request_id: str) -> Iterator[Invocation]:
    for function, path in layout.log_files(directory):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # removed by retention meanwhile
            continue
        if layout.in_lines(path):
            yield from _in_lines(function, data, request_id)
        elif request_id.encode() in data:
            for _, _, _, rows in framing.split(data):
                for row in rows:
                    if row.request_id == request_id:
                        yield _of_row(function, row)


def _of_row(function: str, row: framing.Row) -> Invocation:
    event, event_digest = row.event, _digest(row.event_digest)
    text = None
    if event is not None:
        try:
            orjson.loads(event)
            text = event.decode()
        except (orjson.JSONDecodeError, UnicodeDecodeError):  # not replayable: its digest
            event_digest = {"sha256": hashlib.sha256(event).hexdigest(), "size": len(event)}
    return Invocation(
        function=function,
        request_id=row.request_id,
        end_ms=row.end_ms,
        event=text,
        event_digest=event_digest,
        result=None if row.body is None else row.body.decode("utf-8", "replace"),
        error=row.failed,
        result_digest=_digest(row.body_digest),
    )


def _digest(found: tuple[str, int] | None) -> dict[str, Any] | None:
    return None if found is None else {"sha256": found[0], "size": found[1]}


def _in_lines(function: str, data: bytes, request_id: str) -> Iterator[Invocation]:
    """The invocations of a JSON-lines file (before frames) with this request id."""
    needle = orjson.dumps(request_id)
    if needle not in data:
        return
    for text in data.splitlines():
        if needle not in text:
            continue
        try:
            raw = orjson.loads(text)
            if raw.get("requestId") != request_id:
                continue
            yield Invocation(
                function=function,
                request_id=request_id,
                end_ms=int(raw["end"]),
                # A digest, the server's, outranks an event a result's bytes put in the
                # line: only a kept event is replayed.
                event=None if "eventDigest" in raw else _kept(raw, "event"),
                event_digest=raw.get("eventDigest"),
                result=raw["error"] if raw.get("error") is not None else _kept(raw, "result"),
                error=raw.get("error") is not None,
                result_digest=raw.get("resultDigest"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            continue

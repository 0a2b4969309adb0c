"""Every invocation's event and result, kept in its stored log line for `skylift replay`.

The log store's line for an invocation (`logs_line.stored`) carries its event and, on
success, its result, so they live and go with the log (the same files, the same
retention). An event or result over `LIMIT` bytes is kept as its SHA-256 digest and size
only: such an invocation cannot be replayed, and replay says so. The digest of a large
body is computed by the store's writer thread, not on the request path (hashing 6 MB
takes tens of milliseconds; hashlib releases the GIL while it does).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from skylift.engine.instance import InvocationResult
from skylift.observe import logs_layout as layout

LIMIT = 256 * 1024  # bytes of event (or result) kept whole


class Deferred:
    """A stored line whose digests the writer thread computes (`render`)."""

    __slots__ = ("fields", "large")

    def __init__(self, fields: dict[str, Any], large: dict[str, bytes]) -> None:
        self.fields = fields
        self.large = large  # field name -> the body to keep as a digest

    @property
    def size(self) -> int:
        """About the memory it holds until written."""
        return sum(len(body) for body in self.large.values())

    def render(self) -> bytes:
        for name, body in self.large.items():
            self.fields[name] = {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
        return orjson.dumps(self.fields, option=orjson.OPT_APPEND_NEWLINE)


def line(fields: dict[str, Any], result: InvocationResult) -> bytes | Deferred:
    """`fields` (the log's) with the invocation's result and event added, as one line.

    Events and results are JSON (the invoker's contract; the Invoke API refuses any
    other), so they go into the line as they are (`orjson.Fragment`: no parsing, no
    escaping, ~0.4 µs for 1 KB against ~2 µs as a string). A result holding a line break
    would split the line, and an empty one (a custom runtime's) would break it: it goes in
    as a string instead (`resultText`). An event holding one (pretty-printed JSON) is
    checked and kept with its line breaks as spaces (whitespace, in JSON); one that is not
    JSON as its digest.

    The result is the worker's bytes, unparsed: a handler that replaces its runtime's
    serialiser can make them anything but a line break. So they come first (after `id`,
    the request id again, which makes a file's first bytes its own: logs_read.identity),
    the event (which the server parsed or made) next, and `fields` last: injected keys
    (`1,"requestId":"x"`) are overridden by the server's, as a JSON reader keeps the
    last of two equal keys (orjson and json alike); at worst the line is not JSON. An
    event is always `event` or `eventDigest`, never `eventText`, so a result cannot put
    one in that the reader would take instead.
    """
    bodies: dict[str, Any] = {"id": fields["requestId"]} if "requestId" in fields else {}
    large: dict[str, bytes] = {}
    for name, body in (
        ("result", result.payload if result.error is None else None),
        ("event", result.event),
    ):
        if body is None:
            continue
        if len(body) > LIMIT:
            large[name + "Digest"] = body
        elif body and b"\n" not in body and b"\r" not in body:
            bodies[name] = orjson.Fragment(body)
        elif name == "event":
            try:
                orjson.loads(body)  # JSON: a raw CR or LF in it is whitespace between tokens
            except orjson.JSONDecodeError:  # not JSON: kept as a digest, never altered
                large[name + "Digest"] = body
            else:
                bodies[name] = orjson.Fragment(body.replace(b"\r", b" ").replace(b"\n", b" "))
        else:
            try:
                bodies[name + "Text"] = body.decode()
            except UnicodeDecodeError:  # not JSON then: kept as a digest, never altered
                large[name + "Digest"] = body
    bodies.update(fields)
    if large:
        return Deferred(bodies, large)
    return orjson.dumps(bodies, option=orjson.OPT_APPEND_NEWLINE)


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
            return (
                f"its event ({size} bytes) was over the {LIMIT // 1024} KiB kept whole; only "
                f"its SHA-256 digest ({self.event_digest.get('sha256')}) was kept"
            )
        return "its event was not kept (it ran before skylift kept events with its log)"


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
    needle = orjson.dumps(request_id)
    for function, path in layout.log_files(directory):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # removed by retention meanwhile
            continue
        if needle not in data:
            continue
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
                    # A digest, the server's, outranks an event a result's bytes put
                    # in the line (`line`): only a kept event is replayed.
                    event=None if "eventDigest" in raw else _kept(raw, "event"),
                    event_digest=raw.get("eventDigest"),
                    result=raw["error"] if raw.get("error") is not None else _kept(raw, "result"),
                    error=raw.get("error") is not None,
                    result_digest=raw.get("resultDigest"),
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                continue

"""The stored log's binary form: each batch's invocations of one stream as one frame.

`skylift up` writes a stream's invocations of a batch (`observe/intake.py`) as one frame
(`logs_store.py`); `logs_read.py` and `history.py` read them back (and the JSON lines of
state folders written before, one invocation a line).

    frame  = MAGIC, payload length (u32), its complement (u32), the rows
    row    = ROW: end (epoch ms), duration and init duration (ms), memory used and set
             (MB), flags, and the lengths of: the request id (UTF-8), the output, the body
             (the result; on failure the error payload) and the event; then those four

All little-endian. Nothing is formatted or escaped when written: the body and event go
in as the invoker holds them, so storing an invocation costs its server a `struct` pack
and a copy (about half of a JSON line's work), and the reader formats CloudWatch's events
(`records.py`). Every field's length is in its row's head, so no byte of a body or an
event can be taken for a field. A body or event over `LIMIT` bytes is kept as its
SHA-256 digest and size (`DIGEST`) only.

Reading is safe on any bytes: a frame is taken only whole and when its rows fill it
exactly; a damaged one (a write cut short by a full disk, then the next frame after it)
is skipped by looking for the next `MAGIC` whose frame is whole. A follower reading the
end of a file as it grows sees a frame being written as not yet there.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"SKLF"
HEADER = struct.Struct("<4sII")  # magic, payload length, its complement (~length)
ROW = struct.Struct("<qddIIBIIII")
DIGEST = struct.Struct("<32sQ")  # SHA-256, size
LIMIT = 256 * 1024  # bytes of an event (or result) kept whole
MASK = 0xFFFFFFFF
# Row flags.
FAILED = 1  # the body is the error payload
INIT = 2  # a cold start: the init duration is set
JSON_FORMAT = 4  # the function's log format is JSON (else Text)
BODY_DIGEST = 8  # the body is a DIGEST
EVENT_DIGEST = 16  # the event is a DIGEST
NO_EVENT = 32  # no event was kept (an invocation made without one)

FIRST_READ = 2048  # bytes read of a file at first
MAX_READ = 1024 * 1024  # reads double up to this (or to what a frame needs)


@dataclass(frozen=True, slots=True)
class Row:
    """One stored invocation."""

    request_id: str
    end_ms: int
    duration_ms: float
    init_ms: float | None
    max_memory_mb: int
    memory_mb: int
    json_format: bool
    failed: bool
    output: bytes
    body: bytes | None  # None: kept as `body_digest`
    body_digest: tuple[str, int] | None  # (SHA-256 in hex, size)
    event: bytes | None  # None: kept as `event_digest`, or not kept at all
    event_digest: tuple[str, int] | None


def header(size: int) -> bytes:
    """A frame's header, for a payload of `size` bytes."""
    return HEADER.pack(MAGIC, size, size ^ MASK)


def rows(frame: bytes) -> list[Row] | None:
    """The rows of one whole frame (its header included), or None if it is damaged."""
    size = len(frame)
    if size < HEADER.size:
        return None
    magic, length, check = HEADER.unpack_from(frame)
    if magic != MAGIC or check != length ^ MASK or HEADER.size + length != size:
        return None
    found: list[Row] = []
    at = HEADER.size
    unpack, head = ROW.unpack_from, ROW.size
    try:
        while at < size:
            end_ms, duration, init, used, memory, flags, n_id, n_out, n_body, n_event = unpack(
                frame, at
            )
            at += head
            if at + n_id + n_out + n_body + n_event > size:
                return None
            request_id = frame[at : at + n_id].decode()
            at += n_id
            output = frame[at : at + n_out]
            at += n_out
            body = frame[at : at + n_body]
            at += n_body
            event = frame[at : at + n_event]
            at += n_event
            body_digest = _digest(body) if flags & BODY_DIGEST else None
            event_digest = _digest(event) if flags & EVENT_DIGEST else None
            found.append(
                Row(
                    request_id,
                    end_ms,
                    duration,
                    init if flags & INIT else None,
                    used,
                    memory,
                    bool(flags & JSON_FORMAT),
                    bool(flags & FAILED),
                    output,
                    None if body_digest is not None else body,
                    body_digest,
                    None if event_digest is not None or flags & NO_EVENT else event,
                    event_digest,
                )
            )
    except (struct.error, UnicodeDecodeError, ValueError):
        return None
    return found


def _digest(field: bytes) -> tuple[str, int]:
    if len(field) != DIGEST.size:
        raise ValueError("a digest of the wrong size")
    sha, size = DIGEST.unpack(field)
    return sha.hex(), size


# A frame as read: where it starts and ends, its bytes, its rows.
Frame = tuple[int, int, bytes, list[Row]]


def split(data: bytes, begin: int = 0) -> Iterator[Frame]:
    """Each whole frame in `data` from `begin`, damaged ones skipped; it stops at the
    first frame not whole yet."""
    while True:
        found = _next(data, begin)
        if found is None:
            return
        yield found
        begin = found[1]


def _next(data: bytes, begin: int) -> Frame | None:
    """The next whole, undamaged frame from `begin`, or None."""
    at = begin
    while len(data) - at >= HEADER.size:
        magic, length, check = HEADER.unpack_from(data, at)
        if magic == MAGIC and check == length ^ MASK:
            end = at + HEADER.size + length
            if end > len(data):
                return None  # being written (or cut short: told once more follows)
            frame = data[at:end]
            found = rows(frame)
            if found is not None:
                return at, end, frame, found
        following = data.find(MAGIC, at + 1)
        if following < 0:
            return None
        at = following
    return None


def frames(path: Path, offset: int) -> Iterator[Frame]:
    """Each whole frame of the file from `offset` (a frame's start), damaged ones
    skipped; one being written is read next time. The file is open only while read."""
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
        for start, end, frame, found in split(data):
            yield at + start, at + end, frame, found
            begin = end
        data = data[begin:]
        at += begin
        size = min(size * 2, MAX_READ)
        if len(data) >= HEADER.size:  # a frame larger than that: read it whole at once
            magic, length, check = HEADER.unpack_from(data)
            if magic == MAGIC and check == length ^ MASK:
                size = max(size, HEADER.size + length - len(data))

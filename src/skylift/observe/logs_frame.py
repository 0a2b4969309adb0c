"""The stored log's binary form: each batch's invocations of one stream as one frame.

`skylift up` writes a stream's invocations of a batch (`observe/intake.py`) as one frame
(`logs_store.py` packs the rows with `ROW`); `logs_records.py` reads them back for
`logs_read.py` and `history.py` (and the JSON lines of state folders written before,
one invocation a line).

    frame  = MAGIC, payload length (u32), its complement (u32), the rows (the
             payload), then the payload length again (u32) and END
    row    = ROW: end (epoch ms, i64), duration and init duration (ms, f64), memory used
             and set (MB, u32), flags (u8), and the lengths (u32) of: the request id
             (UTF-8), the output, the body (the result; on failure the error payload)
             and the event; then those four

All little-endian. Nothing is formatted or escaped when written: the body and event go
in as the invoker holds them, so storing an invocation costs its server a `struct` pack
and a copy (about half of a JSON line's work), and the reader formats CloudWatch's events
(`records.py`). Every part's length is in its row's head, so no byte of a body or an
event can be taken for a field. A result or event over `LIMIT` bytes is kept as its
SHA-256 digest and size (`DIGEST`) only; an error payload is kept whole.

Reading is safe on any bytes: a frame is taken only whole and when its rows fill it
exactly between its header and its trailer, and numbers no writer stores (a duration not
finite or over `LONGEST_MS`, an end past the year 9999) are read as 0. A frame not whole
is one being written, or the end of a file whose server died mid-write (the writer
truncates a write the disk cut short to its whole frames); damage from elsewhere is
skipped by looking for the next `MAGIC` whose frame is whole.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass

MAGIC = b"SKLF"
END = b"FLKS"
HEADER = struct.Struct("<4sII")  # magic, payload length, its complement (~length)
TRAILER = struct.Struct("<I4s")  # payload length, END: where a frame cut short is told
FRAMING = HEADER.size + TRAILER.size
ROW = struct.Struct("<qddIIBIIII")  # 49 bytes
DIGEST = struct.Struct("<32sQ")  # SHA-256, size
LIMIT = 256 * 1024  # bytes of an event (or result) kept whole
MASK = 0xFFFFFFFF
LAST_MS = 253_402_300_799_999  # the end of the year 9999, as CloudWatch's times go
LONGEST_MS = 1e11  # about three years: a duration read beyond it (or below 0) is damage
# Row flags.
FAILED = 1  # the body is the error payload
INIT = 2  # a cold start: the init duration is set
JSON_FORMAT = 4  # the function's log format is JSON (else Text)
BODY_DIGEST = 8  # the body is a DIGEST
EVENT_DIGEST = 16  # the event is a DIGEST
NO_EVENT = 32  # no event was kept (an invocation made without one)


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


# Writing (the log store).


def framed(payload: bytes) -> list[bytes]:
    """A frame holding `payload` (rows), as the pieces to write."""
    size = len(payload)
    return [HEADER.pack(MAGIC, size, size ^ MASK), payload, TRAILER.pack(size, END)]


class Large:
    """A body or event to keep as its digest, which the log store's writer thread
    computes (hashing 6 MB takes tens of milliseconds; hashlib lets the GIL go)."""

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body

    def digest(self) -> bytes:
        return DIGEST.pack(hashlib.sha256(self.body).digest(), len(self.body))


def uncommon_row(
    numbers: tuple[object, ...], rid: bytes, output: bytes, body: bytes, event: bytes
) -> tuple[bytes | Large, ...]:
    """The pieces of a row outside the store's common case: `numbers` (end, duration,
    init, memory used and set, flags) with a number out of its field's range (clamped),
    or a body or event over `LIMIT` (kept as a `Large`; an error payload whole, as the
    log shows it)."""
    flags = numbers[5]
    assert isinstance(flags, int)
    kept_body: bytes | Large = body
    kept_event: bytes | Large = event
    if len(body) > LIMIT and not flags & FAILED:
        kept_body = Large(body)
        flags |= BODY_DIGEST
    if len(event) > LIMIT:
        kept_event = Large(event)
        flags |= EVENT_DIGEST
    end, duration, init, used, memory = numbers[:5]
    return (
        ROW.pack(
            _whole(end, LAST_MS),
            _real(duration),
            _real(init),
            _whole(used),
            _whole(memory),
            flags,
            len(rid),
            len(output),
            len(body) if kept_body is body else DIGEST.size,
            len(event) if kept_event is event else DIGEST.size,
        ),
        rid,
        output,
        kept_body,
        kept_event,
    )


def _real(value: object) -> float:
    try:
        found = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return found if math.isfinite(found) else 0.0


def _whole(value: object, top: int = MASK) -> int:
    try:
        return min(max(int(value), 0), top)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError, OverflowError):
        return 0


# Reading.


def rows(data: bytes, start: int = 0, end: int | None = None) -> list[Row] | None:
    """The rows of the frame at `data[start:end]` (its header and trailer included), or
    None if it is not one whole, undamaged frame. Nothing of `data` is copied but the
    rows' parts."""
    end = len(data) if end is None else end
    if whole_frame(data, start) != end - start:
        return None
    length = end - start - FRAMING
    if TRAILER.unpack_from(data, end - TRAILER.size) != (length, END):
        return None  # cut short, and the claimed length reaches into what came after
    found: list[Row] = []
    at = start + HEADER.size
    end -= TRAILER.size
    unpack, head = ROW.unpack_from, ROW.size
    try:
        while at < end:
            end_ms, duration, init, used, memory, flags, n_id, n_out, n_body, n_event = unpack(
                data, at
            )
            at += head
            if at + n_id + n_out + n_body + n_event > end:
                return None
            request_id = data[at : at + n_id].decode()
            at += n_id
            output = data[at : at + n_out]
            at += n_out
            body = data[at : at + n_body]
            at += n_body
            event = data[at : at + n_event]
            at += n_event
            body_digest = _digest(body) if flags & BODY_DIGEST else None
            event_digest = _digest(event) if flags & EVENT_DIGEST else None
            found.append(
                Row(
                    request_id,
                    end_ms if 0 <= end_ms <= LAST_MS else 0,
                    duration if 0 <= duration <= LONGEST_MS else 0.0,
                    (init if 0 <= init <= LONGEST_MS else 0.0) if flags & INIT else None,
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
        size = whole_frame(data, at)
        if size is not None:
            end = at + size
            if end > len(data):
                return None  # being written (the writer leaves no frame cut short)
            found = rows(data, at, end)
            if found is not None:
                return at, end, data[at:end], found
        following = data.find(MAGIC, at + 1)
        if following < 0:
            return None
        at = following
    return None


def whole_frame(data: bytes, at: int = 0) -> int | None:
    """The size of the frame starting at `data[at]`, if its header is there and checks."""
    if len(data) - at < HEADER.size:
        return None
    magic, length, check = HEADER.unpack_from(data, at)
    if magic != MAGIC or check != length ^ MASK:
        return None
    return FRAMING + int(length)

"""One invocation's stored line: what its log events are made of when read (records.py),
and its event and result for `skylift replay` (history.py). `stored` formats any
invocation; `plain`, the common case (a success with a small single-line event and
result), gives the same bytes as pieces the log store joins, with no copy made here.
"""

from __future__ import annotations

import orjson

from skylift.engine.instance import InvocationResult
from skylift.observe import history
from skylift.spec import FunctionSpec

# A stored line as its pieces, written one after the other (`plain`).
Pieces = tuple[bytes, ...]


def stored(spec: FunctionSpec, result: InvocationResult, ended_ns: int) -> bytes | history.Deferred:
    """One invocation as stored: what its log events are made of when read (records.py),
    and its event and result for `skylift replay` (history.py).

    Storing the invocation, not its formatted events, keeps the server's share of the
    work to one small serialisation; the reader (`skylift logs`) does the formatting.
    """
    ended = ended_ns // 1_000_000
    return history.line(
        {
            "requestId": result.request_id,
            "end": ended,
            "durationMs": result.duration_ms,
            "initMs": result.init_ms,
            "maxMemoryMB": result.max_memory_mb,
            "memoryMB": spec.memory,
            "format": spec.log_config.format,
            "output": result.logs.decode("utf-8", "replace"),
            "error": None if result.error is None else result.payload.decode("utf-8", "replace"),
        },
        result,
    )


# `stored`'s line for a successful invocation, field for field: its request id (as `id`),
# the result and the event as they are, between constants, then a tail formatted in one
# call (`history.line` says why the result comes first and the server's fields last).
# The tail's fields after the duration are the same for most lines of a function (no
# init, no output): that part is formatted once per (max memory used, memory, log
# format) and kept.
_START = b'{"id":%s,"result":'
_EVENT = b',"event":'
_TAIL = b',"requestId":%s,"end":%d,"durationMs":%s%s}\n'
_REST = b',"initMs":%s,"maxMemoryMB":%d,"memoryMB":%d,"format":%s,"output":%s,"error":null'
_RESTS: dict[tuple[int, int, str], bytes] = {}
MAX_RESTS = 4096  # kept rests (a few per function); past it they are formatted anew
_LIMIT = history.LIMIT


def plain(spec: FunctionSpec, result: InvocationResult, ended_ns: int) -> Pieces | None:
    """The common case of `stored` (a success with a small single-line event and result)
    as the pieces of its line, byte for byte the same once joined; None for any other.

    No copy of the event or the result is made here (the writer's join makes the one), and
    a line break is looked for with an int (`10 in event`: memchr, ~5x faster than
    `b"\\n" in event`, which dominated this function's time).
    """
    event, payload, used = result.event, result.payload, result.max_memory_mb
    if (
        result.error is not None
        or not event
        or not payload
        or len(event) > _LIMIT
        or len(payload) > _LIMIT
        or 10 in event  # \n
        or 13 in event  # \r
        or 10 in payload
        or 13 in payload
        or type(used) is not int  # %d would drop a fraction
    ):
        return None
    init, logs = result.init_ms, result.logs
    if init is None and not logs:
        key = (used, spec.memory, spec.log_config.format)
        rest = _RESTS.get(key)
        if rest is None:
            rest = _rest(spec, result)
            if len(_RESTS) < MAX_RESTS:
                _RESTS[key] = rest
    else:
        rest = _rest(spec, result)
    dumps = orjson.dumps
    ended = ended_ns // 1_000_000
    request_id = dumps(result.request_id)
    tail = _TAIL % (request_id, ended, dumps(result.duration_ms), rest)
    return (_START % request_id, payload, _EVENT, event, tail)


def _rest(spec: FunctionSpec, result: InvocationResult) -> bytes:
    """The tail's part after the duration, up to its end."""
    init, logs = result.init_ms, result.logs
    return _REST % (
        b"null" if init is None else orjson.dumps(init),
        result.max_memory_mb,
        spec.memory,
        orjson.dumps(spec.log_config.format),
        orjson.dumps(logs.decode("utf-8", "replace")) if logs else b'""',
    )


JOINERS = len(_EVENT)  # and the start, its own piece


def line_size(line: bytes | history.Deferred) -> int:
    """The bytes a pending line holds (a large body's, for one kept as a digest)."""
    return len(line) if isinstance(line, bytes) else line.size

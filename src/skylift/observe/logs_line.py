"""Stored lines: what invocations' log events are made of when read (records.py), with
their events and results for `skylift replay` (history.py). `stored` makes one line of
any invocation; `columns` one line of many plain ones of one stream (the common case: a
success with a small single-line event and result), which `history.invocations` reads
back as `stored`'s lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter, floordiv, itemgetter
from typing import TYPE_CHECKING

import orjson

from skylift.engine.instance import InvocationResult
from skylift.observe import history
from skylift.spec import FunctionSpec

if TYPE_CHECKING:
    from skylift.observe.intake import Observed


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


# A stream's plain invocations of a batch, as one line (`columns`): each field a column,
# one element per invocation in the order they ended; `history.invocations` reads it back
# as `stored`'s lines. The results and events go in as they are (joined with commas, no
# copy but the join), the other columns in one `orjson.dumps` each: no Python step per
# invocation but reading its fields (one line each was ~1.2 µs an invocation, most of it
# formatting; measured in docs/observability.md, "seventh look").
RESULT, ENDED = itemgetter(1), itemgetter(3)
_EVENT, _PAYLOAD, _ERROR = attrgetter("event"), attrgetter("payload"), attrgetter("error")
_ID, _DURATION = attrgetter("request_id"), attrgetter("duration_ms")
_USED, _INIT, _LOGS = attrgetter("max_memory_mb"), attrgetter("init_ms"), attrgetter("logs")
_LIMIT = history.LIMIT
# At most this many invocations, and (but for one alone) bytes of events and results, in
# a line of columns: a viewer starting at a file's last 256 KiB (the dashboard) finds
# whole lines there, and a reader holds one line at a time.
MAX_RUN = 64
MAX_LINE = 128 * 1024


def plain(result: InvocationResult) -> bool:
    """Whether `columns` can take it: a success whose event and result are kept whole
    and hold no line break."""
    event, payload = result.event, result.payload
    return not (
        result.error is not None
        or event is None
        or len(event) > _LIMIT
        or len(payload) > _LIMIT
        or 10 in event  # \n (an int: memchr, ~5x faster than b"\n" in event)
        or 13 in event  # \r
        or 10 in payload
        or 13 in payload
    )


def columns(spec: FunctionSpec, run: Sequence[Observed]) -> bytes | None:
    """`run` (one stream's invocations, in the order they ended) as one line; None if
    any of them is not `plain`.

    The results come first, the events next and the server's columns last: a result is
    the worker's bytes, unparsed, and a key it injects (`1],"requestIds":["x"`) is
    overridden by the server's, as in `history.line`. (It can replace the results of
    its own stream's batch, `1],"results":[2`: the instance is the one that answered
    them.)
    """
    results = list(map(RESULT, run))
    if any(map(_ERROR, results)):
        return None
    payloads = list(map(_PAYLOAD, results))
    events = list(map(_EVENT, results))
    try:
        joined_events = b",".join(events)
    except TypeError:  # an invocation without its event
        return None
    joined = b",".join(payloads)
    # Each pass over the joined bytes is one memchr, not one call an invocation.
    if (
        10 in joined_events  # \n
        or 13 in joined_events  # \r
        or 10 in joined
        or 13 in joined
        or (len(joined_events) > _LIMIT and max(map(len, events)) > _LIMIT)
        or (len(joined) > _LIMIT and max(map(len, payloads)) > _LIMIT)
    ):
        return None
    if len(run) > 1 and len(joined_events) + len(joined) > MAX_LINE:
        half = len(run) // 2  # large bodies: two lines
        first, second = columns(spec, run[:half]), columns(spec, run[half:])
        assert first is not None and second is not None  # plain, as all of them are
        return first + second
    dumps = orjson.dumps
    pieces = [
        b'{"results":[',
        joined,
        b'],"events":[',
        joined_events,
        b'],"requestIds":',
        dumps(list(map(_ID, results))),
        b',"ends":',
        dumps(list(map(floordiv, map(ENDED, run), repeat(1_000_000)))),
        b',"durationsMs":',
        dumps(list(map(_DURATION, results))),
        b',"maxMemoryMB":',
        dumps(list(map(_USED, results))),
    ]
    inits = list(map(_INIT, results))
    if inits.count(None) < len(inits):  # cold starts among them
        pieces += (b',"initsMs":', dumps(inits))
    if any(map(_LOGS, results)):  # some printed
        outputs = [out.decode("utf-8", "replace") for out in map(_LOGS, results)]
        pieces += (b',"outputs":', dumps(outputs))
    pieces.append(_TAIL % (spec.memory, dumps(spec.log_config.format)))
    return b"".join(pieces)


_TAIL = b',"memoryMB":%d,"format":%s}\n'


def lines(spec: FunctionSpec, run: Sequence[Observed]) -> list[bytes | history.Deferred]:
    """`run` (one stream's invocations, in order) as stored lines, in order: a line for
    each `MAX_RUN` of them when they are all `plain` (the common case), else one for each
    stretch of plain ones and one for each other invocation."""
    if len(run) > MAX_RUN:
        return [
            line
            for start in range(0, len(run), MAX_RUN)
            for line in lines(spec, run[start : start + MAX_RUN])
        ]
    line = columns(spec, run)
    if line is not None:
        return [line]
    found: list[bytes | history.Deferred] = []
    stretch: list[Observed] = []
    for observed in run:
        result = observed[1]
        if plain(result):
            stretch.append(observed)
            continue
        if stretch:
            found.append(columns(spec, stretch))  # type: ignore[arg-type]
            stretch = []
        found.append(stored(spec, result, observed[3]))
    if stretch:
        found.append(columns(spec, stretch))  # type: ignore[arg-type]
    return found


def line_size(line: bytes | history.Deferred) -> int:
    """The bytes a pending line holds (a large body's, for one kept as a digest)."""
    return len(line) if isinstance(line, bytes) else line.size

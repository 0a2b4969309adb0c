"""The invoker observer of `skylift up`'s observing: what it keeps of each finished
invocation until the batch is handed over (`observe/intake.py`).

A collector is called with every result (`collector(spec, result, instance)`) and, per
invocation:

- packs its stored-log row (`logs_frame.ROW` and its parts) into the stream's pieces,
  which `open_stream(spec, instance)` gives once per instance and batch with the row
  flags of its function (the log store's batch: `LogStore.open`); a row outside the
  common case (a body or event over `logs_frame.LIMIT`, a number out of its field's
  range) is made by `slow_row` (`logs_frame.uncommon_row`);
- keeps it whole, as `Observed`, when it is notable: a failure, a cold start (an init
  duration), an instance's first invocation of the batch (its `ColdStart` event is
  decided then), an invocation without an instance, or an output holding an EMF
  document; the Python consumers (metrics, error rates, events, EMF) take those;
- tallies it otherwise: per function and trigger, how many, their durations' histogram
  buckets (`bounds`, in seconds, as `histogram.Histogram` counts them) and their sum (ms).

It calls `arm()` when a batch gets its first invocation and `full()` when it holds
`max_batch` invocations or `max_bytes` of results and events. `take()` hands over the
batch: None when empty, else (notable, tallies, rows, size): rows and their bytes as the
log store counts them.

Two implementations, one behaviour (tests/observe/test_collect.py runs both on the same
invocations and compares every byte and count): `_collect.c`, built when skylift is
installed with a C compiler, and `PyCollector` here, used without one or with
`SKYLIFT_PURE_PYTHON=1`. The C one does its work as each invocation ends (about a tenth
of the server's CPU the Python one takes for it, which it does per batch: a Python step
per invocation costs about three times as much on the request path as in a batch).
"""

from __future__ import annotations

import functools
import logging
import operator
import os
import struct
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from skylift.engine.instance import InvocationResult
from skylift.observe import logs_frame as frame
from skylift.observe.histogram import Histogram
from skylift.observe.logs_frame import FAILED, INIT, NO_EVENT
from skylift.spec import FunctionSpec

# One finished invocation: its function, result, the instance that ran it (its log
# stream), and when it ended (epoch nanoseconds).
Observed = tuple[FunctionSpec, InvocationResult, object, int]
# Common invocations of one function and trigger: how many, per duration bucket, and the
# sum of their durations in milliseconds.
Tally = tuple[FunctionSpec, str, int, list[int], float]
Taken = tuple[list[Observed], list[Tally], int, int]
Pieces = list[bytes | bytearray | frame.Large]
OpenStream = Callable[[FunctionSpec, object], tuple[Pieces, int]]
SlowRow = Callable[[tuple[object, ...], bytes, bytes, bytes, bytes], Sequence[object]]
EMF_MARK = b'"_aws"'  # in the output of an invocation that printed an EMF document

logger = logging.getLogger("skylift.observe")


class Collector(Protocol):
    @property
    def pending(self) -> int: ...

    def __call__(
        self,
        spec: FunctionSpec,
        result: InvocationResult,
        instance: object = None,
        ended_ns: int | None = None,
    ) -> None: ...

    def take(self) -> Taken | None: ...


def make(
    open_stream: OpenStream | None,
    arm: Callable[[], None],
    full: Callable[[], None],
    bounds: Sequence[float],
    *,
    max_batch: int,
    max_bytes: int,
    pure: bool | None = None,
) -> Collector:
    """The C collector if it was built (and `pure` is not set, nor SKYLIFT_PURE_PYTHON),
    else the Python one."""
    if pure is None:
        pure = os.environ.get("SKYLIFT_PURE_PYTHON", "") not in ("", "0")
    args = (open_stream, frame.uncommon_row, arm, full, tuple(bounds), EMF_MARK)
    if not pure:
        try:
            from skylift.observe._collect import Collector as Compiled
        except ImportError:
            pass
        else:
            compiled: Collector = Compiled(*args, max_batch, max_bytes, frame.LIMIT)
            return compiled
    return PyCollector(*args, max_batch, max_bytes, frame.LIMIT)


def compiled() -> bool:
    """Whether the C collector was built with this install."""
    try:
        from skylift.observe import _collect  # noqa: F401
    except ImportError:
        return False
    return True


class PyCollector:
    """The collector in Python: invocations appended as they end, the work done per
    batch in `take` (the same rows, notables and tallies as the C one)."""

    def __init__(
        self,
        open_stream: OpenStream | None,
        slow_row: SlowRow,
        arm: Callable[[], None],
        full: Callable[[], None],
        bounds: tuple[float, ...],
        mark: bytes,
        max_batch: int,
        max_bytes: int,
        limit: int,
    ) -> None:
        self.open_stream = open_stream
        self.slow_row = slow_row
        self.arm, self.full = arm, full
        self.bounds, self.mark = bounds, mark
        self.max_batch, self.max_bytes, self.limit = max_batch, max_bytes, limit
        self._batch: list[Observed] = []
        self._bytes = 0

    @property
    def pending(self) -> int:
        return len(self._batch)

    def __call__(
        self,
        spec: FunctionSpec,
        result: InvocationResult,
        instance: object = None,
        ended_ns: int | None = None,
    ) -> None:
        batch = self._batch
        batch.append((spec, result, instance, time.time_ns() if ended_ns is None else ended_ns))
        event = result.event
        self._bytes += len(result.payload) + (len(event) if event is not None else 0)
        if len(batch) >= self.max_batch or self._bytes >= self.max_bytes:
            self.full()
        elif len(batch) == 1:
            self.arm()

    def take(self) -> Taken | None:
        batch, self._batch, self._bytes = self._batch, [], 0
        if not batch:
            return None
        open_stream, mark, limit, pack = self.open_stream, self.mark, self.limit, frame.ROW.pack
        # id of the instance (or of the spec, without one) -> (spec, pieces, flags, memory)
        entries: dict[int, tuple[FunctionSpec, Pieces | None, int, int]] = {}
        notable: list[Observed] = []
        durations: dict[tuple[int, str], tuple[FunctionSpec, str, list[float]]] = {}
        rows = size = 0
        for observed in batch:
            try:
                spec, result, instance, ended_ns = observed
                key = id(spec if instance is None else instance)
                entry = entries.get(key)
                first = entry is None or entry[0] is not spec
                if first:
                    if open_stream is not None:
                        opened, flags = open_stream(spec, instance)
                        entry = (spec, opened, flags, spec.memory)
                    else:
                        entry = (spec, None, 0, 0)
                    entries[key] = entry
                assert entry is not None
                _, pieces, flags, memory = entry
                body, event, output, init = (
                    result.payload,
                    result.event,
                    result.logs,
                    result.init_ms,
                )
                if pieces is not None:
                    if result.error is not None:
                        flags |= FAILED
                    if init is None:
                        init = 0.0
                    else:
                        flags |= INIT
                    if event is None:
                        event = b""
                        flags |= NO_EVENT
                    rid = result.request_id.encode()
                    body_size, event_size = len(body), len(event)
                    rows += 1
                    size += body_size + event_size + len(output)
                    numbers = (
                        ended_ns // 1_000_000,
                        result.duration_ms,
                        init,
                        result.max_memory_mb,
                    )
                    row: Sequence[object] | None = None
                    if body_size <= limit and event_size <= limit:
                        try:
                            row = (pack(*numbers, memory, flags, len(rid), len(output), body_size,
                                        event_size), rid, output, body, event)  # fmt: skip
                        except (struct.error, OverflowError, TypeError):  # out of range: clamped
                            row = None
                    if row is None:
                        row = self.slow_row((*numbers, memory, flags), rid, output, body, event)
                    pieces += row  # type: ignore[arg-type]
                if (
                    first
                    or result.error is not None
                    or result.init_ms is not None
                    or instance is None
                    or mark in output
                ):
                    notable.append(observed)
                else:
                    group = (id(spec), result.trigger)
                    found = durations.get(group)
                    if found is None:
                        found = durations[group] = (spec, result.trigger, [])
                    found[2].append(float(result.duration_ms))
            except Exception:  # one invocation's, as the C one raises for it alone
                failed = getattr(observed[1], "request_id", None)
                logger.exception("observing invocation %r failed", failed)

        return notable, [self._tally(*found) for found in durations.values()], rows, size

    def _tally(self, spec: FunctionSpec, trigger: str, values: list[float]) -> Tally:
        counted = Histogram(self.bounds)
        counted.observe_many(values, 1000)
        # The sum added in order, as the C one adds it (`sum` may compensate).
        total = functools.reduce(operator.add, values, 0.0)
        return spec, trigger, len(values), counted.counts, total

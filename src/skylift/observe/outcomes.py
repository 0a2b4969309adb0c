"""Each function's recent error rate and last error, for `skylift status` and `describe`.

An invoker observer: per function, counts of invocations and errors in 10-second
buckets over the last `WINDOW` seconds (two integer increments per invocation, counted
in batches by `count`), and the last failed invocation's request id, error type and
message. `sync` (the intake's `drain`) runs before a summary is read.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from skylift.engine.instance import InvocationResult
from skylift.spec import FunctionSpec

if TYPE_CHECKING:
    from skylift.observe.collect import Observed, Tally

WINDOW = 300.0  # seconds over which the error rate is counted
BUCKET = 10.0


@dataclass
class _Function:
    buckets: collections.deque[list[int]]  # [bucket number, invocations, errors]
    # (request id, error payload): parsed when asked, not on the request path
    last_error: tuple[str, bytes] | None = None
    last_error_at: float = 0.0


class Outcomes:
    def __init__(self) -> None:
        self._functions: dict[str, _Function] = {}
        self.sync: Callable[[], None] = _nothing  # before a read: count what is pending

    def __call__(
        self, spec: FunctionSpec, result: InvocationResult, instance: object | None = None
    ) -> None:
        self.count([(spec, result, instance, time.time_ns())])

    def count(self, batch: Sequence[Observed]) -> None:
        """Count a batch of finished invocations (in the bucket of now: a batch waits
        a fraction of a second, a bucket lasts `BUCKET`)."""
        number = int(time.monotonic() // BUCKET)
        functions = self._functions
        last: FunctionSpec | None = None  # the function of the invocation before: its bucket
        entry: _Function | None = None
        bucket: list[int] = []
        for spec, result, _, ended_ns in batch:
            if spec is not last:
                last = spec
                bucket = self._bucket(spec.name, number)
                entry = functions[spec.name]
            bucket[1] += 1
            if result.error is not None:
                assert entry is not None
                bucket[2] += 1
                entry.last_error = (result.request_id, result.payload)
                entry.last_error_at = ended_ns / 1e9

    def count_tallies(self, tallies: Sequence[Tally]) -> None:
        """Count the common invocations of a batch (`observe/collect.py`): successes."""
        number = int(time.monotonic() // BUCKET)
        for spec, _, count, _, _ in tallies:
            self._bucket(spec.name, number)[1] += count

    def _bucket(self, function: str, number: int) -> list[int]:
        entry = self._functions.get(function)
        if entry is None:
            size = int(WINDOW // BUCKET) + 1
            entry = self._functions[function] = _Function(collections.deque(maxlen=size))
        buckets = entry.buckets
        if not buckets or buckets[-1][0] != number:
            buckets.append([number, 0, 0])
        return buckets[-1]

    def summary(self, function: str) -> dict[str, Any]:
        """`invocations` and `errors` over the window, `error_rate` (0-1), `last_error`."""
        self.sync()
        entry = self._functions.get(function)
        if entry is None:
            return {
                "recent_invocations": 0,
                "recent_errors": 0,
                "error_rate": None,
                "last_error": None,
            }
        oldest = int((time.monotonic() - WINDOW) // BUCKET)
        counted = [b for b in list(entry.buckets) if b[0] > oldest]
        total = sum(b[1] for b in counted)
        errors = sum(b[2] for b in counted)
        return {
            "recent_invocations": total,
            "recent_errors": errors,
            "error_rate": round(errors / total, 4) if total else None,
            "last_error": _error(entry),
        }


def _error(entry: _Function) -> dict[str, Any] | None:
    if entry.last_error is None:
        return None
    request_id, error = entry.last_error
    try:
        payload = orjson.loads(error)
    except orjson.JSONDecodeError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    return {
        "at": entry.last_error_at,
        "request_id": request_id,
        "type": str(payload.get("errorType", "Unhandled")),
        # "RequestId: X Error: Task timed out..." (the platform's words): the request id
        # is shown beside it already.
        "message": str(payload.get("errorMessage", "")).split(" Error: ", 1)[-1],
    }


def _nothing() -> None:
    """The default `sync`: nothing is held back."""

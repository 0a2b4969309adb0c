"""The one invoker observer of `skylift up`'s observing: each result is appended to a
list, and everything else happens per batch, off the request path.

Counting metrics, error rates and events, and storing logs, used to run in
four observers on every invocation (about 7 µs of the server's CPU together). Now the
request path appends a tuple (about 0.15 µs); a batch is handed to the consumers
(`Batch` callables: metrics, outcomes, events, the log store) `interval` seconds after
its first result, when it grows past `MAX_BATCH` results or `MAX_BYTES` of events and
results, and before anything reads what they count (`drain`: a scrape, the alert
sampler, `describe`, an event recorded directly, which then comes after them), so
readers never see stale numbers.
Everything runs on the event loop's thread: no lock, and no thread contending for the
GIL with the loop; the log store's thread only writes the lines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from skylift.engine.instance import InvocationResult
from skylift.spec import FunctionSpec

logger = logging.getLogger("skylift.observe")

# One finished invocation: its function, result, the instance that ran it (its log
# stream), and when it ended (epoch nanoseconds).
Observed = tuple[FunctionSpec, InvocationResult, object, int]
Batch = Callable[[Sequence[Observed]], None]

INTERVAL = 0.1  # seconds a result may wait: `skylift logs -f` shows a line within 1 s
MAX_BATCH = 1024  # results; past it the batch is handed over at once
MAX_BYTES = 32 * 1024 * 1024  # of events and results held, for the same reason


class Intake:
    """Collects results (an invoker observer) and hands them over in batches."""

    def __init__(self, consumers: Sequence[Batch] = (), interval: float = INTERVAL) -> None:
        self.consumers = list(consumers)
        self.interval = interval
        self._pending: list[Observed] = []
        self._bytes = 0
        self._timer: asyncio.TimerHandle | None = None

    def __call__(
        self, spec: FunctionSpec, result: InvocationResult, instance: object = None
    ) -> None:
        pending = self._pending
        pending.append((spec, result, instance, time.time_ns()))
        event = result.event
        self._bytes += len(result.payload) + (len(event) if event is not None else 0)
        if len(pending) >= MAX_BATCH or self._bytes >= MAX_BYTES:
            self.drain()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a test calling it directly): hand it over now
                self.drain()
                return
            self._timer = loop.call_later(self.interval, self.drain)

    def drain(self) -> None:
        """Hand every pending result to the consumers now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = self._pending
        if not batch:
            return
        self._pending, self._bytes = [], 0
        for consumer in self.consumers:
            try:
                consumer(batch)
            except Exception:  # one consumer's bug must not cost the others their data
                logger.exception("observing %d invocations failed in %r", len(batch), consumer)

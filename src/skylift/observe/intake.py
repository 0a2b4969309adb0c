"""How `skylift up`'s observing takes results: one invoker observer (a collector,
`observe/collect.py`) keeps what each invocation needs, and everything else happens per
batch, off the request path.

Counting metrics, error rates and events, and storing logs, used to run in four
observers on every invocation (about 7 µs of the server's CPU together). Now the
collector packs each invocation's stored-log row and tallies the common one (in C where
it was built), keeping whole only the notable ones; a batch is handed over (`drain`)
`interval` seconds after its first result, when it grows past `MAX_BATCH` results or
`MAX_BYTES` of events and results, and before anything reads what they count (a scrape,
the alert sampler, `describe`, an event recorded directly, which then comes after them),
so readers never see stale numbers. Then the log store frames the batch's rows for its
writer (`seal`), the tally consumers (metrics, error rates) add the tallies, and the
consumers of notable invocations (`Batch` callables: metrics, error rates, events, EMF)
take those.
Everything runs on the event loop's thread: no lock, and no thread contending for the
GIL with the loop; the log store's thread only writes the frames.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from skylift.observe import collect
from skylift.observe.collect import Observed, Tally
from skylift.observe.logs_store import LogStore
from skylift.observe.metrics import DURATION_BUCKETS

logger = logging.getLogger("skylift.observe")

Batch = Callable[[Sequence[Observed]], None]
Tallied = Callable[[Sequence[Tally]], None]

INTERVAL = 0.1  # seconds a result may wait: `skylift logs -f` shows a line within 1 s
MAX_BATCH = 1024  # results; past it the batch is handed over at once
MAX_BYTES = 32 * 1024 * 1024  # of events and results held, for the same reason


class Intake:
    """Takes results (its `collector` is the invoker observer) and hands them over in
    batches."""

    def __init__(
        self,
        consumers: Sequence[Batch] = (),
        tallied: Sequence[Tallied] = (),
        logs: LogStore | None = None,
        interval: float = INTERVAL,
        pure: bool | None = None,
    ) -> None:
        """`consumers` get the notable invocations, `tallied` the tallies of the others
        (a consumer of every invocation needs both), `logs` the rows."""
        self.consumers = list(consumers)
        self.tallied = list(tallied)
        self.logs = logs
        self.interval = interval
        self._timer: asyncio.TimerHandle | None = None
        self.collector = collect.make(
            logs.open if logs is not None else None,
            self._arm,
            self.drain,
            DURATION_BUCKETS,
            max_batch=MAX_BATCH,
            max_bytes=MAX_BYTES,
            pure=pure,
        )

    def _arm(self) -> None:
        if self._timer is None:
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
        try:
            taken = self.collector.take()
        except Exception:  # a bug: the batch is lost, the server and later ones are not
            logger.exception("observing a batch of invocations failed")
            return
        if taken is None:
            return
        notable, tallies, rows, size = taken
        count = len(notable) + sum(tally[2] for tally in tallies)
        if self.logs is not None:
            self._hand(self.logs.seal, (rows, size), count)
        if tallies:
            for tally in self.tallied:
                self._hand(tally, (tallies,), count)
        if notable:
            for consumer in self.consumers:
                self._hand(consumer, (notable,), count)

    def _hand(self, consumer: Callable[..., None], args: tuple[object, ...], count: int) -> None:
        try:
            consumer(*args)
        except Exception:  # one consumer's bug must not cost the others their data
            logger.exception("observing %d invocations failed in %r", count, consumer)

"""A callback the event loop runs every `interval` seconds: how the log store and the
event log write their files.

They write on the loop's thread, not on threads of their own: a supervisor with a
second thread serves measurably fewer requests a second than one without, even when
that thread only wakes a few times a second (the threads' wake-ups then contend for the
GIL with the busy loop; see observability.md, "A ninth look"). Their writes are batched
(a few a second) and go to the page cache, so the loop holds them for about a
millisecond; a disk that stalls would hold the loop, and the log store says so in the
server's log when a write takes long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Every:
    """Runs `tick` every `interval` seconds on the running event loop, until `cancel`.

    Made inside a running loop (RuntimeError otherwise). `tick` should handle its own
    errors: one that escapes is the loop's to report, and the next tick still comes.
    """

    def __init__(self, interval: float, tick: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._interval = interval
        self._tick = tick
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(interval, self._run)

    def _run(self) -> None:
        try:
            self._tick()
        finally:
            if self._handle is not None:  # not cancelled by the tick itself
                self._handle = self._loop.call_later(self._interval, self._run)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

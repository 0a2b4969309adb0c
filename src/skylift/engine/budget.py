"""The server-wide concurrency limit: how many invocations may run at once, across all
functions (Lambda's account concurrency; default 1000)."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

DEFAULT_CONCURRENCY = 1000
# Invocations allowed to wait for a slot; past this they are throttled at once, so an
# overload costs bounded memory.
MAX_WAITING = 2000


class Budget:
    def __init__(self, limit: int = DEFAULT_CONCURRENCY) -> None:
        self.limit = limit
        self.running = 0
        self.throttles = 0
        self.waiting = 0  # callers waiting for a slot now
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def check_limits(self, minimum: int, maximum: int) -> None:
        """Raise ValueError unless a function's minimum and maximum (reserved)
        concurrency are whole numbers, within this budget, the minimum not above the
        maximum."""
        for name, value in (("minimum", minimum), ("maximum", maximum)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
            if value > self.limit:
                raise ValueError(
                    f"{name} {value} exceeds the server's concurrency limit "
                    f"{self.limit}: lower it, or restart with skylift up --concurrency"
                )
        if minimum > maximum:
            raise ValueError(
                f"minimum {minimum} exceeds maximum {maximum}: lower one or raise the other"
            )

    def try_take(self) -> bool:
        """A slot now (True), without waiting; False when the caller would have to wait."""
        if self.running < self.limit:
            self.running += 1
            return True
        return False

    async def take(self, wait: float) -> bool:
        """A slot within `wait` seconds (True), or False: the caller throttles."""
        if self.try_take():
            return True
        if wait <= 0 or not room_to_wait(self._waiters, self.waiting):
            self.throttles += 1
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self.waiting += 1
        timer = asyncio.get_running_loop().call_later(wait, _expire, fut)
        try:
            await fut  # a slot handed over by give_back() (running unchanged)
        except TimeoutError:
            self.throttles += 1
            return False
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.give_back()  # handed over just as we gave up
            raise
        finally:
            timer.cancel()
            self.waiting -= 1
        return True

    def give_back(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the next in line
                return
        self.running -= 1


def room_to_wait(waiters: collections.deque[Any], waiting: int) -> bool:
    """Whether one more caller may wait: fewer than MAX_WAITING are (`waiting` counts the
    callers still waiting). Futures of callers that gave up are dropped here too once
    they pile up, so a long stretch without a release cannot grow the line."""
    if len(waiters) > 2 * MAX_WAITING:
        live = [fut for fut in waiters if not fut.done()]
        waiters.clear()
        waiters.extend(live)
    return waiting < MAX_WAITING


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())

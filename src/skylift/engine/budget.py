"""The server-wide concurrency limit: how many invocations may run at once, across all
functions (Lambda's account concurrency; default 1000)."""

from __future__ import annotations

import asyncio
import collections

DEFAULT_CONCURRENCY = 1000
# Invocations allowed to wait for a slot; past this they are throttled at once, so an
# overload costs bounded memory.
MAX_WAITING = 2000


class Budget:
    def __init__(self, limit: int = DEFAULT_CONCURRENCY) -> None:
        self.limit = limit
        self.running = 0
        self.throttles = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def take(self, wait: float) -> bool:
        """A slot within `wait` seconds (True), or False: the caller throttles."""
        if self.running < self.limit:
            self.running += 1
            return True
        if wait <= 0 or len(self._waiters) >= MAX_WAITING:
            self.throttles += 1
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
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
        return True

    def give_back(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the next in line
                return
        self.running -= 1


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())

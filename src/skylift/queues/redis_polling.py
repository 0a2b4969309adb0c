"""Long polls on Redis: waiting for a queue's wake tokens, and giving back what an
abandoned poll claimed.

A waiting receiver blocks in ``BLPOP`` on the queue's wake list (one connection each);
Redis hands each token to exactly one blocked client, on whichever node it is, so one
message wakes one receiver. ``close()`` ends every wait at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis

T = TypeVar("T")
logger = logging.getLogger(__name__)


class Waits:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._tasks: set[asyncio.Future[Any]] = set()
        self.closed = False

    async def wait(self, queue_id: str, timeout: float) -> None:
        """Until a wake token for the queue comes, ``timeout`` passes, or ``close()``."""
        task = asyncio.ensure_future(
            self._client.blpop([f"{self._prefix}q:{queue_id}:wake"], timeout=timeout)
        )
        self._tasks.add(task)
        try:
            await task
        except asyncio.CancelledError:
            if not self.closed:
                raise
        finally:
            self._tasks.discard(task)

    async def finish(self, claim: Awaitable[T], give_back: Callable[[T], Awaitable[None]]) -> T:
        """Await ``claim``; if the caller is cancelled meanwhile (its client went away), let
        the claim finish and ``give_back`` what it took, rather than hide those messages
        for a visibility timeout from everyone."""
        claiming = asyncio.ensure_future(claim)
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:

            def returned(done: asyncio.Future[T]) -> None:
                if not done.cancelled() and done.exception() is None and not self.closed:
                    self._track(asyncio.ensure_future(give_back(done.result())))

            claiming.add_done_callback(returned)
            raise

    def close(self) -> None:
        self.closed = True
        for task in list(self._tasks):
            task.cancel()

    def _track(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

"""Tasks a source runs in the background, kept referenced until done, stopped together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


def stopping() -> bool:
    """True in a task asked to stop: a loop that catches a client's errors must end, even
    when a client turned the cancellation into an error of its own."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def backoff(failures: int, first: float = 0.1, most: float = 5.0) -> float:
    """Seconds to wait after `failures` failures in a row: exponential, capped, so a loop
    retrying a backend that is away (a Redis restarting) neither spins nor waits long
    once it is back. Example: ``backoff(1)`` is 0.1, ``backoff(3)`` 0.4, ``backoff(9)`` 5."""
    return min(most, first * 2.0 ** max(0, min(failures - 1, 30)))


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)  # asyncio keeps only weak references to running tasks
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

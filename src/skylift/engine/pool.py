"""The instances of one function: created on demand up to its concurrency limit,
reused while warm (most recently used first), reaped after an idle period."""

from __future__ import annotations

import asyncio
import collections
import time

from skylift.engine.instance import Instance
from skylift.engine.zygote import Zygote
from skylift.spec import FunctionSpec

DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_LIMIT = 1000


class Pool:
    def __init__(
        self,
        spec: FunctionSpec,
        zygote: Zygote,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.spec = spec
        self.zygote = zygote
        self.idle_timeout = idle_timeout
        self.limit = min(spec.max_concurrency or limit, limit)
        self.size = 0  # live or starting instances
        self.busy = 0
        self.cold_starts = 0
        self._idle: list[Instance] = []  # a stack: the warmest on top
        self._waiters: collections.deque[asyncio.Future[Instance]] = collections.deque()
        self._tasks: set[asyncio.Task[None]] = set()

    async def acquire(self) -> Instance:
        """A warm instance, a new one if under the limit, else wait for one to free up."""
        while self._idle:
            instance = self._idle.pop()
            if instance.alive:
                self.busy += 1
                return instance
            instance.close()  # died while idle: free its channel and log memfd
            self.size -= 1
        if self.size < self.limit:
            instance = await self._start()
            self.busy += 1
            return instance
        fut: asyncio.Future[Instance] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            instance = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # handed over just as we gave up
                self.busy += 1
                self.release(fut.result())
            raise
        self.busy += 1
        return instance

    async def _start(self) -> Instance:
        self.size += 1
        try:
            instance = await Instance.start(self.spec, self.zygote)
        except BaseException:
            self.size -= 1
            raise
        self.cold_starts += 1
        return instance

    def release(self, instance: Instance) -> None:
        self.busy -= 1
        if not instance.alive:
            instance.close()
            self.size -= 1
            if self._waiters:  # a slot opened: start a replacement for the next waiter
                task = asyncio.ensure_future(self._start_for_waiter())
                self._tasks.add(task)  # keep a reference until it is done
                task.add_done_callback(self._tasks.discard)
            return
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(instance)
                return
        self._idle.append(instance)

    async def _start_for_waiter(self) -> None:
        try:
            instance = await self._start()
        except Exception as exc:
            while self._waiters:
                fut = self._waiters.popleft()
                if not fut.done():
                    fut.set_exception(exc)
                    return
            return
        self.busy += 1  # release() below balances it
        self.release(instance)

    def reap(self, now: float | None = None) -> int:
        """Close instances idle longer than `idle_timeout`; return how many."""
        now = time.monotonic() if now is None else now
        keep = [i for i in self._idle if i.alive and now - i.last_used < self.idle_timeout]
        gone = [i for i in self._idle if i not in keep]
        self._idle = keep
        for instance in gone:
            instance.close()
        self.size -= len(gone)
        return len(gone)

    def close(self) -> None:
        for instance in self._idle:
            instance.close()
        self._idle.clear()
        self.size = self.busy

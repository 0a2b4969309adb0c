"""The instances of one function: created on demand up to its concurrency limit,
reused while warm (most recently used first), reaped after an idle period.

Past a limit (the function's reserved concurrency, or the server's budget) an
invocation waits at most `wait` seconds for a slot, then is throttled, as Lambda
throttles: `Throttled` with Lambda's reason.
"""

from __future__ import annotations

import asyncio
import collections
import time

from skylift.engine.budget import DEFAULT_CONCURRENCY, MAX_WAITING, Budget
from skylift.engine.driver import FunctionInstance as Instance
from skylift.engine.driver import start_instance
from skylift.engine.zygote import Zygote
from skylift.errors import ACCOUNT_LIMIT, RESERVED_LIMIT, LoadError, Throttled
from skylift.spec import FunctionSpec

DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_WAIT = 0.5  # seconds an invocation may wait for a slot before it is throttled


class Pool:
    def __init__(
        self,
        spec: FunctionSpec,
        zygote: Zygote | None,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        budget: Budget | None = None,
        wait: float = DEFAULT_WAIT,
    ) -> None:
        self.spec = spec
        self.zygote = zygote
        self.idle_timeout = idle_timeout
        self.budget = budget or Budget()
        self.wait = wait
        self.limit = spec.max_concurrency or DEFAULT_CONCURRENCY
        self.throttles = 0
        self.size = 0  # live or starting instances
        self.busy = 0
        self.cold_starts = 0
        self._idle: list[Instance] = []  # a stack: the warmest on top
        self._waiters: collections.deque[asyncio.Future[Instance]] = collections.deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._all: set[Instance] = set()  # every live instance, idle or busy
        self._closed = False

    async def acquire(self) -> Instance:
        """An instance to run one invocation on; raises `Throttled` past the limits."""
        if not await self.budget.take(self.wait):
            self.throttles += 1
            raise Throttled(self.spec.name, ACCOUNT_LIMIT, self.budget.limit)
        try:
            return await self._instance()
        except BaseException:
            self.budget.give_back()
            raise

    async def _instance(self) -> Instance:
        """A warm instance, a new one if under the limit, else wait for one to free up."""
        while self._idle:
            instance = self._idle.pop()
            if instance.alive:
                self.busy += 1
                return instance
            self._discard(instance)  # died while idle: free its channel and log memfd
        if self.size < self.limit:
            instance = await self._start()
            self.busy += 1
            return instance
        if self.wait <= 0 or len(self._waiters) >= MAX_WAITING:
            self.throttles += 1
            raise Throttled(self.spec.name, RESERVED_LIMIT, self.limit)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Instance] = loop.create_future()
        self._waiters.append(fut)
        timer = loop.call_later(self.wait, self._expire, fut)
        try:
            instance = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.busy += 1  # handed over just as we gave up: give it back
                self._release_instance(fut.result())
            raise
        finally:
            timer.cancel()
        self.busy += 1
        return instance

    def _expire(self, fut: asyncio.Future[Instance]) -> None:
        if not fut.done():
            self.throttles += 1
            fut.set_exception(Throttled(self.spec.name, RESERVED_LIMIT, self.limit))

    async def _start(self) -> Instance:
        if self._closed:
            raise LoadError(f"{self.spec.name}: the server is shutting down")
        self.size += 1
        try:
            instance = await start_instance(self.spec, self.zygote)
        except BaseException:
            self.size -= 1
            self._replace_for_waiters()  # the slot it held is free again
            raise
        self.cold_starts += 1
        self._all.add(instance)
        return instance

    def release(self, instance: Instance) -> None:
        """Give back an instance `acquire` returned (and its share of the budget)."""
        self._release_instance(instance)
        self.budget.give_back()

    def _release_instance(self, instance: Instance) -> None:
        self.busy -= 1
        if not instance.alive or self._closed:
            self._discard(instance)
            self._replace_for_waiters()
            return
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(instance)
                return
        self._idle.append(instance)

    def _discard(self, instance: Instance) -> None:
        instance.close()
        self._all.discard(instance)
        self.size -= 1

    def _replace_for_waiters(self) -> None:
        """A slot opened (an instance died, or failed to start): start one for a waiter.

        The slot is taken at once, so a caller arriving meanwhile cannot start an
        instance of its own past the function's limit.
        """
        if self._closed or self.size >= self.limit:
            return
        if any(not fut.done() for fut in self._waiters):
            self.size += 1
            task = asyncio.ensure_future(self._start_for_waiter())
            self._tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._tasks.discard)

    async def _start_for_waiter(self) -> None:
        """Start an instance in a slot `_replace_for_waiters` already took."""
        try:
            instance = await start_instance(self.spec, self.zygote)
        except Exception as exc:
            self.size -= 1
            # There is room, but instances cannot start: say so to everyone waiting.
            while self._waiters:
                fut = self._waiters.popleft()
                if not fut.done():
                    fut.set_exception(exc)
            return
        self.cold_starts += 1
        self._all.add(instance)
        self.busy += 1  # _release_instance() below balances it
        self._release_instance(instance)

    async def ensure_minimum(self) -> None:
        """Start instances until `min_instances` exist (provisioned concurrency)."""
        while self.size < self.spec.min_instances:
            instance = await self._start()
            self._idle.insert(0, instance)  # under the warmer ones: they serve first

    def reap(self, now: float | None = None) -> int:
        """Close instances idle longer than `idle_timeout`, down to `min_instances`."""
        now = time.monotonic() if now is None else now
        spare = self.size - self.spec.min_instances
        keep: list[Instance] = []
        gone: list[Instance] = []
        # The stack's bottom is the least recently used: reap from there.
        for instance in self._idle:
            idle_too_long = now - instance.last_used >= self.idle_timeout
            if not instance.alive or (idle_too_long and len(gone) < spare):
                gone.append(instance)
            else:
                keep.append(instance)
        self._idle = keep
        for instance in gone:
            self._discard(instance)
        return len(gone)

    def close(self) -> None:
        """Stop every instance, busy ones included, and refuse new work."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(LoadError(f"{self.spec.name}: the server is shutting down"))
        for instance in list(self._all):
            if instance in self._idle:
                self._discard(instance)
            else:
                instance.kill()  # busy: its invocation ends now; release() discards it
        self._idle.clear()

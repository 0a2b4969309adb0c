"""The instances of one function: created on demand up to its concurrency limit,
reused while warm (most recently used first), reaped after an idle period, kept at a
floor: its minimum (provisioned concurrency) or the autoscaler's target, whichever is
higher, which `prewarm` fills ahead of demand. An invocation that finds none idle waits
briefly for a busy one when the function's instances turn around faster than a new one
starts, else starts one (engine/scale_out.py).

Past a limit (the function's reserved concurrency, or the server's budget) an
invocation waits at most `wait` seconds for a slot, then is throttled, as Lambda
throttles: `Throttled` with Lambda's reason.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from skylift.engine import scale_out
from skylift.engine.budget import Budget, room_to_wait
from skylift.engine.driver import FunctionInstance as Instance
from skylift.engine.driver import start_instance
from skylift.engine.pool_tenants import tenant_instance
from skylift.engine.pool_warming import RETRY_WARMING, fill, reap, start_for_waiter
from skylift.engine.zygote import Zygote
from skylift.errors import ACCOUNT_LIMIT, RESERVED_LIMIT, LoadError, Throttled
from skylift.spec import FunctionSpec

logger = logging.getLogger("skylift.pool")
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
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self._start_spec = spec  # how new instances start (see `update`)
        self.generation = 0  # how many times `update` changed the spec
        self._stale: set[Instance] = set()  # started before the last `update`
        self._starting: dict[Zygote | None, int] = {}  # instances starting, by zygote
        self.zygote = zygote
        self.environment = environment  # the platform's part of every instance's
        self.sandbox: dict[str, Any] | None = None  # the sandbox's settings (None: off)
        self.idle_timeout = spec.idle_timeout or idle_timeout
        self.budget = budget or Budget()
        self.wait = wait
        self.start_seconds = 0.0  # a start's time, a moving average (0: none timed yet)
        self.started_at = 0.0  # when the last timed start ended
        self.turnaround = 0.0  # recent busy seconds per invocation (0: not known yet)
        self.service = 0.0  # recent seconds per invocation in the worker (0: not known)
        self.released = 0  # instances given back so far
        self._worked = 0.0  # `worked` seconds of the instances discarded so far
        self.limit = self.budget.limit if spec.max_concurrency is None else spec.max_concurrency
        self.reserved = spec.max_concurrency is not None  # else the server's budget rules
        self.minimum = spec.min_instances
        self.target = 0  # the autoscaler's: instances to keep warm ahead of demand
        self.throttles = 0
        self.waiting = 0  # callers waiting for an instance now
        self.size = 0  # live or starting instances
        self.busy = 0
        self.cold_starts = 0  # invocations that waited for their instance to start
        self.prewarmed = 0  # instances started ahead of demand
        self.invocations = 0
        self._area = 0.0  # busy-instance-seconds so far: the time integral of `busy`
        self._mark = time.monotonic()
        self._warming: asyncio.Task[None] | None = None
        self._warming_failed = -RETRY_WARMING  # when prewarming last failed
        self._idle: list[Instance] = []  # a stack: the warmest on top
        self._waiters: collections.deque[scale_out.Waiter] = collections.deque()
        self.line = scale_out.Line(self)  # its callers waiting with no task
        self._tasks: set[asyncio.Task[None]] = set()
        self._all: set[Instance] = set()  # every live instance, idle or busy
        self._closed = False

    def try_acquire(self) -> Instance | None:
        """The fast path of `acquire`, synchronous: a warm instance when one is idle and
        the budget has room, else None (then `await acquire()` starts, waits or throttles).
        """
        idle = self._idle
        while idle and not idle[-1].alive:
            self._discard(idle.pop())  # died while idle: free its channel and log memfd
        if not idle or self.limit == 0 or not self.budget.try_take():
            return None
        self._took()
        return idle.pop()

    async def acquire(self, tenant: str | None = None) -> Instance:
        """An instance to run one invocation on; raises `Throttled` past the limits.
        With a `tenant`, one that serves that tenant only (TenancyConfig PER_TENANT)."""
        if self.limit == 0:  # reserved concurrency 0: the function is turned off
            self.throttles += 1
            raise Throttled(self.spec.name, RESERVED_LIMIT, 0)
        if not await self.budget.take(self.wait):
            self.throttles += 1
            raise Throttled(self.spec.name, ACCOUNT_LIMIT, self.budget.limit)
        try:
            return await (self._instance() if tenant is None else tenant_instance(self, tenant))
        except BaseException:
            self.budget.give_back()
            raise

    async def _instance(self) -> Instance:
        """A warm instance, a new one if under the limit, else wait for one to free up."""
        while self._idle:
            instance = self._idle.pop()
            if instance.alive:
                self._took()
                return instance
            self._discard(instance)  # died while idle: free its channel and log memfd
        if self.size < self.limit:
            # A busy one is due back sooner than a start (unless it waited in the line).
            if scale_out.worth_waiting(self) and not scale_out.waited_in_line():
                freed = await scale_out.wait_for_busy(self)
                if freed is not None:
                    self._took()
                    return freed
                if self.size >= self.limit:  # others started meanwhile: wait as usual
                    return await self._instance()
            instance = await self._start()
            self.cold_starts += 1
            self._took()
            return instance
        if self.wait <= 0 or not room_to_wait(self._waiters, self.waiting):
            self.throttles += 1
            raise Throttled(self.spec.name, RESERVED_LIMIT, self.limit)
        handed = await self._wait_for_instance(self.wait, self._expire)
        assert handed is not None  # _expire raises instead
        self._took()
        return handed

    async def _wait_for_instance(
        self, wait: float, expire: Callable[[asyncio.Future[Instance | None]], None]
    ) -> Instance | None:
        """The next instance released within `wait` seconds; past it `expire(fut)`
        throttles (`_expire`) or hands over None (`scale_out.give_up`)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Instance | None] = loop.create_future()
        self._waiters.append(fut)
        self.waiting += 1
        timer = loop.call_later(wait, expire, fut)
        try:
            return await fut
        except asyncio.CancelledError:
            handed = fut.done() and not fut.cancelled() and fut.exception() is None
            if handed and (instance := fut.result()) is not None:
                self._took()  # handed over just as we gave up: give it back
                self._release_instance(instance)
            raise
        finally:
            timer.cancel()
            self.waiting -= 1

    def _took(self) -> None:
        self._account()
        self.busy += 1
        self.invocations += 1

    def _account(self) -> None:
        """Add the busy-instance-seconds since the last change of `busy`."""
        now = time.monotonic()
        self._area += self.busy * (now - self._mark)
        self._mark = now

    def sample(self) -> float:
        """Busy-instance-seconds so far (the autoscaler differences two samples)."""
        self._account()
        return self._area

    def _expire(self, fut: scale_out.Waiter) -> None:
        if fut.done():
            return
        if isinstance(fut, scale_out.Queued):  # its slow path throttles it, and counts it
            fut.set_result(None)
            return
        self.throttles += 1
        fut.set_exception(Throttled(self.spec.name, RESERVED_LIMIT, self.limit))

    async def _start(self, timed: bool = True) -> Instance:
        if self._closed:
            raise LoadError(f"{self.spec.name}: the server is shutting down")
        self.size += 1
        began = time.monotonic()
        try:
            instance = await self._new_instance()
        except BaseException:
            self.size -= 1
            self._replace_for_waiters()  # the slot it held is free again
            raise
        if timed:
            scale_out.timed(self, began)
        self._all.add(instance)
        return instance

    async def _new_instance(self) -> Instance:
        generation = self.generation
        zygote = self.zygote
        # Counted while it starts, so a reload does not close its zygote under the fork.
        self._starting[zygote] = self._starting.get(zygote, 0) + 1
        try:
            instance = await start_instance(
                self._start_spec, zygote, self.environment, self.sandbox
            )
        finally:
            self._starting[zygote] -= 1
            if not self._starting[zygote]:
                del self._starting[zygote]
        if generation != self.generation:  # updated while it started: serves once at most
            self._stale.add(instance)
        return instance

    def release(self, instance: Instance) -> None:
        """Give back an instance `acquire` returned (and its share of the budget)."""
        self._release_instance(instance)
        self.budget.give_back()

    def _release_instance(self, instance: Instance) -> None:
        self._account()
        self.busy -= 1
        self.released += 1
        if not instance.alive or self._closed or self.size > self.limit or instance in self._stale:
            self._discard(instance)
            self._replace_for_waiters()
            return
        if scale_out.surplus(self):  # a quick function above its steady set: retire
            self._discard(instance)
            return
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(instance)
                return
        self._idle.append(instance)

    def _discard(self, instance: Instance) -> None:
        instance.close()
        if instance in self._all:
            self._worked += getattr(instance, "worked", 0.0)
        self._all.discard(instance)
        self._stale.discard(instance)
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
            task = asyncio.ensure_future(start_for_waiter(self))
            self._tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._tasks.discard)

    @property
    def floor(self) -> int:
        """Instances kept warm: the minimum or the autoscaler's target, within the limit."""
        return min(self.limit, max(self.minimum, self.target))

    async def fill(self, at_least: int = 0) -> int:
        """Start instances until the floor (or `at_least`, within the limit) is met; how
        many were started (`pool_warming.fill`)."""
        return await fill(self, at_least)

    def prewarm(self) -> None:
        """`fill` in the background, one filler at a time; a failure is logged, and the
        next attempt waits `RETRY_WARMING` seconds (instances that cannot start must not
        flood the log)."""
        if (
            self._warming is None
            and not self._closed
            and self.size < self.floor
            and time.monotonic() - self._warming_failed >= RETRY_WARMING
        ):
            self._warming = asyncio.ensure_future(self.fill_or_log())

    async def fill_or_log(self, at_least: int = 0) -> None:
        """`fill`; a failure is logged and holds the next attempt back `RETRY_WARMING` s."""
        try:
            await self.fill(at_least)
        except Exception as exc:
            self._warming_failed = time.monotonic()
            logger.error(
                "keeping %s warm: %s (trying again in %g s)", self.spec.name, exc, RETRY_WARMING
            )
        finally:
            self._warming = None

    def set_limits(self, minimum: int | None = None, maximum: int | None = None) -> None:
        """Change the minimum and the reserved concurrency on a running server.

        Idle instances above a lowered limit stop at once, busy ones when they finish;
        callers waiting under a raised limit get instances started for them. A maximum
        of 0 throttles every invocation, as Lambda's reserved concurrency 0 does.
        """
        new_min = self.minimum if minimum is None else minimum
        new_max = self.limit if maximum is None else maximum
        self.budget.check_limits(new_min, new_max)
        self.minimum = new_min
        if maximum is not None:
            self.limit, self.reserved = new_max, True
        while self.size > self.limit and self._idle:
            self._discard(self._idle.pop(0))  # the least recently used first
        if self.limit == 0:  # turned off: nobody waits for an instance that cannot come
            while self._waiters:
                self._expire(self._waiters.popleft())
        waiting = sum(not fut.done() for fut in self._waiters)
        for _ in range(min(waiting, self.limit - self.size)):
            self._replace_for_waiters()
        self.prewarm()

    def update(self, spec: FunctionSpec, zygote: Zygote | None = None) -> None:
        """Serve `spec` (a changed configuration of the same function) from now on.

        New instances start with it; idle ones stop at once and busy ones when their
        invocation ends, so the next invocation sees the change, as after Lambda's
        UpdateFunctionConfiguration. A zygote forks workers with the configuration it
        loaded, so a forked function's new instances are then fresh interpreters
        (`spawn=True`) given the new spec, whose init phase runs with it, unless a new
        `zygote` that loaded `spec` comes with it (a reload of the code).
        """
        self.spec = spec
        forked = not (spec.runtime_command or spec.spawn)
        if zygote is not None:
            self.zygote = zygote
        fresh = zygote is not None or not forked
        self._start_spec = spec if fresh else dataclasses.replace(spec, spawn=True)
        self.generation += 1
        self._stale.update(self._all)
        while self._idle:
            self._discard(self._idle.pop())
        self.prewarm()

    def forked_from(self, zygote: Zygote) -> bool:
        """Whether any live instance of this pool came from `zygote`."""
        if zygote in self._starting:
            return True
        return any(getattr(instance, "parent", None) is zygote for instance in self._all)

    def unreserve(self) -> None:
        """Drop the reserved concurrency: only the server's budget limits the function."""
        self.set_limits(maximum=self.budget.limit)
        self.reserved = False

    def reap(self, now: float | None = None) -> int:
        """Close instances idle longer than `idle_timeout`, down to the floor."""
        return reap(self, now)

    def status(self) -> dict[str, int | float | bool]:
        """What `skylift status` shows for the function."""
        return {
            "instances": self.size,
            "busy": self.busy,
            "idle": len(self._idle),
            "target": self.target,
            "min": self.minimum,
            "max": self.limit,
            "reserved": self.reserved,
            "idle_timeout": self.idle_timeout,
            "waiting": self.waiting,
            "invocations": self.invocations,
            "throttles": self.throttles,
            "cold_starts": self.cold_starts,
            "prewarmed": self.prewarmed,
        }

    def close(self) -> None:
        """Stop every instance, busy ones included, and refuse new work."""
        self._closed = True
        if self._warming is not None:
            self._warming.cancel()
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

"""Keeping a function's instances warm ahead of demand: `fill` starts instances up to
the pool's floor (its minimum, or the autoscaler's target), each ready before it counts."""

from __future__ import annotations

import asyncio
import collections
from typing import Protocol

from skylift.engine.driver import FunctionInstance as Instance
from skylift.errors import LoadError
from skylift.spec import FunctionSpec


class Pool(Protocol):
    """What this module uses of `skylift.engine.pool.Pool` (which imports it)."""

    spec: FunctionSpec
    size: int
    limit: int
    prewarmed: int
    _closed: bool
    _idle: list[Instance]
    _stale: set[Instance]
    _waiters: collections.deque[asyncio.Future[Instance]]

    @property
    def floor(self) -> int: ...
    def _discard(self, instance: Instance) -> None: ...
    async def _start(self) -> Instance: ...


WARM_WAIT = 5.0  # seconds a kept-warm instance is given to get ready before it counts


async def fill(pool: Pool, at_least: int = 0) -> int:
    """Start instances until the floor (or `at_least`, within the limit) is met; how
    many were started."""
    started = 0
    while pool.size < max(pool.floor, min(at_least, pool.limit)) and not pool._closed:
        instance = await pool._start()
        # Ready before it counts as warm: its sandbox entered, its hooks run.
        await instance.warm(min(pool.spec.timeout, WARM_WAIT))
        died = not instance.alive
        if pool._closed or pool.size > pool.limit or died or instance in pool._stale:
            # Closed, or the limit fell, while it started; or it died at once.
            pool._discard(instance)
            if died and not pool._closed:
                raise LoadError(
                    f"a new instance of {pool.spec.name} exited during its init phase"
                    " (its first invocation shows why)"
                )
            break
        pool.prewarmed += 1
        started += 1
        waiter = next((fut for fut in pool._waiters if not fut.done()), None)
        if waiter is not None:  # the limit was raised while callers waited
            pool._waiters.remove(waiter)
            waiter.set_result(instance)
        else:
            pool._idle.insert(0, instance)  # under the warmer ones: they serve first
    return started

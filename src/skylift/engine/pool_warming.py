"""Keeping a function's instances warm ahead of demand: `fill` starts instances up to
the pool's floor (its minimum, or the autoscaler's target), each ready before it counts;
`reap` closes those idle too long, down to the floor."""

from __future__ import annotations

import collections
import logging
import time
from typing import Protocol

from skylift.engine import scale_out
from skylift.engine.driver import FunctionInstance as Instance
from skylift.errors import LoadError
from skylift.spec import FunctionSpec

logger = logging.getLogger("skylift.pool")


class Pool(Protocol):
    """What this module uses of `skylift.engine.pool.Pool` (which imports it)."""

    spec: FunctionSpec
    size: int
    limit: int
    prewarmed: int
    start_seconds: float
    started_at: float
    idle_timeout: float
    _warming_failed: float
    _closed: bool
    _idle: list[Instance]
    _stale: set[Instance]
    cold_starts: int
    busy: int
    _all: set[Instance]
    _waiters: collections.deque[scale_out.Waiter]

    @property
    def floor(self) -> int: ...
    def _discard(self, instance: Instance) -> None: ...
    async def _start(self, timed: bool = True) -> Instance: ...
    async def _new_instance(self) -> Instance: ...
    def _account(self) -> None: ...
    def _release_instance(self, instance: Instance) -> None: ...


WARM_WAIT = 5.0  # seconds a kept-warm instance is given to get ready before it counts
RETRY_WARMING = 5.0  # seconds between attempts to keep a function warm after a failure


async def fill(pool: Pool, at_least: int = 0) -> int:
    """Start instances until the floor (or `at_least`, within the limit) is met; how
    many were started."""
    started = 0
    while pool.size < max(pool.floor, min(at_least, pool.limit)) and not pool._closed:
        began = time.monotonic()
        instance = await pool._start(timed=False)
        # Ready before it counts as warm: its sandbox entered, its hooks run.
        await instance.warm(min(pool.spec.timeout, WARM_WAIT))
        scale_out.timed(pool, began)  # the whole start, up to ready
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


def reap(pool: Pool, now: float | None = None) -> int:
    """Close instances idle longer than `idle_timeout`, down to the floor."""
    now = time.monotonic() if now is None else now
    spare = pool.size - pool.floor
    keep: list[Instance] = []
    gone: list[Instance] = []
    # The stack's bottom is the least recently used: reap from there.
    for instance in pool._idle:
        if not instance.alive and instance.cold and not pool._closed:
            # Kept warm, it died before serving once: starting more would only loop.
            pool._warming_failed = now
            logger.warning(
                "an instance of %s kept warm exited before its first invocation "
                "(its next invocation shows why); trying again in %g s",
                pool.spec.name,
                RETRY_WARMING,
            )
        idle_too_long = now - instance.last_used >= pool.idle_timeout
        if not instance.alive or (idle_too_long and len(gone) < spare):
            gone.append(instance)
        else:
            keep.append(instance)
    pool._idle = keep
    for instance in gone:
        pool._discard(instance)
    return len(gone)


async def start_for_waiter(pool: Pool) -> None:
    """Start an instance for a waiting caller in a slot the pool already took."""
    try:
        instance = await pool._new_instance()
    except Exception as exc:
        pool.size -= 1
        # There is room, but instances cannot start: say so to everyone waiting.
        while pool._waiters:
            fut = pool._waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)
        return
    pool.cold_starts += 1
    pool._all.add(instance)
    pool._account()
    pool.busy += 1  # _release_instance() below balances it
    pool._release_instance(instance)

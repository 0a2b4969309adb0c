"""Scale-out: whether an invocation that finds no idle instance waits for a busy one or
starts a new one.

Lambda starts a new execution environment for every invocation that finds none free.
Forking one costs a few milliseconds and a few MiB for as long as it stays warm; a
function whose invocations take microseconds gets a busy instance back sooner than that.
So a pool waits for one when it is due back sooner than a new one would start: the
callers waiting already and this one, served in turn by the busy (or starting)
instances, each taking the function's recent turnaround (busy seconds per invocation,
measured by the autoscaler's tick), within the time a start takes (a moving average of
the pool's starts, a kept-warm one timed up to ready; at most `MAX_SCALE_OUT_WAIT`). A
caller that waited that long in vain starts an instance, one at a time (while another
starts, it waits on). A wait that ended far past its limit was a stall of the whole
server, not of the instances: the caller waits again while the wait still looks short,
up to `MAX_WAIT_IN_VAIN` in all.

A function whose invocations keep an instance longer than a start takes, or whose
turnaround is not known yet, starts an instance for each invocation that finds none
idle, as Lambda does. Either way an instance serves one invocation at a time, and the
concurrency limits and their throttling are unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from skylift.engine.driver import FunctionInstance as Instance


class Timed(Protocol):
    start_seconds: float  # a start's time, a moving average (0: none timed yet)


class Pool(Timed, Protocol):
    """What this module uses of `skylift.engine.pool.Pool` (which imports it)."""

    size: int
    limit: int
    waiting: int
    turnaround: float
    _idle: list[Instance]

    @property
    def _starting(self) -> Mapping[Any, int]: ...

    async def _wait_for_instance(
        self, wait: float, expire: Callable[[asyncio.Future[Instance | None]], None]
    ) -> Instance | None: ...


FIRST_START = 0.005  # seconds a start is taken to last until one has been measured
MAX_SCALE_OUT_WAIT = 0.05  # the longest a caller waits for a busy instance before starting
MAX_WAIT_IN_VAIN = 0.25  # ... and in all, however short the wait still looks


def timed(pool: Timed, began: float) -> None:
    """A start of one of `pool`'s instances that began at `began` is over: into the
    moving average `wait_limit` compares waits with."""
    took = time.monotonic() - began
    pool.start_seconds += (took - pool.start_seconds) / (4 if pool.start_seconds else 1)


def wait_limit(pool: Pool) -> float:
    """How long a caller may wait for a busy instance before it starts a new one."""
    return min(pool.start_seconds or FIRST_START, MAX_SCALE_OUT_WAIT)


def worth_waiting(pool: Pool) -> bool:
    """Whether a busy instance is expected back within `wait_limit`."""
    serving = pool.size - len(pool._idle)
    return 0 < (pool.waiting + 1) * pool.turnaround < serving * wait_limit(pool)


async def wait_for_busy(pool: Pool) -> Instance | None:
    """A busy instance of `pool` once released; None when the caller should start one:
    none came within `wait_limit` and none is starting. One start at a time: while
    another instance starts, the caller waits on (for it, or any other, to be released).
    A wait that ended far past its limit was a stall of the whole server (a busy
    machine): the instances could not be released either, and another one would not
    have ended it; the caller waits again while the wait still looks short, up to
    `MAX_WAIT_IN_VAIN` in all (each such wait counting as twice its limit)."""
    waited = 0.0
    while True:
        limit = wait_limit(pool)
        began = time.monotonic()
        freed = await pool._wait_for_instance(limit, give_up)
        if freed is not None or pool.size >= pool.limit:
            return freed
        took = time.monotonic() - began
        waited += min(took, 2 * limit)
        if pool._starting and waited < MAX_WAIT_IN_VAIN:
            continue  # for the start in progress (or a release), up to the same bound
        stalled = took > 2 * limit
        if not (stalled and worth_waiting(pool) and waited < MAX_WAIT_IN_VAIN):
            return None


def give_up(fut: asyncio.Future[Instance | None]) -> None:
    """A wait for a busy instance ran out: the caller starts one (no throttle)."""
    if not fut.done():
        fut.set_result(None)

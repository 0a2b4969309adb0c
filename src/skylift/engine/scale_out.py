"""Scale-out: whether an invocation that finds no idle instance waits for a busy one or
starts a new one.

Lambda starts a new execution environment for every invocation that finds none free.
Forking one costs a few milliseconds and a few MiB for as long as it stays warm; a
function whose invocations take microseconds gets a busy instance back sooner than that,
and one event loop feeds all its instances: past one per core and a spare, more only
add processes that thrash the caches; fewer leave the loop waiting on its workers. Left
to chance the count was either (one instance for 32 clients, or 32). So a quick function
keeps a steady set of `QUICK_INSTANCES`. A function is quick when its workers' own time
per invocation (`service`, as they report it, measured by the autoscaler's tick; the
busy time per invocation where a worker reports none: that one grows with the count of
instances the loop feeds) is shorter than a start (a moving average of the pool's
starts, a kept-warm one timed up to ready; at most `MAX_SCALE_OUT_WAIT`). Below that set
an invocation that finds none idle starts one; at it, it waits for a busy one while the
callers waiting already and this one, served in turn by the busy (or starting)
instances, each taking the service time, are through within a start's time (an HTTP
request with no task of its own: `Queued`, watched by its pool's `Line`). A caller that
waited that long in vain starts an instance, one at a time (while another starts, it
waits on), unless instances were
released meanwhile to the callers ahead (the line moves: the instances are not what
holds it up) or the wait ended far past its limit (a stall of the whole server), while
the wait still looks short, up to `MAX_WAIT_IN_VAIN` in all. An instance of a quick
function given back while more than its steady set (and its floor) are busy retires,
as long as the others serve the callers waiting within a start's time, so a burst's
instances (started before the function was measured) do not stay on as the set.

A function whose invocations keep an instance longer than a start takes, or whose
time is not known yet, starts an instance for each invocation that finds none idle, as
Lambda does. Either way an instance serves one invocation at a time, and the
concurrency limits and their throttling are unchanged.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from skylift.engine.budget import Budget
from skylift.engine.cores import cores
from skylift.engine.driver import FunctionInstance as Instance

logger = logging.getLogger("skylift.pool")


class Waiter(Protocol):
    """A caller in a pool's line: a future its task awaits, or a `Queued` caller."""

    def done(self) -> bool: ...
    def set_result(self, result: Instance | None, /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...


class Timed(Protocol):
    start_seconds: float  # a start's time, a moving average (0: none timed yet)
    started_at: float  # when the last timed start ended (time.monotonic())


class Pool(Timed, Protocol):
    """What this module uses of `skylift.engine.pool.Pool` (which imports it)."""

    size: int
    limit: int
    waiting: int
    turnaround: float
    service: float
    released: int
    budget: Budget
    _closed: bool
    _worked: float
    _idle: list[Instance]
    _all: set[Instance]
    _waiters: collections.deque[Waiter]
    line: Line

    def _took(self) -> None: ...

    @property
    def floor(self) -> int: ...

    @property
    def _starting(self) -> Mapping[Any, int]: ...

    async def _wait_for_instance(
        self, wait: float, expire: Callable[[asyncio.Future[Instance | None]], None]
    ) -> Instance | None: ...


FIRST_START = 0.005  # seconds a start is taken to last until one has been measured
MAX_SCALE_OUT_WAIT = 0.05  # the longest a caller waits for a busy instance before starting
MAX_WAIT_IN_VAIN = 0.25  # ... and in all, however short the wait still looks
SETTLE = 1.0  # seconds after a start before a quick function's surplus instance retires


# A quick function's steady set of instances: one per core for the workers (`cores`: a
# container's CPU quota caps it), one being given back and one idle for the supervisor
# to hand the next request to. Measured at 32 clients on 2 cores (make-change,
# interleaved on a loaded machine): 4 instances cost about the CPU per request of 16
# or 32, in 100 MiB of PSS against 148 (16).
QUICK_INSTANCES = cores() + 2


def timed(pool: Timed, began: float) -> None:
    """A start of one of `pool`'s instances that began at `began` is over: into the
    moving average `wait_limit` compares waits with."""
    pool.started_at = now = time.monotonic()
    took = now - began
    pool.start_seconds += (took - pool.start_seconds) / (4 if pool.start_seconds else 1)


def worked(pool: Pool) -> float:
    """Seconds `pool`'s workers spent on invocations so far, as they report them (a
    Runtime API instance reports none): what `service` is measured from."""
    return pool._worked + sum(getattr(i, "worked", 0.0) for i in pool._all)


def wait_limit(pool: Pool) -> float:
    """How long a caller may wait for a busy instance before it starts a new one."""
    return min(pool.start_seconds or FIRST_START, MAX_SCALE_OUT_WAIT)


def service(pool: Pool) -> float:
    """Seconds an invocation keeps an instance busy by itself (0: not known yet)."""
    return pool.service or pool.turnaround


def quick(pool: Pool) -> bool:
    """Whether the function's invocations take less time than a start of an instance."""
    return 0 < service(pool) < wait_limit(pool)


def worth_waiting(pool: Pool) -> bool:
    """Whether a caller that finds no idle instance should wait for a busy one: the
    function is quick, its steady set is serving, and a busy instance is expected back
    within `wait_limit`."""
    serving = pool.size - len(pool._idle)
    limit = wait_limit(pool)
    took = service(pool)
    if not (0 < took < limit) or serving < QUICK_INSTANCES:
        return False
    return (pool.waiting + 1) * took < serving * limit


def surplus(pool: Pool) -> bool:
    """Whether an instance given back should retire: its function is quick, the pool is
    above its steady set and its floor, and the callers waiting would still be served
    within a start's time by the instances still serving (idle ones are kept: a pool
    with none serving is left to idle out, as Lambda keeps its environments warm), and
    no instance started in the last `SETTLE` seconds."""
    size = pool.size
    if size <= QUICK_INSTANCES or size <= pool.floor:  # the first test settles most releases
        return False
    if time.monotonic() - pool.started_at < SETTLE:
        return False  # a start a stall forced is not undone at once
    took, limit = service(pool), wait_limit(pool)
    serving = pool.size - 1 - len(pool._idle)
    return 0 < took < limit and pool.waiting * took < serving * limit


async def wait_for_busy(pool: Pool) -> Instance | None:
    """A busy instance of `pool` once released; None when the caller should start one:
    none came within `wait_limit` and none is starting. One start at a time: while
    another instance starts, the caller waits on (for it, or any other, to be released).
    A wait during which instances were released (to the callers ahead) was a line that
    moves, which the event loop, not the instances, holds up; one that ended far past
    its limit was a stall of the whole server (a busy machine): the instances could not
    be released either. Another instance would have ended neither: the caller waits
    again while the wait still looks short, up to `MAX_WAIT_IN_VAIN` in all (each wait
    counting as at most twice its limit)."""
    waited = 0.0
    while True:
        limit = wait_limit(pool)
        began = time.monotonic()
        released = pool.released
        freed = await pool._wait_for_instance(limit, give_up)
        if freed is not None or pool.size >= pool.limit:
            return freed
        took = time.monotonic() - began
        waited += min(took, 2 * limit)
        if pool._starting and waited < MAX_WAIT_IN_VAIN:
            continue  # for the start in progress (or a release), up to the same bound
        moving = pool.released > released or took > 2 * limit
        if not (moving and worth_waiting(pool) and waited < MAX_WAIT_IN_VAIN):
            return None


# Set while a `Queued` caller's fallback runs, so the slow path's task it starts (which
# copies the context) does not wait in the line a second time, behind later callers.
WAITED: contextvars.ContextVar[bool] = contextvars.ContextVar("waited_in_line", default=False)


def waited_in_line() -> bool:
    """Whether this task is the slow path of a caller that waited in the line already
    (then it starts an instance, or waits for a slot, as after a wait in vain)."""
    if not WAITED.get():
        return False
    WAITED.set(False)  # once: in this task's own context
    return True


def give_up(fut: asyncio.Future[Instance | None]) -> None:
    """A wait for a busy instance ran out: the caller starts one (no throttle)."""
    if not fut.done():
        fut.set_result(None)


class Queued:
    """A caller waiting for a busy instance with no task of its own (an HTTP front's
    request): the pool hands it the next instance released, which `handed` runs the
    invocation on. Its pool's `Line` ends a wait in vain as `wait_for_busy` does; then,
    or when the pool fails it (closed, turned off, instances that cannot start), the
    caller gives its slot back and takes the slow path (`fallback`: `Pool.acquire` in a
    task, which starts an instance, or waits for a slot or throttles, and says why it
    cannot; it does not wait for a busy one again: `waited_in_line`)."""

    __slots__ = ("_done", "_fallback", "_handed", "_pool", "since")

    def __init__(
        self, pool: Pool, handed: Callable[[Instance], None], fallback: Callable[[], None]
    ) -> None:
        self._pool = pool
        self._handed = handed
        self._fallback = fallback
        self._done = False
        self.since = time.monotonic()
        pool._waiters.append(self)
        pool.waiting += 1
        pool.line.watch()

    def done(self) -> bool:
        return self._done

    def set_result(self, result: Instance | None, /) -> None:
        if not self._finish():
            return
        if result is None:
            self._pool.budget.give_back()
            self._fall_back()
            return
        self._pool._took()
        try:
            self._handed(result)
        except Exception:  # it gave the instance and the slot back: the slow path says why
            logger.exception("starting a queued invocation failed")
            self._fall_back()

    def _fall_back(self) -> None:
        token = WAITED.set(True)
        try:
            self._fallback()
        finally:
            WAITED.reset(token)

    def set_exception(self, exception: BaseException, /) -> None:
        self.set_result(None)

    def cancel(self) -> bool:
        """Leave the line (a shutdown); False: no invocation was running."""
        if self._finish():
            self._pool.budget.give_back()
        return False

    def _finish(self) -> bool:
        if self._done:
            return False
        self._done = True
        self._pool.waiting -= 1
        return True


class Line:
    """Watches a pool's `Queued` callers with one timer (not one per caller): every
    `wait_limit` while any wait, it looks whether instances were released meanwhile (the
    line moves) or the look came far late (a stall of the whole server). If neither, the
    first caller waited in vain and takes the slow path (which starts an instance, one
    at a time); so does the first when waiting is no longer worth it, and any caller
    waiting `MAX_WAIT_IN_VAIN` in all."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._timer: asyncio.TimerHandle | None = None
        self._released = 0
        self._due = 0.0

    def watch(self) -> None:
        """A caller joined the line: look at it within `wait_limit`."""
        if self._timer is None:
            self._arm()

    def _arm(self) -> None:
        limit = wait_limit(self._pool)
        self._released = self._pool.released
        self._due = time.monotonic() + limit
        self._timer = asyncio.get_running_loop().call_later(limit, self._look)

    def _look(self) -> None:
        self._timer = None
        pool = self._pool
        now = time.monotonic()
        queued = [w for w in pool._waiters if isinstance(w, Queued) and not w.done()]
        if not queued:
            return
        late = now - self._due > wait_limit(pool)
        moving = pool.released > self._released or late
        for waiter in queued:
            if now - waiter.since >= MAX_WAIT_IN_VAIN:
                waiter.set_result(None)
        if not (moving and worth_waiting(pool)):
            queued[0].set_result(None)
        if any(not w.done() for w in queued):
            self._arm()


def queue(
    pool: Pool, handed: Callable[[Instance], None], fallback: Callable[[], None]
) -> Queued | None:
    """Put a caller that found no idle instance in `pool`'s line with no task, when it
    would wait for a busy one anyway (`worth_waiting`) and the server has a slot for it;
    else None (the caller takes the slow path)."""
    if pool._closed or pool.size >= pool.limit or not worth_waiting(pool):
        return None
    if not pool.budget.try_take():
        return None
    return Queued(pool, handed, fallback)

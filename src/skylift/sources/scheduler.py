"""Schedules: invoke functions on EventBridge `rate()` / `cron()` expressions.

Each enabled schedule sleeps until its next fire time and then hands its function
EventBridge's Scheduled Event (or the rule's fixed Input) to `dispatch`: under
`skylift up`, the asynchronous invocations, so a tick is stored, retried and sent to
destinations as EventBridge's asynchronous invocation of Lambda is. Rates count from when the
server started (EventBridge counts from when the rule was created). Ticks missed while
the server was down are not replayed.

Whether a node may fire a tick is its `Gate`'s call: alone, always (`Alone`); with
several nodes on one Redis, only the holder of the schedule's lease, once per tick
(`cluster/schedules.py`), and rates count from when the first node started.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import orjson

from skylift.events.eventbridge import scheduled_event
from skylift.runtime.environ import ACCOUNT_ID
from skylift.schedules.expressions import Schedule, parse_schedule
from skylift.schedules.speed import Faster
from skylift.sources.background import Background, stopping
from skylift.spec import FunctionSpec
from skylift.triggers import ScheduleTrigger

logger = logging.getLogger("skylift.schedules")
Dispatch = Callable[[str, bytes], Awaitable[object]]  # (function, event)


class Clock(Protocol):
    """Where the scheduler gets the time; tests pass a virtual one."""

    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        await asyncio.sleep(max(0.0, (when - self.now()).total_seconds()))
        # Sleeping can end a hair early; never fire before the scheduled time.
        while self.now() < when:
            await asyncio.sleep(0.001)


@dataclass(frozen=True)
class Entry:
    """One schedule of one function, with the ARN of its (notional) EventBridge rule."""

    function: str
    trigger: ScheduleTrigger
    schedule: Schedule
    rule_arn: str


def entries(specs: list[FunctionSpec], region: str, speed: float = 1.0) -> list[Entry]:
    """The app's schedules; `speed` above 1 runs them faster, for tests (`Faster`)."""
    found = []
    for spec in specs:
        for i, trigger in enumerate(spec.schedules):
            rule = f"{spec.name}-schedule-{i + 1}"
            schedule = parse_schedule(trigger.expression, function=spec.name)
            found.append(
                Entry(
                    spec.name,
                    trigger,
                    schedule if speed == 1 else Faster(schedule, speed),
                    f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule}",
                )
            )
    return found


class Gate(Protocol):
    """Whether this node fires a schedule's ticks, and from when its rate counts."""

    async def anchor(self, entry: Entry, started: datetime) -> datetime:
        """Where `entry`'s rate counts from, given when this node started."""
        ...

    async def claim(self, entry: Entry, when: datetime) -> bool:
        """True if this node is to fire `entry`'s tick `when` (once per tick)."""
        ...

    def start(self, entries: Sequence[Entry], acquired: Callable[[Entry], None]) -> None:
        """Begin; call `acquired(entry)` whenever this node becomes `entry`'s firer."""
        ...

    async def stop(self) -> None: ...


class Alone:
    """One node: it fires every tick, counting rates from its own start."""

    async def anchor(self, entry: Entry, started: datetime) -> datetime:
        return started

    async def claim(self, entry: Entry, when: datetime) -> bool:
        return True

    def start(self, entries: Sequence[Entry], acquired: Callable[[Entry], None]) -> None:
        pass

    async def stop(self) -> None:
        pass


class Scheduler:
    def __init__(
        self,
        schedule: list[Entry],
        dispatch: Dispatch,
        region: str,
        clock: Clock | None = None,
        gate: Gate | None = None,
        handover: float = 0.0,
    ) -> None:
        """`handover`: how late (seconds) a node that just became a schedule's firer
        still fires the tick the last one missed (the time a lease takes to pass on)."""
        self.entries = schedule
        self.dispatch = dispatch
        self.region = region
        self.clock = clock or RealClock()
        self.gate: Gate = gate or Alone()
        self.handover = handover
        self.started = self.clock.now()
        self.anchors: dict[str, datetime] = {}
        self.fired: dict[str, int] = {e.rule_arn: 0 for e in schedule}
        self._background = Background()

    def start(self) -> None:
        self.started = self.clock.now()
        self.anchors = {}  # read again: alone, a (re)start counts rates from now on
        enabled = [entry for entry in self.entries if entry.trigger.enabled]
        for entry in enabled:
            self._background.spawn(self._run(entry))
        self.gate.start(enabled, self._acquired)

    def _acquired(self, entry: Entry) -> None:
        self._background.spawn(self._catch_up(entry))

    def next_fire(self, entry: Entry, after: datetime | None = None) -> datetime | None:
        anchor = self.anchors.get(entry.rule_arn, self.started)
        return entry.schedule.next_after(after or self.clock.now(), anchor=anchor)

    async def _anchor(self, entry: Entry) -> None:
        while entry.rule_arn not in self.anchors:
            try:
                self.anchors[entry.rule_arn] = await self.gate.anchor(entry, self.started)
            except Exception as exc:  # e.g. Redis is unreachable: try again shortly
                if stopping():
                    raise asyncio.CancelledError from exc
                logger.error("schedule %s: cannot read its anchor: %s", entry.rule_arn, exc)
                await asyncio.sleep(1.0)

    async def _run(self, entry: Entry) -> None:
        await self._anchor(entry)
        while True:
            when = self.next_fire(entry)
            if when is None:
                return  # a cron whose years are all past
            await self.clock.sleep_until(when)
            await self._claimed(entry, when)

    async def _catch_up(self, entry: Entry) -> None:
        # The node that held the schedule died: fire the tick it missed meanwhile, if it
        # is recent (no older tick is replayed, as after a restart): the latest one due
        # within the hand-over (which may hold an earlier tick, fired already).
        await self._anchor(entry)
        now = self.clock.now()
        missed = None
        due = self.next_fire(entry, after=now - timedelta(seconds=self.handover))
        while due is not None and due <= now:
            missed, due = due, self.next_fire(entry, after=due)
        if missed is not None:
            await self._claimed(entry, missed)

    async def _claimed(self, entry: Entry, when: datetime) -> None:
        try:
            claimed = await self.gate.claim(entry, when)
        except Exception as exc:  # e.g. Redis is unreachable: this tick is not ours to fire
            logger.error("schedule %s: cannot claim the tick: %s", entry.rule_arn, exc)
            return
        if claimed:
            self.fired[entry.rule_arn] += 1
            self._background.spawn(self._fire(entry, when))

    async def _fire(self, entry: Entry, when: datetime) -> None:
        if entry.trigger.input is not None:
            event = entry.trigger.input.encode()
        else:
            event = orjson.dumps(scheduled_event(entry.rule_arn, when, self.region))
        try:
            await self.dispatch(entry.function, event)
        except Exception as exc:  # e.g. the store failed; the next tick tries again
            logger.error(
                "schedule %s: dispatching to %s failed: %s", entry.rule_arn, entry.function, exc
            )

    async def stop(self) -> None:
        await self._background.stop()
        await self.gate.stop()

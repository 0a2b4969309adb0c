"""Schedules: invoke functions on EventBridge `rate()` / `cron()` expressions.

Each enabled schedule sleeps until its next fire time and then hands its function
EventBridge's Scheduled Event (or the rule's fixed Input) to `dispatch`: under
`skylift up`, the asynchronous invocations, so a tick is stored, retried and sent to
destinations as EventBridge's asynchronous invocation of Lambda is. Rates count from when the
server started (EventBridge counts from when the rule was created). Ticks missed while
the server was down are not replayed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import orjson

from skylift.events.eventbridge import scheduled_event
from skylift.runtime.environ import ACCOUNT_ID
from skylift.schedules.expressions import Schedule, parse_schedule
from skylift.sources.background import Background
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


def entries(specs: list[FunctionSpec], region: str) -> list[Entry]:
    found = []
    for spec in specs:
        for i, trigger in enumerate(spec.schedules):
            rule = f"{spec.name}-schedule-{i + 1}"
            found.append(
                Entry(
                    spec.name,
                    trigger,
                    parse_schedule(trigger.expression, function=spec.name),
                    f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule}",
                )
            )
    return found


class Scheduler:
    def __init__(
        self, schedule: list[Entry], dispatch: Dispatch, region: str, clock: Clock | None = None
    ) -> None:
        self.entries = schedule
        self.dispatch = dispatch
        self.region = region
        self.clock = clock or RealClock()
        self.started = self.clock.now()
        self.fired: dict[str, int] = {e.rule_arn: 0 for e in schedule}
        self._background = Background()

    def start(self) -> None:
        self.started = self.clock.now()
        for entry in self.entries:
            if entry.trigger.enabled:
                self._background.spawn(self._run(entry))

    def next_fire(self, entry: Entry, after: datetime | None = None) -> datetime | None:
        return entry.schedule.next_after(after or self.clock.now(), anchor=self.started)

    async def _run(self, entry: Entry) -> None:
        while True:
            when = self.next_fire(entry)
            if when is None:
                return  # a cron whose years are all past
            await self.clock.sleep_until(when)
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

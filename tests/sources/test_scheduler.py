"""Schedules fire at EventBridge's times with its event shape, through real workers.

Time is virtual (EventBridge's finest schedule is a minute); everything else is real.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from skylift.sources.scheduler import Scheduler, entries

APP = """
import json, os
from skylift import App

app = App()
LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fired.jsonl")


def record(name, event):
    with open(LOG, "a") as f:
        f.write(json.dumps({"fn": name, "event": event}) + "\\n")


@app.schedule("rate(1 minute)")
def tick(event, context):
    record("tick", event)


@app.schedule("cron(0/2 * * * ? *)", input={"job": "report"})
def report(event, context):
    record("report", event)


@app.schedule("rate(1 minute)", enabled=False)
def never(event, context):
    record("never", event)
"""


def write_app(directory: Path, source: str) -> Path:
    (directory / "app.py").write_text(source)
    return directory


class VirtualClock:
    """Jumps straight to the earliest wake-up once every sleeper is waiting."""

    def __init__(self, start: datetime) -> None:
        self.time = start
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self.time

    async def sleep_until(self, when: datetime) -> None:
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._order), fut))
        await fut

    async def run_until(self, end: datetime) -> None:
        while True:
            for _ in range(5):
                await asyncio.sleep(0)  # let woken tasks register their next sleep
            if not self._sleepers or self._sleepers[0][0] > end:
                return
            when, _, fut = heapq.heappop(self._sleepers)
            self.time = when
            fut.set_result(None)


def test_schedules_fire_on_time_with_eventbridge_events(live, tmp_path):
    app = write_app(tmp_path, APP)
    platform = live(app)
    start = datetime(2026, 3, 1, 0, 0, 30, tzinfo=UTC)
    clock = VirtualClock(start)

    async def drive() -> Scheduler:
        found = entries(list(platform.platform.specs.values()), "eu-west-1")
        scheduler = Scheduler(found, platform.platform.invoker.invoke, "eu-west-1", clock=clock)
        scheduler.start()
        await clock.run_until(start + timedelta(minutes=5))
        return scheduler

    scheduler = platform.run(drive())
    log = Path(app, "fired.jsonl")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        not log.exists() or len(log.read_text().splitlines()) < 7
    ):
        time.sleep(0.05)
    platform.run(scheduler.stop())
    fired = [json.loads(line) for line in log.read_text().splitlines()]

    ticks = sorted(f["event"]["time"] for f in fired if f["fn"] == "tick")
    # A rate counts from when the schedule started: 00:00:30 + 1, 2, ... minutes.
    assert ticks == [f"2026-03-01T00:0{m}:30Z" for m in range(1, 6)]
    event = next(f["event"] for f in fired if f["fn"] == "tick")
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["region"] == "eu-west-1" and event["detail"] == {}
    assert event["resources"] == ["arn:aws:events:eu-west-1:123456789012:rule/tick-schedule-1"]
    # A cron fires on the clock (00:02, 00:04) with the rule's Input instead of the event.
    reports = [f["event"] for f in fired if f["fn"] == "report"]
    assert reports == [{"job": "report"}, {"job": "report"}]
    assert not any(f["fn"] == "never" for f in fired)  # disabled


def test_next_fire_times_follow_the_expression(live, tmp_path):
    platform = live(write_app(tmp_path, APP))
    found = entries(list(platform.platform.specs.values()), "us-east-1")
    clock = VirtualClock(datetime(2026, 3, 1, 10, 3, 0, tzinfo=UTC))
    scheduler = Scheduler(found, platform.platform.invoker.invoke, "us-east-1", clock=clock)
    report = next(e for e in found if e.function == "report")
    assert scheduler.next_fire(report) == datetime(2026, 3, 1, 10, 4, tzinfo=UTC)

"""`--schedule-speed`: schedules run N times faster around their anchor, for tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from skylift.schedules.expressions import parse_schedule
from skylift.schedules.speed import Faster

ANCHOR = datetime(2026, 12, 5, 21, 0, 0, 123456, tzinfo=UTC)


def fires(speed: float, expression: str, count: int) -> list[datetime]:
    schedule = Faster(parse_schedule(expression), speed)
    found, moment = [], ANCHOR
    for _ in range(count):
        fire = schedule.next_after(moment, anchor=ANCHOR)
        assert fire is not None and fire > moment  # never the same tick twice
        found.append(fire)
        moment = fire
    return found


def test_a_rate_ticks_speed_times_as_often_from_its_anchor() -> None:
    found = fires(60, "rate(1 minute)", 5)
    assert found == [ANCHOR + timedelta(seconds=n) for n in range(1, 6)]
    assert fires(30, "rate(2 minutes)", 2) == [ANCHOR + timedelta(seconds=s) for s in (4, 8)]


def test_uneven_speeds_never_repeat_or_skip_a_tick() -> None:
    found = fires(7, "rate(1 minute)", 50)
    steps = {round((b - a).total_seconds(), 3) for a, b in itertools.pairwise(found)}
    assert steps == {round(60 / 7, 3)}


def test_a_cron_runs_on_the_stretched_clock() -> None:
    found = fires(60, "cron(* * * * ? *)", 3)  # every minute: about every second
    steps = [round((b - a).total_seconds(), 3) for a, b in itertools.pairwise(found)]
    assert steps == [1.0, 1.0]


def test_a_speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="above 0"):
        Faster(parse_schedule("rate(1 minute)"), 0)

"""Schedules that run faster than the clock: ``skylift up --schedule-speed 60`` fires a
``rate(1 minute)`` every second, to watch schedules (and their hand-over between nodes)
in a test without waiting minutes.

Time is stretched around the rate's anchor: the moment ``anchor + d`` is, for the
expression, ``anchor + d * speed``. Nodes that share an anchor therefore agree on every
fire time. A cron runs on the stretched clock too (its fire times are then not clock
times: this is for tests only).
"""

from __future__ import annotations

from datetime import UTC, datetime

from skylift.schedules.expressions import Schedule

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Faster(Schedule):
    """``schedule`` run ``speed`` times faster. Example::

    >>> started = datetime(2026, 1, 1, tzinfo=UTC)
    >>> from skylift.schedules.expressions import parse_schedule
    >>> rate = parse_schedule("rate(1 minute)")
    >>> Faster(rate, 60).next_after(started, anchor=started)
    datetime.datetime(2026, 1, 1, 0, 0, 1, tzinfo=datetime.timezone.utc)
    """

    def __init__(self, schedule: Schedule, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"a schedule speed must be above 0, got {speed}")
        self.inner = schedule
        self.speed = speed
        self.expression = schedule.expression

    def next_after(self, moment: datetime, *, anchor: datetime | None = None) -> datetime | None:
        base = anchor or _EPOCH
        virtual = base + (moment - base) * self.speed
        while True:
            fire = self.inner.next_after(virtual, anchor=base)
            if fire is None:
                return None
            real = base + (fire - base) / self.speed
            # Dividing rounds to microseconds: never answer a time at or before `moment`.
            if real > moment:
                return real
            virtual = fire

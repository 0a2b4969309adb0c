"""EventBridge schedule expressions: parsed, validated as EventBridge does, and evaluated.

Follows the EventBridge user guide, "Rate expressions reference" and "Cron expressions
reference". All times are UTC, and a cron fires on whole minutes.

Beyond the guide's tables (EventBridge's cron is Quartz's, less the seconds field):

- Accepted because users have shown EventBridge accepts them: ``nL`` in day-of-week
  (``6L`` is the last Friday), ``LW`` in day-of-month (the last weekday), and month and
  day names (and L, W) in any case.
- ``L`` alone in day-of-week is Saturday, "the last day of the week", as in Quartz.
- ``nW`` is the weekday nearest day n without leaving the month (Quartz's rule); in a
  month that has no day n it does not fire, as a plain ``31`` does not.
- A step may not exceed its field (``*/60`` in minutes is refused, as EventBridge does).
- Refused with a rewrite, because the guide does not list them and nobody has shown
  EventBridge to accept them: ``L-n`` offsets, ranges that wrap (``FRI-MON``), ``/`` in
  day-of-week, and L, W or # inside a list or range.
- ``rate`` takes lower-case units and exactly ``rate(value unit)``: EventBridge refuses
  ``rate(10 MINUTES)`` and ``rate( 10 minutes )``.
- A year range wholly in the past is valid (EventBridge accepts ``2002-2005``); such a
  cron simply never fires again.

A rate fires every period counted from an anchor: EventBridge counts from when the rule
is created, skylift from when its scheduler starts, which passes that as ``anchor``.
"""

from __future__ import annotations

import calendar
import re
from abc import ABC, abstractmethod
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from skylift.errors import DeclarationError

AWS_MESSAGE = "Parameter ScheduleExpression is not valid."
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_MINUTE = timedelta(minutes=1)
Unit = Literal["minute", "hour", "day"]
_UNIT_SECONDS: dict[Unit, int] = {"minute": 60, "hour": 3600, "day": 86400}
_UNITS: dict[str, Unit] = {"minute": "minute", "hour": "hour", "day": "day"}
_NUMBER = re.compile(r"[0-9]+")
_EXAMPLES = "e.g. rate(5 minutes) or cron(0 12 * * ? *)"
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class ScheduleError(DeclarationError):
    """Raised when a schedule expression is one EventBridge would refuse.

    The message is EventBridge's own words followed by what to change; `expression` and
    `reason` carry the parts.
    """

    def __init__(self, expression: str, reason: str, *, function: str | None = None) -> None:
        self.expression = expression
        self.reason = reason
        super().__init__(f"{AWS_MESSAGE} {reason}", function=function)


class _Invalid(Exception):
    """A reason, raised deep in parsing and turned into a ScheduleError at the top."""


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, e.g. datetime.now(UTC); got {moment!r}")
    return moment.astimezone(UTC)


class Schedule(ABC):
    """A parsed schedule expression, which knows when it fires."""

    expression: str

    @abstractmethod
    def next_after(self, moment: datetime, *, anchor: datetime | None = None) -> datetime | None:
        """The first fire time strictly after `moment` (aware), in UTC; None if none is left.

        `anchor` is where a rate starts counting (see RateSchedule); a cron ignores it.
        """

    def fires_between(
        self, start: datetime, end: datetime, *, anchor: datetime | None = None
    ) -> Iterator[datetime]:
        """Each fire time t with start < t <= end, in order; a scheduler waking from a
        sleep asks for (last check, now]."""
        end = _utc(end, "end")
        fire = self.next_after(start, anchor=anchor)
        while fire is not None and fire <= end:
            yield fire
            fire = self.next_after(fire, anchor=anchor)


@dataclass(frozen=True)
class RateSchedule(Schedule):
    """``rate(value unit)``: fires at anchor + k * period for k = 1, 2, ...

    >>> started = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    >>> parse_schedule("rate(5 minutes)").next_after(started, anchor=started)
    datetime.datetime(2026, 1, 1, 12, 5, tzinfo=datetime.timezone.utc)
    """

    expression: str
    value: int
    unit: Unit

    @property
    def period(self) -> timedelta:
        return timedelta(seconds=self.value * _UNIT_SECONDS[self.unit])

    def next_after(self, moment: datetime, *, anchor: datetime | None = None) -> datetime:
        """The first fire after `moment`. The anchor is period zero, not a fire time: a
        scheduler started at T first fires at T + period (EventBridge counts from a rule's
        creation). Without an anchor the count starts at the Unix epoch, on round marks."""
        moment = _utc(moment, "moment")
        start = EPOCH if anchor is None else _utc(anchor, "anchor")
        periods = max(1, (moment - start) // self.period + 1)
        return start + periods * self.period


@dataclass(frozen=True)
class _Days:
    """Which days of a month a cron fires on, from whichever day field is not ``?``.

    Days of the week are EventBridge's numbers, 1 = SUN to 7 = SAT.
    """

    kind: Literal["dates", "last", "last_weekday", "near_weekday", "weekdays", "last_of", "nth"]
    values: tuple[int, ...] = ()  # dates (1-31) or days of the week (1-7), sorted
    day: int = 0  # the n of nW; the day of the week of nL and n#k
    nth: int = 0  # the k of n#k

    def in_month(self, year: int, month: int) -> list[int]:
        first_weekday, last = calendar.monthrange(year, month)  # Monday = 0

        def dow(date: int) -> int:
            return (first_weekday + date) % 7 + 1  # Python's Monday 0 -> EventBridge's 2

        match self.kind:
            case "dates":
                return [d for d in self.values if d <= last]
            case "last":
                return [last]
            case "last_weekday":
                return [_nearest_weekday(last, dow(last), last)]
            case "near_weekday":
                return [_nearest_weekday(self.day, dow(self.day), last)] if self.day <= last else []
            case "weekdays":
                return [d for d in range(1, last + 1) if dow(d) in self.values]
            case "last_of":
                return [next(d for d in range(last, last - 7, -1) if dow(d) == self.day)]
            case "nth":
                first = next(d for d in range(1, 8) if dow(d) == self.day)
                date = first + 7 * (self.nth - 1)
                return [date] if date <= last else []


def _nearest_weekday(date: int, dow: int, last: int) -> int:
    # Quartz's W: Saturday moves back to Friday and Sunday on to Monday, unless that
    # would leave the month, in which case it goes two days the other way.
    if dow == 7:
        return date + 2 if date == 1 else date - 1
    if dow == 1:
        return date - 2 if date == last else date + 1
    return date


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """``cron(minutes hours day-of-month month day-of-week year)``, in UTC.

    >>> parse_schedule("cron(0 12 ? * 6L *)").next_after(datetime(2026, 1, 1, tzinfo=UTC))
    datetime.datetime(2026, 1, 30, 12, 0, tzinfo=datetime.timezone.utc)
    """

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: _Days
    months: tuple[int, ...]
    years: tuple[int, ...]

    def next_after(self, moment: datetime, *, anchor: datetime | None = None) -> datetime | None:
        """The first fire after `moment`; `anchor` is ignored, as a cron names clock times.

        Walks the allowed years, months and days in order and stops at the first day with
        a time left, so a rare schedule costs no more than a frequent one."""
        start = _utc(moment, "moment").replace(second=0, microsecond=0) + _MINUTE
        today = (start.year, start.month, start.day)
        for year in self.years[bisect_left(self.years, start.year) :]:
            for month in self.months:
                if (year, month) < today[:2]:
                    continue
                for day in self.days.in_month(year, month):
                    if (year, month, day) < today:
                        continue
                    time = self._first_time((year, month, day) == today, start)
                    if time is not None:
                        return datetime(year, month, day, *time, tzinfo=UTC)
        return None

    def _first_time(self, is_today: bool, start: datetime) -> tuple[int, int] | None:
        for hour in self.hours:
            if not is_today or hour > start.hour:
                return hour, self.minutes[0]
            if hour == start.hour:
                later = bisect_left(self.minutes, start.minute)
                if later < len(self.minutes):
                    return hour, self.minutes[later]
        return None


def parse_schedule(expression: str, *, function: str | None = None) -> Schedule:
    """Parse a ScheduleExpression, refusing what EventBridge refuses.

    >>> friday_9am = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    >>> parse_schedule("cron(0 8 ? * MON-FRI *)").next_after(friday_9am)  # Monday, 8:00
    datetime.datetime(2026, 11, 30, 8, 0, tzinfo=datetime.timezone.utc)

    Raises ScheduleError (naming `function`, when given) with what to change.
    """
    try:
        if expression.startswith("rate(") and expression.endswith(")"):
            return _parse_rate(expression)
        if expression.startswith("cron(") and expression.endswith(")"):
            return _parse_cron(expression)
        raise _Invalid(
            "write rate(value unit) or cron(minutes hours day-of-month month day-of-week "
            f"year), in lower case, {_EXAMPLES}"
        )
    except _Invalid as exc:
        raise ScheduleError(expression, str(exc), function=function) from None


def _parse_rate(expression: str) -> RateSchedule:
    value_text, space, unit = expression[len("rate(") : -1].partition(" ")
    if not space or not value_text or not unit or " " in unit:
        raise _Invalid("a rate is rate(value unit) with a single space, e.g. rate(5 minutes)")
    if not _NUMBER.fullmatch(value_text) or int(value_text) == 0:
        raise _Invalid(f"rate value must be a positive whole number, got {value_text!r}")
    value = int(value_text)
    singular = unit.removesuffix("s")
    unit_name = _UNITS.get(singular)
    if unit_name is None:
        raise _Invalid(f"rate unit {unit!r} is not one of minute(s), hour(s), day(s) (lower case)")
    if value == 1 and unit != singular:
        raise _Invalid(f"rate unit must be singular for a value of 1: use rate(1 {singular})")
    if value > 1 and unit == singular:
        raise _Invalid(
            f"rate unit must be plural for a value above 1: use rate({value} {singular}s)"
        )
    return RateSchedule(expression, value, unit_name)


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    max_step: int | None  # None: no limit; 0: no / at all
    names: tuple[str, ...] = ()  # names[i] stands for low + i
    note: str = ""

    def hint(self) -> str:
        names = f" or {self.names[0]}-{self.names[-1]}" if self.names else ""
        return f"{self.low}-{self.high}{names}{self.note}"


_MINUTES = _Field("minutes", 0, 59, 59)
_HOURS = _Field("hours", 0, 23, 23)
_DAY_OF_MONTH = _Field("day-of-month", 1, 31, 31)
_MONTH = _Field("month", 1, 12, 12, _MONTH_NAMES)
_DAY_OF_WEEK = _Field("day-of-week", 1, 7, 0, _DAY_NAMES, " (1 is SUN, not Unix cron's 0)")
_YEAR = _Field("year", 1970, 2199, None)
_SHAPE = "minutes hours day-of-month month day-of-week year"


def _parse_cron(expression: str) -> CronSchedule:
    body = expression[len("cron(") : -1]
    if body != body.strip():
        raise _Invalid("remove the spaces just inside cron( and )")
    fields = [field.upper() for field in re.split(" +", body)]
    if len(fields) != 6:
        year_hint = "; add a year field (* for every year)" if len(fields) == 5 else ""
        raise _Invalid(f"a cron has six fields ({_SHAPE}), got {len(fields)}{year_hint}")
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if (day_of_month == "?") == (day_of_week == "?"):
        both = "are both ?" if day_of_month == "?" else "are both set"
        raise _Invalid(
            f"day-of-month and day-of-week {both}: exactly one must be ?, "
            "e.g. cron(0 12 * * ? *) or cron(0 12 ? * MON-FRI *)"
        )
    days = _day_of_week(day_of_week) if day_of_month == "?" else _day_of_month(day_of_month)
    return CronSchedule(
        expression,
        minutes=_values(_MINUTES, minutes),
        hours=_values(_HOURS, hours),
        days=days,
        months=_values(_MONTH, month),
        years=_values(_YEAR, year),
    )


def _day_of_month(text: str) -> _Days:
    if text == "L":
        return _Days("last")
    if text == "LW":
        return _Days("last_weekday")
    if text.startswith("L-"):
        raise _Invalid(
            f"day-of-month {text!r}: EventBridge does not document L-n offsets; "
            "use L (last day), LW (last weekday) or a date"
        )
    if text.endswith("W") and _NUMBER.fullmatch(text[:-1]):
        return _Days("near_weekday", day=_value(_DAY_OF_MONTH, text[:-1], text))
    if "L" in text or "W" in text:
        raise _Invalid(
            f"day-of-month {text!r}: L, LW and nW (e.g. 15W) stand alone, "
            "not in a list, range or step"
        )
    return _Days("dates", values=_values(_DAY_OF_MONTH, text))


def _day_of_week(text: str) -> _Days:
    if text == "L":  # the last day of the week
        return _Days("weekdays", values=(7,))
    if "#" in text:
        day, _, nth = text.partition("#")
        if "," in text or not _NUMBER.fullmatch(nth) or not 1 <= int(nth) <= 5:
            raise _Invalid(
                f"day-of-week {text!r}: # takes one day and a week number 1-5, "
                "alone in the field, e.g. 3#2 (the second Tuesday)"
            )
        return _Days("nth", day=_value(_DAY_OF_WEEK, day, text), nth=int(nth))
    if "L" in text:
        if not text.endswith("L") or any(c in text for c in ",-/"):
            raise _Invalid(
                f"day-of-week {text!r}: nL names one day and stands alone, "
                "e.g. 6L (the last Friday)"
            )
        return _Days("last_of", day=_value(_DAY_OF_WEEK, text[:-1], text))
    return _Days("weekdays", values=_values(_DAY_OF_WEEK, text))


def _values(field: _Field, text: str) -> tuple[int, ...]:
    if text == "?":
        raise _Invalid(f"{field.name}: ? is allowed only in day-of-month or day-of-week")
    chosen: set[int] = set()
    for item in text.split(","):
        chosen.update(_item(field, item))
    return tuple(sorted(chosen))


def _item(field: _Field, item: str) -> range:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if field.max_step == 0:
            raise _Invalid(f"{field.name} {item!r}: / is not allowed; list the values instead")
        if not _NUMBER.fullmatch(step_text) or int(step_text) == 0:
            raise _Invalid(f"{field.name} {item!r}: the step after / must be a positive number")
        step = int(step_text)
        if field.max_step is not None and step > field.max_step:
            raise _Invalid(f"{field.name} {item!r}: the step can be at most {field.max_step}")
    if base == "*":
        return range(field.low, field.high + 1, step)
    first_text, dash, last_text = base.partition("-")
    first = _value(field, first_text, item)
    if not dash:  # "5" alone, or "5/15": from 5 to the end of the field in steps of 15
        return range(first, (field.high if slash else first) + 1, step)
    last = _value(field, last_text, item)
    if first > last:
        raise _Invalid(
            f"{field.name} {item!r}: the range runs backwards; EventBridge documents no "
            f"wrap-around, so write {first}-{field.high},{field.low}-{last}"
        )
    return range(first, last + 1, step)


def _value(field: _Field, text: str, item: str) -> int:
    if text in field.names:
        return field.low + field.names.index(text)
    if not _NUMBER.fullmatch(text):
        raise _Invalid(f"{field.name} {item!r}: {text!r} is not a value; use {field.hint()}")
    value = int(text)
    if not field.low <= value <= field.high:
        raise _Invalid(f"{field.name} {item!r}: {value} is out of range {field.hint()}")
    return value

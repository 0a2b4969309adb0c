"""Schedule expressions against the EventBridge user guide and what EventBridge refuses.

Invalid cases marked "AWS" are ones EventBridge's PutRule is known to refuse with
"Parameter ScheduleExpression is not valid." (LocalStack's AWS-validated tests and
reported issues).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from skylift.errors import DeclarationError
from skylift.schedules import CronSchedule, RateSchedule, ScheduleError, parse_schedule


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(1 hour)",
        "rate(12 hours)",
        "rate(1 day)",
        "rate(7 days)",
        # The guide's examples, and LocalStack's AWS-validated ones.
        "cron(0 10 * * ? *)",
        "cron(15 12 * * ? *)",
        "cron(5,35 14 * * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 8 1 * ? *)",
        "cron(0/15 * * * ? *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "cron(15 10 ? * 6L 2002-2005)",
        "cron(0 2 ? * SAT#3 *)",
        "cron(* * ? * SAT#3 *)",
        "cron(0/5 5 ? JAN 1-5 2022)",
        # Quartz syntax users report EventBridge accepts.
        "cron(0 21 LW * ? *)",
        "cron(15 12 ? * sun,mon *)",
        "cron(0 11-23/2 * * ? *)",
        "cron(0 0 1 1-12/3 ? *)",
        "cron(0 9 15W * ? *)",
        "cron(0 9 ? * L *)",
        "cron(0 0 1 1 ? */2)",
    ],
)
def test_valid_expressions_parse(expression: str) -> None:
    assert parse_schedule(expression).expression == expression


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("rate(1 minutes)", "singular for a value of 1: use rate(1 minute)"),  # AWS
        ("rate(1 days)", "singular for a value of 1: use rate(1 day)"),  # AWS
        ("rate(5 minute)", "plural for a value above 1: use rate(5 minutes)"),  # AWS
        ("rate(0 minutes)", "positive whole number"),  # AWS
        ("rate(-10 minutes)", "positive whole number"),  # AWS
        ("rate(foo minutes)", "positive whole number"),  # AWS
        ("rate(10 seconds)", "not one of minute(s), hour(s), day(s)"),  # AWS
        ("rate(10 MINUTES)", "not one of minute(s), hour(s), day(s) (lower case)"),  # AWS
        ("rate( 10 minutes )", "a single space"),  # AWS
        ("rate(10)", "rate(value unit)"),  # AWS
        (" rate(10 minutes)", "write rate(value unit) or cron("),  # AWS
        ("every 5 minutes", "write rate(value unit) or cron("),
        ("cron(0 1 * * * *)", "are both set: exactly one must be ?"),  # AWS
        ("cron(7 20 * * 1-7 *)", "are both set"),  # AWS
        ("cron(0 12 ? * ? *)", "are both ?"),
        ("cron(0 12 * * ?)", "six fields (minutes hours day-of-month month day-of-week year)"),
        ("cron(0 12 * * ?)", "add a year field"),
        ("cron(INVALID)", "six fields"),  # AWS
        ("cron(0 dummy ? * MON-FRI *)", "hours 'DUMMY': 'DUMMY' is not a value; use 0-23"),  # AWS
        ("cron(71 8 1 * ? *)", "minutes '71': 71 is out of range 0-59"),  # AWS
        ("cron(7 20 ? * NOT *)", "use 1-7 or SUN-SAT"),
        ("cron(0 12 ? * 0 *)", "out of range 1-7 or SUN-SAT (1 is SUN, not Unix cron's 0)"),
        ("cron(15 12 ? * -1 *)", "day-of-week"),  # AWS
        ("cron(*/60 * * * ? *)", "the step can be at most 59"),  # AWS
        ("cron(0/0 * * * ? *)", "the step after / must be a positive number"),
        ("cron(0 12 0 * ? *)", "day-of-month '0': 0 is out of range 1-31"),
        ("cron(0 12 * 13 ? *)", "month '13': 13 is out of range 1-12 or JAN-DEC"),
        ("cron(0 12 * * ? 1969)", "year '1969': 1969 is out of range 1970-2199"),
        ("cron(0 12 * * ? 2200)", "out of range 1970-2199"),
        ("cron(0 ? * * ? *)", "? is allowed only in day-of-month or day-of-week"),
        ("cron(0 12 ? * 3#1,6#3 *)", "alone in the field"),  # the guide's own example
        ("cron(0 12 ? * 3#6 *)", "a week number 1-5"),
        ("cron(0 12 ? * 1-5L *)", "nL names one day"),
        ("cron(0 12 1,L * ? *)", "stand alone"),
        ("cron(0 12 1-15W * ? *)", "stand alone"),
        ("cron(0 12 L-3 * ? *)", "use L (last day), LW (last weekday) or a date"),
        ("cron(0 12 ? * 1/2 *)", "/ is not allowed"),
        ("cron(0 22-2 * * ? *)", "runs backwards; EventBridge documents no wrap-around, so "),
        ("cron(0 22-2 * * ? *)", "write 22-23,0-2"),
        ("cron( 0 12 * * ? * )", "remove the spaces just inside"),
        ("CRON(0 12 * * ? *)", "in lower case"),
    ],
)
def test_invalid_expressions_say_why(expression: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(expression)
    message = str(caught.value)
    assert message.startswith("Parameter ScheduleExpression is not valid. ")
    assert reason in message
    assert caught.value.expression == expression


def test_error_is_a_declaration_error_naming_the_function() -> None:
    with pytest.raises(DeclarationError, match=r"^function 'nightly': Parameter Schedule"):
        parse_schedule("rate(1 hours)", function="nightly")


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # Strictly after: a fire time is not its own successor.
        ("cron(0 12 * * ? *)", at(2026, 1, 1, 12, 0), at(2026, 1, 2, 12, 0)),
        ("cron(0 12 * * ? *)", at(2026, 1, 1, 11, 59, 30), at(2026, 1, 1, 12, 0)),
        ("cron(0/15 * * * ? *)", at(2026, 12, 31, 23, 45), at(2027, 1, 1, 0, 0)),
        ("cron(1/10 * * * ? *)", at(2026, 1, 1, 12, 1), at(2026, 1, 1, 12, 11)),
        ("cron(0 18 ? * MON-FRI *)", at(2026, 11, 27, 18, 0), at(2026, 11, 30, 18, 0)),  # Fri->Mon
        ("cron(0 12 ? jan-mar mon,fri *)", at(2026, 3, 31), at(2027, 1, 1, 12, 0)),
        ("cron(0 8 1 * ? *)", at(2026, 1, 15), at(2026, 2, 1, 8, 0)),
        ("cron(0 0 31 * ? *)", at(2026, 4, 1), at(2026, 5, 31, 0, 0)),  # April has no 31st
        # L: last day of month, leap years included; 2100 is not a leap year.
        ("cron(0 0 L * ? *)", at(2027, 2, 1), at(2027, 2, 28, 0, 0)),
        ("cron(0 0 L * ? *)", at(2028, 2, 1), at(2028, 2, 29, 0, 0)),
        ("cron(0 0 29 FEB ? *)", at(2026, 3, 1), at(2028, 2, 29, 0, 0)),
        ("cron(0 0 29 FEB ? *)", at(2096, 3, 1), at(2104, 2, 29, 0, 0)),
        # W: nearest weekday, never leaving the month.
        ("cron(0 9 15W * ? *)", at(2026, 8, 1), at(2026, 8, 14, 9, 0)),  # Sat 15 -> Fri 14
        ("cron(0 9 15W * ? *)", at(2026, 3, 1), at(2026, 3, 16, 9, 0)),  # Sun 15 -> Mon 16
        ("cron(0 9 1W * ? *)", at(2026, 7, 31), at(2026, 8, 3, 9, 0)),  # Sat 1 -> Mon 3
        ("cron(0 9 LW * ? *)", at(2026, 5, 1), at(2026, 5, 29, 9, 0)),  # Sun 31 -> Fri 29
        ("cron(0 9 31W * ? *)", at(2026, 4, 1), at(2026, 5, 29, 9, 0)),  # none in April
        # Day-of-week: 1 = SUN ... 7 = SAT; L alone is Saturday.
        ("cron(0 10 ? * 6L *)", at(2026, 1, 1), at(2026, 1, 30, 10, 0)),  # last Friday
        ("cron(0 10 ? * L *)", at(2026, 1, 1), at(2026, 1, 3, 10, 0)),  # Thu -> Sat
        ("cron(0 10 ? * 3#2 *)", at(2026, 1, 1), at(2026, 1, 13, 10, 0)),  # 2nd Tuesday
        ("cron(0 10 ? * MON#5 *)", at(2026, 1, 1), at(2026, 3, 30, 10, 0)),  # first 5th Monday
        # Years.
        ("cron(15 10 ? * 6L 2002-2005)", at(2005, 12, 1), at(2005, 12, 30, 10, 15)),
        ("cron(15 10 ? * 6L 2002-2005)", at(2005, 12, 30, 10, 15), None),
        ("cron(0 0 1 1 ? 2030)", at(2026, 6, 1), at(2030, 1, 1, 0, 0)),
        ("cron(59 23 31 12 ? 2199)", at(2199, 12, 31, 23, 59), None),
        ("cron(0 0 30 FEB ? *)", at(2026, 1, 1), None),  # valid, but never fires
    ],
)
def test_cron_next_fire_time(expression: str, after: datetime, expected: datetime | None) -> None:
    assert parse_schedule(expression).next_after(after) == expected


def test_cron_reads_any_timezone_and_answers_in_utc() -> None:
    schedule = parse_schedule("cron(0 12 * * ? *)")
    paris_1330 = datetime(2026, 1, 1, 13, 30, tzinfo=timezone(timedelta(hours=1)))
    assert schedule.next_after(paris_1330) == at(2026, 1, 2, 12, 0)


def test_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("rate(1 hour)").next_after(datetime(2026, 1, 1))


def test_fires_between_is_half_open() -> None:
    schedule = parse_schedule("cron(0/20 9 ? * MON *)")
    fires = list(schedule.fires_between(at(2026, 1, 5, 9, 0), at(2026, 1, 5, 9, 40)))
    assert fires == [at(2026, 1, 5, 9, 20), at(2026, 1, 5, 9, 40)]


def test_rate_counts_periods_from_the_anchor() -> None:
    schedule = parse_schedule("rate(5 minutes)")
    assert isinstance(schedule, RateSchedule)
    assert schedule.period == timedelta(minutes=5)
    started = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    # The scheduler's start is period zero, not itself a fire time.
    assert schedule.next_after(started, anchor=started) == started + timedelta(minutes=5)
    assert schedule.next_after(at(2026, 1, 1, 12, 7), anchor=started) == started + timedelta(
        minutes=10
    )
    assert schedule.next_after(at(2026, 1, 1, 11), anchor=started) == started + timedelta(minutes=5)


def test_rate_without_anchor_keeps_to_round_clock_marks() -> None:
    assert parse_schedule("rate(1 hour)").next_after(at(2026, 1, 1, 12, 34)) == at(
        2026, 1, 1, 13, 0
    )
    days = parse_schedule("rate(2 days)")
    started = at(2026, 1, 1, 6, 0)
    fires = list(days.fires_between(started, started + timedelta(days=5), anchor=started))
    assert fires == [at(2026, 1, 3, 6, 0), at(2026, 1, 5, 6, 0)]


def test_cron_schedule_exposes_its_fields() -> None:
    schedule = parse_schedule("cron(0/30 20-23 ? * MON-FRI *)")
    assert isinstance(schedule, CronSchedule)
    assert schedule.minutes == (0, 30)
    assert schedule.hours == (20, 21, 22, 23)
    assert schedule.years == tuple(range(1970, 2200))

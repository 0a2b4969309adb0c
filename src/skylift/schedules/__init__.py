"""EventBridge schedule expressions, `rate(...)` and `cron(...)`, and when they fire."""

from skylift.schedules.expressions import (
    CronSchedule,
    RateSchedule,
    Schedule,
    ScheduleError,
    parse_schedule,
)

__all__ = ["CronSchedule", "RateSchedule", "Schedule", "ScheduleError", "parse_schedule"]

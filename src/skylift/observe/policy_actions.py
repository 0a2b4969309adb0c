"""Reading `[[alerts.actions]]`: each entry names a function and exactly one action,
`scale = { min = N, reserved = M }`, `rollback = true`, or `drain = true | "QUEUE" |
["QUEUE", ...]`. A bad entry fails at load with the line at fault (`fail` points there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skylift.errors import SkyliftError
from skylift.observe.alerts_actions import Rule
from skylift.observe.alerts_detector import Level
from skylift.observe.alerts_drain import DrainAction
from skylift.observe.alerts_rollback import RollbackAction
from skylift.observe.alerts_scale import ScaleAction

# fail(table, key, message, index) -> the error naming the line of `key` in the index-th table
Fail = Callable[[str, str, str, int], SkyliftError]
FUNCTION_METRICS = ("duration_p99", "error_rate", "throttles")
KINDS = ("scale", "rollback", "drain")
_KEYS = {"function", "metric", "at", *KINDS}
WHERE = "alerts.actions"


def read_actions(entries: Any, fail: Fail) -> tuple[Rule, ...]:
    if not isinstance(entries, list):
        raise fail("alerts", "actions", "actions must be [[alerts.actions]] tables", 0)
    return tuple(_read(entry, index, fail) for index, entry in enumerate(entries))


def _read(entry: Any, index: int, fail: Fail) -> Rule:
    if not isinstance(entry, dict):
        raise fail("alerts", "actions", "actions must be [[alerts.actions]] tables", 0)
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise fail(
            WHERE,
            unknown[0],
            f"unknown key {unknown[0]!r}; use function, metric, at, and one of {', '.join(KINDS)}",
            index,
        )
    function = entry.get("function")
    if not isinstance(function, str) or not function:
        raise fail(WHERE, "function", 'an action needs function = "NAME"', index)
    metric = entry.get("metric")
    if metric is not None and metric not in FUNCTION_METRICS:
        raise fail(
            WHERE,
            "metric",
            f"metric must be one of {', '.join(FUNCTION_METRICS)}, got {metric!r}",
            index,
        )
    at = entry.get("at", "page")
    if at not in ("page", "notify"):
        raise fail(WHERE, "at", f'at must be "page" or "notify", got {at!r}', index)
    level = Level.PAGE if at == "page" else Level.NOTIFY
    kinds = [kind for kind in KINDS if kind in entry]
    if len(kinds) != 1:
        key = kinds[1] if kinds else "function"
        raise fail(
            WHERE,
            key,
            "an action takes exactly one of scale = { min = N, reserved = M }, "
            f"rollback = true, drain = true (or a queue's name); got {kinds or 'none'}",
            index,
        )
    kind = kinds[0]
    value = entry[kind]
    if kind == "scale":
        if (
            not isinstance(value, dict)
            or not value
            or set(value) - {"min", "reserved"}
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in value.values())
        ):
            raise fail(
                WHERE,
                "scale",
                "scale must be { min = N, reserved = M } (either may be left "
                f"out; whole numbers, raised to, never lowered), got {value!r}",
                index,
            )
        return ScaleAction(function, metric, level, value.get("min"), value.get("reserved"))
    if kind == "rollback":
        if value is not True:
            raise fail(WHERE, "rollback", f"rollback must be true, got {value!r}", index)
        return RollbackAction(function, metric, level)
    queues: tuple[str, ...] | None
    if value is True:
        queues = None
    elif isinstance(value, str) and value:
        queues = (value,)
    elif isinstance(value, list) and value and all(isinstance(q, str) and q for q in value):
        queues = tuple(value)
    else:
        raise fail(
            WHERE,
            "drain",
            "drain must be true (every queue the function consumes), a queue's name, or a "
            f"list of them, got {value!r}",
            index,
        )
    return DrainAction(function, metric, level, queues)

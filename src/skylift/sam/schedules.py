"""Schedule event types: `Schedule` (an EventBridge rule), `ScheduleV2` (EventBridge
Scheduler), `EventBridgeRule` / `CloudWatchEvent` with a schedule, and the
`AWS::Scheduler::Schedule` resources that target a function of the template.

What the scheduler does not do yet (one-time `at()`, time zones for cron, start and end
dates, the scheduler's own retries and dead-letter queue) loads with a note saying what
happens instead. A flexible time window is honoured by firing at its start.
"""

from __future__ import annotations

import json
from typing import Any

from skylift.sam.cfn_yaml import kind
from skylift.sam.event import SamEvent
from skylift.schedules.expressions import ScheduleError, parse_schedule
from skylift.triggers import ScheduleTrigger

# EventBridge Scheduler delivers `{}` to a Lambda target given no Input.
SCHEDULER_DEFAULT_INPUT = "{}"

V2_NOTES = {
    "RetryPolicy": "the scheduler does not retry; the function's asynchronous retry "
    "settings (EventInvokeConfig) apply",
    "DeadLetterConfig": "undelivered events are not sent to it; the function's "
    "EventInvokeConfig OnFailure destination applies",
    "StartDate": "ignored: the schedule runs from when skylift starts",
    "EndDate": "ignored: the schedule never ends",
}


def schedule_event(event: SamEvent) -> ScheduleTrigger:
    """`Schedule`: an EventBridge rule; no Input delivers the Scheduled Event."""
    expression = _expression(event, "Schedule")
    if expression is None:
        raise event.fail("a Schedule event needs Properties.Schedule, e.g. rate(5 minutes): add it")
    enabled, state = event.boolean("Enabled"), event.string("State")
    if enabled is not None and state is not None:
        raise event.fail("set Enabled or State, not both (SAM refuses both)")
    return ScheduleTrigger(expression, _input(event), _state(event, enabled))


def schedule_v2_event(event: SamEvent) -> ScheduleTrigger | None:
    """`ScheduleV2`: EventBridge Scheduler; no Input delivers `{}`."""
    expression = event.string("ScheduleExpression")
    if expression is None:
        raise event.fail(
            "a ScheduleV2 event needs Properties.ScheduleExpression, e.g. rate(5 minutes): add it"
        )
    if expression.startswith("at("):
        event.function.note(
            f"event {event.name!r} ScheduleExpression {expression}",
            "one-time at() schedules are not served yet: it never fires; invoke the "
            "function yourself (skylift invoke)",
        )
        return None
    timezone = event.string("ScheduleExpressionTimezone")
    if timezone not in (None, "UTC", "Etc/UTC") and expression.startswith("cron("):
        event.function.note(
            f"event {event.name!r} ScheduleExpressionTimezone {timezone}",
            "the cron fields are read in UTC, so it fires at other local times",
        )
    for key, instead in V2_NOTES.items():
        if event.properties.get(key) is not None:
            event.function.note(f"event {event.name!r} {key}", instead)
    expression = _expression(event, "ScheduleExpression")
    assert expression is not None
    raw_input = _input(event)
    return ScheduleTrigger(
        expression,
        SCHEDULER_DEFAULT_INPUT if raw_input is None else raw_input,
        _state(event, None),
    )


def rule_event(event: SamEvent) -> ScheduleTrigger | None:
    """`EventBridgeRule` / `CloudWatchEvent`: a Schedule fires it; a Pattern waits for
    event buses (a note), since no bus is served yet."""
    if event.properties.get("Pattern") is not None:
        event.function.note(
            f"event {event.name!r} Pattern",
            "never fires: EventBridge event buses are not served yet; invoke the function "
            "with a sample event (skylift events generate) to test it",
        )
        return None
    expression = _expression(event, "Schedule")
    if expression is None:
        raise event.fail("an EventBridgeRule event needs a Pattern or a Schedule: add one")
    for key in ("InputPath", "InputTransformer", "EventBusName", "Target"):
        if event.properties.get(key) is not None:
            event.function.note(f"event {event.name!r} {key}", "ignored")
    return ScheduleTrigger(expression, _input(event), _state(event, None))


def _expression(event: SamEvent, key: str) -> str | None:
    expression = event.string(key)
    if expression is None:
        return None
    try:
        parse_schedule(expression, function=event.function.logical_id)
    except ScheduleError as exc:
        reason = f"{exc.reason} (event {event.name!r})"
        raise ScheduleError(exc.expression, reason, function=exc.function) from None
    return expression


def _input(event: SamEvent) -> str | None:
    raw_input = event.value("Input")
    if raw_input is None:
        return None
    if not isinstance(raw_input, str):
        raise event.fail(
            f"Input must be JSON text, got {kind(raw_input)}: quote it, e.g. "
            'Input: \'{"job": "nightly"}\''
        )
    try:
        json.loads(raw_input)
    except ValueError as exc:
        raise event.fail(
            f"Input {raw_input!r} is not valid JSON ({exc}): write JSON text, e.g. "
            'Input: \'{"job": "nightly"}\''
        ) from None
    return raw_input


def _state(event: SamEvent, enabled: bool | None) -> bool:
    state = event.string("State")
    if state is not None:
        if state not in ("ENABLED", "DISABLED"):
            raise event.fail(f"State {state!r} is unknown: use ENABLED or DISABLED")
        return state == "ENABLED"
    return True if enabled is None else enabled


def scheduler_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """An `AWS::Scheduler::Schedule`'s Properties as a ScheduleV2 event's."""
    target = properties.get("Target") if isinstance(properties.get("Target"), dict) else {}
    flat = {k: v for k, v in properties.items() if k not in ("Target", "FlexibleTimeWindow")}
    for key in ("Input", "RetryPolicy", "DeadLetterConfig"):
        if isinstance(target, dict) and key in target:
            flat[key] = target[key]
    return flat

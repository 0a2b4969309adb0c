"""SAM event types: each turns one entry of a function's `Events` into a trigger.

Supporting another type is one function added to `EVENT_TYPES` (plus, for a new kind of
trigger, a `FunctionSpec` field to carry what it returns). Properties follow the AWS SAM
reference pages for each event source type (Api, HttpApi, SQS, Schedule, S3); those
that would make skylift behave differently from AWS without saying so are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skylift.errors import DeclarationError
from skylift.sam.event import FunctionContext, SamEvent
from skylift.sam.resources import queue_name_of
from skylift.sam.route_auth import route_access
from skylift.sam.schedules import rule_event, schedule_event, schedule_v2_event
from skylift.schedules.expressions import ScheduleError
from skylift.spec import HttpRoute, PayloadVersion
from skylift.triggers import QueueTrigger, ScheduleTrigger, UploadTrigger

Trigger = HttpRoute | QueueTrigger | ScheduleTrigger | UploadTrigger


# --- HTTP -------------------------------------------------------------------------------


def _methods(method: str) -> tuple[str, ...]:
    upper = method.upper()
    return ("ANY",) if upper in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else (upper,)


def _api_event(event: SamEvent) -> HttpRoute:
    path, method = event.string("Path"), event.string("Method")
    if path is None or method is None:
        missing = "Path" if path is None else "Method"
        raise event.fail(
            f"an Api event needs Properties.{missing} (e.g. Path: /items, Method: get): add it"
        )
    access = route_access(event, event.function.apis, "rest")
    return HttpRoute(path, _methods(method), "1.0", "rest", access)


def _http_api_event(event: SamEvent) -> HttpRoute:
    path, method = event.string("Path"), event.string("Method")
    payload = event.string("PayloadFormatVersion") or "2.0"
    if payload not in ("1.0", "2.0"):
        raise event.fail(f"PayloadFormatVersion {payload!r} is unknown: use '1.0' or '2.0'")
    version: PayloadVersion = "1.0" if payload == "1.0" else "2.0"
    if path is None and method is None:
        path, method = "$default", "ANY"  # SAM's catch-all route for an HttpApi event
    elif path is None or method is None:
        missing = "Path" if path is None else "Method"
        raise event.fail(
            f"an HttpApi event needs both Path and Method, or neither (for the $default "
            f"route): add {missing}"
        )
    access = route_access(event, event.function.apis, "http")
    return HttpRoute(path, _methods(method), version, "http", access)


# --- SQS --------------------------------------------------------------------------------


def _sqs_event(event: SamEvent) -> QueueTrigger:
    arn = event.string("Queue")
    if arn is None:
        raise event.fail("an SQS event needs Properties.Queue: add Queue: !GetAtt MyQueue.Arn")
    queue = queue_name_of(arn)
    if queue is None:
        raise event.fail(
            f"Queue {arn!r} is not an SQS queue ARN: use !GetAtt MyQueue.Arn (a queue's "
            "name or !Ref, its URL, will not do)"
        )
    if "FilterCriteria" in event.properties:
        # On AWS, messages that match no filter are deleted unseen; running the function
        # on them instead would quietly differ.
        raise event.fail("FilterCriteria is not supported yet: remove it and filter in code")
    response_types = event.value("FunctionResponseTypes") or []
    if not isinstance(response_types, list) or any(
        item != "ReportBatchItemFailures" for item in response_types
    ):
        raise event.fail(
            f"FunctionResponseTypes {response_types!r} is invalid: use "
            "[ReportBatchItemFailures] or leave it out"
        )
    scaling = event.mapping(event.value("ScalingConfig"), "ScalingConfig")
    batch_size = event.integer("BatchSize")
    window = event.integer("MaximumBatchingWindowInSeconds")
    enabled = event.boolean("Enabled")
    return QueueTrigger(
        queue=queue,
        batch_size=10 if batch_size is None else batch_size,  # SAM's default
        max_batching_window=0 if window is None else window,
        max_concurrency=event.function.integer_value(
            scaling.get("MaximumConcurrency"), event.where("ScalingConfig.MaximumConcurrency")
        ),
        report_batch_item_failures=bool(response_types),
        enabled=True if enabled is None else enabled,
    )


# --- S3 ---------------------------------------------------------------------------------


def _s3_event(event: SamEvent) -> UploadTrigger:
    bucket = event.string("Bucket")
    if bucket is None:
        raise event.fail("an S3 event needs Properties.Bucket: add Bucket: !Ref MyBucket")
    if bucket not in event.function.buckets:
        raise event.fail(
            f"Bucket {bucket!r} is not declared in this template, and SAM only connects S3 "
            "events to a bucket of the same template: declare it as an AWS::S3::Bucket "
            "resource and set Bucket: !Ref ItsLogicalId"
        )
    events = event.value("Events")
    if isinstance(events, str):
        events = [events]
    if not events or not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise event.fail(
            f"Events must be an S3 event type or a list of them, got {events!r}: e.g. "
            "Events: s3:ObjectCreated:*"
        )
    rules: dict[str, str] = {}
    key_filter = event.mapping(event.mapping(event.value("Filter"), "Filter").get("S3Key"), "S3Key")
    for rule in key_filter.get("Rules") or []:
        rule = event.mapping(rule, "each Filter.S3Key.Rules item")
        name, value = rule.get("Name"), rule.get("Value")
        rule_name = name.lower() if isinstance(name, str) else None
        if rule_name not in ("prefix", "suffix") or not isinstance(value, str):
            raise event.fail(
                f"Filter rule {dict(rule)!r} is invalid: write {{Name: prefix, Value: "
                "uploads/}} or {Name: suffix, Value: .jpg}"
            )
        if rule_name in rules:
            raise event.fail(f"Filter has two {rule_name} rules, which S3 refuses: keep one")
        rules[rule_name] = value
    return UploadTrigger(bucket, tuple(events), rules.get("prefix", ""), rules.get("suffix", ""))


EVENT_TYPES: dict[str, Callable[[SamEvent], Trigger | None]] = {
    "Api": _api_event,
    "HttpApi": _http_api_event,
    "SQS": _sqs_event,
    "Schedule": schedule_event,
    "ScheduleV2": schedule_v2_event,
    "EventBridgeRule": rule_event,
    "CloudWatchEvent": rule_event,
    "S3": _s3_event,
}


# Properties each event type reads; others get a note (see `unhonoured`).
READ = {
    "Api": {"Path", "Method", "RestApiId", "Auth", "RequestModel", "RequestParameters"},
    "HttpApi": {"Path", "Method", "PayloadFormatVersion", "ApiId", "Auth"},
    "Schedule": {"Schedule", "Input", "Enabled", "State", "Name", "Description"},
    "S3": {"Bucket", "Events", "Filter"},
}


EVENT_INSTEAD = {
    "FilterCriteria": "ignored: every message reaches the function",
}


def read_events(function: FunctionContext, events: Any) -> list[Trigger]:
    """The triggers of a function's `Events` mapping, each checked as it is read."""
    if events is None:
        return []
    if not isinstance(events, dict):
        raise function.fail("Events must be a mapping of event names to events")
    triggers: list[Trigger] = []
    for name, event in events.items():
        if not isinstance(event, dict):
            raise function.fail(f"event {name!r} must be a mapping with Type and Properties")
        event_type = event.get("Type")
        handler = EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
        if handler is None:
            function.note(
                f"event {name!r} (Type {event_type})",
                "never fires: skylift does not serve this event source; invoke the "
                f"function yourself (skylift invoke); served: {', '.join(EVENT_TYPES)}",
            )
            continue
        properties = event.get("Properties") or {}
        if not isinstance(properties, dict):
            raise function.fail(f"event {name!r}: Properties must be a mapping")
        if event_type in READ:
            for key in properties:
                if key not in READ[event_type]:
                    function.note(
                        f"event {name!r} property {key}", EVENT_INSTEAD.get(key, "ignored")
                    )
        trigger = handler(SamEvent(function, str(name), properties))
        if trigger is None:
            continue
        if not isinstance(trigger, HttpRoute):
            # Checked here too (the spec checks it again) so the message names the event.
            try:
                trigger.validate(function.logical_id)
            except ScheduleError:
                raise
            except DeclarationError as exc:
                detail = str(exc).removeprefix(f"function {function.logical_id!r}: ")
                raise function.fail(f"event {name!r}: {detail}") from None
        triggers.append(trigger)
    return triggers

"""Non-HTTP triggers of a function: queues, schedules and uploads, as plain data.

AWS's names and limits: an SQS event source mapping (BatchSize,
MaximumBatchingWindowInSeconds, ScalingConfig.MaximumConcurrency,
FunctionResponseTypes), an EventBridge schedule (ScheduleExpression, Input, State) and an
S3 notification (Events, Filter prefix/suffix). Validation happens at declaration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skylift.errors import DeclarationError

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def validate_queue_name(name: str) -> None:
    base = name[: -len(".fifo")] if name.endswith(".fifo") else name
    if not isinstance(name, str) or not _QUEUE_NAME.match(base) or len(name) > 80:
        raise DeclarationError(
            f"queue name {name!r} is invalid: use 1-80 letters, digits, '-' or '_' "
            "(and '.fifo' at the end for a FIFO queue)"
        )


def validate_bucket_name(name: str) -> None:
    if (
        not isinstance(name, str)
        or not _BUCKET_NAME.match(name)
        or ".." in name
        or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name)
    ):
        raise DeclarationError(
            f"bucket name {name!r} is invalid: use 3-63 lowercase letters, digits, '.' or "
            "'-', starting and ending with a letter or digit"
        )


@dataclass(frozen=True)
class QueueTrigger:
    """An SQS event source mapping: poll `queue`, invoke with batches of messages."""

    queue: str
    batch_size: int = 10
    max_batching_window: float = 0
    max_concurrency: int | None = None
    report_batch_item_failures: bool = False
    enabled: bool = True

    def validate(self, function: str) -> None:
        def fail(message: str) -> DeclarationError:
            return DeclarationError(
                f"queue trigger on {self.queue!r}: {message}", function=function
            )

        try:
            validate_queue_name(self.queue)
        except DeclarationError as exc:
            raise fail(str(exc)) from None
        fifo = self.queue.endswith(".fifo")
        limit = 10 if fifo else 10000
        if _not_int(self.batch_size) or not 1 <= self.batch_size <= limit:
            raise fail(f"batch_size {self.batch_size!r} is out of range: use 1 to {limit}")
        if _not_number(self.max_batching_window) or not 0 <= self.max_batching_window <= 300:
            raise fail(
                f"max_batching_window {self.max_batching_window!r} is out of range: "
                "use 0 to 300 seconds"
            )
        if self.batch_size > 10 and self.max_batching_window < 1:
            raise fail(
                "a batch_size over 10 needs max_batching_window of at least 1 second, as on AWS"
            )
        if self.max_concurrency is not None and (
            _not_int(self.max_concurrency) or not 2 <= self.max_concurrency <= 1000
        ):
            raise fail(
                f"max_concurrency {self.max_concurrency!r} is out of range: use 2 to 1000 "
                "(ScalingConfig.MaximumConcurrency), or None"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "batch_size": self.batch_size,
            "max_batching_window": self.max_batching_window,
            "max_concurrency": self.max_concurrency,
            "report_batch_item_failures": self.report_batch_item_failures,
            "enabled": self.enabled,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QueueTrigger:
        return cls(**data)


@dataclass(frozen=True)
class ScheduleTrigger:
    """An EventBridge schedule: `rate(...)` or `cron(...)`, optionally with fixed Input."""

    expression: str
    input: str | None = None  # JSON text delivered instead of the Scheduled Event
    enabled: bool = True

    def validate(self, function: str) -> None:
        from skylift.schedules.expressions import parse_schedule

        parse_schedule(self.expression, function=function)  # raises ScheduleError, naming it
        if self.input is not None:
            try:
                json.loads(self.input)
            except (TypeError, ValueError):
                raise DeclarationError(
                    f"schedule {self.expression!r}: Input must be JSON text, got {self.input!r}",
                    function=function,
                ) from None

    def to_dict(self) -> dict[str, Any]:
        return {"expression": self.expression, "input": self.input, "enabled": self.enabled}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScheduleTrigger:
        return cls(**data)


@dataclass(frozen=True)
class UploadTrigger:
    """An S3 notification: objects created or removed in `bucket`, filtered by key."""

    bucket: str
    events: tuple[str, ...] = ("s3:ObjectCreated:*",)
    prefix: str = ""
    suffix: str = ""

    def validate(self, function: str) -> None:
        try:
            validate_bucket_name(self.bucket)
        except DeclarationError as exc:
            raise DeclarationError(str(exc), function=function) from None
        from skylift.events.s3 import check_event_types, check_filter_value

        if not self.events:
            raise DeclarationError(
                f"upload trigger on {self.bucket!r} lists no events: use e.g. "
                "['s3:ObjectCreated:*']",
                function=function,
            )
        check_event_types(self.events, function=function)
        check_filter_value("prefix", self.prefix, function=function)
        check_filter_value("suffix", self.suffix, function=function)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "events": list(self.events),
            "prefix": self.prefix,
            "suffix": self.suffix,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UploadTrigger:
        return cls(data["bucket"], tuple(data["events"]), data["prefix"], data["suffix"])


def _not_int(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)


def _not_number(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, int | float)


@dataclass(frozen=True)
class Destination:
    """Where an asynchronous invocation's record goes: a queue or another function."""

    kind: str  # "queue" or "function"
    name: str

    @classmethod
    def parse(cls, text: str) -> Destination:
        """`queue:NAME`, `function:NAME`, or an SQS / Lambda ARN."""
        if text.startswith("arn:aws:sqs:"):
            return cls("queue", text.rsplit(":", 1)[-1])
        if text.startswith("arn:aws:lambda:"):
            parts = text.split(":")
            if len(parts) >= 7 and parts[5] == "function":
                return cls("function", parts[6])
        kind, sep, name = text.partition(":")
        if sep and kind in ("queue", "function") and name:
            return cls(kind, name)
        raise DeclarationError(
            f"destination {text!r} is not understood: write 'queue:NAME', 'function:NAME', "
            "or an SQS queue / Lambda function ARN"
        )

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class AsyncConfig:
    """What happens to asynchronous (`Event`) invocations: Lambda's EventInvokeConfig
    (MaximumRetryAttempts, MaximumEventAgeInSeconds, DestinationConfig) and the
    function's DeadLetterQueue."""

    max_retries: int = 2
    max_event_age: int = 21600
    on_success: Destination | None = None
    on_failure: Destination | None = None
    dead_letter_queue: str | None = None

    def validate(self, function: str) -> None:
        if _not_int(self.max_retries) or not 0 <= self.max_retries <= 2:
            raise DeclarationError(
                f"retries {self.max_retries!r} is out of range: Lambda allows 0 to 2",
                function=function,
            )
        if _not_int(self.max_event_age) or not 60 <= self.max_event_age <= 21600:
            raise DeclarationError(
                f"max_event_age {self.max_event_age!r} is out of range: use 60 to 21600 seconds",
                function=function,
            )
        for destination in (self.on_success, self.on_failure):
            if destination is None:
                continue
            if destination.kind == "queue":
                validate_queue_name(destination.name)
            elif destination.name == function:
                raise DeclarationError(
                    "a function cannot be its own destination: choose another function or a queue",
                    function=function,
                )
        if self.dead_letter_queue is not None:
            validate_queue_name(self.dead_letter_queue)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_retries": self.max_retries,
            "max_event_age": self.max_event_age,
            "on_success": str(self.on_success) if self.on_success else None,
            "on_failure": str(self.on_failure) if self.on_failure else None,
            "dead_letter_queue": self.dead_letter_queue,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AsyncConfig:
        return cls(
            data["max_retries"],
            data["max_event_age"],
            Destination.parse(data["on_success"]) if data.get("on_success") else None,
            Destination.parse(data["on_failure"]) if data.get("on_failure") else None,
            data.get("dead_letter_queue"),
        )

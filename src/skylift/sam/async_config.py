"""A SAM function's asynchronous invocation settings: `EventInvokeConfig`
(MaximumRetryAttempts, MaximumEventAgeInSeconds, DestinationConfig) and
`DeadLetterQueue`, as `AsyncConfig`."""

from __future__ import annotations

from typing import Any, Protocol

from skylift.errors import DeclarationError
from skylift.triggers import AsyncConfig, Destination

_KINDS = {"SQS": "queue", "Lambda": "function"}


class Resolving(Protocol):
    def fail(self, message: str) -> DeclarationError: ...

    def resolve(self, value: Any, where: str) -> Any: ...


def async_config(function: Resolving, properties: dict[str, Any]) -> AsyncConfig:
    config = function.resolve(properties.get("EventInvokeConfig"), "EventInvokeConfig") or {}
    dlq = function.resolve(properties.get("DeadLetterQueue"), "DeadLetterQueue")
    if not isinstance(config, dict):
        raise function.fail("EventInvokeConfig must be a mapping")
    default = AsyncConfig()
    retries = config.get("MaximumRetryAttempts", default.max_retries)
    age = config.get("MaximumEventAgeInSeconds", default.max_event_age)
    destinations = config.get("DestinationConfig") or {}
    return AsyncConfig(
        int(retries) if isinstance(retries, str) and retries.isdigit() else retries,
        int(age) if isinstance(age, str) and age.isdigit() else age,
        _destination(function, destinations.get("OnSuccess"), "OnSuccess"),
        _destination(function, destinations.get("OnFailure"), "OnFailure"),
        _dead_letter_queue(function, dlq),
    )


def _destination(function: Resolving, raw: Any, where: str) -> Destination | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or "Destination" not in raw:
        raise function.fail(
            f"EventInvokeConfig.DestinationConfig.{where} needs Type and Destination "
            "(an SQS queue or Lambda function ARN)"
        )
    kind = raw.get("Type")
    target = raw["Destination"]
    if kind is not None and kind not in _KINDS:
        raise function.fail(
            f"{where} destination type {kind!r} is not supported: skylift delivers to SQS "
            "queues and Lambda functions"
        )
    if not isinstance(target, str):
        raise function.fail(f"{where} Destination must be an ARN, got {target!r}")
    try:
        destination = Destination.parse(target)
    except DeclarationError as exc:
        raise function.fail(f"{where}: {exc}") from None
    if kind is not None and _KINDS[kind] != destination.kind:
        raise function.fail(f"{where} says Type {kind} but names a {destination.kind}")
    return destination


def _dead_letter_queue(function: Resolving, raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("Type") != "SQS" or "TargetArn" not in raw:
        raise function.fail(
            "DeadLetterQueue must be {Type: SQS, TargetArn: <queue ARN>}: skylift delivers "
            "dead letters to SQS queues"
        )
    target = raw["TargetArn"]
    if not isinstance(target, str) or not target.startswith("arn:aws:sqs:"):
        raise function.fail(f"DeadLetterQueue TargetArn must be an SQS queue ARN, got {target!r}")
    return target.rsplit(":", 1)[-1]

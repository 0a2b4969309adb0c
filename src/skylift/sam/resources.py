"""The queues and buckets a SAM template declares, and what `Ref`/`Fn::GetAtt` return for them.

`AWS::SQS::Queue` and `AWS::S3::Bucket` resources become `spec.Resources`, which skylift
creates at startup. Names follow CloudFormation where the template gives one (QueueName,
BucketName); where it does not, AWS would generate `{stack}-{LogicalId}-{random}`, and
skylift uses the logical id instead (lower-cased for a bucket, since S3 names are
lowercase), as it does for functions. Queue properties become SQS attribute strings and
are checked as SQS checks them, so a bad one fails when the template loads.

`Ref`/`Fn::GetAtt` values follow the "Return values" sections of the CloudFormation
reference for AWS::SQS::Queue, AWS::S3::Bucket and AWS::Lambda::Function, in the
stand-in account `ACCOUNT_ID`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from skylift.errors import DeclarationError
from skylift.queues.attributes import QueueSettings, check_queue_name
from skylift.queues.errors import QueueError
from skylift.runtime.environ import ACCOUNT_ID, function_arn
from skylift.sam.cfn_yaml import NO_VALUE, Physical, Resolver, StandIn, Unresolvable, kind
from skylift.spec import FunctionSpec, Resources
from skylift.triggers import validate_bucket_name

SQS_QUEUE = "AWS::SQS::Queue"
S3_BUCKET = "AWS::S3::Bucket"

log = logging.getLogger("skylift.sam")

# AWS::SQS::Queue properties that are SQS attributes of the same name. The encryption and
# FIFO-throughput ones change nothing locally, but SQS (and skylift's queues) accept them.
_QUEUE_PROPERTIES = (
    "FifoQueue",
    "ContentBasedDeduplication",
    "VisibilityTimeout",
    "DelaySeconds",
    "MessageRetentionPeriod",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
)
_JSON_PROPERTIES = frozenset({"RedrivePolicy", "RedriveAllowPolicy"})


def queue_url(name: str, region: str) -> str:
    return f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{name}"


def queue_arn(name: str, region: str) -> str:
    return f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}"


def queue_name_of(arn: str) -> str | None:
    """The queue name in an SQS queue ARN (`arn:aws:sqs:{region}:{account}:{name}`), else None."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not parts[5]:
        return None
    return parts[5]


def queue_physical(name: str, region: str) -> Physical:
    url = queue_url(name, region)
    return Physical(url, {"Arn": queue_arn(name, region), "QueueName": name, "QueueUrl": url})


def bucket_physical(name: str, region: str) -> Physical:
    return Physical(
        name,
        {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
            "DualStackDomainName": f"{name}.s3.dualstack.{region}.amazonaws.com",
        },
    )


def function_physical(name: str, region: str) -> Physical:
    return Physical(name, {"Arn": function_arn(name, region)})


def warn_stand_ins(stand_ins: Iterable[StandIn], where: str) -> None:
    """Log that `where` got a placeholder for each GetAtt only AWS could answer."""
    for stand_in in stand_ins:
        log.warning(
            "%s uses Fn::GetAtt %s, which skylift cannot know (it does not create %s "
            "resources); it gets the stand-in value %r instead, so code that calls AWS "
            "with it will fail",
            where,
            stand_in.expression,
            stand_in.resource_type,
            stand_in.value,
        )


def default_attributes(name: str) -> dict[str, str]:
    """The attributes of a queue the template only names: SQS's defaults, FIFO by suffix."""
    return {"FifoQueue": "true"} if name.endswith(".fifo") else {}


class TemplateResources:
    """The queues and buckets of one template, declared to its `Resolver` by logical id.

    Construct it before reading functions, so `!Ref`/`!GetAtt` of a queue or bucket
    resolve anywhere; then `check_names()`, and `resources(specs)` once specs exist.
    """

    def __init__(self, resources: Mapping[str, Any], resolver: Resolver) -> None:
        self._resolver = resolver
        self._queues: dict[str, Mapping[str, Any]] = {}  # logical id -> Properties
        self._buckets: dict[str, Mapping[str, Any]] = {}
        for raw_id, resource in resources.items():
            logical_id = str(raw_id)
            if not isinstance(resource, dict) or resource.get("Type") not in (
                SQS_QUEUE,
                S3_BUCKET,
            ):
                continue
            is_queue = resource["Type"] == SQS_QUEUE
            noun = "queue" if is_queue else "bucket"
            if not self._included(noun, logical_id, resource.get("Condition")):
                continue
            properties = resource.get("Properties") or {}
            if not isinstance(properties, dict):
                raise _fail(
                    noun, logical_id, f"Properties must be a mapping, got {kind(properties)}"
                )
            if is_queue:
                self._queues[logical_id] = properties
                resolver.declare(logical_id, partial(self._queue, logical_id))
            else:
                self._buckets[logical_id] = properties
                resolver.declare(logical_id, partial(self._bucket, logical_id))

    @property
    def bucket_names(self) -> frozenset[str]:
        return frozenset(self._name(logical_id) for logical_id in self._buckets)

    def check_names(self) -> None:
        """Name every queue and bucket now, so a bad name fails before any function is read."""
        for noun, declared in (("queue", self._queues), ("bucket", self._buckets)):
            owners: dict[str, str] = {}
            for logical_id in declared:
                name = self._name(logical_id)
                if name in owners:
                    raise _fail(
                        noun,
                        logical_id,
                        f"name {name!r} is also used by {noun} {owners[name]!r}: give each "
                        f"{noun} its own {'QueueName' if noun == 'queue' else 'BucketName'}",
                    )
                owners[name] = logical_id

    def resources(self, specs: Iterable[FunctionSpec]) -> Resources:
        """Every declared queue and bucket, plus queues only named by ARN (DLQs, SQS events)."""
        queues: dict[str, Mapping[str, str]] = {}
        named_only: list[str] = []
        for logical_id in self._queues:
            name = self._name(logical_id)
            attributes, dead_letter = self._queue_attributes(logical_id, name)
            queues[name] = attributes
            if dead_letter is not None:
                named_only.append(dead_letter)
        named_only.extend(trigger.queue for spec in specs for trigger in spec.queues)
        for name in named_only:
            queues.setdefault(name, default_attributes(name))
        buckets = tuple(self._name(logical_id) for logical_id in self._buckets)
        return Resources(queues=queues, buckets=buckets)

    # --- names ---------------------------------------------------------------------------

    def _name(self, logical_id: str) -> str:
        """The queue's or bucket's name (a queue's Ref is its URL, not its name)."""
        physical = self._resolver.physical(logical_id)
        assert physical is not None  # declared in __init__
        return physical.attributes.get("QueueName", physical.ref)

    def _queue(self, logical_id: str) -> Physical:
        properties = self._queues[logical_id]
        fifo = self._value("queue", logical_id, properties, "FifoQueue")
        if fifo is not None and not isinstance(fifo, bool):
            fifo = str(fifo).lower() == "true"  # a parameter's "true"; SQS checks the rest
        name = self._string("queue", logical_id, properties, "QueueName")
        if name is None:
            # AWS requires the suffix on a FIFO queue's name, generated or not.
            name = f"{logical_id}.fifo" if fifo else logical_id
            fix = "set QueueName to a valid name"
        else:
            fix = "fix QueueName"
        try:
            check_queue_name(name, bool(fifo))
        except QueueError as exc:
            raise _fail("queue", logical_id, f"{exc.message} ({fix})") from None
        return queue_physical(name, self._resolver.region)

    def _bucket(self, logical_id: str) -> Physical:
        name = self._string("bucket", logical_id, self._buckets[logical_id], "BucketName")
        fix = "fix BucketName"
        if name is None:
            name = logical_id.lower()
            fix = "set BucketName to a valid name"
        try:
            validate_bucket_name(name)
        except DeclarationError as exc:
            raise _fail("bucket", logical_id, f"{exc}; {fix}") from None
        return bucket_physical(name, self._resolver.region)

    # --- attributes ----------------------------------------------------------------------

    def _queue_attributes(self, logical_id: str, name: str) -> tuple[dict[str, str], str | None]:
        """The queue's SQS attributes, checked as SQS would, and its dead-letter queue."""
        properties = self._queues[logical_id]
        attributes: dict[str, str] = {}
        dead_letter: str | None = None
        for key in _QUEUE_PROPERTIES:
            value = self._value("queue", logical_id, properties, key)
            if value is None:
                continue
            if key == "RedrivePolicy":
                dead_letter, attributes[key] = self._redrive_policy(logical_id, name, value)
            elif key in _JSON_PROPERTIES:
                attributes[key] = value if isinstance(value, str) else json.dumps(value)
            elif isinstance(value, bool):
                attributes[key] = "true" if value else "false"
            elif isinstance(value, str | int | float):
                attributes[key] = str(value)
            else:
                raise _fail("queue", logical_id, f"{key} must be a single value, got {kind(value)}")
        try:
            QueueSettings.create(name, attributes)
        except QueueError as exc:
            raise _fail("queue", logical_id, exc.message) from None
        return attributes, dead_letter

    def _redrive_policy(self, logical_id: str, name: str, value: Any) -> tuple[str, str]:
        def fail(message: str) -> DeclarationError:
            return _fail("queue", logical_id, f"RedrivePolicy {message}")

        if isinstance(value, str):  # CloudFormation takes a Json property as text too
            try:
                value = json.loads(value)
            except ValueError:
                raise fail("is not JSON: write it as a mapping") from None
        if not isinstance(value, dict):
            raise fail(f"must be a mapping, got {kind(value)}")
        arn, count = value.get("deadLetterTargetArn"), value.get("maxReceiveCount")
        dead_letter = queue_name_of(arn) if isinstance(arn, str) else None
        if dead_letter is None:
            raise fail(
                f"deadLetterTargetArn {arn!r} is not an SQS queue ARN: use "
                "!GetAtt MyDeadLetterQueue.Arn"
            )
        if dead_letter.endswith(".fifo") != name.endswith(".fifo"):
            kinds = ("FIFO", "standard") if name.endswith(".fifo") else ("standard", "FIFO")
            raise fail(
                f"sends a {kinds[0]} queue's messages to the {kinds[1]} queue {dead_letter!r}: "
                "a dead-letter queue must be of the same type as its source queue"
            )
        if isinstance(count, str) and count.strip().isdigit():
            count = int(count)  # a parameter's value is text; SQS reports a number
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
            raise fail(f"maxReceiveCount {count!r} is out of range: use 1 to 1000")
        policy = {"deadLetterTargetArn": arn, "maxReceiveCount": count}
        return dead_letter, json.dumps(policy, separators=(",", ":"))

    # --- reading properties --------------------------------------------------------------

    def _included(self, noun: str, logical_id: str, condition: Any) -> bool:
        if condition is None:
            return True
        try:
            return self._resolver.condition(condition)
        except Unresolvable as exc:
            raise _fail(
                noun, logical_id, f"Condition {condition!r} cannot be evaluated: {exc}"
            ) from None

    def _value(self, noun: str, logical_id: str, properties: Mapping[str, Any], key: str) -> Any:
        before = len(self._resolver.stand_ins)
        try:
            value = self._resolver.resolve(properties.get(key))
        except Unresolvable as exc:
            raise _fail(
                noun,
                logical_id,
                f"{key} cannot be resolved: {exc}; use a literal value or a parameter with "
                "a Default",
            ) from None
        warn_stand_ins(self._resolver.stand_ins[before:], f"{noun} {logical_id!r} {key}")
        return None if value is NO_VALUE else value

    def _string(
        self, noun: str, logical_id: str, properties: Mapping[str, Any], key: str
    ) -> str | None:
        value = self._value(noun, logical_id, properties, key)
        if value is not None and not isinstance(value, str):
            raise _fail(noun, logical_id, f"{key} must be a string, got {kind(value)}")
        return value


def _fail(noun: str, logical_id: str, message: str) -> DeclarationError:
    return DeclarationError(f"{noun} {logical_id!r}: {message}")

"""A function's triggers as SAM `Events`, and the queues and buckets they name as resources.

The inverse of `skylift.sam_events` and `skylift.sam_resources`: loading the template
these write gives back the same triggers and SQS attributes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from skylift.spec import FunctionSpec, HttpRoute
from skylift.triggers import QueueTrigger, ScheduleTrigger, UploadTrigger

Template = dict[str, Any]

# SQS attributes whose CloudFormation property is a number or a boolean, not text.
_INTEGERS = frozenset(
    {
        "VisibilityTimeout",
        "DelaySeconds",
        "MessageRetentionPeriod",
        "MaximumMessageSize",
        "ReceiveMessageWaitTimeSeconds",
        "KmsDataKeyReusePeriodSeconds",
    }
)
_BOOLEANS = frozenset({"FifoQueue", "ContentBasedDeduplication", "SqsManagedSseEnabled"})
_JSON = frozenset({"RedrivePolicy", "RedriveAllowPolicy"})


def logical_id(name: str, suffix: str = "") -> str:
    """A CloudFormation logical id (letters and digits) from a skylift name."""
    words = re.split(r"[^A-Za-z0-9]+", name)
    return "".join(w[:1].upper() + w[1:] for w in words if w) + suffix or f"Resource{suffix}"


class Ids:
    """Logical ids of the template's queues, buckets and functions, each unique."""

    def __init__(self) -> None:
        self.queues: dict[str, str] = {}
        self.buckets: dict[str, str] = {}
        self.functions: dict[str, str] = {}
        self._taken: set[str] = set()

    def _unique(self, wanted: str) -> str:
        candidate, n = wanted, 2
        while candidate in self._taken:
            candidate, n = f"{wanted}{n}", n + 1
        self._taken.add(candidate)
        return candidate

    def queue(self, name: str) -> str:
        if name not in self.queues:
            self.queues[name] = self._unique(logical_id(name.removesuffix(".fifo"), "Queue"))
        return self.queues[name]

    def bucket(self, name: str) -> str:
        if name not in self.buckets:
            self.buckets[name] = self._unique(logical_id(name, "Bucket"))
        return self.buckets[name]

    def function(self, name: str) -> str:
        if name not in self.functions:
            self.functions[name] = self._unique(logical_id(name))
        return self.functions[name]


def arn(logical: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical, "Arn"]}


def queue_resource(ids: Ids, name: str, attributes: Mapping[str, str]) -> Template:
    properties: dict[str, Any] = {"QueueName": name}
    for key, value in sorted(attributes.items()):
        if key in _INTEGERS:
            properties[key] = int(value)
        elif key in _BOOLEANS:
            properties[key] = value.lower() == "true"
        elif key in _JSON:
            policy = json.loads(value)
            target = policy.get("deadLetterTargetArn")
            if isinstance(target, str) and target.startswith("arn:aws:sqs:"):
                policy["deadLetterTargetArn"] = arn(ids.queue(target.rsplit(":", 1)[-1]))
            properties[key] = policy
        else:
            properties[key] = value
    return {"Type": "AWS::SQS::Queue", "Properties": properties}


def bucket_resource(name: str) -> Template:
    return {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": name}}


def events(ids: Ids, spec: FunctionSpec) -> dict[str, Any]:
    """The function's `Events`, named by kind and position."""
    result: dict[str, Any] = {}
    for route in spec.routes:
        for method in route.methods:
            result[f"{'Api' if route.api == 'rest' else 'HttpApi'}{len(result) + 1}"] = _route(
                route, method
            )
    for queue in spec.queues:
        result[f"Queue{len(result) + 1}"] = _queue(ids, queue)
    for schedule in spec.schedules:
        result[f"Schedule{len(result) + 1}"] = _schedule(schedule)
    for upload in spec.uploads:
        result[f"Upload{len(result) + 1}"] = _upload(ids, upload)
    return result


def _route(route: HttpRoute, method: str) -> dict[str, Any]:
    if route.api == "rest":
        return {"Type": "Api", "Properties": {"Path": route.path, "Method": method.lower()}}
    properties: dict[str, Any] = {}
    if route.path != "$default":  # SAM's catch-all: an HttpApi event without Path and Method
        properties = {"Path": route.path, "Method": method.lower()}
    if route.payload == "1.0":
        properties["PayloadFormatVersion"] = "1.0"
    return {"Type": "HttpApi", "Properties": properties}


def _queue(ids: Ids, trigger: QueueTrigger) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "Queue": arn(ids.queue(trigger.queue)),
        "BatchSize": trigger.batch_size,
    }
    if trigger.max_batching_window:
        # An integer on AWS; skylift takes fractions, so round up rather than batch less.
        properties["MaximumBatchingWindowInSeconds"] = math.ceil(trigger.max_batching_window)
    if trigger.max_concurrency is not None:
        properties["ScalingConfig"] = {"MaximumConcurrency": trigger.max_concurrency}
    if trigger.report_batch_item_failures:
        properties["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    if not trigger.enabled:
        properties["Enabled"] = False
    return {"Type": "SQS", "Properties": properties}


def _schedule(trigger: ScheduleTrigger) -> dict[str, Any]:
    properties: dict[str, Any] = {"Schedule": trigger.expression}
    if trigger.input is not None:
        properties["Input"] = trigger.input
    if not trigger.enabled:
        properties["Enabled"] = False
    return {"Type": "Schedule", "Properties": properties}


def _upload(ids: Ids, trigger: UploadTrigger) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "Bucket": {"Ref": ids.bucket(trigger.bucket)},
        "Events": list(trigger.events),
    }
    rules = [
        {"Name": name, "Value": value}
        for name, value in (("prefix", trigger.prefix), ("suffix", trigger.suffix))
        if value
    ]
    if rules:
        properties["Filter"] = {"S3Key": {"Rules": rules}}
    return {"Type": "S3", "Properties": properties}

"""Queue attributes: SQS's names, defaults and limits, and the typed settings they parse to.

Limits follow the SQS API reference for CreateQueue/SetQueueAttributes, with the 2025
message size limit (``MaximumMessageSize`` up to and by default 1,048,576 bytes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from skylift.queues.errors import InvalidAttributeName, InvalidAttributeValue, InvalidParameterValue

# SQS attribute name -> (settings field, minimum, maximum); the default lives on QueueSettings.
INTEGER_ATTRIBUTES: dict[str, tuple[str, int, int]] = {
    "VisibilityTimeout": ("visibility_timeout", 0, 43_200),
    "DelaySeconds": ("delay_seconds", 0, 900),
    "MessageRetentionPeriod": ("retention_seconds", 60, 1_209_600),
    "MaximumMessageSize": ("maximum_message_size", 1_024, 1_048_576),
    "ReceiveMessageWaitTimeSeconds": ("receive_wait_seconds", 0, 20),
}
# Computed by the backend; SQS refuses to set them.
READ_ONLY_ATTRIBUTES = frozenset(
    {
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
        "CreatedTimestamp",
        "LastModifiedTimestamp",
        "QueueArn",
    }
)
# Accepted and returned so templates written for SQS work, but they change nothing here:
# skylift has no IAM policies, no KMS and no high-throughput FIFO partitions. An empty Policy
# or RedriveAllowPolicy removes it, as in SQS.
STORED_ATTRIBUTES: dict[str, frozenset[str] | None] = {
    "Policy": None,
    "RedriveAllowPolicy": None,
    "KmsMasterKeyId": None,
    "KmsDataKeyReusePeriodSeconds": None,
    "SqsManagedSseEnabled": frozenset({"true", "false"}),
}
FIFO_STORED_ATTRIBUTES: dict[str, frozenset[str] | None] = {
    "DeduplicationScope": frozenset({"queue", "messageGroup"}),
    "FifoThroughputLimit": frozenset({"perQueue", "perMessageGroupId"}),
}
FIFO_DEFAULTS = {"DeduplicationScope": "queue", "FifoThroughputLimit": "perQueue"}
_REMOVED_WHEN_EMPTY = frozenset({"Policy", "RedriveAllowPolicy"})
_SSE_CONFLICT = (
    "You can use one type of server-side encryption (SSE) at one time. You can either enable "
    "KMS SSE or SQS SSE."
)

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
MAX_TAGS = 50  # per queue, as in SQS
_INTEGER = re.compile(r"-?[0-9]{1,12}")


def check_queue_name(name: str, fifo: bool) -> None:
    """Raise InvalidParameterValue unless ``name`` is a valid queue name of this type."""
    stem = name.removesuffix(".fifo")
    # The ".fifo" suffix counts towards the 80 characters.
    valid = _QUEUE_NAME.fullmatch(stem) is not None and len(name) <= 80
    if fifo and (not name.endswith(".fifo") or not valid):
        raise InvalidParameterValue(
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or "
            "underscores, must end with .fifo suffix and be 1 to 80 in length.",
            hint=f"a FIFO queue's name must end with the .fifo suffix: rename {name!r} to "
            f"'{stem[:75]}.fifo'"
            if valid
            else None,
        )
    if not fifo and (name.endswith(".fifo") or not valid):
        raise InvalidParameterValue(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
            hint=f"{name!r} ends with .fifo: set the FifoQueue attribute to 'true' or drop the "
            "suffix"
            if valid
            else None,
        )


def check_tags(tags: Mapping[str, str]) -> None:
    """Raise InvalidParameterValue unless tags are as SQS takes them: keys of 1 to 128
    characters, values of at most 256, at most 50 in one request."""
    if len(tags) > MAX_TAGS:
        raise InvalidParameterValue(
            f"Too many tags added for queue. Maximum is {MAX_TAGS}.",
        )
    for key, value in tags.items():
        if not 1 <= len(key) <= 128:
            raise InvalidParameterValue(
                "Tag key must be between 1 and 128 characters.", hint=f"{key!r} is not"
            )
        if len(value) > 256:
            raise InvalidParameterValue(
                "Tag value must be less than 256 characters.", hint=f"the value of {key!r} is not"
            )


def queue_name_from_arn(arn: str) -> tuple[str, str, str]:
    """Split ``arn:aws:sqs:{region}:{account}:{name}`` into (region, account, name)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not parts[5]:
        raise InvalidAttributeValue(
            "Invalid value for deadLetterTargetArn.",
            hint=f"{arn!r} is not an SQS queue ARN; use the QueueArn attribute of the "
            "dead-letter queue (arn:aws:sqs:{region}:{account}:{name})",
        )
    return parts[3], parts[4], parts[5]


@dataclass(frozen=True, slots=True)
class RedrivePolicy:
    """Where messages go after ``max_receive_count`` receives without a delete."""

    dead_letter_target_arn: str
    max_receive_count: int

    @property
    def dead_letter_queue(self) -> str:
        return queue_name_from_arn(self.dead_letter_target_arn)[2]

    def to_json(self) -> str:
        # SQS returns maxReceiveCount as a number whatever type it was given as.
        return json.dumps(
            {
                "deadLetterTargetArn": self.dead_letter_target_arn,
                "maxReceiveCount": self.max_receive_count,
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, value: str) -> RedrivePolicy:
        hint = 'use {"deadLetterTargetArn": "<dead-letter queue ARN>", "maxReceiveCount": 5}'
        prefix = f"Value {value} for parameter RedrivePolicy is invalid. Reason:"
        try:
            document: Any = json.loads(value)
        except ValueError:
            raise InvalidAttributeValue(
                f"{prefix} Redrive policy is not a valid JSON map.", hint=hint
            ) from None
        if not isinstance(document, dict):
            raise InvalidAttributeValue(
                f"{prefix} Redrive policy is not a valid JSON map.", hint=hint
            )
        for required in ("deadLetterTargetArn", "maxReceiveCount"):
            if required not in document:
                raise InvalidAttributeValue(
                    f"{prefix} Redrive policy does not contain mandatory attribute: {required}.",
                    hint=hint,
                )
        if len(document) != 2:
            raise InvalidAttributeValue(
                f"{prefix} Only following attributes are supported: [deadLetterTargetArn, "
                "maxReceiveCount].",
                hint=hint,
            )
        arn, count = document["deadLetterTargetArn"], document["maxReceiveCount"]
        if isinstance(count, str) and count.isdigit():
            count = int(count)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
            raise InvalidAttributeValue(
                f"{prefix} Invalid value for maxReceiveCount: {count}, valid values are from 1 "
                "to 1000 both inclusive."
            )
        if not isinstance(arn, str):
            raise InvalidAttributeValue(f"{prefix} Invalid value for deadLetterTargetArn.")
        try:
            queue_name_from_arn(arn)
        except InvalidAttributeValue as error:
            raise InvalidAttributeValue(
                f"{prefix} Invalid value for deadLetterTargetArn.", hint=error.hint
            ) from None
        return cls(arn, count)


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """A queue's configurable attributes, parsed and validated.

    Example: ``QueueSettings.create("jobs", {"VisibilityTimeout": "60"}).visibility_timeout``
    is ``60``.
    """

    fifo: bool = False
    visibility_timeout: int = 30
    delay_seconds: int = 0
    retention_seconds: int = 345_600
    maximum_message_size: int = 1_048_576
    receive_wait_seconds: int = 0
    content_based_deduplication: bool = False
    redrive_policy: RedrivePolicy | None = None
    stored: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, name: str, attributes: Mapping[str, str]) -> QueueSettings:
        """Settings for a new queue; validates the name against the queue type."""
        fifo_value = attributes.get("FifoQueue", "false")
        if fifo_value.lower() not in ("true", "false"):
            raise InvalidAttributeValue(
                "Invalid value for the parameter FifoQueue.", hint="use 'true' or 'false'"
            )
        fifo = fifo_value.lower() == "true"
        if "FifoQueue" in attributes and not fifo:
            # SQS knows the attribute only on FIFO queues, even set to false.
            raise InvalidAttributeName(
                "Unknown Attribute FifoQueue.",
                hint="leave FifoQueue out to create a standard queue",
            )
        check_queue_name(name, fifo)
        base = cls(fifo=fifo, stored=dict(FIFO_DEFAULTS) if fifo else {})
        return base._apply({k: v for k, v in attributes.items() if k != "FifoQueue"})

    def update(self, attributes: Mapping[str, str]) -> QueueSettings:
        """These settings with ``attributes`` applied, as SetQueueAttributes does."""
        if "FifoQueue" in attributes:
            raise InvalidAttributeName(
                "Invalid attribute name FifoQueue.",
                hint="FifoQueue can only be set when a queue is created; create a new queue "
                "to change the queue type",
            )
        return self._apply(attributes)

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, str]) -> QueueSettings:
        """Rebuild settings from ``to_attributes()`` output (as stored by a backend)."""
        fifo = attributes.get("FifoQueue") == "true"
        rest = {k: v for k, v in attributes.items() if k != "FifoQueue"}
        return cls(fifo=fifo)._apply(rest)

    def to_attributes(self) -> dict[str, str]:
        """The configurable attributes as SQS reports them."""
        attributes = {
            name: str(getattr(self, field_name))
            for name, (field_name, _, _) in INTEGER_ATTRIBUTES.items()
        }
        if self.redrive_policy is not None:
            attributes["RedrivePolicy"] = self.redrive_policy.to_json()
        if self.fifo:
            attributes["FifoQueue"] = "true"
            attributes["ContentBasedDeduplication"] = str(self.content_based_deduplication).lower()
        attributes.update(self.stored)
        # Queues are encrypted at rest with SQS-owned keys by default (since 2022), unless
        # they name a KMS key.
        if "SqsManagedSseEnabled" not in attributes:
            kms = "KmsMasterKeyId" in attributes
            attributes["SqsManagedSseEnabled"] = "false" if kms else "true"
        return attributes

    def _apply(self, attributes: Mapping[str, str]) -> QueueSettings:
        changes: dict[str, Any] = {}
        stored = dict(self.stored)
        for name, value in attributes.items():
            if name in INTEGER_ATTRIBUTES:
                field_name, low, high = INTEGER_ATTRIBUTES[name]
                changes[field_name] = _integer(name, value, low, high)
            elif name == "RedrivePolicy":
                changes["redrive_policy"] = RedrivePolicy.parse(value) if value else None
            elif name == "ContentBasedDeduplication":
                if not self.fifo:
                    raise InvalidAttributeName(
                        "You can specify ContentBasedDeduplication only when FifoQueue is "
                        "set to true."
                    )
                changes["content_based_deduplication"] = _boolean(name, value)
            elif name in _REMOVED_WHEN_EMPTY and value == "":
                stored.pop(name, None)
            elif name in STORED_ATTRIBUTES or name in FIFO_STORED_ATTRIBUTES:
                stored[name] = _stored(name, value, self.fifo)
            elif name in READ_ONLY_ATTRIBUTES:
                raise InvalidAttributeName(
                    f"Unknown Attribute {name}.",
                    hint=f"{name} is computed by the queue and cannot be set",
                )
            else:
                raise InvalidAttributeName(
                    f"Unknown Attribute {name}.",
                    hint="settable attributes are "
                    + ", ".join(sorted(settable_attribute_names(self.fifo))),
                )
        if stored.get("KmsMasterKeyId") and stored.get("SqsManagedSseEnabled") == "true":
            if attributes.get("SqsManagedSseEnabled") == "true":
                raise InvalidAttributeName(_SSE_CONFLICT)
            stored["SqsManagedSseEnabled"] = "false"  # naming a key switches SQS's SSE off
        return replace(self, stored=stored, **changes)


def settable_attribute_names(fifo: bool) -> set[str]:
    names = {*INTEGER_ATTRIBUTES, "RedrivePolicy", *STORED_ATTRIBUTES}
    if fifo:
        names |= {"ContentBasedDeduplication", *FIFO_STORED_ATTRIBUTES}
    return names


def first_difference(existing: QueueSettings, requested: Mapping[str, str]) -> str | None:
    """The first requested attribute whose value differs from ``existing``'s, if any.

    CreateQueue on an existing queue succeeds only when the given attributes all match.
    """
    wanted = QueueSettings(fifo=existing.fifo)._apply(
        {k: v for k, v in requested.items() if k != "FifoQueue"}
    )
    if "FifoQueue" in requested and requested["FifoQueue"].lower() != str(existing.fifo).lower():
        return "FifoQueue"
    current, normalized = existing.to_attributes(), wanted.to_attributes()
    for name in requested:
        if name != "FifoQueue" and current.get(name) != normalized.get(name):
            return name
    return None


def _integer(name: str, value: str, low: int, high: int) -> int:
    text = value.strip()
    if _INTEGER.fullmatch(text) is None or not low <= int(text) <= high:
        raise InvalidAttributeValue(
            f"Invalid value for the parameter {name}.",
            hint=f"{value!r}: use an integer from {low} to {high}",
        )
    return int(text)


def _boolean(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise InvalidAttributeValue(
            f"Invalid value for the parameter {name}.", hint=f"{value!r}: use 'true' or 'false'"
        )
    return value.lower() == "true"


def _stored(name: str, value: str, fifo: bool) -> str:
    if name in FIFO_STORED_ATTRIBUTES and not fifo:
        raise InvalidAttributeName(f"Unknown Attribute {name}.", hint="it needs a FIFO queue")
    allowed = STORED_ATTRIBUTES.get(name) or FIFO_STORED_ATTRIBUTES.get(name)
    if allowed is not None and value not in allowed:
        raise InvalidAttributeValue(
            f"Invalid value for the parameter {name}.",
            hint=f"{value!r}: use one of " + ", ".join(sorted(allowed)),
        )
    return value

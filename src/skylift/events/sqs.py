"""The SQS event Lambda's event source mapping delivers: `{"Records": [...]}`.

Follows "Using Lambda with Amazon SQS" (example standard and FIFO queue message events):
message attributes arrive camelCased (`stringValue`, `binaryValue` as base64,
`stringListValues`, `binaryListValues`, `dataType`), system attributes as strings.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from skylift.queues.protocol import MessageAttributeValue, ReceivedMessage

# The system attributes Lambda passes through in each record, in AWS's order. AWSTraceHeader
# is there when the message was sent with that system attribute: the invoker reads it from
# record["attributes"]["AWSTraceHeader"] to carry the trace into the invocation.
_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "AWSTraceHeader",
    "SentTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "SenderId",
    "MessageDeduplicationId",
    "ApproximateFirstReceiveTimestamp",
)


def _attribute(value: MessageAttributeValue) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    out["stringListValues"] = []
    out["binaryListValues"] = []
    out["dataType"] = value["DataType"]
    return out


def sqs_record(message: ReceivedMessage, queue_arn: str, region: str) -> dict[str, Any]:
    """One record of the event, for one received message."""
    attributes = {k: message.attributes[k] for k in _ATTRIBUTES if k in message.attributes}
    record: dict[str, Any] = {
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {
            name: _attribute(value) for name, value in message.message_attributes.items()
        },
        "md5OfBody": message.md5_of_body,
    }
    if message.md5_of_message_attributes:
        record["md5OfMessageAttributes"] = message.md5_of_message_attributes
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


def sqs_event(messages: Iterable[ReceivedMessage], queue_arn: str, region: str) -> dict[str, Any]:
    """The whole event for a batch."""
    return {"Records": [sqs_record(m, queue_arn, region) for m in messages]}

"""How SQS's answers are shaped: send results, batch results, received messages (with the
attributes a request selects), and SQS's habit of leaving out empty members."""

from __future__ import annotations

import base64
from typing import Any

from skylift.queues.errors import QueueError
from skylift.queues.messages import md5_of_message_attributes
from skylift.queues.protocol import MessageAttributeValue, ReceivedMessage, SendResult

Result = dict[str, Any]


def sent(result: SendResult) -> Result:
    return present(
        {
            "MessageId": result.message_id,
            "MD5OfMessageBody": result.md5_of_body,
            "MD5OfMessageAttributes": result.md5_of_message_attributes,
            "MD5OfMessageSystemAttributes": result.md5_of_message_system_attributes,
            "SequenceNumber": result.sequence_number,
        }
    )


def batch_result(successful: list[Result], ids: list[str], failed: dict[int, QueueError]) -> Result:
    return {
        "Successful": successful,
        "Failed": [
            {
                "Id": ids[i],
                "SenderFault": error.sender_fault,
                "Code": error.aws_query_code,
                "Message": error.aws_message,
            }
            for i, error in sorted(failed.items())
        ],
    }


def received(message: ReceivedMessage, system: set[str], user: list[str]) -> Result:
    """A received message as ReceiveMessage answers it, with the system attributes
    (AttributeNames) and message attributes (MessageAttributeNames) the request selects."""
    attributes = message.attributes
    if "All" not in system:
        attributes = {k: v for k, v in attributes.items() if k in system}
    chosen = {k: v for k, v in message.message_attributes.items() if selected(k, user)}
    return present(
        {
            "MessageId": message.message_id,
            "ReceiptHandle": message.receipt_handle,
            "MD5OfBody": message.md5_of_body,
            "Body": message.body,
            "Attributes": attributes,
            # SQS digests the attributes it returns, so clients can check what they got.
            "MD5OfMessageAttributes": md5_of_message_attributes(chosen),
            "MessageAttributes": {k: wire_value(v) for k, v in chosen.items()},
        }
    )


def selected(name: str, patterns: list[str]) -> bool:
    """Whether MessageAttributeNames selects an attribute: All, .*, its name, or a prefix
    followed by .* (``Hel.*`` selects Hello and Help.Me)."""
    for pattern in patterns:
        if pattern in ("All", ".*") or pattern == name:
            return True
        if pattern.endswith(".*") and name.startswith(pattern[:-2]):
            return True
    return False


def wire_value(value: MessageAttributeValue) -> Result:
    if "BinaryValue" in value:
        encoded = base64.b64encode(value["BinaryValue"]).decode()
        return {"DataType": value["DataType"], "BinaryValue": encoded}
    return {"DataType": value["DataType"], "StringValue": value["StringValue"]}


def present(result: Result) -> Result:
    """The members that have a value: SQS's JSON leaves out absent and empty ones."""
    return {k: v for k, v in result.items() if v is not None and v != [] and v != {}}

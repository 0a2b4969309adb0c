"""Messages across the Redis scripts' boundary: sent ones as SEND's arguments, claimed
ones as ReceiveMessage returns them, and the receipt handles that name them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from skylift.queues.errors import InvalidParameterValue, ReceiptHandleIsInvalid
from skylift.queues.messages import PreparedMessage, encode_attributes
from skylift.queues.protocol import ReceivedMessage
from skylift.queues.receipts import Receipt, decode, received

# Values per claimed message in CLAIM's answer: its row id, then the hash fields named in
# redis_scripts._RECEIVED_FIELDS (the source queue's id replaced by its name).
FIELDS = 14


def received_message(
    values: Sequence[bytes | int | None],
    queue_id: int,
    token: int,
    sender_id: str,
    arn: Callable[[str], str],
    key: bytes,
) -> ReceivedMessage:
    (
        row,
        message_id,
        body,
        md5_body,
        attributes,
        md5_attributes,
        sent_at,
        receive_count,
        first_received_at,
        group_id,
        dedup_id,
        sequence,
        source_name,
        system_attributes,
    ) = (_text(v) for v in values)
    assert row is not None and message_id is not None and body is not None
    return received(
        Receipt(queue_id, int(row), message_id, token),
        key,
        body=body,
        md5_of_body=str(md5_body),
        attributes=attributes,
        md5_of_attributes=md5_attributes,
        sender_id=sender_id,
        sent_at=sent_at,
        receive_count=receive_count,
        first_received_at=first_received_at,
        group_id=group_id,
        dedup_id=dedup_id,
        sequence=sequence,
        source_arn=arn(source_name) if source_name is not None else None,
        system_attributes=system_attributes,
    )


def _text(value: bytes | int | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def send_values(prepared: Sequence[PreparedMessage]) -> list[str | int]:
    """SEND's nine arguments per message ('' for what a message does not have)."""
    values: list[str | int] = []
    for message in prepared:
        values += [
            str(uuid.uuid4()),
            message.body,
            message.md5_of_body,
            encode_attributes(message.attributes) if message.attributes else "",
            message.md5_of_message_attributes or "",
            message.delay_seconds * 1000,
            message.group_id or "",
            message.deduplication_id or "",
            encode_attributes(message.system_attributes) if message.system_attributes else "",
        ]
    return values


def receipt(queue_id: str, queue_name: str, handle: str, key: bytes) -> Receipt:
    """The receipt a handle for this queue stands for; ReceiptHandleIsInvalid otherwise."""
    found = decode(handle, key)
    if str(found.queue_id) != queue_id:
        raise ReceiptHandleIsInvalid(
            f'The input receipt handle "{handle}" is not a valid receipt handle.',
            hint=f"it belongs to another queue than {queue_name!r}",
        )
    return found


def expired(handle: str, index: int) -> InvalidParameterValue:
    """The error of a batch entry whose handle is not the latest receive's."""
    return InvalidParameterValue(
        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle "
        "has expired.",
        entry=index,
        hint="receive the message again and delete it with the new handle before its "
        "visibility timeout runs out",
    )

"""Receipt handles: which receive of which message a handle stands for.

A handle names the queue, the stored message, the message id (so a recycled storage slot
never matches an old handle) and a random token that changes on every receive, so a
backend can tell the latest receive from an earlier one. It is opaque to clients, like
SQS's, and signed: an HMAC with the database's own secret key ends it, so a handle made up
or edited by a client (a guessed token, another row) is refused as ReceiptHandleIsInvalid
instead of deleting a message someone else is processing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from skylift.queues.errors import ReceiptHandleIsInvalid
from skylift.queues.messages import decode_attributes
from skylift.queues.protocol import ReceivedMessage

_LAYOUT = struct.Struct(">QQq")
_ID_LENGTH = 36  # a message id is a UUID in its 36-character text form
_MAC_LENGTH = 16  # 128 bits of HMAC-SHA256: forging one is out of reach
# The handles this process gave out most recently, with the key they were signed with: a
# delete of what was just received (an event source mapping's) skips base64 and the HMAC.
_ISSUED: OrderedDict[str, tuple[bytes, Receipt]] = OrderedDict()
_ISSUED_MAX = 8192
# HMAC's padded keys, by key: a database has one, a process opens a few.
_BLOCK = 64  # SHA-256's block size
_INNER = bytes(b ^ 0x36 for b in range(256))
_OUTER = bytes(b ^ 0x5C for b in range(256))
_PADS: dict[bytes, tuple[Any, Any]] = {}
_PADS_MAX = 64


@dataclass(slots=True)  # not frozen: a frozen one's __init__ takes 3x; none is changed
class Receipt:
    queue_id: int
    row_id: int
    message_id: str
    token: int

    def encode(self, key: bytes) -> str:
        """The handle a client gets, signed with `key` (the database's secret)."""
        packed = _LAYOUT.pack(self.queue_id, self.row_id, self.token) + self.message_id.encode()
        handle = base64.b64encode(packed + _mac(key, packed)).decode()
        if len(_ISSUED) >= _ISSUED_MAX:
            _ISSUED.popitem(last=False)  # the oldest
        _ISSUED[handle] = (key, self)
        return handle


def decode(handle: str, key: bytes) -> Receipt:
    """The receipt a handle stands for; ReceiptHandleIsInvalid if it is not one of ours."""
    issued = _ISSUED.get(handle)
    if issued is not None and issued[0] == key:
        return issued[1]
    try:
        raw = base64.b64decode(handle.encode(), validate=True)
        if len(raw) != _LAYOUT.size + _ID_LENGTH + _MAC_LENGTH:
            raise ValueError(handle)
        packed, mac = raw[:-_MAC_LENGTH], raw[-_MAC_LENGTH:]
        if not hmac.compare_digest(mac, _mac(key, packed)):
            raise ValueError(handle)
        queue_id, row_id, token = _LAYOUT.unpack_from(packed)
        message_id = packed[_LAYOUT.size :].decode("ascii")
    except (binascii.Error, struct.error, ValueError, UnicodeError):
        raise ReceiptHandleIsInvalid(
            f'The input receipt handle "{handle}" is not a valid receipt handle.',
            hint="pass the ReceiptHandle of a message received from this queue, unchanged",
        ) from None
    return Receipt(queue_id, row_id, message_id, token)


def _mac(key: bytes, packed: bytes) -> bytes:
    """HMAC-SHA256 of `packed` (RFC 2104), cut to _MAC_LENGTH bytes: the same bytes as
    `hmac.digest(key, packed, "sha256")`, from the key's two padded SHA-256 states
    computed once per key and copied, which takes a third of the one-shot's time."""
    pads = _PADS.get(key)
    if pads is None:
        if len(_PADS) >= _PADS_MAX:
            _PADS.clear()
        pads = _PADS[key] = _pads(key)
    inner, outer = pads[0].copy(), pads[1].copy()
    inner.update(packed)
    outer.update(inner.digest())
    mac: bytes = outer.digest()
    return mac[:_MAC_LENGTH]


def _pads(key: bytes) -> tuple[Any, Any]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return (
        hashlib.sha256(key.translate(_INNER)),
        hashlib.sha256(key.translate(_OUTER)),
    )


def received(
    receipt: Receipt,
    key: bytes,
    *,
    body: str,
    md5_of_body: str,
    attributes: str | None,
    md5_of_attributes: str | None,
    sender_id: str,
    sent_at: object,
    receive_count: object,
    first_received_at: object,
    group_id: str | None,
    dedup_id: str | None,
    sequence: int | str | None,
    source_arn: str | None,
    system_attributes: str | None,
) -> ReceivedMessage:
    """A claimed message as ReceiveMessage returns it, whichever backend stored it."""
    system = {
        "SenderId": sender_id,
        "SentTimestamp": str(sent_at),
        "ApproximateReceiveCount": str(receive_count),
        "ApproximateFirstReceiveTimestamp": str(first_received_at),
    }
    if group_id is not None:
        system["MessageGroupId"] = group_id
    if dedup_id is not None:
        system["MessageDeduplicationId"] = dedup_id
    if sequence is not None:
        # Zero-padded like SQS's 20-digit numbers, so string order matches numeric order.
        system["SequenceNumber"] = f"{int(sequence):020d}"
    if source_arn is not None:
        system["DeadLetterQueueSourceArn"] = source_arn
    if system_attributes:
        for name, value in decode_attributes(system_attributes).items():
            system[name] = value.get("StringValue", "")  # AWSTraceHeader, a String
    return ReceivedMessage(
        message_id=receipt.message_id,
        receipt_handle=receipt.encode(key),
        body=body,
        md5_of_body=md5_of_body,
        attributes=system,
        message_attributes=decode_attributes(attributes) if attributes else {},
        md5_of_message_attributes=md5_of_attributes,
    )

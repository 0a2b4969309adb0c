"""Receipt handles: which receive of which message a handle stands for.

A handle names the queue, the stored message, the message id (so a recycled storage slot
never matches an old handle) and a token that changes on every receive, so a backend can
tell the latest receive from an earlier one. It is opaque to clients, like SQS's.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from skylift.queues.errors import ReceiptHandleIsInvalid

_LAYOUT = struct.Struct(">QQq")
_ID_LENGTH = 36  # a message id is a UUID in its 36-character text form


@dataclass(frozen=True, slots=True)
class Receipt:
    queue_id: int
    row_id: int
    message_id: str
    token: int

    def encode(self) -> str:
        packed = _LAYOUT.pack(self.queue_id, self.row_id, self.token) + self.message_id.encode()
        return base64.b64encode(packed).decode()


def decode(handle: str) -> Receipt:
    """The receipt a handle stands for; ReceiptHandleIsInvalid if it is not one of ours."""
    try:
        raw = base64.b64decode(handle.encode(), validate=True)
        if len(raw) != _LAYOUT.size + _ID_LENGTH:
            raise ValueError(handle)
        queue_id, row_id, token = _LAYOUT.unpack_from(raw)
        message_id = raw[_LAYOUT.size :].decode("ascii")
    except (binascii.Error, struct.error, ValueError, UnicodeError):
        raise ReceiptHandleIsInvalid(
            f'The input receipt handle "{handle}" is not a valid receipt handle. Pass the '
            "ReceiptHandle of a message received from this queue, unchanged."
        ) from None
    return Receipt(queue_id, row_id, message_id, token)

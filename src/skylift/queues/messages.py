"""Messages: validation against a queue's settings, SQS's MD5 digests, and storage encoding.

Shared by every backend so they refuse exactly the same inputs with the same errors.
Rules follow the SQS Developer Guide ("Amazon SQS message attributes", "message quotas")
and the SendMessage API reference.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from skylift.queues.attributes import QueueSettings
from skylift.queues.errors import (
    BatchRequestTooLong,
    EmptyBatchRequest,
    InvalidMessageContents,
    InvalidParameterValue,
    MissingParameter,
    TooManyEntriesInBatchRequest,
)
from skylift.queues.protocol import MessageAttributes, MessageAttributeValue, OutgoingMessage

MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 1_048_576
MAX_MESSAGE_ATTRIBUTES = 10
DEDUPLICATION_WINDOW_SECONDS = 300

# The characters SQS allows in bodies and string attribute values (SendMessage reference).
_ALLOWED_TEXT = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
# Letters and digits of any script, as SQS accepts them (not only A-Z, as its guide says).
_ATTRIBUTE_NAME = re.compile(r"[\w.-]{1,256}")
_DATA_TYPE = re.compile(r"(String|Number|Binary)(\..+)?", re.DOTALL)
# MessageGroupId and MessageDeduplicationId: alphanumerics and ASCII punctuation.
_FIFO_ID = re.compile(r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}")


@dataclass(slots=True)  # not frozen: a frozen one's __init__ takes 3x; none is changed
class PreparedMessage:
    """An OutgoingMessage that passed validation, with its digests computed."""

    body: str
    md5_of_body: str
    attributes: MessageAttributes | None
    md5_of_message_attributes: str | None
    delay_seconds: int
    group_id: str | None
    deduplication_id: str | None
    system_attributes: MessageAttributes | None = None
    md5_of_system_attributes: str | None = None


def prepare_batch(
    entries: Sequence[OutgoingMessage], settings: QueueSettings
) -> list[PreparedMessage]:
    """Validate a whole batch for a queue; raise on the first bad entry, naming its index."""
    check_batch_size(len(entries))
    prepared: list[PreparedMessage] = []
    total = 0
    for index, entry in enumerate(entries):
        message, size = _prepare(entry, settings, index)
        prepared.append(message)
        total += size
    if total > MAX_BATCH_BYTES:
        raise BatchRequestTooLong(
            f"Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent "
            f"{total} bytes.",
            hint="split it into smaller batches",
        )
    return prepared


def check_batch_size(count: int) -> None:
    """Raise unless a batch holds 1 to 10 entries, as every SQS batch action requires."""
    if count == 0:
        raise EmptyBatchRequest("There should be at least one entry in the request.")
    if count > MAX_BATCH_ENTRIES:
        raise TooManyEntriesInBatchRequest(
            f"Maximum number of entries per request are {MAX_BATCH_ENTRIES}. You have sent {count}."
        )


# The largest BatchSize of an SQS event source mapping (standard queues): its poller claims
# up to that many in one receive, where SQS's ReceiveMessage returns at most 10.
MAPPING_BATCH_MAX = 10_000


def check_receive(
    max_messages: int,
    visibility_timeout: int | None,
    wait_seconds: int | None,
    for_mapping: bool = False,
) -> None:
    """Raise InvalidParameterValue unless ReceiveMessage's parameters are in SQS's ranges
    (an event source mapping's poller may take up to MAPPING_BATCH_MAX at once)."""
    most = MAPPING_BATCH_MAX if for_mapping else 10
    for parameter, value, low, high in (
        ("MaxNumberOfMessages", max_messages, 1, most),
        ("VisibilityTimeout", visibility_timeout, 0, 43_200),
        ("WaitTimeSeconds", wait_seconds, 0, 20),
    ):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidParameterValue(
                f"Value {value!r} for parameter {parameter} is invalid. Reason: Must be between "
                f"{low} and {high}, if provided."
            )


def md5_of_message_attributes(attributes: MessageAttributes) -> str | None:
    """SQS's MD5OfMessageAttributes, or None when there are none.

    The digest covers, for each attribute in name order: the name, the data type, a
    transport byte (1 for string values, 2 for binary) and the value, each string or byte
    value preceded by its length as a 4-byte big-endian integer. The API layer recomputes it
    over the attributes a ReceiveMessage request selects.
    """
    if not attributes:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        value = attributes[name]
        data_type = value["DataType"]
        _digest_field(digest, name.encode())
        _digest_field(digest, data_type.encode())
        if data_type.startswith("Binary"):
            digest.update(b"\x02")
            _digest_field(digest, value["BinaryValue"])
        else:
            digest.update(b"\x01")
            _digest_field(digest, value["StringValue"].encode())
    return digest.hexdigest()


def encode_attributes(attributes: MessageAttributes) -> str:
    """Message attributes as JSON text, binary values base64-encoded, for storage."""
    encoded: dict[str, dict[str, str]] = {}
    for name, value in attributes.items():
        if value["DataType"].startswith("Binary"):
            data = base64.b64encode(value["BinaryValue"]).decode()
            encoded[name] = {"DataType": value["DataType"], "BinaryValue": data}
        else:
            encoded[name] = {"DataType": value["DataType"], "StringValue": value["StringValue"]}
    return json.dumps(encoded, separators=(",", ":"), ensure_ascii=False)


def decode_attributes(text: str) -> dict[str, MessageAttributeValue]:
    decoded: dict[str, MessageAttributeValue] = {}
    raw: dict[str, dict[str, str]] = json.loads(text)
    for name, value in raw.items():
        if "BinaryValue" in value:
            decoded[name] = {
                "DataType": value["DataType"],
                "BinaryValue": base64.b64decode(value["BinaryValue"]),
            }
        else:
            decoded[name] = {"DataType": value["DataType"], "StringValue": value["StringValue"]}
    return decoded


def _digest_field(digest: Any, data: bytes) -> None:
    digest.update(len(data).to_bytes(4, "big"))
    digest.update(data)


def _prepare(
    entry: OutgoingMessage, settings: QueueSettings, index: int
) -> tuple[PreparedMessage, int]:
    body = entry.body
    if not body:
        raise MissingParameter("The request must contain the parameter MessageBody.", entry=index)
    # Printable ASCII is the common case and far cheaper to check than the regex.
    if not (body.isascii() and body.isprintable()) and _ALLOWED_TEXT.fullmatch(body) is None:
        raise InvalidMessageContents(
            _INVALID_CHARACTERS, entry=index, hint=f"in the message body; {_ENCODE_HINT}"
        )
    encoded = body.encode()
    size = len(encoded)
    attributes = entry.message_attributes or None
    if attributes:
        size += _check_attributes(attributes, index)
    if size > settings.maximum_message_size:
        raise InvalidParameterValue(
            "One or more parameters are invalid. Reason: Message must be shorter than "
            f"{settings.maximum_message_size} bytes.",
            entry=index,
            hint=f"this one has {size} bytes, body and attributes together; send large "
            "payloads by reference or raise MaximumMessageSize (at most 1048576)",
        )
    system = entry.system_attributes or None
    if system:
        _check_system_attributes(system, index)  # they do not count towards the size
    delay = _delay(entry, settings, index)
    group_id, deduplication_id = _fifo_ids(entry, settings, index)
    if settings.fifo and deduplication_id is None:
        # Content-based deduplication: SHA-256 of the body (SQS FIFO developer guide).
        deduplication_id = hashlib.sha256(encoded).hexdigest()
    message = PreparedMessage(
        body=body,
        md5_of_body=hashlib.md5(encoded, usedforsecurity=False).hexdigest(),
        attributes=attributes,
        md5_of_message_attributes=md5_of_message_attributes(attributes) if attributes else None,
        delay_seconds=delay,
        group_id=group_id,
        deduplication_id=deduplication_id,
        system_attributes=system,
        md5_of_system_attributes=md5_of_message_attributes(system) if system else None,
    )
    return message, size


def _delay(entry: OutgoingMessage, settings: QueueSettings, index: int) -> int:
    # On a FIFO queue 0 is what SDKs send for "not given", and means the queue's delay.
    if entry.delay_seconds is None or (settings.fifo and entry.delay_seconds == 0):
        return settings.delay_seconds
    if not 0 <= entry.delay_seconds <= 900:
        raise InvalidParameterValue(
            f"Value {entry.delay_seconds} for parameter DelaySeconds is invalid. Reason: "
            "DelaySeconds must be >= 0 and <= 900.",
            entry=index,
        )
    if settings.fifo and entry.delay_seconds:
        raise InvalidParameterValue(
            f"Value {entry.delay_seconds} for parameter DelaySeconds is invalid. Reason: The "
            "request include parameter that is not valid for this queue type.",
            entry=index,
            hint="FIFO queues delay per queue: set the queue's DelaySeconds attribute instead",
        )
    return entry.delay_seconds


def _fifo_ids(
    entry: OutgoingMessage, settings: QueueSettings, index: int
) -> tuple[str | None, str | None]:
    group_id, deduplication_id = entry.message_group_id, entry.message_deduplication_id
    for parameter, value in (
        ("MessageGroupId", group_id),
        ("MessageDeduplicationId", deduplication_id),
    ):
        if value is not None and _FIFO_ID.fullmatch(value) is None:
            raise InvalidParameterValue(
                f"Value {value} for parameter {parameter} is invalid. Reason: {parameter} can "
                "only include alphanumeric and punctuation characters. 1 to 128 in length.",
                entry=index,
            )
    if not settings.fifo:
        if deduplication_id is not None:
            raise InvalidParameterValue(
                f"Value {deduplication_id} for parameter MessageDeduplicationId is invalid. "
                "Reason: The request include parameter that is not valid for this queue type.",
                entry=index,
                hint="deduplication needs a FIFO queue",
            )
        return group_id, None
    if group_id is None:
        raise MissingParameter(
            "The request must contain the parameter MessageGroupId.",
            entry=index,
            hint="every message sent to a FIFO queue belongs to a message group",
        )
    if deduplication_id is None and not settings.content_based_deduplication:
        raise InvalidParameterValue(
            "The queue should either have ContentBasedDeduplication enabled or "
            "MessageDeduplicationId provided explicitly.",
            entry=index,
        )
    return group_id, deduplication_id


def _check_attributes(attributes: Mapping[str, MessageAttributeValue], index: int) -> int:
    """Validate message attributes; return the bytes they count towards the size limit."""
    if len(attributes) > MAX_MESSAGE_ATTRIBUTES:
        raise InvalidParameterValue(
            f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum "
            f"[{MAX_MESSAGE_ATTRIBUTES}].",
            entry=index,
            hint="move the rest into the body",
        )
    size = 0
    for name, value in attributes.items():
        _check_attribute_name(name, index)
        size += len(name.encode()) + _check_attribute_value(name, value, index)
    return size


def _check_system_attributes(attributes: Mapping[str, MessageAttributeValue], index: int) -> None:
    for name, value in attributes.items():
        if name != "AWSTraceHeader":
            raise InvalidParameterValue(
                f"Message system attribute name '{name}' is invalid.",
                entry=index,
                hint="AWSTraceHeader is the only message system attribute",
            )
        if value.get("DataType") != "String":
            raise InvalidParameterValue(
                f"Message system attribute '{name}' must be of type String.", entry=index
            )
        _check_attribute_value(name, value, index)


def _check_attribute_name(name: str, index: int) -> None:
    lowered = name.lower()
    if (
        _ATTRIBUTE_NAME.fullmatch(name) is None
        or lowered.startswith(("aws.", "amazon."))
        or name.startswith(".")
        or name.endswith(".")
        or ".." in name
    ):
        raise InvalidParameterValue(
            f"Message (user) attribute name '{name}' is invalid.",
            entry=index,
            hint="use 1 to 256 letters, digits, '_', '-', '.', without a leading, trailing or "
            "doubled period and without an 'AWS.' or 'Amazon.' prefix",
        )


def _check_attribute_value(name: str, value: MessageAttributeValue, index: int) -> int:
    data_type = value.get("DataType")
    # The API layer may pass SQS's reserved list members through, empty.
    raw: Mapping[str, object] = value
    extra = set(raw) - {"DataType", "StringValue", "BinaryValue"}
    if any(raw[key] for key in extra):
        raise InvalidParameterValue(
            f"Message (user) attribute '{name}' is invalid.",
            entry=index,
            hint=f"it uses {', '.join(sorted(extra))}, which SQS reserves and does not "
            "implement; use StringValue or BinaryValue",
        )
    if not isinstance(data_type, str) or not data_type or len(data_type) > 256:
        raise MissingParameter(
            f"The message attribute '{name}' must contain a non-empty message attribute type.",
            entry=index,
        )
    match = _DATA_TYPE.fullmatch(data_type)
    if match is None or _ALLOWED_TEXT.fullmatch(data_type) is None:
        raise InvalidParameterValue(
            f"The type of message (user) attribute '{name}' is invalid. You must use only the "
            "following supported type prefixes: Binary, Number, String.",
            entry=index,
        )
    base = match.group(1)
    if base == "Binary":
        binary = value.get("BinaryValue")
        if not isinstance(binary, bytes | bytearray) or not binary or "StringValue" in value:
            raise InvalidParameterValue(
                f"The message attribute '{name}' with type 'Binary' must use field 'Binary'.",
                entry=index,
            )
        return len(data_type.encode()) + len(binary)
    text = value.get("StringValue")
    if not isinstance(text, str) or not text or "BinaryValue" in value:
        raise InvalidParameterValue(
            f"The message attribute '{name}' with type '{base}' must use field 'String'.",
            entry=index,
        )
    if _ALLOWED_TEXT.fullmatch(text) is None:
        raise InvalidMessageContents(
            _INVALID_CHARACTERS,
            entry=index,
            hint=f"in message attribute {name!r}; {_ENCODE_HINT}",
        )
    if base == "Number" and not _is_sqs_number(text):
        raise InvalidParameterValue(
            f"Can't cast the value of message (user) attribute '{name}' to a number.",
            entry=index,
            hint=f"{text!r}: numbers have up to 38 significant digits, between -10^128 and 10^126",
        )
    return len(data_type.encode()) + len(text.encode())


def _is_sqs_number(text: str) -> bool:
    if text != text.strip():
        return False
    try:
        number = Decimal(text)
    except InvalidOperation:
        return False
    if not number.is_finite():
        return False
    if number.is_zero():
        return True
    digits = len(number.normalize().as_tuple().digits)
    return digits <= 38 and Decimal("1e-128") <= abs(number) <= Decimal("1e126")


_INVALID_CHARACTERS = (
    "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | "
    "#xE000 to #xFFFD | #x10000 to #x10FFFF"
)
_ENCODE_HINT = "encode binary data (e.g. base64) before sending it"

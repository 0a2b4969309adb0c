"""A request's parameters, typed: what both SQS protocols (JSON and query) hand the actions.

Wrong types and missing values raise the errors SQS answers with (InvalidParameterValue,
MissingParameter), in SQS's words; what to do about them goes to skylift's log as a hint.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, cast
from urllib.parse import urlsplit

from skylift.queues.errors import InvalidParameterValue, MissingParameter, QueueError
from skylift.queues.protocol import MessageAttributeValue


class InvalidAddress(QueueError):
    """Raised when a QueueUrl has no queue name in its path."""

    code = "InvalidAddress"
    status = 404


class Params:
    """Typed access to one request's parameters, shaped as SQS's JSON protocol has them."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def string(self, name: str) -> str:
        value = self.data.get(name)
        if value is None or value == "":
            raise missing(name)
        if not isinstance(value, str):
            raise wrong_type(name, "a string")
        return value

    def optional_string(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, str):
            raise wrong_type(name, "a string")
        return value

    def optional_int(self, name: str) -> int | None:
        value = self.data.get(name)
        # bool is an int in Python, not in JSON.
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise wrong_type(name, "an integer")
        return value

    def integer(self, name: str) -> int:
        value = self.optional_int(name)
        if value is None:
            raise missing(name)
        return value

    def strings(self, name: str) -> list[str]:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong_type(name, "a list of strings")
        return value

    def string_map(self, name: str, *, required: bool = False) -> dict[str, str]:
        value = self.data.get(name)
        if value is None and required:
            raise missing(name)
        value = {} if value is None else value
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise wrong_type(name, "an object of string values")
        return value

    def entries(self) -> list[Params]:
        """A batch's Entries; the batch checks (count, Id format and uniqueness) are the
        action's, since they raise the batch errors."""
        value = self.data.get("Entries")
        if value is None:
            raise missing("Entries")
        if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
            raise wrong_type("Entries", "a list of objects")
        return [Params(entry) for entry in value]

    def queue_name(self) -> str:
        """The queue QueueUrl names: its last path segment, whatever the host."""
        url = self.string("QueueUrl")
        path = urlsplit(url).path if "://" in url else url
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if not name:
            raise InvalidAddress(
                f"The address {url} is not valid for this endpoint.",
                hint="use the QueueUrl that CreateQueue or GetQueueUrl returned "
                "(http://{host}/{account}/{queue name})",
            )
        return name

    def message_attributes(
        self, name: str = "MessageAttributes"
    ) -> dict[str, MessageAttributeValue]:
        """MessageAttributes (or MessageSystemAttributes) with each BinaryValue decoded from
        the wire's base64."""
        raw = self.data.get(name) or {}
        if not isinstance(raw, dict):
            raise wrong_type(name, "an object of name to attribute value")
        attributes: dict[str, MessageAttributeValue] = {}
        for key, value in raw.items():
            if not isinstance(value, dict):
                raise wrong_type(f"{name}.{key}", "an object with DataType")
            decoded = dict(value)
            if "BinaryValue" in decoded:
                try:
                    decoded["BinaryValue"] = base64.b64decode(decoded["BinaryValue"], validate=True)
                except (binascii.Error, TypeError, ValueError):
                    raise wrong_type(f"{name}.{key}.BinaryValue", "base64") from None
            # The queue layer checks DataType and values, and refuses the list members SQS
            # reserves unless they are empty.
            attributes[key] = cast(MessageAttributeValue, decoded)
        return attributes


def missing(name: str) -> MissingParameter:
    return MissingParameter(f"The request must contain the parameter {name}.")


def wrong_type(name: str, expected: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Value for parameter {name} is invalid.",
        hint=f"it must be {expected}, as the SQS API reference describes",
    )

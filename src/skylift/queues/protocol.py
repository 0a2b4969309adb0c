"""The queue backend protocol: SQS's data model as a small async interface.

Every backend (``SqliteQueues`` today) implements ``QueueBackend`` and passes the one
conformance suite in ``tests/queues/conformance.py``. Names and values follow SQS
(attribute names, string attribute values, receipt handles) so the SQS API layer is a thin
translation; failures raise the ``QueueError`` subclass named after the SQS error code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, Required, TypedDict

from skylift.queues.errors import QueueError


class MessageAttributeValue(TypedDict, total=False):
    """One message attribute, shaped as in SQS: ``{"DataType": "String", "StringValue": "x"}``.

    ``DataType`` is ``String``, ``Number`` or ``Binary``, optionally with a custom suffix
    (``Number.float``); ``String``/``Number`` carry ``StringValue``, ``Binary`` carries
    ``BinaryValue`` as raw bytes (the API layer decodes the wire's base64).
    """

    DataType: Required[str]
    StringValue: str
    BinaryValue: bytes


MessageAttributes = Mapping[str, MessageAttributeValue]


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue as created: its name, ARN, type and configured attributes."""

    name: str
    arn: str
    fifo: bool
    attributes: Mapping[str, str]
    created: float


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to send. ``delay_seconds=None`` means the queue's ``DelaySeconds``.

    ``system_attributes`` are SQS's MessageSystemAttributes: only ``AWSTraceHeader`` (a
    String holding an X-Ray trace header) exists.

    Example: ``OutgoingMessage("hello", message_attributes={"n": {"DataType": "Number",
    "StringValue": "1"}})``.
    """

    body: str
    delay_seconds: int | None = None
    message_attributes: MessageAttributes = field(default_factory=dict)
    message_group_id: str | None = None
    message_deduplication_id: str | None = None
    system_attributes: MessageAttributes = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What SendMessage returns for one message."""

    message_id: str
    md5_of_body: str
    md5_of_message_attributes: str | None
    sequence_number: str | None
    md5_of_message_system_attributes: str | None = None


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message as ReceiveMessage returns it, with every system attribute.

    ``attributes`` holds SenderId, SentTimestamp, ApproximateReceiveCount and
    ApproximateFirstReceiveTimestamp (plus MessageGroupId, MessageDeduplicationId and
    SequenceNumber on FIFO queues, DeadLetterQueueSourceArn in a dead-letter queue,
    AWSTraceHeader when it was sent with one); the API layer filters them by the request's
    AttributeNames.
    """

    message_id: str
    receipt_handle: str
    body: str
    md5_of_body: str
    attributes: dict[str, str]
    message_attributes: dict[str, MessageAttributeValue]
    md5_of_message_attributes: str | None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A queue's depth, for metrics and ``skylift`` status output."""

    visible: int
    in_flight: int
    delayed: int
    oldest_age_seconds: float | None
    dead_letter_queue: str | None = None
    dead_letter_depth: int | None = None


class QueueBackend(Protocol):
    """Durable queues with SQS semantics: at-least-once, visibility timeouts, FIFO, DLQs.

    Batches hold at most 10 entries, as in SQS, and are validated whole before anything is
    written: a bad entry raises (with ``QueueError.entry`` set) and nothing is sent.

    Example::

        await backend.create_queue("jobs", {"VisibilityTimeout": "60"})
        await backend.send("jobs", [OutgoingMessage("hello")])
        for message in await backend.receive("jobs", max_messages=10, wait_seconds=20):
            ...
            await backend.delete("jobs", [message.receipt_handle])
    """

    async def create_queue(
        self, name: str, attributes: Mapping[str, str], tags: Mapping[str, str] | None = None
    ) -> QueueInfo:
        """Create a queue, or return it if it exists with the same given attribute values.

        ``tags`` are set on a new queue only, as SQS does.
        """
        ...

    async def tag_queue(self, name: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags on a queue (at most 50 in all, as in SQS)."""
        ...

    async def untag_queue(self, name: str, keys: Sequence[str]) -> None:
        """Remove tags by key; keys that are not there are ignored."""
        ...

    async def list_tags(self, name: str) -> dict[str, str]:
        """A queue's tags."""
        ...

    async def delete_queue(self, name: str) -> None:
        """Delete a queue and every message in it."""
        ...

    async def get_queue(self, name: str) -> QueueInfo:
        """Return a queue's description; QueueDoesNotExist if there is none."""
        ...

    async def list_queues(self, prefix: str = "") -> list[str]:
        """Names of the queues starting with ``prefix``, sorted."""
        ...

    async def get_attributes(self, name: str) -> dict[str, str]:
        """Every SQS attribute of a queue, configured and computed, as strings."""
        ...

    async def set_attributes(self, name: str, attributes: Mapping[str, str]) -> None:
        """Change configurable attributes; ``RedrivePolicy=""`` removes the policy."""
        ...

    async def send(self, name: str, entries: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Enqueue 1-10 messages atomically; results are in the order of ``entries``."""
        ...

    async def receive(
        self,
        name: str,
        *,
        max_messages: int = 1,
        visibility_timeout: int | None = None,
        wait_seconds: int | None = None,
        for_mapping: bool = False,
    ) -> list[ReceivedMessage]:
        """Receive up to ``max_messages`` (1-10), waiting up to ``wait_seconds`` (0-20) for one.

        ``None`` means the queue's VisibilityTimeout / ReceiveMessageWaitTimeSeconds.
        ``for_mapping``: an event source mapping's poller, which may take up to 10,000
        messages in one claim (its BatchSize), as Lambda's pollers gather them; the SQS API
        never passes it, so ReceiveMessage stays capped at 10.
        """
        ...

    async def delete(self, name: str, receipt_handles: Sequence[str]) -> list[QueueError | None]:
        """Delete 1-10 received messages; one result per handle, ``None`` on success."""
        ...

    async def change_visibility(self, name: str, receipt_handle: str, timeout: int) -> None:
        """Make a received message visible again ``timeout`` seconds from now (0-43200)."""
        ...

    async def purge(self, name: str) -> None:
        """Delete every message in a queue and forget its deduplication ids; at most once every
        60 seconds, as in SQS."""
        ...

    async def stats(self, name: str) -> QueueStats:
        """Depth of a queue and, if it has a redrive policy, of its dead-letter queue."""
        ...

    async def redrive(
        self, name: str, destination: str | None = None, limit: int | None = None
    ) -> int:
        """Move the messages of dead-letter queue ``name`` back to the queues they came
        from, or all to ``destination``; at most ``limit`` of them. Returns how many moved."""
        ...

    async def close(self) -> None:
        """Release resources; pending long polls return empty."""
        ...

"""Durable queues with SQS semantics: one protocol, an embedded SQLite backend."""

from skylift.queues.errors import QueueError
from skylift.queues.protocol import (
    MessageAttributeValue,
    OutgoingMessage,
    QueueBackend,
    QueueInfo,
    QueueStats,
    ReceivedMessage,
    SendResult,
)
from skylift.queues.sqlite import SqliteQueues

__all__ = [
    "MessageAttributeValue",
    "OutgoingMessage",
    "QueueBackend",
    "QueueError",
    "QueueInfo",
    "QueueStats",
    "ReceivedMessage",
    "SendResult",
    "SqliteQueues",
]

"""Durable queues with SQS semantics: one protocol, an embedded SQLite backend, and a Redis
backend (`skylift.queues.redis.RedisQueues`, imported on demand) for several nodes."""

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

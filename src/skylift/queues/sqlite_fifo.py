"""FIFO queues on SQLite: ordered claims per message group, and 5-minute deduplication.

Semantics follow the SQS Developer Guide ("FIFO delivery logic", "exactly-once
processing"): messages of a group are delivered in send order; while any message of a
group is in flight, no other message of that group is delivered; a receive returns as many
messages of one group as it can before moving to the next; a send whose deduplication id
was seen in the last 5 minutes is accepted but not enqueued, and answers with the original
message id.
"""

from __future__ import annotations

import sqlite3

from skylift.ids import request_id
from skylift.queues.errors import InvalidParameterValue, QueueError
from skylift.queues.messages import DEDUPLICATION_WINDOW_SECONDS, PreparedMessage
from skylift.queues.protocol import SendResult
from skylift.queues.receipts import Receipt
from skylift.queues.sqlite_catalog import Catalog, StoredQueue
from skylift.queues.sqlite_store import INSERT, format_sequence, message_row

# Groups whose first message is visible, oldest first. A group is read from its first
# message up to the first one in flight or delayed: those behind it wait, as in SQS, but a
# message given back (visibility timeout ended) before one still in flight is delivered.
_GROUPS = (
    "SELECT group_id FROM messages WHERE queue = :queue AND group_id IS NOT NULL "
    "GROUP BY group_id "
    "HAVING min(sequence) = min(CASE WHEN visible_at <= :now THEN sequence END) "
    "ORDER BY min(sequence) LIMIT :limit"
)
_GROUP_HEAD = (
    "SELECT id, visible_at FROM messages WHERE queue = ? AND group_id = ? ORDER BY sequence LIMIT ?"
)


def candidates(db: sqlite3.Connection, queue_id: int, now: int, limit: int) -> list[int]:
    """Row ids a receive may claim, in delivery order."""
    ids: list[int] = []
    groups = db.execute(_GROUPS, {"queue": queue_id, "now": now, "limit": limit}).fetchall()
    for (group,) in groups:
        for row_id, visible_at in db.execute(
            _GROUP_HEAD, (queue_id, group, limit - len(ids))
        ).fetchall():
            if visible_at > now:
                break  # one in flight or delayed holds back the rest of its group
            ids.append(row_id)
        if len(ids) >= limit:
            break
    return ids


def send(
    catalog: Catalog, queue: StoredQueue, prepared: list[PreparedMessage], now: int
) -> list[SendResult]:
    db = catalog.db
    # Expired ids are swept on every send; the (queue, expires_at) index keeps it cheap.
    db.execute("DELETE FROM deduplication WHERE queue = ? AND expires_at <= ?", (queue.id, now))
    by_group = queue.settings.stored.get("DeduplicationScope") == "messageGroup"
    results = []
    for message in prepared:
        key = message.deduplication_id
        if by_group:
            key = f"{message.group_id}\x00{key}"
        original = db.execute(
            "SELECT message_id, sequence FROM deduplication WHERE queue = ? AND dedup_id = ?",
            (queue.id, key),
        ).fetchone()
        if original is not None:
            message_id, sequence = original
        else:
            message_id, sequence = request_id(), catalog.next_sequence(queue)
            db.execute(INSERT, message_row(queue.id, message_id, message, now, sequence))
            db.execute(
                "INSERT INTO deduplication VALUES (?, ?, ?, ?, ?)",
                (queue.id, key, message_id, sequence, now + DEDUPLICATION_WINDOW_SECONDS * 1000),
            )
        results.append(
            SendResult(
                message_id,
                message.md5_of_body,
                message.md5_of_message_attributes,
                format_sequence(sequence),
                message.md5_of_system_attributes,
            )
        )
    return results


def delete(
    db: sqlite3.Connection, queue: StoredQueue, receipt: Receipt, handle: str, now: int
) -> QueueError | None:
    """Delete one message by receipt; only the latest receive's unexpired handle works."""
    row = db.execute(
        "SELECT receipt, visible_at FROM messages WHERE id = ? AND queue = ? AND message_id = ?",
        (receipt.row_id, queue.id, receipt.message_id),
    ).fetchone()
    if row is None:
        return None  # already deleted: deleting twice succeeds, as in SQS
    if row[0] != receipt.token or row[1] <= now:
        # Deleting on an old receive could drop a message someone else now holds, out of
        # group order.
        return InvalidParameterValue(
            f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt "
            "handle has expired.",
            hint="receive the message again and delete it with the new handle before its "
            "visibility timeout runs out",
        )
    db.execute("DELETE FROM messages WHERE id = ?", (receipt.row_id,))
    return None

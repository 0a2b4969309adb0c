"""Dead-letter queues on SQLite: moving messages in on too many receives, and back out.

Per the SQS Developer Guide ("Using dead-letter queues", "dead-letter queue retention"): a
message keeps its id, body, attributes and SentTimestamp when it moves; a standard queue
keeps its original enqueue time (so its retention keeps counting), a FIFO queue restarts it.
A message moved back out (redrive, SQS's StartMessageMoveTask) starts over with no receives.
"""

from __future__ import annotations

from skylift.queues.sqlite_catalog import Catalog, StoredQueue
from skylift.queues.sqlite_store import ENQUEUED_AT, Row


def move_in(
    catalog: Catalog, source: StoredQueue, dlq: StoredQueue, rows: list[Row], now: int
) -> None:
    """Move claimed rows from ``source`` into its dead-letter queue."""
    fifo = dlq.settings.fifo
    for row in rows:
        # receive_count - 1: the receive that moved the message did not deliver it.
        catalog.db.execute(
            "UPDATE messages SET queue = ?, source_queue = ?, visible_at = ?, receipt = NULL, "
            "received_at = NULL, receive_count = receive_count - 1, sequence = ?, "
            "enqueued_at = ? WHERE id = ?",
            (
                dlq.id,
                source.id,
                now,
                catalog.next_sequence(dlq) if fifo else None,
                now if fifo else row[ENQUEUED_AT],
                row[0],
            ),
        )


def move_out(
    catalog: Catalog,
    dlq: StoredQueue,
    destination: StoredQueue | None,
    now: int,
    limit: int | None = None,
) -> dict[int, int]:
    """Move the visible messages of ``dlq`` (at most ``limit``, oldest first) to
    ``destination`` or their source queues.

    Returns how many moved, by destination queue id. Messages whose source queue was
    deleted stay where they are.
    """
    moved: dict[int, int] = {}
    rows = catalog.db.execute(
        "SELECT id, source_queue FROM messages WHERE queue = ? AND visible_at <= ? "
        "ORDER BY sequence, id",
        (dlq.id, now),
    ).fetchall()
    for row_id, source in rows:
        if limit is not None and sum(moved.values()) >= limit:
            break
        home = destination
        if home is None and source is not None:
            source_name = catalog.name_of(source)
            home = catalog.find(source_name) if source_name is not None else None
        if home is None:
            continue
        fifo = home.settings.fifo
        catalog.db.execute(
            "UPDATE messages SET queue = ?, source_queue = NULL, visible_at = ?, "
            "receive_count = 0, first_received_at = NULL, received_at = NULL, receipt = NULL, "
            "sequence = ?, enqueued_at = coalesce(?, enqueued_at) WHERE id = ?",
            (
                home.id,
                now,
                catalog.next_sequence(home) if fifo else None,
                now if fifo else None,
                row_id,
            ),
        )
        moved[home.id] = moved.get(home.id, 0) + 1
    return moved

"""Receiving from SQLite queues: claim a batch in one transaction, dropping what outlived
its retention period and moving what was received too often to the dead-letter queue;
changing the visibility of what was received, and deleting it."""

from __future__ import annotations

import json
import math
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from skylift.queues import sqlite_fifo, sqlite_redrive
from skylift.queues.errors import InvalidParameterValue, QueueError, ReceiptHandleIsInvalid
from skylift.queues.receipts import Receipt, decode
from skylift.queues.sqlite_catalog import Catalog, StoredQueue
from skylift.queues.sqlite_store import (
    CLAIM_IDS,
    CLAIM_STANDARD,
    DELETE_STANDARD,
    ENQUEUED_AT,
    RECEIVE_COUNT,
    Row,
)

MAX_VISIBILITY = 43_200  # seconds a message may stay in flight from its receive, in all


@dataclass(frozen=True)
class Claimed:
    rows: list[Row]  # what the receive returns, in queue order
    token: int  # this receive's, in each message's receipt handle
    moved_to: StoredQueue | None  # the dead-letter queue messages moved to, if any


def claim(
    db: sqlite3.Connection,
    catalog: Catalog,
    queue: StoredQueue,
    now: int,
    limit: int,
    visibility_timeout: int | None,
) -> Claimed:
    """Claim up to ``limit`` messages of ``queue``, inside the caller's transaction.

    Claimed messages past the retention period are dropped, and those received more than
    maxReceiveCount times move to the dead-letter queue instead of being returned: SQS
    moves a message on the receive that would exceed the count.
    """
    delivered: list[Row] = []
    moved_to: StoredQueue | None = None
    settings = queue.settings
    vt = settings.visibility_timeout if visibility_timeout is None else visibility_timeout
    token = secrets.randbits(63)
    claim = (now + vt * 1000, now, now, token)
    cutoff = now - settings.retention_seconds * 1000
    policy = settings.redrive_policy
    dlq = catalog.find(policy.dead_letter_queue) if policy else None
    if dlq is not None and dlq.id == queue.id:
        dlq = None  # its own dead-letter queue: a move would leave it where it is
    max_receives = policy.max_receive_count if policy and dlq else math.inf
    while len(delivered) < limit:
        want = limit - len(delivered)
        if settings.fifo:
            ids = sqlite_fifo.candidates(db, queue.id, now, want)
            rows = db.execute(CLAIM_IDS, (*claim, json.dumps(ids))).fetchall()
            rows.sort(key=lambda row: ids.index(row[0]))
        else:
            rows = db.execute(CLAIM_STANDARD, (*claim, queue.id, now, want)).fetchall()
            rows.sort(key=lambda row: row[0])
        expired = {row[0] for row in rows if row[ENQUEUED_AT] <= cutoff}
        over = {row[0] for row in rows if row[RECEIVE_COUNT] > max_receives} - expired
        dead = [row for row in rows if row[0] in over]
        delivered += [row for row in rows if row[0] not in expired and row[0] not in over]
        if expired:
            db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in expired])
        if dead and dlq is not None:
            sqlite_redrive.move_in(catalog, queue, dlq, dead, now)
            moved_to = dlq
        # Claim more only to replace what was dropped or moved. With a zero visibility
        # timeout the rows just claimed are claimable again: a second round could return
        # them twice.
        if not (expired or dead) or vt == 0:
            break
    return Claimed(delivered, token, moved_to)


def release(db: sqlite3.Connection, claimed: Claimed, now: int) -> None:
    """Undo a claim whose receive never returned: its messages are visible again, and the
    receive is not counted, as if it had not happened. Only rows this claim still holds."""
    db.execute(
        "UPDATE messages SET visible_at = ?, receive_count = receive_count - 1, "
        "first_received_at = CASE WHEN receive_count = 1 THEN NULL ELSE first_received_at END "
        "WHERE receipt = ? AND id IN (SELECT value FROM json_each(?))",
        (now, claimed.token, json.dumps([row[0] for row in claimed.rows])),
    )


def change_visibility(
    db: sqlite3.Connection, receipt: Receipt, handle: str, now: int, timeout: int
) -> None:
    """ChangeMessageVisibility of the message `receipt` names, inside the caller's
    transaction. Any receive's handle works, as in SQS: a consumer that got the message
    again (after its visibility timeout ran out) may still hold the earlier handle."""
    row = db.execute(
        "SELECT receipt, visible_at, received_at FROM messages "
        "WHERE id = ? AND queue = ? AND message_id = ?",
        (receipt.row_id, receipt.queue_id, receipt.message_id),
    ).fetchone()
    if row is None:
        raise InvalidParameterValue(
            f"Value {handle} for parameter ReceiptHandle is invalid. Reason: "
            "Message does not exist or is not available for visibility timeout change.",
            hint="the message was deleted",
        )
    if row[1] <= now:
        # Its visibility timeout already ran out: SQS accepts the call and changes
        # nothing, the message stays visible.
        return
    # Whole seconds, as SQS counts: 43200 right after the receive is allowed.
    if (now - row[2]) // 1000 + timeout > MAX_VISIBILITY:
        raise InvalidParameterValue(
            f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
            "VisibilityTimeout for the message is beyond the limit [43200 seconds]",
            hint="the limit counts from when the message was received; process it "
            "faster or send it again",
        )
    db.execute(
        "UPDATE messages SET visible_at = ? WHERE id = ?", (now + timeout * 1000, receipt.row_id)
    )


def delete(
    db: sqlite3.Connection, queue: StoredQueue, handles: Sequence[str], key: bytes, now: int
) -> list[QueueError | None]:
    """Delete by receipt handles, inside the caller's transaction; each entry's error."""
    results: list[QueueError | None] = []
    standard: list[tuple[int, int, str]] = []
    for index, handle in enumerate(handles):
        error: QueueError | None = None
        try:
            found = receipt(queue, handle, key)
        except QueueError as invalid:
            error = invalid
        else:
            if queue.settings.fifo:
                error = sqlite_fifo.delete(db, queue, found, handle, now)
            else:
                # Any receive's handle deletes a standard message, as in SQS.
                standard.append((found.row_id, queue.id, found.message_id))
        if error is not None:
            error.entry = index
        results.append(error)
    db.executemany(DELETE_STANDARD, standard)
    return results


def receipt(queue: StoredQueue, handle: str, key: bytes) -> Receipt:
    """The receipt a handle names; ReceiptHandleIsInvalid unless it is one of this queue's."""
    found = decode(handle, key)
    if found.queue_id != queue.id:
        raise ReceiptHandleIsInvalid(
            f'The input receipt handle "{handle}" is not a valid receipt handle.',
            hint=f"it belongs to another queue than {queue.name!r}",
        )
    return found

"""SqliteQueues: durable SQS-style queues in one SQLite file.

Durability: the file is in WAL mode with ``synchronous=NORMAL``. Every call that returned
has committed its transaction to the write-ahead log, so everything acknowledged survives
the process being killed, SIGKILL included. A power loss or OS crash may lose the last
transactions committed before it (SQLite's documented trade-off for NORMAL in WAL mode,
which skips an fsync per commit); it does not corrupt the file.

Speed: sends, receives' claims and deletes are group-committed (``sqlite_group``): those
started in the same turn of the event loop share one transaction, and each returns after
its COMMIT; every other call is one transaction. A batch send is one ``executemany``
INSERT, a receive claims its batch with one ``UPDATE ... RETURNING`` walking the (queue,
visible_at) index, and a batch delete is one ``executemany`` DELETE by rowid; the sqlite3
module caches the prepared statements. SQLite runs in the event loop's thread: each
statement is microseconds, cheaper than handing it to a thread.

Use one ``SqliteQueues`` from one event loop. Several processes may share a file; a long
poll learns of another process's sends within ``poll_interval`` seconds, and of its own
process's sends at once. ``SqliteQueues(":memory:")`` makes a throwaway backend for tests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager

from skylift.account import ACCOUNT_ID
from skylift.queues import sqlite_claim, sqlite_fifo, sqlite_redrive
from skylift.queues.attributes import QueueSettings, check_tags, first_difference
from skylift.queues.errors import (
    InvalidParameterValue,
    PurgeQueueInProgress,
    QueueBackendClosed,
    QueueError,
    QueueNameExists,
)
from skylift.queues.messages import check_batch_size, check_receive, prepare_batch
from skylift.queues.protocol import (
    OutgoingMessage,
    QueueInfo,
    QueueStats,
    ReceivedMessage,
    SendResult,
)
from skylift.queues.sqlite_catalog import Catalog, StoredQueue
from skylift.queues.sqlite_group import Transactions
from skylift.queues.sqlite_store import (
    COUNTS,
    NEXT_VISIBLE,
    SOURCE_QUEUE,
    Row,
    connect,
    insert_standard,
    receipt_key,
    received_message,
)

logger = logging.getLogger("skylift.queues")
_PURGE_INTERVAL = 60.0


class SqliteQueues:
    """The embedded queue backend. Example: ``queues = SqliteQueues("var/queues.db")``.

    ``region`` and ``account_id`` only shape ARNs and SenderId; ``clock`` (seconds since the
    epoch) is injectable so tests can move time past retention and deduplication windows.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        region: str = "us-east-1",
        account_id: str = ACCOUNT_ID,
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = connect(path)
        self._transactions = Transactions(self._db, os.fspath(path), self._open)
        self._key = receipt_key(self._db)
        self._catalog = Catalog(self._db, region, account_id)
        self._poll_interval = poll_interval
        self._clock = clock
        self._closed = False
        self._wakeups: dict[int, asyncio.Event] = {}

    # -- queues -------------------------------------------------------------------------

    async def create_queue(
        self, name: str, attributes: Mapping[str, str], tags: Mapping[str, str] | None = None
    ) -> QueueInfo:
        settings = QueueSettings.create(name, attributes)
        if tags:
            check_tags(tags)
        with self._transaction() as catalog:
            queue = catalog.find(name)
            if queue is not None:
                different = first_difference(queue.settings, attributes)
                if different is not None:
                    raise QueueNameExists(
                        "A queue already exists with the same name and a different value for "
                        f"attribute {different}",
                        hint=f"use SetQueueAttributes to change {name!r}, or pick another name",
                    )
            else:
                catalog.check_redrive(name, settings)
                queue = catalog.create(name, settings, self._clock())
                if tags:
                    catalog.tag(queue, tags)
        return self._catalog.info(queue)

    async def delete_queue(self, name: str) -> None:
        with self._transaction() as catalog:
            queue = catalog.get(name)
            catalog.delete(queue)
        self._notify(queue.id)  # long polls on it end with QueueDoesNotExist

    async def get_queue(self, name: str) -> QueueInfo:
        return self._catalog.info(self._open().get(name))

    async def list_queues(self, prefix: str = "") -> list[str]:
        return [name for name in self._open().names() if name.startswith(prefix)]

    async def get_attributes(self, name: str) -> dict[str, str]:
        queue = self._open().get(name)
        visible, in_flight, delayed, _ = self._counts(queue)
        return {
            "QueueArn": self._catalog.arn(name),
            "ApproximateNumberOfMessages": str(visible),
            "ApproximateNumberOfMessagesNotVisible": str(in_flight),
            "ApproximateNumberOfMessagesDelayed": str(delayed),
            "CreatedTimestamp": str(int(queue.created)),
            "LastModifiedTimestamp": str(int(queue.modified)),
            **queue.settings.to_attributes(),
        }

    async def tag_queue(self, name: str, tags: Mapping[str, str]) -> None:
        check_tags(tags)
        with self._transaction() as catalog:
            catalog.tag(catalog.get(name), tags)

    async def untag_queue(self, name: str, keys: Sequence[str]) -> None:
        with self._transaction() as catalog:
            queue = catalog.get(name)
            self._db.executemany(
                "DELETE FROM tags WHERE queue = ? AND key = ?", [(queue.id, k) for k in keys]
            )

    async def list_tags(self, name: str) -> dict[str, str]:
        queue = self._open().get(name)
        rows = self._db.execute("SELECT key, value FROM tags WHERE queue = ?", (queue.id,))
        return dict(rows.fetchall())

    async def set_attributes(self, name: str, attributes: Mapping[str, str]) -> None:
        with self._transaction() as catalog:
            queue = catalog.get(name)
            settings = queue.settings.update(attributes)
            catalog.check_redrive(name, settings)
            catalog.update(queue, settings, self._clock())

    # -- messages -----------------------------------------------------------------------

    async def send(self, name: str, entries: Sequence[OutgoingMessage]) -> list[SendResult]:
        def write(catalog: Catalog) -> tuple[int, list[SendResult]]:
            queue = catalog.get(name)
            prepared = prepare_batch(entries, queue.settings)
            now = self._now()
            if queue.settings.fifo:
                return queue.id, sqlite_fifo.send(catalog, queue, prepared, now)
            return queue.id, insert_standard(self._db, queue.id, prepared, now)

        queue_id, results = await self._transactions.write(write)
        self._notify(queue_id)
        return results

    async def receive(
        self,
        name: str,
        *,
        max_messages: int = 1,
        visibility_timeout: int | None = None,
        wait_seconds: int | None = None,
        for_mapping: bool = False,
    ) -> list[ReceivedMessage]:
        check_receive(max_messages, visibility_timeout, wait_seconds, for_mapping)
        queue = self._open().get(name)
        wait = queue.settings.receive_wait_seconds if wait_seconds is None else wait_seconds
        deadline = time.monotonic() + wait
        while True:
            # Take the wake-up event before looking, so a send in between is not missed.
            wakeup = self._wakeups.setdefault(queue.id, asyncio.Event())
            messages = await self._claim(name, max_messages, visibility_timeout)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            # Sleep until a send here, the next delay or visibility timeout to run out, or
            # the next poll for other processes' sends, whichever comes first.
            timeout = min(remaining, self._poll_interval)
            (next_visible,) = self._db.execute(NEXT_VISIBLE, (queue.id, self._now())).fetchone()
            if next_visible is not None:
                timeout = min(timeout, max(0.0, next_visible / 1000 - self._clock()))
            try:
                await asyncio.wait_for(wakeup.wait(), timeout)
            except TimeoutError:
                pass
            if self._closed:
                return []
            queue = self._open().get(name)

    async def delete(self, name: str, receipt_handles: Sequence[str]) -> list[QueueError | None]:
        check_batch_size(len(receipt_handles))

        def write(catalog: Catalog) -> tuple[StoredQueue, list[QueueError | None]]:
            queue = catalog.get(name)
            return queue, sqlite_claim.delete(
                catalog.db, queue, receipt_handles, self._key, self._now()
            )

        queue, results = await self._transactions.write(write)
        if queue.settings.fifo:
            self._notify(queue.id)  # a delete can unblock the message's group
        return results

    async def change_visibility(self, name: str, receipt_handle: str, timeout: int) -> None:
        check_receive(1, timeout, None)
        with self._transaction() as catalog:
            queue = catalog.get(name)
            receipt = sqlite_claim.receipt(queue, receipt_handle, self._key)
            sqlite_claim.change_visibility(self._db, receipt, receipt_handle, self._now(), timeout)
        if timeout == 0:
            self._notify(queue.id)

    async def purge(self, name: str) -> None:
        with self._transaction() as catalog:
            queue = catalog.get(name)
            (purged_at,) = self._db.execute(
                "SELECT purged_at FROM queues WHERE id = ?", (queue.id,)
            ).fetchone()
            now = self._clock()
            if purged_at is not None and now - purged_at < _PURGE_INTERVAL:
                raise PurgeQueueInProgress(
                    f"Only one PurgeQueue operation on {name} is allowed every 60 seconds.",
                    hint=f"try again in {_PURGE_INTERVAL - (now - purged_at):.0f} s",
                )
            self._db.execute("DELETE FROM messages WHERE queue = ?", (queue.id,))
            # A purge forgets deduplication ids too: a message sent again after it is new.
            self._db.execute("DELETE FROM deduplication WHERE queue = ?", (queue.id,))
            self._db.execute("UPDATE queues SET purged_at = ? WHERE id = ?", (now, queue.id))

    async def stats(self, name: str) -> QueueStats:
        catalog = self._open()
        queue = catalog.get(name)
        visible, in_flight, delayed, oldest = self._counts(queue)
        age = None if oldest is None else max(0.0, self._clock() - oldest / 1000)
        policy = queue.settings.redrive_policy
        dlq = catalog.find(policy.dead_letter_queue) if policy else None
        return QueueStats(
            visible,
            in_flight,
            delayed,
            age,
            dead_letter_queue=dlq.name if dlq else None,
            dead_letter_depth=sum(self._counts(dlq)[:3]) if dlq else None,
        )

    async def redrive(
        self, name: str, destination: str | None = None, limit: int | None = None
    ) -> int:
        with self._transaction() as catalog:
            dlq = catalog.get(name)
            target = catalog.get(destination) if destination is not None else None
            if target is not None and target.settings.fifo != dlq.settings.fifo:
                raise InvalidParameterValue(
                    "The source queue and the destination queue must be of the same type.",
                    hint=f"{name!r} and {destination!r} must both be FIFO or both standard",
                )
            if not catalog.is_dead_letter_queue(dlq):
                raise InvalidParameterValue(
                    "Source queue must be configured as a Dead Letter Queue.",
                    hint=f"make {name!r} the deadLetterTargetArn of some queue's RedrivePolicy",
                )
            moved = sqlite_redrive.move_out(catalog, dlq, target, self._now(), limit)
        for queue_id in moved:
            self._notify(queue_id)
        return sum(moved.values())

    def release_in_flight(self) -> int:
        """Make every received, undeleted message of every queue visible now; how many.

        For a store one process owns, at its start: what is in flight then was taken by a
        process that died before finishing it (skylift's async events).
        """
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE messages SET visible_at = ? WHERE receipt IS NOT NULL AND visible_at > ?",
                (now := self._now(), now),
            )
        return cursor.rowcount

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for event in self._wakeups.values():
            event.set()
        self._wakeups.clear()
        self._db.close()

    # -- internals ----------------------------------------------------------------------

    async def _claim(
        self, name: str, limit: int, visibility_timeout: int | None
    ) -> list[ReceivedMessage]:
        """Claim up to ``limit`` messages, group-committed (see ``sqlite_claim``)."""

        def write(catalog: Catalog) -> tuple[StoredQueue, sqlite_claim.Claimed]:
            queue = catalog.get(name)
            now = self._now()
            return queue, sqlite_claim.claim(
                self._db, catalog, queue, now, limit, visibility_timeout
            )

        queue, claimed = await self._transactions.write(write, lost=self._release)
        if claimed.moved_to is not None:
            self._notify(claimed.moved_to.id)
        catalog = self._catalog
        return [
            received_message(
                row, queue.id, claimed.token, catalog.account_id, self._source_arn(row), self._key
            )
            for row in claimed.rows
        ]

    def _release(self, result: tuple[StoredQueue, sqlite_claim.Claimed]) -> None:
        """Give back what a receive claimed but could not return (it was cancelled)."""
        queue, claimed = result
        with self._transaction():
            sqlite_claim.release(self._db, claimed, self._now())
        self._notify(queue.id)

    def _source_arn(self, row: Row) -> str | None:
        source = row[SOURCE_QUEUE]
        name = None if source is None else self._catalog.name_of(source)
        return None if name is None else self._catalog.arn(name)

    def _counts(self, queue: StoredQueue) -> tuple[int, int, int, int | None]:
        now = self._now()
        cutoff = now - queue.settings.retention_seconds * 1000
        row = self._db.execute(COUNTS, {"now": now, "queue": queue.id, "cutoff": cutoff})
        visible, in_flight, delayed, oldest = row.fetchone()
        return visible, in_flight, delayed, oldest

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def _notify(self, queue_id: int) -> None:
        event = self._wakeups.pop(queue_id, None)
        if event is not None:
            event.set()

    def _open(self) -> Catalog:
        if self._closed:
            raise QueueBackendClosed(
                "This SqliteQueues was closed; open a new one on the same file to go on."
            )
        return self._catalog

    def _transaction(self) -> AbstractContextManager[Catalog]:
        return self._transactions.transaction()

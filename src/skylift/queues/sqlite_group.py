"""Transactions of SqliteQueues, and group commit: the writes of one turn of the event loop
share one transaction.

A write queued with ``Transactions.write`` (a send, a receive's claim, a delete) does not
commit by itself: the first one of an event-loop turn schedules a flush for the next turn,
and every write queued by then runs, in order, inside one ``BEGIN IMMEDIATE ... COMMIT``.
Each caller is answered only after that COMMIT, so whatever a call acknowledged is in the
write-ahead log, exactly as with a transaction of its own; but sixteen concurrent
SendMessageBatch requests, or the claims and deletes of several pollers, cost one
transaction instead of sixteen: one lock, one set of WAL frames for the pages they share.

A write must raise a ``QueueError`` (no such queue, a bad entry) only before it has written
anything: it then fails alone and the others commit. A failure of the store (a full disk)
rolls the whole group back and fails each of its writes. A write whose caller was cancelled
before the flush never runs; one cancelled after it hands its result to its ``lost``
callback (a receive gives back the messages it claimed).
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from skylift.errors import is_disk_full
from skylift.queues.errors import DiskFull, QueueError, StoreFailed
from skylift.queues.sqlite_catalog import Catalog

logger = logging.getLogger("skylift.queues")
T = TypeVar("T")
Write = Callable[[Catalog], Any]


class Transactions:
    """Opens the transactions of one connection; ``opened()`` returns its catalog, or raises
    if the backend was closed."""

    def __init__(self, db: sqlite3.Connection, path: str, opened: Callable[[], Catalog]) -> None:
        self._db = db
        self._path = path
        self._opened = opened
        self._last_failure_log = -math.inf
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []

    @contextmanager
    def transaction(self) -> Iterator[Catalog]:
        """One transaction of its own, now."""
        catalog = self._opened()
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                catalog.refresh()
                catalog.locked = True
                try:
                    yield catalog
                finally:
                    catalog.locked = False
                self._db.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back by itself (a full disk): then there is none.
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                catalog.forget()  # its cache may describe what was just rolled back
                raise
        except sqlite3.DatabaseError as exc:  # a full disk, a file damaged under us
            raise self._failed(exc) from exc

    async def write(
        self, write: Callable[[Catalog], T], lost: Callable[[T], object] | None = None
    ) -> T:
        """``write(catalog)``'s result, once the transaction it ran in has committed.

        If the caller is cancelled after the commit but before it could take the result,
        ``lost(result)`` is called (a receive gives its messages back).
        """
        self._opened()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if not self._pending:
            future.get_loop().call_soon(self._flush)
        self._pending.append((write, future))
        try:
            return await future
        except asyncio.CancelledError:
            done = future.done() and not future.cancelled() and future.exception() is None
            if lost is not None and done:
                try:
                    lost(future.result())
                except Exception:  # the store failed: they come back after their timeout
                    logger.exception("giving back what a cancelled call took failed")
            raise

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        live = [(write, future) for write, future in pending if not future.done()]
        if not live:
            return
        outcomes: list[tuple[asyncio.Future[Any], Any, QueueError | None]] = []
        try:
            with self.transaction() as catalog:
                for write, future in live:
                    try:
                        outcomes.append((future, write(catalog), None))
                    except QueueError as refused:
                        outcomes.append((future, None, refused))
        except Exception as exc:  # the store failed, was closed, or a bug: all fail
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, value, error in outcomes:
            if future.done():
                continue
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

    def _failed(self, exc: sqlite3.DatabaseError) -> StoreFailed:
        """The SQS error for a failure of the store; said once a minute in the log."""
        now = time.monotonic()
        if now - self._last_failure_log > 60:
            self._last_failure_log = now
            hint = "free some disk space; " if is_disk_full(exc) else ""
            logger.error(
                "queue store %s failed: %s; %sthe server answers 5xx until it works again",
                self._path,
                exc,
                hint,
            )
        if is_disk_full(exc):
            return DiskFull(
                "The request has failed due to a temporary failure of the server: no space "
                "is left on its disk."
            )
        return StoreFailed("The request has failed due to an internal error of the server.")

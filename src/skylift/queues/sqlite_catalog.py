"""The queues table of a SqliteQueues file: queue records, cached by name.

The cache is dropped whenever another connection has committed (``PRAGMA data_version``),
so processes sharing a file see each other's attribute changes on their next call.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from skylift.queues.attributes import MAX_TAGS, QueueSettings, queue_name_from_arn
from skylift.queues.errors import InvalidAttributeValue, InvalidParameterValue, QueueDoesNotExist
from skylift.queues.protocol import QueueInfo


@dataclass(frozen=True, slots=True)
class StoredQueue:
    id: int
    name: str
    settings: QueueSettings
    created: float
    modified: float


class Catalog:
    def __init__(self, db: sqlite3.Connection, region: str, account_id: str) -> None:
        self.db = db
        self.region = region
        self.account_id = account_id
        self._by_name: dict[str, StoredQueue] = {}
        self._names: dict[int, str] = {}
        self._data_version = -1
        # True inside this connection's write transaction: no other connection can commit
        # then, so the cache checked at its start stays good until it ends.
        self.locked = False

    def get(self, name: str) -> StoredQueue:
        queue = self.find(name)
        if queue is None:
            raise QueueDoesNotExist(
                "The specified queue does not exist.",
                hint=f"no queue is named {name!r}: create it first, or check the name against "
                "ListQueues",
            )
        return queue

    def find(self, name: str) -> StoredQueue | None:
        if not self.locked:
            self.refresh()
        queue = self._by_name.get(name)
        if queue is None:
            row = self.db.execute(
                "SELECT id, attributes, created_at, modified_at FROM queues WHERE name = ?",
                (name,),
            ).fetchone()
            if row is None:
                return None
            settings = QueueSettings.from_attributes(json.loads(row[1]))
            queue = self._by_name[name] = StoredQueue(row[0], name, settings, row[2], row[3])
        return queue

    def create(self, name: str, settings: QueueSettings, now: float) -> StoredQueue:
        cursor = self.db.execute(
            "INSERT INTO queues (name, attributes, created_at, modified_at) VALUES (?,?,?,?)",
            (name, _dump(settings), now, now),
        )
        assert cursor.lastrowid is not None
        queue = self._by_name[name] = StoredQueue(cursor.lastrowid, name, settings, now, now)
        return queue

    def update(self, queue: StoredQueue, settings: QueueSettings, now: float) -> None:
        self.db.execute(
            "UPDATE queues SET attributes = ?, modified_at = ? WHERE id = ?",
            (_dump(settings), now, queue.id),
        )
        self._by_name[queue.name] = StoredQueue(queue.id, queue.name, settings, queue.created, now)

    def delete(self, queue: StoredQueue) -> None:
        self.db.execute("DELETE FROM messages WHERE queue = ?", (queue.id,))
        self.db.execute("DELETE FROM deduplication WHERE queue = ?", (queue.id,))
        self.db.execute("DELETE FROM tags WHERE queue = ?", (queue.id,))
        self.db.execute("DELETE FROM queues WHERE id = ?", (queue.id,))
        self._by_name.pop(queue.name, None)
        self._names.pop(queue.id, None)

    def tag(self, queue: StoredQueue, tags: Mapping[str, str]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO tags VALUES (?, ?, ?)",
            [(queue.id, key, value) for key, value in tags.items()],
        )
        (count,) = self.db.execute(
            "SELECT count(*) FROM tags WHERE queue = ?", (queue.id,)
        ).fetchone()
        if count > MAX_TAGS:
            raise InvalidParameterValue(
                f"Too many tags added for queue {queue.name}.",
                hint=f"a queue holds at most {MAX_TAGS} tags; remove some with UntagQueue",
            )

    def names(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT name FROM queues ORDER BY name")]

    def name_of(self, queue_id: int) -> str | None:
        if queue_id not in self._names:
            row = self.db.execute("SELECT name FROM queues WHERE id = ?", (queue_id,)).fetchone()
            if row is None:
                return None
            self._names[queue_id] = row[0]
        return self._names[queue_id]

    def next_sequence(self, queue: StoredQueue) -> int:
        (sequence,) = self.db.execute(
            "UPDATE queues SET sequence = sequence + 1 WHERE id = ? RETURNING sequence",
            (queue.id,),
        ).fetchone()
        return int(sequence)

    def refresh(self) -> None:
        """Drop the caches if another connection has committed since the last look."""
        (version,) = self.db.execute("PRAGMA data_version").fetchone()
        if version != self._data_version:
            self._data_version = version
            self.forget()

    def forget(self) -> None:
        """Drop the caches, e.g. after a rolled-back transaction changed them."""
        self._by_name.clear()
        self._names.clear()

    def arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"

    def info(self, queue: StoredQueue) -> QueueInfo:
        settings = queue.settings
        attributes = settings.to_attributes()
        return QueueInfo(queue.name, self.arn(queue.name), settings.fifo, attributes, queue.created)

    def check_redrive(self, name: str, settings: QueueSettings) -> None:
        """Raise unless the queue's RedrivePolicy names an existing queue of the same type."""
        policy = settings.redrive_policy
        if policy is None:
            return
        region, account, target = queue_name_from_arn(policy.dead_letter_target_arn)
        dlq = self.find(target)
        # A queue may be its own dead-letter queue, as in SQS (the count then starts over).
        own = target == name
        reason = hint = None
        if (region, account) != (self.region, self.account_id):
            reason = "Dead-letter target owner should be same as the source."
            hint = f"the dead-letter queue must be in {self.region}, account {self.account_id}"
        elif dlq is None and not own:
            reason = "Dead letter target does not exist."
            hint = f"create queue {target!r} first"
        elif dlq is not None and not own and dlq.settings.fifo != settings.fifo:
            reason = "Dead-letter queue must be same type of queue as the source."
        if reason is not None:
            raise InvalidAttributeValue(
                f"Value {policy.to_json()} for parameter RedrivePolicy is invalid. Reason: "
                f"{reason}",
                hint=hint,
            )

    def is_dead_letter_queue(self, queue: StoredQueue) -> bool:
        """Whether some queue's RedrivePolicy targets ``queue``, or it holds moved messages."""
        for (attributes,) in self.db.execute("SELECT attributes FROM queues").fetchall():
            policy = QueueSettings.from_attributes(json.loads(attributes)).redrive_policy
            if policy is not None and policy.dead_letter_queue == queue.name:
                return True
        row = self.db.execute(
            "SELECT 1 FROM messages WHERE queue = ? AND source_queue IS NOT NULL LIMIT 1",
            (queue.id,),
        ).fetchone()
        return row is not None


def _dump(settings: QueueSettings) -> str:
    return json.dumps(settings.to_attributes(), separators=(",", ":"))

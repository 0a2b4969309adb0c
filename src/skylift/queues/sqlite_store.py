"""The SQLite layout behind SqliteQueues: schema, statements, and stored rows as messages.

Times are integer milliseconds since the epoch. A message is *visible* when
``visible_at <= now``; it is *in flight* when it was received (``receipt`` set) and its
visibility timeout has not run out, and *delayed* when it was never received and its delay
has not run out. ``receipt`` is the token of the latest receive, which receipt handles
carry, so a handle from an earlier receive can be told apart.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from skylift.errors import SkyliftError
from skylift.ids import request_id
from skylift.queues.messages import PreparedMessage, encode_attributes
from skylift.queues.protocol import ReceivedMessage, SendResult
from skylift.queues.receipts import Receipt, received

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so stale handles never match
    name TEXT NOT NULL UNIQUE,
    attributes TEXT NOT NULL,              -- JSON of QueueSettings.to_attributes()
    created_at REAL NOT NULL,
    modified_at REAL NOT NULL,
    sequence INTEGER NOT NULL DEFAULT 0,   -- last FIFO sequence number handed out
    purged_at REAL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    queue INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    md5_body TEXT NOT NULL,
    attributes TEXT,
    md5_attributes TEXT,
    sent_at INTEGER NOT NULL,
    enqueued_at INTEGER NOT NULL,          -- start of the retention period
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_received_at INTEGER,
    received_at INTEGER,
    receipt INTEGER,
    group_id TEXT,
    dedup_id TEXT,
    sequence INTEGER,
    source_queue INTEGER,                  -- set while in a dead-letter queue
    system_attributes TEXT                 -- MessageSystemAttributes (AWSTraceHeader), as JSON
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, visible_at);
CREATE INDEX IF NOT EXISTS messages_group ON messages (queue, group_id, sequence)
    WHERE group_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS deduplication (
    queue INTEGER NOT NULL,
    dedup_id TEXT NOT NULL,                -- scoped by group when DeduplicationScope says so
    message_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (queue, dedup_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deduplication_expiry ON deduplication (queue, expires_at);
CREATE TABLE IF NOT EXISTS tags (
    queue INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (queue, key)
) WITHOUT ROWID;
"""
# From each older version to the next: what a file written by an older skylift needs.
_MIGRATIONS = {
    1: """
ALTER TABLE messages ADD COLUMN system_attributes TEXT;
CREATE TABLE IF NOT EXISTS tags (
    queue INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (queue, key)
) WITHOUT ROWID;
""",
}
# Created on open when missing (any version). One row: the key receipt handles
# are signed with, so only handles this database gave out are accepted.
_SECRET = """
CREATE TABLE IF NOT EXISTS secret (key BLOB NOT NULL);
INSERT INTO secret (key) SELECT randomblob(32) WHERE NOT EXISTS (SELECT 1 FROM secret);
"""

Row = tuple[Any, ...]

INSERT = (
    "INSERT INTO messages (queue, message_id, body, md5_body, attributes, md5_attributes, "
    "sent_at, enqueued_at, visible_at, group_id, dedup_id, sequence, system_attributes) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
# Column order of every claimed Row; received_message() reads them by position.
_RETURNING = (
    " RETURNING id, message_id, body, md5_body, attributes, md5_attributes, sent_at, "
    "enqueued_at, receive_count, first_received_at, group_id, dedup_id, sequence, source_queue, "
    "system_attributes"
)
ENQUEUED_AT, RECEIVE_COUNT, SOURCE_QUEUE = 7, 8, 13
_CLAIM = (
    "UPDATE messages SET visible_at = ?, received_at = ?, "
    "first_received_at = coalesce(first_received_at, ?), receipt = ?, "
    "receive_count = receive_count + 1 "
)
CLAIM_STANDARD = (
    _CLAIM + "WHERE id IN (SELECT id FROM messages WHERE queue = ? AND visible_at <= ? "
    "ORDER BY visible_at LIMIT ?)" + _RETURNING
)
# The ids come as a JSON array: one statement (and one cached plan) for any batch size.
CLAIM_IDS = _CLAIM + "WHERE id IN (SELECT value FROM json_each(?))" + _RETURNING
DELETE_STANDARD = "DELETE FROM messages WHERE id = ? AND queue = ? AND message_id = ?"
NEXT_VISIBLE = "SELECT min(visible_at) FROM messages WHERE queue = ? AND visible_at > ?"
COUNTS = (
    "SELECT coalesce(sum(visible_at <= :now), 0), "
    "coalesce(sum(visible_at > :now AND receipt IS NOT NULL), 0), "
    "coalesce(sum(visible_at > :now AND receipt IS NULL), 0), min(enqueued_at) "
    "FROM messages WHERE queue = :queue AND enqueued_at > :cutoff"
)


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating if needed) a queue database in WAL mode with synchronous=NORMAL."""
    # Autocommit mode: the backend issues BEGIN IMMEDIATE / COMMIT itself, so a write
    # transaction never has to upgrade a read lock (which can deadlock across processes).
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        # The default 2 MiB page cache makes every claim re-read index pages once a queue
        # holds more than a few thousand messages; 64 MiB (allocated as used) cut claims ~3x.
        db.execute("PRAGMA cache_size=-65536")
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version == 0:
            db.executescript(
                f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
            version = SCHEMA_VERSION
        elif version in _MIGRATIONS:
            version = _migrate(db)
        if version == SCHEMA_VERSION:
            db.executescript(f"BEGIN IMMEDIATE; {_SECRET} COMMIT;")
    except sqlite3.DatabaseError as exc:
        db.close()
        raise SkyliftError(
            f"{os.fspath(path)!r} cannot be opened as a queue database (SQLite: {exc}); "
            "restore it from a backup or move it aside."
        ) from None
    if version != SCHEMA_VERSION:
        db.close()
        raise SkyliftError(
            f"{os.fspath(path)!r} holds queue schema version {version}, but this skylift "
            f"reads version {SCHEMA_VERSION}; use the matching skylift or a new file."
        )
    return db


def _migrate(db: sqlite3.Connection) -> int:
    """Bring an older file up to SCHEMA_VERSION; returns the version it is at now."""
    db.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated the file meanwhile: look again, locked.
        (version,) = db.execute("PRAGMA user_version").fetchone()
        while version in _MIGRATIONS:
            for statement in _MIGRATIONS[version].split(";"):
                if statement.strip():
                    db.execute(statement)
            version += 1
            db.execute(f"PRAGMA user_version = {version}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return int(version)


def receipt_key(db: sqlite3.Connection) -> bytes:
    """The secret receipt handles of this database are signed with."""
    (key,) = db.execute("SELECT key FROM secret").fetchone()
    return bytes(key)


def message_row(
    queue_id: int, message_id: str, message: PreparedMessage, now: int, sequence: int | None
) -> tuple[object, ...]:
    """The INSERT parameters for a new message."""
    return (
        queue_id,
        message_id,
        message.body,
        message.md5_of_body,
        encode_attributes(message.attributes) if message.attributes else None,
        message.md5_of_message_attributes,
        now,
        now,
        now + message.delay_seconds * 1000,
        message.group_id,
        message.deduplication_id,
        sequence,
        encode_attributes(message.system_attributes) if message.system_attributes else None,
    )


def insert_standard(
    db: sqlite3.Connection, queue_id: int, prepared: list[PreparedMessage], now: int
) -> list[SendResult]:
    """Store a standard queue's new messages, inside the caller's transaction."""
    results, rows = [], []
    for message in prepared:
        message_id = request_id()
        rows.append(message_row(queue_id, message_id, message, now, None))
        results.append(
            SendResult(
                message_id,
                message.md5_of_body,
                message.md5_of_message_attributes,
                None,
                message.md5_of_system_attributes,
            )
        )
    db.executemany(INSERT, rows)
    return results


def format_sequence(sequence: int) -> str:
    # Zero-padded like SQS's 20-digit numbers, so string order matches numeric order.
    return f"{sequence:020d}"


def received_message(
    row: Row, queue_id: int, token: int, sender_id: str, source_arn: str | None, key: bytes
) -> ReceivedMessage:
    """A claimed row as ReceiveMessage returns it."""
    (
        row_id,
        message_id,
        body,
        md5_body,
        attributes,
        md5_attributes,
        sent_at,
        _enqueued_at,
        receive_count,
        first_received_at,
        group_id,
        dedup_id,
        sequence,
        _source_queue,
        system_attributes,
    ) = row
    return received(
        Receipt(queue_id, row_id, message_id, token),
        key,
        body=body,
        md5_of_body=md5_body,
        attributes=attributes,
        md5_of_attributes=md5_attributes,
        sender_id=sender_id,
        sent_at=sent_at,
        receive_count=receive_count,
        first_received_at=first_received_at,
        group_id=group_id,
        dedup_id=dedup_id,
        sequence=sequence,
        source_arn=source_arn,
        system_attributes=system_attributes,
    )

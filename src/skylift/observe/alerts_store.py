"""Alerts and their deliveries, kept in `.skylift/alerts.db` (SQLite, WAL).

The server writes them; `skylift alerts` reads them and acks or resolves them, with or
without the server running. Every change that races another process (an ack against
an escalation) is one conditional UPDATE, so an acked alert is never escalated.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FILE = "alerts.db"
OPEN, ACKED, RESOLVED = "open", "acked", "resolved"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,          -- function | queue | backup
    subject TEXT NOT NULL,       -- its name
    metric TEXT NOT NULL,
    severity TEXT NOT NULL,      -- notify | page
    state TEXT NOT NULL,         -- open | acked | resolved
    value REAL NOT NULL, mean REAL NOT NULL, stddev REAL NOT NULL, sigma REAL NOT NULL,
    opened_at REAL NOT NULL,
    paged_at REAL, paged TEXT,   -- when and whom the page went to
    escalated_at REAL, escalated_to TEXT,
    acked_at REAL, acked_by TEXT,
    resolved_at REAL, resolved_by TEXT,
    detail TEXT                  -- what happened, in words (a failed backup's error)
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts(state);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL,
    event TEXT NOT NULL,         -- notify | page | escalate | ack | resolve
    recipient TEXT NOT NULL,
    notifier TEXT NOT NULL,      -- webhook | slack
    url TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at REAL NOT NULL,
    status INTEGER,              -- the HTTP status, if an answer came
    error TEXT                   -- why it failed; NULL when delivered
);
CREATE INDEX IF NOT EXISTS deliveries_alert ON deliveries(alert_id);
"""


@dataclass
class Alert:
    id: int
    kind: str
    subject: str
    metric: str
    severity: str
    state: str
    value: float
    mean: float
    stddev: float
    sigma: float
    opened_at: float
    paged_at: float | None = None
    paged: str | None = None
    escalated_at: float | None = None
    escalated_to: str | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    detail: str | None = None

    @property
    def series(self) -> tuple[str, str, str]:
        return (self.kind, self.subject, self.metric)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Delivery:
    alert_id: int
    event: str
    recipient: str
    notifier: str
    url: str
    attempt: int
    at: float
    status: int | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AlertStore:
    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / FILE
        # One connection per store; the server uses it from its loop and its delivery
        # threads, so sqlite3's own lock serialises them.
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(_SCHEMA)
        columns = {row["name"] for row in self.db.execute("PRAGMA table_info(alerts)")}
        if "detail" not in columns:  # a database from before failed backups raised alerts
            self.db.execute("ALTER TABLE alerts ADD COLUMN detail TEXT")

    def close(self) -> None:
        self.db.close()

    def open_alert(
        self,
        kind: str,
        subject: str,
        metric: str,
        severity: str,
        values: dict[str, float],
        now: float,
        detail: str | None = None,
    ) -> Alert:
        cursor = self.db.execute(
            "INSERT INTO alerts (kind, subject, metric, severity, state, value, mean, stddev, "
            "sigma, opened_at, detail) VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?)",
            (
                kind,
                subject,
                metric,
                severity,
                values["value"],
                values["mean"],
                values["stddev"],
                values["sigma"],
                now,
                detail,
            ),
        )
        found = self.get(int(cursor.lastrowid or 0))
        assert found is not None
        return found

    def get(self, alert_id: int) -> Alert | None:
        row = self.db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return Alert(**dict(row)) if row else None

    def active(self) -> list[Alert]:
        """Alerts open or acked (not resolved), oldest first."""
        rows = self.db.execute(
            "SELECT * FROM alerts WHERE state != 'resolved' ORDER BY id"
        ).fetchall()
        return [Alert(**dict(row)) for row in rows]

    def recent(self, since: float) -> list[Alert]:
        """Active alerts and those resolved since `since`, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM alerts WHERE state != 'resolved' OR resolved_at >= ? ORDER BY id",
            (since,),
        ).fetchall()
        return [Alert(**dict(row)) for row in rows]

    def last_resolved(self, kind: str, subject: str, metric: str) -> float | None:
        row = self.db.execute(
            "SELECT MAX(resolved_at) FROM alerts WHERE kind = ? AND subject = ? AND metric = ?",
            (kind, subject, metric),
        ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def changed_by_people(self, since: float, until: float) -> list[Alert]:
        """Alerts someone (not skylift itself) acked or resolved in [since, until)."""
        rows = self.db.execute(
            "SELECT * FROM alerts WHERE (acked_at >= ? AND acked_at < ? AND state = 'acked') "
            "OR (resolved_at >= ? AND resolved_at < ? AND resolved_by NOT LIKE 'skylift:%') "
            "ORDER BY id",
            (since, until, since, until),
        ).fetchall()
        return [Alert(**dict(row)) for row in rows]

    def update(self, alert_id: int, values: dict[str, float]) -> None:
        self.db.execute(
            "UPDATE alerts SET value = ?, mean = ?, stddev = ?, sigma = ? WHERE id = ?",
            (values["value"], values["mean"], values["stddev"], values["sigma"], alert_id),
        )

    def note(self, alert_id: int, value: float, detail: str) -> None:
        """A new value and detail for an alert that is not judged in sigmas (a backup)."""
        self.db.execute(
            "UPDATE alerts SET value = ?, detail = ? WHERE id = ?", (value, detail, alert_id)
        )

    def page(self, alert_id: int, recipient: str, now: float) -> bool:
        """Raise to `page` and record whom; False if it was acked or resolved meanwhile."""
        cursor = self.db.execute(
            "UPDATE alerts SET severity = 'page', paged_at = ?, paged = ? "
            "WHERE id = ? AND state = 'open' AND paged_at IS NULL",
            (now, recipient, alert_id),
        )
        return cursor.rowcount == 1

    def escalate(self, alert_id: int, recipient: str, now: float) -> bool:
        """Record the escalation, only if still open (unacked) and not escalated yet."""
        cursor = self.db.execute(
            "UPDATE alerts SET escalated_at = ?, escalated_to = ? "
            "WHERE id = ? AND state = 'open' AND escalated_at IS NULL",
            (now, recipient, alert_id),
        )
        return cursor.rowcount == 1

    def ack(self, alert_id: int, by: str, now: float | None = None) -> Alert | None:
        """Acknowledge: stops the escalation. None if there is no such alert."""
        self.db.execute(
            "UPDATE alerts SET state = 'acked', acked_at = ?, acked_by = ? "
            "WHERE id = ? AND state = 'open'",
            (time.time() if now is None else now, by, alert_id),
        )
        return self.get(alert_id)

    def resolve(self, alert_id: int, by: str, now: float | None = None) -> Alert | None:
        """Resolve an open or acked alert; its series then stays quiet for the cool-down."""
        self.db.execute(
            "UPDATE alerts SET state = 'resolved', resolved_at = ?, resolved_by = ? "
            "WHERE id = ? AND state != 'resolved'",
            (time.time() if now is None else now, by, alert_id),
        )
        return self.get(alert_id)

    def record(self, delivery: Delivery) -> None:
        self.db.execute(
            "INSERT INTO deliveries (alert_id, event, recipient, notifier, url, attempt, at, "
            "status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                delivery.alert_id,
                delivery.event,
                delivery.recipient,
                delivery.notifier,
                delivery.url,
                delivery.attempt,
                delivery.at,
                delivery.status,
                delivery.error,
            ),
        )

    def deliveries(self, alert_id: int | None = None) -> list[Delivery]:
        if alert_id is None:
            rows = self.db.execute("SELECT * FROM deliveries ORDER BY id").fetchall()
        else:
            rows = self.db.execute(
                "SELECT * FROM deliveries WHERE alert_id = ? ORDER BY id", (alert_id,)
            ).fetchall()
        # sqlite3.Row iterates over values; its keys() are the column names.
        return [Delivery(**{k: row[k] for k in row.keys() if k != "id"}) for row in rows]  # noqa: SIM118

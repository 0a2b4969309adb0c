"""Actions an alert takes by itself, recorded with the alert and undone with
`skylift alerts undo ID`: `scale` (alerts_scale.py), `rollback` (alerts_rollback.py),
`drain` (alerts_drain.py). A rule names the function, optionally the metric, and the
level (`page` or `notify`) from which it acts:

    [[alerts.actions]]
    function = "pay"
    metric = "throttles"        # optional: any metric of the function
    at = "page"                 # or "notify"
    scale = { min = 4, reserved = 200 }

The same action on the same function is never taken twice within the policy's
cool-down, whichever alert asks. Each change lives in the running server (as `skylift
scale` does), so it ends with it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from skylift.observe.alerts_detector import Level
from skylift.observe.alerts_drain import DrainAction
from skylift.observe.alerts_rollback import RollbackAction
from skylift.observe.alerts_scale import ScaleAction
from skylift.observe.alerts_store import Alert, AlertStore

logger = logging.getLogger("skylift.alerts")
Rule = ScaleAction | RollbackAction | DrainAction
_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL,
    action TEXT NOT NULL,        -- scale | rollback | drain
    function TEXT NOT NULL,
    before TEXT NOT NULL,        -- JSON: what undo restores
    after TEXT NOT NULL,         -- JSON: what was set
    taken_at REAL NOT NULL,
    undone_at REAL
);
"""


class Handler(Protocol):
    """One kind of action: make the change, undo it, and say each in a line."""

    def apply(self, rule: Any) -> tuple[dict[str, Any], dict[str, Any]] | None: ...

    def revert(self, function: str, before: dict[str, Any], after: dict[str, Any]) -> None: ...

    def said(self, function: str, before: dict[str, Any], after: dict[str, Any]) -> str: ...

    def undone(self, function: str, before: dict[str, Any], after: dict[str, Any]) -> str: ...


@dataclass(frozen=True)
class Taken:
    id: int
    alert_id: int
    action: str
    function: str
    before: dict[str, Any]
    after: dict[str, Any]
    taken_at: float
    undone_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def taken(store: AlertStore, alert_id: int) -> list[Taken]:
    """The actions an alert took (the CLI reads them without a server)."""
    store.db.executescript(_SCHEMA)
    rows = store.db.execute(
        "SELECT * FROM actions WHERE alert_id = ? ORDER BY id", (alert_id,)
    ).fetchall()
    return [_taken(row) for row in rows]


def _taken(row: Any) -> Taken:
    return Taken(
        row["id"], row["alert_id"], row["action"], row["function"], json.loads(row["before"]),
        json.loads(row["after"]), row["taken_at"], row["undone_at"],
    )  # fmt: skip


class Actions:
    def __init__(
        self,
        rules: tuple[Rule, ...],
        store: AlertStore,
        handlers: Mapping[str, Handler],
        cooldown: float,
    ) -> None:
        self.rules = rules
        self.store = store
        self.handlers = handlers
        self.cooldown = cooldown
        store.db.executescript(_SCHEMA)

    def take(self, alert: Alert, level: Level, now: float) -> None:
        """Run every rule matching this alert at this level (called as it opens or pages)."""
        for rule in self.rules:
            metric = rule.metric or ("error_rate" if rule.kind == "rollback" else None)
            if (
                alert.kind != "function"
                or alert.subject != rule.function
                or (metric is not None and metric != alert.metric)
                or level < rule.at
            ):
                continue
            last = self.store.db.execute(
                "SELECT MAX(taken_at) FROM actions WHERE action = ? AND function = ?",
                (rule.kind, rule.function),
            ).fetchone()[0]
            if last is not None and now - last < self.cooldown:
                logger.warning(
                    "alert %s: not taking %s on %s again within the cool-down",
                    alert.id, rule.kind, rule.function,
                )  # fmt: skip
                continue
            self._take(alert, rule, now)

    def _take(self, alert: Alert, rule: Rule, now: float) -> None:
        handler = self.handlers[rule.kind]
        try:
            change = handler.apply(rule)
        except ValueError as exc:
            logger.warning("alert %s: cannot %s %s: %s", alert.id, rule.kind, rule.function, exc)
            return
        if change is None:
            return  # already so: nothing to record or undo
        before, after = change
        self.store.db.execute(
            "INSERT INTO actions (alert_id, action, function, before, after, taken_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (alert.id, rule.kind, rule.function, json.dumps(before), json.dumps(after), now),
        )
        logger.warning(
            "alert %s: %s (undo: skylift alerts undo %s)",
            alert.id, handler.said(rule.function, before, after), alert.id,
        )  # fmt: skip

    def undo(self, alert_id: int, now: float | None = None) -> list[dict[str, Any]]:
        """Restore what the alert's actions changed: each action undone, with a `summary`.

        Raises ValueError when one cannot be undone (those before it are undone).
        """
        undone = []
        for action in taken(self.store, alert_id):
            handler = self.handlers.get(action.action)
            if action.undone_at is not None or handler is None:
                continue
            handler.revert(action.function, action.before, action.after)
            self.store.db.execute(
                "UPDATE actions SET undone_at = ? WHERE id = ?",
                (time.time() if now is None else now, action.id),
            )
            summary = handler.undone(action.function, action.before, action.after)
            logger.warning("alert %s: undone: %s", alert_id, summary)
            undone.append({**action.to_dict(), "summary": summary})
        return undone

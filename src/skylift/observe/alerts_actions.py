"""Actions an alert takes by itself: `scale` a function (raise its warm minimum and/or
its reserved concurrency, never lower them), recorded with the alert and undone with
`skylift alerts undo ID`.

    [[alerts.actions]]
    function = "pay"
    metric = "throttles"        # optional: any metric of the function
    at = "page"                 # or "notify"
    scale = { min = 4, reserved = 200 }

The same action on the same function is never taken twice within the policy's
cool-down, whichever alert asks. The change lives in the running server (as `skylift
scale` does), so it ends with it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from skylift.observe.alerts_detector import Level
from skylift.observe.alerts_store import Alert, AlertStore

if TYPE_CHECKING:
    from skylift.engine.pool import Pool

logger = logging.getLogger("skylift.alerts")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL,
    action TEXT NOT NULL,        -- scale
    function TEXT NOT NULL,
    before TEXT NOT NULL,        -- JSON: what undo restores
    after TEXT NOT NULL,         -- JSON: what was set
    taken_at REAL NOT NULL,
    undone_at REAL
);
"""


@dataclass(frozen=True)
class ScaleAction:
    function: str
    metric: str | None
    at: Level
    minimum: int | None
    reserved: int | None


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
        self, rules: tuple[ScaleAction, ...], store: AlertStore, pools: Mapping[str, Pool],
        cooldown: float,
    ) -> None:  # fmt: skip
        self.rules = rules
        self.store = store
        self.pools = pools
        self.cooldown = cooldown
        store.db.executescript(_SCHEMA)

    def take(self, alert: Alert, level: Level, now: float) -> None:
        """Run every rule matching this alert at this level (called as it opens or pages)."""
        for rule in self.rules:
            if (
                alert.kind != "function"
                or alert.subject != rule.function
                or (rule.metric is not None and rule.metric != alert.metric)
                or level < rule.at
            ):
                continue
            last = self.store.db.execute(
                "SELECT MAX(taken_at) FROM actions WHERE action = 'scale' AND function = ?",
                (rule.function,),
            ).fetchone()[0]
            if last is not None and now - last < self.cooldown:
                logger.warning(
                    "alert %s: not scaling %s again within the cool-down", alert.id, rule.function
                )
                continue
            self._scale(alert, rule, now)

    def _scale(self, alert: Alert, rule: ScaleAction, now: float) -> None:
        pool = self.pools.get(rule.function)
        if pool is None:
            return
        before = {"min": pool.minimum, "max": pool.limit, "reserved": pool.reserved}
        minimum = max(pool.minimum, rule.minimum) if rule.minimum is not None else None
        maximum = max(pool.limit, rule.reserved) if rule.reserved is not None else None
        if (minimum is None or minimum == pool.minimum) and (
            maximum is None or maximum == pool.limit
        ):
            return  # already there: nothing to record or undo
        try:
            pool.set_limits(minimum, maximum)
        except ValueError as exc:
            logger.warning("alert %s: cannot scale %s: %s", alert.id, rule.function, exc)
            return
        after = {"min": pool.minimum, "max": pool.limit, "reserved": pool.reserved}
        self.store.db.execute(
            "INSERT INTO actions (alert_id, action, function, before, after, taken_at) "
            "VALUES (?, 'scale', ?, ?, ?, ?)",
            (alert.id, rule.function, json.dumps(before), json.dumps(after), now),
        )
        logger.warning(
            "alert %s: scaled %s: min %s -> %s, max %s -> %s (undo: skylift alerts undo %s)",
            alert.id, rule.function, before["min"], after["min"], before["max"], after["max"],
            alert.id,
        )  # fmt: skip

    def undo(self, alert_id: int, now: float | None = None) -> list[Taken]:
        """Restore what the alert's actions changed; the actions undone."""
        undone = []
        for action in taken(self.store, alert_id):
            if action.undone_at is not None:
                continue
            pool = self.pools.get(action.function)
            if pool is None:
                continue
            pool.set_limits(action.before["min"], action.before["max"])
            pool.reserved = bool(action.before["reserved"])
            self.store.db.execute(
                "UPDATE actions SET undone_at = ? WHERE id = ?",
                (time.time() if now is None else now, action.id),
            )
            undone.append(action)
        return undone

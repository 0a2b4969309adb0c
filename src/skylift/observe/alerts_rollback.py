"""The `rollback` action: after a hot reload, serve a function's previous code again.

    [[alerts.actions]]
    function = "pay"
    rollback = true             # metric defaults to error_rate

With a rollback rule in the policy, a reload keeps the version it replaces loaded (its
zygote stays up, see `engine/reload.py`), so going back is a switch of the function's
pool, as instant as the reload was. Only the running server changes: the files on disk
stay as they are (the next edit is reloaded as usual, and a restart loads them). Undo
switches the function to the reloaded code again, unless a later reload replaced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from skylift.observe.alerts_detector import Level

if TYPE_CHECKING:
    from skylift.engine.reload import Reloader, Switched

Change = tuple[dict[str, Any], dict[str, Any]]


@dataclass(frozen=True)
class RollbackAction:
    function: str
    metric: str | None
    at: Level
    kind: ClassVar[str] = "rollback"


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


class Rollbacks:
    def __init__(self, reloader: Reloader | None) -> None:
        self.reloader = reloader
        self.switched: dict[str, Switched] = {}  # function -> what undo switches back to

    def apply(self, rule: RollbackAction) -> Change | None:
        """Switch to the previous version. Raises ValueError saying why it cannot."""
        if self.reloader is None:
            raise ValueError("the server runs with --no-reload: there is no previous version")
        switched = self.reloader.rollback(rule.function)
        self.switched[rule.function] = switched
        before = {"loaded_at": switched.replaced_loaded_at, "reload": switched.reload}
        return before, {"loaded_at": switched.loaded_at, "reload": switched.reload}

    def revert(self, function: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        switched = self.switched.get(function)
        if self.reloader is None or switched is None or switched.reload != after["reload"]:
            raise ValueError(f"{function} was rolled back again since: undo that alert's instead")
        self.reloader.undo_rollback(switched)
        del self.switched[function]

    @staticmethod
    def said(function: str, before: dict[str, Any], after: dict[str, Any]) -> str:
        return (
            f"rolled back {function} to its code loaded at {_when(after['loaded_at'])} (the "
            f"reload at {_when(before['loaded_at'])} is undone in this server; the files on "
            "disk are unchanged)"
        )

    @staticmethod
    def undone(function: str, before: dict[str, Any], after: dict[str, Any]) -> str:
        return f"{function} serves its code loaded at {_when(before['loaded_at'])} again"

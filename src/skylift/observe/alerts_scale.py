"""The `scale` action: raise a function's warm minimum and/or its reserved concurrency
(never lower them), as `skylift scale` does on the running server.

    [[alerts.actions]]
    function = "pay"
    metric = "throttles"
    scale = { min = 4, reserved = 200 }
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from skylift.observe.alerts_detector import Level

if TYPE_CHECKING:
    from skylift.engine.pool import Pool

Change = tuple[dict[str, Any], dict[str, Any]]  # (before: what undo restores, after)


@dataclass(frozen=True)
class ScaleAction:
    function: str
    metric: str | None
    at: Level
    minimum: int | None
    reserved: int | None
    kind: ClassVar[str] = "scale"


class Scaler:
    def __init__(self, pools: Mapping[str, Pool]) -> None:
        self.pools = pools

    def apply(self, rule: ScaleAction) -> Change | None:
        """Raise the limits; None when they are there already (nothing to undo).

        Raises ValueError when the pool refuses the change (beyond the server's limit).
        """
        pool = self.pools.get(rule.function)
        if pool is None:
            return None
        before = {"min": pool.minimum, "max": pool.limit, "reserved": pool.reserved}
        minimum = max(pool.minimum, rule.minimum) if rule.minimum is not None else None
        maximum = max(pool.limit, rule.reserved) if rule.reserved is not None else None
        if (minimum is None or minimum == pool.minimum) and (
            maximum is None or maximum == pool.limit
        ):
            return None
        pool.set_limits(minimum, maximum)
        return before, {"min": pool.minimum, "max": pool.limit, "reserved": pool.reserved}

    def revert(self, function: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        pool = self.pools.get(function)
        if pool is None:
            return
        pool.set_limits(before["min"], before["max"])
        pool.reserved = bool(before["reserved"])

    @staticmethod
    def said(function: str, before: dict[str, Any], after: dict[str, Any]) -> str:
        return (
            f"scaled {function}: min {before['min']} -> {after['min']}, "
            f"max {before['max']} -> {after['max']}"
        )

    @staticmethod
    def undone(function: str, before: dict[str, Any], after: dict[str, Any]) -> str:
        return (
            f"{function} back to min {before['min']}, max {before['max']} "
            f"(from min {after['min']}, max {after['max']})"
        )

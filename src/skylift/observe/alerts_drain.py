"""The `drain` action: pause a function's queue event source mappings, as Lambda's
`UpdateEventSourceMapping(Enabled=False)` does. Messages wait in the queue, unread
(their receive counts do not grow, so a failing function does not push them to the
dead-letter queue); what is running finishes. Undo enables the mappings again.

    [[alerts.actions]]
    function = "worker"
    metric = "error_rate"
    drain = "orders"            # a queue the function consumes, a list of them, or true: all
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from skylift.observe.alerts_detector import Level

if TYPE_CHECKING:
    from skylift.sources.queue_mapping import QueueMapping

Change = tuple[dict[str, Any], dict[str, Any]]


@dataclass(frozen=True)
class DrainAction:
    function: str
    metric: str | None
    at: Level
    queues: tuple[str, ...] | None  # None: every queue the function consumes
    kind: ClassVar[str] = "drain"


def unknown_queues(rule: DrainAction, mappings: Sequence[QueueMapping]) -> list[str]:
    """Queues the rule names that the function does not consume (checked at start)."""
    consumed = {m.trigger.queue for m in mappings if m.function == rule.function}
    return sorted(set(rule.queues or ()) - consumed)


class Drains:
    def __init__(self, mappings: Sequence[QueueMapping]) -> None:
        self.mappings = mappings

    def _found(self, function: str, queues: Sequence[str] | None) -> list[QueueMapping]:
        return [
            m
            for m in self.mappings
            if m.function == function and (queues is None or m.trigger.queue in queues)
        ]

    def apply(self, rule: DrainAction) -> Change | None:
        """Pause the mappings that are polling; None when none was (nothing to undo)."""
        paused = [m for m in self._found(rule.function, rule.queues) if m.enabled]
        for mapping in paused:
            mapping.pause()
        if not paused:
            return None
        names = [m.trigger.queue for m in paused]
        return {"enabled": names}, {"paused": names}

    def revert(self, function: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        for mapping in self._found(function, after["paused"]):
            mapping.resume()

    @staticmethod
    def said(function: str, before: dict[str, Any], after: dict[str, Any]) -> str:
        queues = ", ".join(after["paused"])
        return f"drained {function}: paused its event source mapping on {queues}"

    @staticmethod
    def undone(function: str, before: dict[str, Any], after: dict[str, Any]) -> str:
        queues = ", ".join(after["paused"])
        return f"{function} polls {queues} again (its event source mapping is enabled)"

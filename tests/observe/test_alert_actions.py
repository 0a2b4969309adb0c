"""Alert actions driven by the engine with an injected clock: each action is recorded,
taken once within the cool-down whichever alert asks, and undone once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from skylift.observe.alerts import AlertEngine
from skylift.observe.alerts_actions import Actions, taken
from skylift.observe.alerts_detector import Level
from skylift.observe.alerts_drain import DrainAction, Drains
from skylift.observe.alerts_rollback import RollbackAction, Rollbacks
from skylift.observe.alerts_store import AlertStore
from skylift.observe.policy import Policy
from skylift.sources.queue_mapping import QueueMapping
from skylift.triggers import QueueTrigger

POLICY = Policy(interval=15, window=3600, min_samples=20, hold=0, cooldown=900)


def mapping(function: str, queue: str) -> QueueMapping:
    # Never started: it does not poll, so it needs no queue backend or invoker.
    none: Any = None
    return QueueMapping(function, QueueTrigger(queue), none, none, queue_arn="", region="")


def engine(store: AlertStore, rules: tuple[Any, ...], drains: Drains) -> AlertEngine:
    handlers = {"drain": drains, "rollback": Rollbacks(None)}
    actions = Actions(rules, store, handlers, POLICY.cooldown)
    return AlertEngine(replace(POLICY, actions=rules), store, lambda *_: None, actions)


def warm(e: AlertEngine, metrics: list[str], now: float = 0.0) -> float:
    for i in range(25):
        e.tick(now, {("function", "worker", m): 0.19 if i % 2 else 0.21 for m in metrics})
        now += 15
    return now


@pytest.fixture
def store(tmp_path: Path) -> AlertStore:
    return AlertStore(tmp_path / ".skylift")


def test_a_drain_is_taken_once_within_the_cooldown_whichever_alert_asks(
    store: AlertStore,
) -> None:
    orders, refunds = mapping("worker", "orders"), mapping("worker", "refunds")
    drains = Drains([orders, refunds])
    rule = DrainAction("worker", None, Level.PAGE, None)  # every queue, any metric
    e = engine(store, (rule,), drains)
    now = warm(e, ["error_rate", "duration_p99", "throttles"])
    e.tick(now, {("function", "worker", "error_rate"): 0.9})
    assert (orders.enabled, refunds.enabled) == (False, False)
    first = store.active()[0]
    assert [t.after for t in taken(store, first.id)] == [{"paused": ["orders", "refunds"]}]
    assert e.actions is not None
    assert [t["summary"] for t in e.actions.undo(first.id)] == [
        "worker polls orders, refunds again (its event source mapping is enabled)"
    ]
    assert (orders.enabled, refunds.enabled) == (True, True)
    assert e.actions.undo(first.id) == []  # undone once
    # A second alert on the same function 5 minutes on, within the 15 min cool-down.
    e.tick(now + 300, {("function", "worker", "duration_p99"): 5.0})
    second = store.active()[1]
    assert second.metric == "duration_p99" and taken(store, second.id) == []
    assert (orders.enabled, refunds.enabled) == (True, True)
    # After the cool-down, a third drains again.
    e.tick(now + 1000, {("function", "worker", "throttles"): 5.0})
    third = store.active()[2]
    assert third.metric == "throttles" and len(taken(store, third.id)) == 1
    assert (orders.enabled, refunds.enabled) == (False, False)


def test_a_notice_does_not_take_a_page_action_and_a_rollback_needs_a_reload(
    store: AlertStore, caplog: pytest.LogCaptureFixture
) -> None:
    orders = mapping("worker", "orders")
    rules = (
        DrainAction("worker", "error_rate", Level.PAGE, ("orders",)),
        RollbackAction("worker", None, Level.NOTIFY),
    )
    e = engine(store, rules, Drains([orders]))
    now = warm(e, ["error_rate"])
    e.tick(now, {("function", "worker", "error_rate"): 0.225})  # 2.5 sigma: a notice
    alert = store.active()[0]
    assert alert.severity == "notify" and orders.enabled
    assert taken(store, alert.id) == []  # the rollback could not be taken: not recorded
    assert "cannot rollback worker: the server runs with --no-reload" in caplog.text

"""The detector and the engine, driven by an injected clock: hours of policy, no sleeps."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from skylift.observe.alerts import AlertEngine
from skylift.observe.alerts_detector import Detector, Level, RollingStats
from skylift.observe.alerts_store import Alert, AlertStore
from skylift.observe.policy import Contact, Policy

ALICE = Contact("alice", webhook="http://127.0.0.1:9/alice")
BOB = Contact("bob", webhook="http://127.0.0.1:9/bob")
OPS = Contact("#ops", slack="http://127.0.0.1:9/ops")
POLICY = Policy(
    interval=15, window=3600, min_samples=20, hold=60, cooldown=900, escalate_after=300,
    primary=ALICE, backup=BOB, channels=(OPS,),
)  # fmt: skip
SERIES = ("function", "pay", "duration_p99")


def test_rolling_stats_match_the_window_exactly() -> None:
    stats = RollingStats(50)
    values = [random.Random(7).gauss(0.2, 0.03) for _ in range(1)]
    rng = random.Random(7)
    values = [rng.gauss(0.2, 0.03) for _ in range(10_000)]
    for value in values:
        stats.add(value)
    window = values[-50:]
    mean = sum(window) / 50
    assert stats.count == 50
    assert stats.mean == pytest.approx(mean, rel=1e-9)
    assert stats.stddev == pytest.approx(
        math.sqrt(sum((v - mean) ** 2 for v in window) / 50), rel=1e-6
    )


def baseline(detector: Detector, start: float = 0.0, count: int = 40) -> float:
    """Samples alternating 0.19 and 0.21 s: mean 0.2, standard deviation 0.01."""
    now = start
    for i in range(count):
        detector.observe(now, 0.19 if i % 2 else 0.21)
        now += 15
    return now


def detector(**changes: float) -> Detector:
    settings = {
        "window": 240,
        "min_samples": 20,
        "hold": 0.0,
        "notify_at": 2.0,
        "page_at": 3.0,
        "floor": 0.001,
    }
    settings.update(changes)
    return Detector(**settings)  # type: ignore[arg-type]


def test_levels_one_two_three_sigma() -> None:
    d = detector()
    now = baseline(d)
    assert d.observe(now, 0.2105).level is Level.NONE  # ~0.5 sigma
    assert d.observe(now, 0.211).firing is Level.NONE  # ~1 sigma: nothing
    judged = d.observe(now, 0.225)  # ~2.5 sigma
    assert judged.level is Level.NOTIFY and judged.sigma == pytest.approx(2.5, abs=0.2)
    assert d.observe(now, 0.26).firing is Level.PAGE  # ~6 sigma


def test_falls_never_alert() -> None:
    d = detector()
    now = baseline(d)
    assert d.observe(now, 0.0).level is Level.NONE


def test_nothing_is_judged_before_min_samples() -> None:
    d = detector()
    baseline(d, count=19)
    assert d.observe(1000, 10.0).level is Level.NONE
    assert d.observe(1015, 10.0).level is Level.PAGE  # 20 samples before it now


def test_a_level_fires_only_after_holding_for_its_duration() -> None:
    d = detector(hold=60)
    now = baseline(d)
    assert d.observe(now, 5.0).firing is Level.NONE  # page level, held 0 s
    assert d.observe(now + 30, 5.0).firing is Level.NONE
    assert d.observe(now + 60, 5.0).firing is Level.PAGE
    d2 = detector(hold=60)
    now = baseline(d2)
    d2.observe(now, 5.0)
    d2.observe(now + 30, 0.2)  # a break restarts the count
    assert d2.observe(now + 60, 5.0).firing is Level.NONE


def test_a_flat_series_uses_the_floor() -> None:
    d = detector(floor=0.01)
    now = 0.0
    for _ in range(30):
        d.observe(now, 0.0)  # no errors at all
        now += 15
    assert d.observe(now, 0.015).level is Level.NONE  # 1.5 floors: nobody woken
    assert d.observe(now, 0.05).level is Level.PAGE


@dataclass
class Sent:
    event: str
    alert: Alert
    to: list[str]


@pytest.fixture
def store(tmp_path: Path) -> AlertStore:
    return AlertStore(tmp_path / ".skylift")


def engine(store: AlertStore, policy: Policy = POLICY) -> tuple[AlertEngine, list[Sent]]:
    sent: list[Sent] = []

    def send(event: str, alert: Alert, contacts: Sequence[Contact]) -> None:
        sent.append(Sent(event, alert, [c.name for c in contacts]))

    return AlertEngine(policy, store, send), sent


def warm(e: AlertEngine, now: float = 0.0) -> float:
    for i in range(40):
        e.tick(now, {SERIES: 0.19 if i % 2 else 0.21})
        now += 15
    return now


def test_three_sigma_pages_the_primary_then_the_backup_after_five_minutes(
    store: AlertStore,
) -> None:
    e, sent = engine(store)
    now = warm(e)
    for _ in range(4):  # 0.5 s p99 against 0.2 ± 0.01: 30 sigma, held 45 s: not yet
        e.tick(now, {SERIES: 0.5})
        now += 15
    assert sent == []
    e.tick(now, {SERIES: 0.5})  # held 60 s: fires
    assert [(s.event, s.to) for s in sent] == [("page", ["alice", "#ops"])]
    alert = store.active()[0]
    assert (alert.severity, alert.state, alert.paged, alert.kind, alert.subject) == (
        "page",
        "open",
        "alice",
        "function",
        "pay",
    )
    paged_at = now
    while now + 15 < paged_at + 300:
        now += 15
        e.tick(now, {SERIES: 0.5})
    assert len(sent) == 1  # not yet five minutes
    e.tick(paged_at + 300, {})
    assert [(s.event, s.to) for s in sent[1:]] == [("escalate", ["bob", "#ops"])]
    e.tick(paged_at + 900, {})
    assert len(sent) == 2  # escalated once only
    assert store.get(alert.id).escalated_to == "bob"  # type: ignore[union-attr]


def test_an_acked_page_is_not_escalated(store: AlertStore) -> None:
    e, sent = engine(store, replace(POLICY, hold=0))
    now = warm(e)
    e.tick(now, {SERIES: 0.5})
    alert = store.active()[0]
    # Another process (the CLI) acks it through its own connection.
    other = AlertStore(store.path.parent)
    assert other.ack(alert.id, "alice", now + 1).state == "acked"  # type: ignore[union-attr]
    e.tick(now + 15, {SERIES: 0.5})
    e.tick(now + 3600, {SERIES: 0.5})
    # Everyone who was told hears who is on it, once; the backup hears nothing.
    assert [(s.event, s.to) for s in sent] == [
        ("page", ["alice", "#ops"]),
        ("ack", ["#ops", "alice"]),
    ]
    assert sent[1].alert.acked_by == "alice"


def test_an_ack_committed_after_the_tick_its_time_belongs_to_is_still_told(
    store: AlertStore,
) -> None:
    e, sent = engine(store, replace(POLICY, hold=0))
    now = warm(e)
    e.tick(now, {SERIES: 0.5})
    alert = store.active()[0]
    e.tick(now + 15, {SERIES: 0.5})
    # The CLI took its time (now + 14) before that tick, but committed after it.
    other = AlertStore(store.path.parent)
    assert other.ack(alert.id, "alice", now + 14) is not None
    e.tick(now + 30, {SERIES: 0.5})
    e.tick(now + 45, {SERIES: 0.5})
    assert [(s.event, s.to) for s in sent] == [
        ("page", ["alice", "#ops"]),
        ("ack", ["#ops", "alice"]),  # told once, though two ticks' windows hold it
    ]
    other.resolve(alert.id, "alice", now + 44)  # late again, and resolved
    e.tick(now + 60, {})
    e.tick(now + 75, {})
    assert [s.event for s in sent] == ["page", "ack", "resolve"]


def test_two_sigma_tells_the_channel_and_pages_nobody(store: AlertStore) -> None:
    e, sent = engine(store, replace(POLICY, hold=0))
    now = warm(e)
    e.tick(now, {SERIES: 0.225})  # 2.5 sigma
    assert [(s.event, s.to) for s in sent] == [("notify", ["#ops"])]
    e.tick(now + 3600, {})
    assert len(sent) == 1  # a notice never escalates
    assert store.active()[0].paged is None


def test_one_sigma_does_nothing(store: AlertStore) -> None:
    e, sent = engine(store, replace(POLICY, hold=0))
    now = warm(e)
    e.tick(now, {SERIES: 0.211})
    assert sent == [] and store.active() == []


def test_a_notice_that_grows_to_three_sigma_becomes_a_page(store: AlertStore) -> None:
    e, sent = engine(store, replace(POLICY, hold=0))
    now = warm(e)
    e.tick(now, {SERIES: 0.225})
    e.tick(now + 15, {SERIES: 0.6})
    assert [(s.event, s.to) for s in sent] == [("notify", ["#ops"]), ("page", ["alice", "#ops"])]
    assert len(store.active()) == 1


def test_recovery_resolves_and_the_cooldown_keeps_the_series_quiet(store: AlertStore) -> None:
    e, sent = engine(store, replace(POLICY, hold=0))
    now = warm(e)
    e.tick(now, {SERIES: 0.5})
    e.tick(now + 15, {SERIES: 0.2})  # back to normal
    assert [(s.event, s.to) for s in sent] == [
        ("page", ["alice", "#ops"]),
        ("resolve", ["#ops", "alice"]),
    ]
    assert store.active() == []
    e.tick(now + 30, {SERIES: 5.0})  # flapping right back: within the 15 min cool-down
    assert len(sent) == 2
    e.tick(now + 15 + 900, {SERIES: 50.0})  # after it
    assert sent[-1].event == "page"


def test_a_manual_resolve_starts_the_cooldown(store: AlertStore) -> None:
    e, sent = engine(store, replace(POLICY, hold=0))
    now = warm(e)
    e.tick(now, {SERIES: 0.5})
    store.resolve(store.active()[0].id, "alice", now + 5)
    e.tick(now + 15, {SERIES: 0.5})
    assert [s.event for s in sent] == ["page", "resolve"] and store.active() == []
    assert sent[1].alert.resolved_by == "alice"


def test_metrics_left_out_of_the_policy_are_not_watched(store: AlertStore) -> None:
    e, sent = engine(store, replace(POLICY, hold=0, metrics=("error_rate",)))
    warm(e)
    e.tick(10_000, {SERIES: 50.0})
    assert sent == []


def test_a_person_resolving_restarts_the_baseline(store: AlertStore) -> None:
    e, sent = engine(store, replace(POLICY, hold=0, cooldown=0))
    now = warm(e)
    e.tick(now, {SERIES: 0.5})
    store.resolve(store.active()[0].id, "alice", now + 1)  # "0.5 s is the new normal"
    for i in range(19):  # fewer than min_samples of the new level: no judgement yet
        e.tick(now + 15 * (i + 1), {SERIES: 0.5 + (0.01 if i % 2 else -0.01)})
    assert [s.event for s in sent] == ["page", "resolve"] and store.active() == []

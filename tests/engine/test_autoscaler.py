"""The scaling decision (HPA formula, KPA windows), fed synthetic observations."""

from __future__ import annotations

import itertools

import pytest

from skylift.engine.autoscaler import Policy, Scaler

TICK = 0.25


def feed(scaler: Scaler, start: float, seconds: float, concurrency: float) -> float:
    """Observe `concurrency` every tick for `seconds`; the time reached."""
    now = start
    for _ in range(round(seconds / TICK)):
        now += TICK
        scaler.observe(now, concurrency, TICK)
    return now


def steady(policy: Policy, concurrency: float, current: int, seconds: float = 60) -> Scaler:
    scaler = Scaler(policy, now=0.0)
    scaler.desired = current
    feed(scaler, 0.0, seconds, concurrency)
    return scaler


def test_desired_follows_the_hpa_formula():
    # 8 instances, 7 concurrent, target 0.7 per instance: ceil(8 * (7/8) / 0.7) = 10.
    scaler = steady(Policy(), 7.0, current=8)
    decision = scaler.decide(60.0, current=8, floor=0, ceiling=100)
    assert decision is not None and decision.desired == 10 and decision.mode == "stable"
    assert decision.stable == pytest.approx(7.0)
    assert "7.00 concurrent over 60 s" in decision.reason


def test_within_the_tolerance_nothing_changes():
    # 10 instances at 7.3 concurrent: 7.3 / 10 / 0.7 = 1.043, within 0.1 of 1.
    scaler = steady(Policy(), 7.3, current=10)
    assert scaler.decide(60.0, current=10, floor=0, ceiling=100) is None
    assert scaler.desired == 10
    # Past the tolerance (7.8 / 10 / 0.7 = 1.11) it scales.
    scaler = steady(Policy(), 7.8, current=10)
    assert scaler.decide(60.0, current=10, floor=0, ceiling=100) is not None
    assert scaler.desired == 12


def test_a_burst_panics_and_scales_from_the_panic_window():
    scaler = steady(Policy(), 1.0, current=2)
    scaler.decide(60.0, current=2, floor=0, ceiling=100)
    now = feed(scaler, 60.0, 1.0, 12.0)  # 1 s at 12: the 2 s window averages 6.5
    # On-demand starts already gave the burst its 12 instances; the target of 2 is what
    # fell behind: 6.5 / 0.7 is over twice 2.
    decision = scaler.decide(now, current=12, floor=0, ceiling=100)
    assert decision is not None and decision.mode == "panic"
    assert decision.desired == 10  # ceil(12 * 6.5 / 12 / 0.7) = 10
    assert decision.panic == pytest.approx(6.5)
    # The stable window alone would have asked for far fewer.
    assert decision.stable == pytest.approx((59 * 1.0 + 1 * 12.0) / 60)


def test_a_rise_scales_up_from_the_fast_window_without_panic():
    scaler = steady(Policy(), 4.0, current=4)
    scaler.decide(60.0, current=4, floor=0, ceiling=100)
    assert scaler.desired == 6  # ceil(4 / 0.7)
    now = feed(scaler, 60.0, 2.0, 6.0)  # two more clients for 2 s
    decision = scaler.decide(now, current=6, floor=0, ceiling=100)
    # 6 / 0.7 / 6 is under the panic threshold, but the target already follows the
    # 2 s window (9), not only the 60 s one (which still says 6).
    assert decision is not None and decision.mode == "stable" and decision.desired == 9
    assert "over 2 s" in decision.reason


def test_one_busy_instance_is_no_panic():
    # 0.8 concurrent on one instance asks for 2 once rounded up; unrounded it is 1.14x.
    scaler = steady(Policy(), 0.8, current=1)
    scaler.decide(60.0, current=1, floor=0, ceiling=100)
    assert scaler.panicking_since is None and scaler.desired == 2


def test_panic_never_scales_down_and_ends_after_a_stable_window():
    policy = Policy()
    scaler = steady(policy, 1.0, current=2)
    now = feed(scaler, 60.0, 3.0, 12.0)
    scaler.decide(now, current=2, floor=0, ceiling=100)
    peak = scaler.desired
    now = feed(scaler, now, 10.0, 0.0)  # the burst is over; the panic window is empty
    assert scaler.decide(now, current=peak, floor=0, ceiling=100) is None
    assert scaler.desired == peak and scaler.panicking_since is not None
    now = feed(scaler, now, policy.stable_window, 0.0)
    decision = scaler.decide(now, current=peak, floor=0, ceiling=100)
    assert decision is not None and decision.mode == "stable"
    assert scaler.panicking_since is None


def test_scale_up_is_capped_per_tick():
    policy = Policy(max_scale_up_rate=3.0)
    scaler = steady(policy, 50.0, current=2, seconds=6)
    decision = scaler.decide(6.0, current=2, floor=0, ceiling=1000)
    assert decision is not None and decision.desired == 6  # 3x of 2, not ceil(50/0.7)
    assert "capped at 3x" in decision.reason
    # From zero instances the cap counts one.
    scaler = steady(policy, 50.0, current=0, seconds=6)
    scaler.decide(6.0, current=0, floor=0, ceiling=1000)
    assert scaler.desired == 3


def test_scale_down_waits_then_at_most_halves_each_tick():
    policy = Policy(scale_down_delay=5.0)
    scaler = steady(policy, 14.0, current=20)
    scaler.decide(60.0, current=20, floor=0, ceiling=100)
    assert scaler.desired == 20
    now = 60.0
    targets = []
    for _ in range(round(80 / TICK)):  # traffic stops
        now = feed(scaler, now, TICK, 0.0)
        scaler.decide(now, current=scaler.desired, floor=0, ceiling=100)
        targets.append(scaler.desired)
    # Held for the delay, then never more than halved per tick, down to zero.
    assert targets[: round(5 / TICK) - 1] == [20] * (round(5 / TICK) - 1)
    assert all(b >= a // 2 for a, b in itertools.pairwise(targets))
    assert targets[-1] == 0  # scaled to zero once the windows hold no traffic


def test_a_single_invocation_keeps_one_warm_for_the_window():
    scaler = Scaler(Policy(), now=0.0)
    scaler.observe(0.25, 0.04, TICK)  # one 10 ms invocation
    scaler.decide(0.25, current=1, floor=0, ceiling=10)
    assert scaler.desired == 1


def test_the_target_stays_within_the_minimum_and_the_limit():
    scaler = steady(Policy(), 40.0, current=10)
    scaler.decide(60.0, current=10, floor=0, ceiling=16)
    assert scaler.desired == 16
    scaler = steady(Policy(), 0.0, current=0)
    scaler.decide(60.0, current=0, floor=3, ceiling=16)
    assert scaler.desired == 3


def test_decisions_are_recorded_only_on_change():
    scaler = steady(Policy(), 7.0, current=8)
    scaler.decide(60.0, current=8, floor=0, ceiling=100)
    scaler.decide(60.25, current=10, floor=0, ceiling=100)  # the same target
    assert [d.desired for d in scaler.decisions] == [10]
    record = scaler.decisions[-1].to_dict()
    assert record["current"] == 8 and record["desired"] == 10 and record["mode"] == "stable"


@pytest.mark.parametrize(
    ("setting", "value"),
    [("target", 0), ("target", 1.5), ("tolerance", 1), ("panic_window", 120), ("tick", 2)],
)
def test_policy_refuses_settings_out_of_range(setting, value):
    with pytest.raises(ValueError, match=f"autoscaler {setting}"):
        Policy(**{setting: value})


def test_instances_that_turn_around_faster_than_a_start_count_as_more_capacity():
    # 4 instances always busy, but each invocation takes a tenth of a start: callers wait
    # for them instead (engine/pool.py), so the target asks for no more of them.
    scaler = steady(Policy(), 4.0, current=4)
    scaler.capacity = 10.0
    decision = scaler.decide(60.0, current=4, floor=0, ceiling=100)
    assert decision is not None and decision.desired == 2  # down by at most half a tick
    scaler.decide(60.25, current=4, floor=0, ceiling=100)
    assert scaler.desired == 1  # ceil(4 / (0.7 * 10))
    # Slower invocations: one instance per concurrent invocation, as before.
    scaler = steady(Policy(), 4.0, current=4)
    assert scaler.decide(60.0, current=4, floor=0, ceiling=100) is not None
    assert scaler.desired == 6  # ceil(4 / 0.7)


def test_turnaround_is_busy_seconds_per_invocation_without_cold_starts(tmp_path):
    from skylift.engine.autoscaler import _Turns
    from skylift.engine.pool import Pool
    from skylift.spec import FunctionSpec

    pool = Pool(FunctionSpec(name="f", handler="app.handler", code_dir=str(tmp_path)), None)
    turns = _Turns(pool)
    assert turns.add(0.0, pool) == 0.0  # nothing measured yet
    pool.invocations += 100
    assert turns.add(0.1, pool) == pytest.approx(0.001)  # 0.1 busy-seconds / 100
    # A tick with a cold start (its invocation waited for the start) is left out.
    pool.invocations += 10
    pool.cold_starts += 10
    assert turns.add(3.0, pool) == pytest.approx(0.001)
    # Busy without a new invocation: each takes at least that long.
    assert turns.add(0.9, pool) == pytest.approx(1.0 / 100)

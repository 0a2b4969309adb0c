"""Scale-out through real zygotes and workers: a function whose instances turn around
faster than a new one starts keeps a small steady set of instances and otherwise waits
briefly for a busy one; one whose instances stay busy longer starts a new instance for
each concurrent invocation, as Lambda does."""

from __future__ import annotations

import asyncio
import json

from skylift.engine import scale_out
from skylift.errors import Throttled

APP = """
import os
import time

from skylift import App

app = App()


@app.function()
def work(event, context):
    time.sleep(event.get("seconds", 0))
    return os.getpid()


@app.function(timeout=1)
def flaky(event, context):
    if event.get("hang"):
        time.sleep(60)
    return os.getpid()
"""


def app(folder):
    (folder / "app.py").write_text(APP)
    return folder


def burst(platform, function: str, events: list[bytes], turnaround: float | None = None):
    """Invoke concurrently; with `turnaround`, first set it (and the service time) as the
    autoscaler's tick would have measured it (on the loop, so no tick comes between)."""
    pool = platform.platform.pools[function]

    async def many():
        if turnaround is not None:
            pool.turnaround = pool.service = turnaround
        calls = (platform.platform.invoker.invoke(function, e) for e in events)
        return await asyncio.gather(*calls)

    results = platform.run(many())
    assert all(r.error is None for r in results)
    return [json.loads(r.payload) for r in results]


def test_quick_invocations_wait_for_a_busy_instance_instead_of_starting_more(
    live, tmp_path, monkeypatch
):
    platform = live(app(tmp_path), policy=None)
    pool = platform.platform.pools["work"]
    platform.invoke("work")
    # Starting an instance takes (say) 5 s, an invocation a millisecond: waiting is faster.
    monkeypatch.setattr(scale_out, "MAX_SCALE_OUT_WAIT", 5.0)
    monkeypatch.setattr(scale_out, "QUICK_INSTANCES", 1)
    pool.start_seconds = 5.0
    pids = burst(platform, "work", [b"{}"] * 8, turnaround=0.001)
    assert len(set(pids)) == 1  # all eight, in turn, on the one warm instance
    assert pool.size == 1 and pool.cold_starts == 1


def test_a_quick_function_keeps_a_steady_set_of_instances(live, tmp_path, monkeypatch):
    platform = live(app(tmp_path), policy=None)
    pool = platform.platform.pools["work"]
    platform.invoke("work")
    monkeypatch.setattr(scale_out, "MAX_SCALE_OUT_WAIT", 5.0)
    monkeypatch.setattr(scale_out, "QUICK_INSTANCES", 3)
    pool.start_seconds = 5.0
    # With one instance warm, a burst of quick invocations starts two more, not twelve:
    # the others wait for one of the three.
    pids = burst(platform, "work", [b"{}"] * 12, turnaround=0.001)
    assert pool.size == 3 and pool.cold_starts == 3
    assert len(set(pids)) <= 3


def test_a_quick_functions_burst_retires_down_to_the_steady_set(live, tmp_path, monkeypatch):
    platform = live(app(tmp_path), policy=None)
    pool = platform.platform.pools["work"]
    # Not measured yet: a burst of eight starts eight instances, as Lambda does.
    assert len(set(burst(platform, "work", [b"{}"] * 8))) == 8
    assert pool.size == 8
    # Measured quick: instances given back while three are idle already retire.
    monkeypatch.setattr(scale_out, "MAX_SCALE_OUT_WAIT", 5.0)
    monkeypatch.setattr(scale_out, "QUICK_INSTANCES", 3)
    pool.start_seconds = 5.0
    # Right after a start nothing retires (a start a stall forced is not undone at once).
    burst(platform, "work", [b"{}"] * 8, turnaround=0.001)
    assert pool.size == 8
    pool.started_at -= scale_out.SETTLE
    burst(platform, "work", [b"{}"] * 8, turnaround=0.001)
    assert pool.size == 3 and pool.cold_starts == 8


def test_long_invocations_get_an_instance_each(live, tmp_path):
    platform = live(app(tmp_path), policy=None)
    pool = platform.platform.pools["work"]
    slow = json.dumps({"seconds": 0.3}).encode()
    # Nothing measured yet: each concurrent invocation starts its own instance.
    assert len(set(burst(platform, "work", [slow] * 4))) == 4
    # Measured: an invocation keeps its instance far longer than a start takes.
    assert len(set(burst(platform, "work", [slow] * 6, turnaround=0.3))) == 6
    assert pool.size == 6


def test_a_wait_in_vain_starts_an_instance_after_all(live, tmp_path, monkeypatch):
    platform = live(app(tmp_path), policy=None)
    pool = platform.platform.pools["work"]
    platform.invoke("work")
    # The measure says an instance is back in a millisecond, but these take 0.5 s: the
    # callers waiting for the busy one give up after a start's time and start their own.
    slow = json.dumps({"seconds": 0.5}).encode()
    monkeypatch.setattr(scale_out, "QUICK_INSTANCES", 1)
    pool.start_seconds = 0.01
    assert len(set(burst(platform, "work", [slow] * 3, turnaround=0.001))) == 3
    assert pool.size == 3


def soon_burst(platform, events: list[bytes], turnaround: float):
    """Invoke as the HTTP front does (`invoke_soon` with a slow path): (the results of
    those that ran with no task, how many fell back to the slow path)."""
    pool = platform.platform.pools["work"]
    invoker = platform.platform.invoker

    async def many():
        pool.turnaround = pool.service = turnaround
        loop = asyncio.get_running_loop()
        answers, fell_back = [], []
        for event in events:
            fut = loop.create_future()
            answers.append(fut)
            soon = invoker.invoke_soon(
                "work", event, fut.set_result, lambda f=fut: f.set_result(None)
            )
            assert soon is not None
        results = await asyncio.gather(*answers)
        fell_back = [r for r in results if r is None]
        return [json.loads(r.payload) for r in results if r is not None], len(fell_back)

    return platform.run(many())


def test_http_callers_of_a_quick_function_wait_in_line_with_no_task(live, tmp_path, monkeypatch):
    platform = live(app(tmp_path), policy=None)
    pool = platform.platform.pools["work"]
    platform.invoke("work")
    monkeypatch.setattr(scale_out, "MAX_SCALE_OUT_WAIT", 5.0)
    monkeypatch.setattr(scale_out, "QUICK_INSTANCES", 1)
    pool.start_seconds = 5.0
    pids, fell_back = soon_burst(platform, [b"{}"] * 6, turnaround=0.001)
    assert fell_back == 0 and len(pids) == 6 and len(set(pids)) == 1
    assert pool.size == 1 and pool.waiting == 0 and pool.budget.running == 0


def test_a_queued_caller_that_waits_in_vain_takes_the_slow_path(live, tmp_path, monkeypatch):
    platform = live(app(tmp_path), policy=None)
    pool = platform.platform.pools["work"]
    platform.invoke("work")
    monkeypatch.setattr(scale_out, "QUICK_INSTANCES", 1)
    # Measured quick, but these take 0.3 s: nothing is released within a start's time,
    # so the first in line gives up (the slow path would start an instance for it).
    pool.start_seconds = 0.01
    slow = json.dumps({"seconds": 0.3}).encode()
    pids, fell_back = soon_burst(platform, [slow] * 3, turnaround=0.001)
    assert fell_back >= 1 and len(pids) + fell_back == 3
    assert pool.waiting == 0 and pool.budget.running == 0


def test_a_function_that_sometimes_hangs_until_its_timeout_is_not_quick(live, tmp_path):
    platform = live(app(tmp_path), policy=None)
    pool = platform.platform.pools["flaky"]
    autoscaler = platform.platform.autoscaler

    async def tick():
        autoscaler.tick()

    platform.invoke("flaky")  # its instance's start: a tick with a cold start is left out
    platform.run(tick())
    # Three invocations take a millisecond each, the fourth holds its instance until its
    # timeout: the worker reports no time for it, the second it held the instance counts.
    for _ in range(3):
        assert platform.invoke("flaky").error is None
    assert platform.invoke("flaky", json.dumps({"hang": True}).encode()).error == "Unhandled"
    platform.run(tick())
    assert pool.service > 0.2
    assert not scale_out.quick(pool)


def queue_with_slow_path(platform, events: list[bytes], outcomes: list):
    """Call as the HTTP front does: `invoke_soon`, whose fallback runs `invoke()` in a
    task; every outcome (a result, or the exception raised) goes into `outcomes`."""
    invoker = platform.platform.invoker
    loop = asyncio.get_running_loop()
    tasks = []

    async def slow(event):
        try:
            outcomes.append(await invoker.invoke("work", event))
        except Exception as exc:
            outcomes.append(exc)

    for event in events:
        soon = invoker.invoke_soon(
            "work", event, outcomes.append, lambda e=event: tasks.append(loop.create_task(slow(e)))
        )
        assert soon is not None
    return tasks


def test_a_queued_caller_that_waited_in_vain_does_not_wait_in_line_again(
    live, tmp_path, monkeypatch
):
    platform = live(app(tmp_path), policy=None)
    pool = platform.platform.pools["work"]
    first = json.loads(platform.invoke("work").payload)
    monkeypatch.setattr(scale_out, "QUICK_INSTANCES", 1)
    pool.start_seconds = 0.01
    waits = []
    wait_for_busy = scale_out.wait_for_busy

    async def counted(pool):
        waits.append(pool)
        return await wait_for_busy(pool)

    monkeypatch.setattr(scale_out, "wait_for_busy", counted)
    slow = json.dumps({"seconds": 0.8}).encode()

    async def run():
        pool.turnaround = pool.service = 0.001  # measured quick, but these take 0.8 s
        outcomes = []
        tasks = queue_with_slow_path(platform, [slow, b"{}"], outcomes)
        while len(outcomes) < 2:
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        return outcomes, len(tasks)

    outcomes, fell_back = platform.run(run())
    # The second caller found the one instance busy and waited in the line; when that
    # wait was in vain, its slow path started an instance at once.
    assert fell_back == 1 and not waits
    assert {json.loads(r.payload) for r in outcomes} - {first} and pool.size == 2


def test_turning_a_function_off_throttles_its_queued_callers_once_each(live, tmp_path, monkeypatch):
    platform = live(app(tmp_path), policy=None)
    pool = platform.platform.pools["work"]
    platform.invoke("work")
    monkeypatch.setattr(scale_out, "MAX_SCALE_OUT_WAIT", 5.0)
    monkeypatch.setattr(scale_out, "QUICK_INSTANCES", 1)
    pool.start_seconds = 5.0
    slow = json.dumps({"seconds": 0.3}).encode()

    async def run():
        pool.turnaround = pool.service = 0.001
        outcomes = []
        tasks = queue_with_slow_path(platform, [slow, b"{}", b"{}"], outcomes)
        assert pool.waiting == 2
        pool.set_limits(maximum=0)
        await asyncio.gather(*tasks)
        while len(outcomes) < 3:
            await asyncio.sleep(0.01)
        return outcomes

    outcomes = platform.run(run())
    throttled = [o for o in outcomes if isinstance(o, Throttled)]
    assert len(throttled) == 2 and pool.throttles == 2
    assert pool.waiting == 0 and pool.budget.running == 0

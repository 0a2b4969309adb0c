"""Fenced leases on the real Redis, and the scheduler's hand-over of a tick its holder
missed by dying just before it (in one process: two nodes' schedulers on one Redis)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cluster_helpers import URL, redis_prefix

from skylift.cluster.lease import Lease
from skylift.cluster.node import Node
from skylift.cluster.schedules import LeasedSchedules
from skylift.schedules.expressions import parse_schedule
from skylift.schedules.speed import Faster
from skylift.sources.scheduler import Entry, Scheduler
from skylift.triggers import ScheduleTrigger

__all__ = ["redis_prefix"]  # a fixture, used by name


def test_a_lease_has_one_holder_and_a_stale_holder_can_do_nothing(redis_prefix: str) -> None:
    async def scenario() -> None:
        node = Node(f"{URL}?prefix={redis_prefix}")
        key = node.key("lease", "job")
        a = Lease(node.redis, key, node="a", ttl=0.3)
        b = Lease(node.redis, key, node="b", ttl=0.3)
        try:
            assert await a.keep() and not await b.keep()
            assert await a.keep()  # renewed, same token
            first = a.token
            assert await a.advance(node.key("mark"), 1)
            assert not await a.advance(node.key("mark"), 1)  # a mark is done once
            await asyncio.sleep(0.4)  # a stalls past its lease
            assert await b.keep() and b.token > first
            assert not await a.advance(node.key("mark"), 2)  # fenced: a's token is old
            assert a.token == 0
            assert await b.advance(node.key("mark"), 2)
            assert await b.holder() == "b"
            await b.release()
            assert await b.holder() is None and await a.keep()  # handed over at once
        finally:
            await node.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))  # a hang fails, never blocks the suite


def test_a_tick_missed_by_a_dead_holder_fires_once_on_the_other_node(
    tmp_path: Path, redis_prefix: str
) -> None:
    state = f"{URL}?prefix={redis_prefix}"
    # A tick every second; the lease passes on within ~0.6 s. Renewed every ttl / 3, it
    # stays with a through a stall of its loop of up to ~0.3 s (a busy 2-core machine);
    # the hand-over (3 ttl) then spans the tick before the missed one, fired already.
    speed, ttl = 60.0, 0.5
    schedule = Faster(parse_schedule("rate(1 minute)"), speed)
    entry = Entry("tick", ScheduleTrigger("rate(1 minute)"), schedule, "arn:rule/tick-schedule-1")
    fired: list[tuple[str, datetime]] = []
    fired_at: list[datetime] = []
    upcoming: list[datetime] = []

    def scheduler(name: str, node: Node) -> Scheduler:
        async def dispatch(function: str, event: bytes) -> None:
            pass

        gate = LeasedSchedules(node, ttl)
        made = Scheduler([entry], dispatch, "us-east-1", gate=gate, handover=3 * ttl)
        original = made._fire

        async def fire(entry: Entry, when: datetime) -> None:
            fired.append((name, when))
            fired_at.append(datetime.now(UTC))
            await original(entry, when)

        made._fire = fire  # type: ignore[method-assign]  # to see who fired which tick
        return made

    async def scenario() -> None:
        nodes = {"a": Node(state), "b": Node(state)}
        schedulers = {name: scheduler(name, node) for name, node in nodes.items()}
        try:
            schedulers["a"].start()
            await asyncio.sleep(0.2)  # a takes the lease first
            schedulers["b"].start()
            await asyncio.sleep(2.2)
            assert {name for name, _ in fired} == {"a"}
            # a dies 0.1 s before its next tick, holding the lease (no release).
            due = schedulers["a"].next_fire(entry)
            assert due is not None
            upcoming.append(due)
            delay = (due - datetime.now(UTC)).total_seconds() - 0.1
            await asyncio.sleep(max(0.0, delay))
            await schedulers["a"]._background.stop()
            await schedulers["a"].gate._background.stop()  # type: ignore[attr-defined]
            await asyncio.sleep(2.5)
            await schedulers["b"].stop()
        finally:
            for node in nodes.values():
                await node.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))  # a hang fails, never blocks the suite
    times = [when for _, when in fired]
    assert len(times) == len(set(times)) >= 4  # no tick twice
    steps = {round((b - a).total_seconds(), 3) for a, b in itertools.pairwise(times)}
    assert steps == {1.0}  # none missed: b fired the tick a died before
    assert [name for name, _ in fired][-2:] == ["b", "b"]
    handed = next(i for i, (name, _) in enumerate(fired) if name == "b")
    assert fired[handed][1] == upcoming[0]  # b fired the tick a died before
    # late, once the lease had passed to b (its holder's last renewal 0.1-0.27 s before the
    # tick, 0.5 s to run out, then b's next try within 0.17 s): under the 1 s period
    assert timedelta(seconds=0.1) < fired_at[handed] - upcoming[0] < timedelta(seconds=0.95)

"""RedisQueues shared by several nodes (backends on one prefix), as `skylift up` processes
pointed at one Redis share it: what one node does, the others see at once."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
from conformance import msg
from redis_server import URL, redis_prefix

from skylift.queues.errors import QueueDoesNotExist
from skylift.queues.protocol import ReceivedMessage
from skylift.queues.redis import RedisQueues

__all__ = ["redis_prefix"]  # a fixture, used by name


def run(prefix: str, test: Callable[[list[RedisQueues]], Awaitable[None]], nodes: int = 2) -> None:
    async def main() -> None:
        backends = [RedisQueues(URL, prefix=prefix) for _ in range(nodes)]
        try:
            await test(backends)
        finally:
            for backend in backends:
                await backend.close()

    asyncio.run(main())


def test_concurrent_receivers_on_two_nodes_get_each_message_once(redis_prefix: str) -> None:
    async def test(nodes: list[RedisQueues]) -> None:
        a, b = nodes
        await a.create_queue("jobs", {"VisibilityTimeout": "60"})
        sent = []
        for start in range(0, 500, 10):
            sent += await a.send("jobs", [msg(f"m{start + i}") for i in range(10)])
        seen: list[str] = []

        async def consume(node: RedisQueues) -> None:
            while got := await node.receive("jobs", max_messages=10):
                seen.extend(m.message_id for m in got)

        await asyncio.gather(*(consume(node) for node in (a, b, a, b, a, b)))
        assert Counter(seen) == Counter(s.message_id for s in sent)  # each exactly once
        stats = await b.stats("jobs")
        assert (stats.visible, stats.in_flight) == (0, 500)

    run(redis_prefix, test)


def test_a_send_on_one_node_wakes_one_long_poll_on_another(redis_prefix: str) -> None:
    claims = Counter[int]()

    class Counted(RedisQueues):
        async def _claim(self, *args: Any) -> tuple[list[ReceivedMessage], int, int]:
            claims[id(self)] += 1
            return await super()._claim(*args)

    async def main() -> None:
        # Long poll intervals: only wake-ups (or the 20 s wait) make a poll look again.
        nodes = [Counted(URL, prefix=redis_prefix, poll_interval=30) for _ in range(3)]
        sender = RedisQueues(URL, prefix=redis_prefix)
        try:
            await sender.create_queue("jobs", {})
            polls = [
                asyncio.create_task(node.receive("jobs", wait_seconds=20))
                for node in nodes
                for _ in range(2)
            ]
            await asyncio.sleep(0.5)
            before = sum(claims.values())
            started = time.monotonic()
            await sender.send("jobs", [msg("one")])
            done, pending = await asyncio.wait(polls, timeout=5, return_when="FIRST_COMPLETED")
            assert time.monotonic() - started < 2
            await asyncio.sleep(0.5)  # time for a herd to show
            assert [m.body for t in done for m in t.result()] == ["one"]
            assert len(pending) == 5  # the others still wait ...
            assert sum(claims.values()) - before == 1  # ... and were not even woken
            await sender.send("jobs", [msg("two"), msg("three")])
            done, pending = await asyncio.wait(pending, timeout=5)
            bodies = sorted(m.body for t in done for m in t.result())
            if len(bodies) < 2:  # both may have gone to one poll: receive asks for one
                bodies += [m.body for m in await sender.receive("jobs")]
            assert sorted(bodies) == ["three", "two"]
            for task in pending:
                task.cancel()
        finally:
            for node in [*nodes, sender]:
                await node.close()

    asyncio.run(main())


def test_attribute_changes_on_one_node_apply_on_the_others(redis_prefix: str) -> None:
    async def test(nodes: list[RedisQueues]) -> None:
        a, b = nodes
        await a.create_queue("jobs", {})
        await a.send("jobs", [msg()])  # a has the queue's settings cached now
        await b.set_attributes("jobs", {"VisibilityTimeout": "1"})
        [first] = await a.receive("jobs")
        await asyncio.sleep(1.1)
        [again] = await a.receive("jobs")
        assert again.message_id == first.message_id
        assert (await a.get_attributes("jobs"))["VisibilityTimeout"] == "1"

    run(redis_prefix, test)


def test_a_fifo_group_has_one_receiver_across_nodes(redis_prefix: str) -> None:
    async def test(nodes: list[RedisQueues]) -> None:
        a, b = nodes
        attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        await a.create_queue("jobs.fifo", attributes)
        await a.send("jobs.fifo", [msg(f"g{i}", message_group_id="g") for i in range(3)])
        await b.send("jobs.fifo", [msg("h0", message_group_id="h")])
        [first] = await a.receive("jobs.fifo")
        assert first.body == "g0"
        assert [m.body for m in await b.receive("jobs.fifo", max_messages=10)] == ["h0"]
        assert await b.receive("jobs.fifo", max_messages=10) == []
        assert await b.delete("jobs.fifo", [first.receipt_handle]) == [None]
        got = await b.receive("jobs.fifo", max_messages=10)
        assert [m.body for m in got] == ["g1", "g2"]
        # Deduplication spans nodes too: the same body in the window is not sent again.
        [original] = await a.send("jobs.fifo", [msg("once", message_group_id="k")])
        [duplicate] = await b.send("jobs.fifo", [msg("once", message_group_id="k")])
        assert duplicate.message_id == original.message_id

    run(redis_prefix, test)


def test_deleting_a_queue_on_one_node_ends_long_polls_on_another(redis_prefix: str) -> None:
    async def test(nodes: list[RedisQueues]) -> None:
        a, b = nodes
        await a.create_queue("jobs", {})
        poll = asyncio.create_task(a.receive("jobs", wait_seconds=20))
        await asyncio.sleep(0.2)
        await b.delete_queue("jobs")
        with pytest.raises(QueueDoesNotExist):
            await asyncio.wait_for(poll, 3)

    run(redis_prefix, test)


def test_closing_ends_pending_long_polls_empty(redis_prefix: str) -> None:
    async def main() -> None:
        node = RedisQueues(URL, prefix=redis_prefix, poll_interval=30)
        await node.create_queue("jobs", {})
        poll = asyncio.create_task(node.receive("jobs", wait_seconds=20))
        await asyncio.sleep(0.2)
        await node.close()
        assert await asyncio.wait_for(poll, 2) == []

    asyncio.run(main())


def test_messages_past_retention_are_dropped(redis_prefix: str) -> None:
    async def test(nodes: list[RedisQueues]) -> None:
        a, _ = nodes
        await a.create_queue("jobs", {"MessageRetentionPeriod": "60"})
        await a.send("jobs", [msg("old"), msg("new")])
        # Age one message by 61 s where the backend keeps its enqueue time.
        client = redis.Redis.from_url(URL)
        [queue_id] = client.hmget(redis_prefix + "queues", ["jobs"])
        rows = client.zrange(f"{redis_prefix}q:{queue_id.decode()}:msgs", 0, -1)
        old = next(r for r in rows if client.hget(f"{redis_prefix}m:{r.decode()}", "b") == b"old")
        enqueued = int(client.hget(f"{redis_prefix}m:{old.decode()}", "enq") or 0) - 61_000
        client.hset(f"{redis_prefix}m:{old.decode()}", "enq", enqueued)
        client.zadd(f"{redis_prefix}q:{queue_id.decode()}:age", {old: enqueued})
        client.close()
        assert (await a.stats("jobs")).visible == 1
        assert [m.body for m in await a.receive("jobs", max_messages=10)] == ["new"]

    run(redis_prefix, test)


def test_one_mebibyte_messages_and_redrive_across_nodes(redis_prefix: str) -> None:
    async def test(nodes: list[RedisQueues]) -> None:
        a, b = nodes
        await a.create_queue("dlq", {})
        policy = {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:dlq"}
        await a.create_queue(
            "jobs", {"RedrivePolicy": json.dumps({**policy, "maxReceiveCount": 1})}
        )
        body = "x" * 1_048_576
        await a.send("jobs", [msg(body)])
        [got] = await b.receive("jobs", visibility_timeout=0)
        assert got.body == body
        assert await a.receive("jobs", visibility_timeout=0) == []  # moved on this receive
        assert (await b.stats("jobs")).dead_letter_depth == 1
        assert await b.redrive("dlq") == 1
        [back] = await a.receive("jobs")
        assert (back.body == body, back.attributes["ApproximateReceiveCount"]) == (True, "1")

    run(redis_prefix, test)


def test_a_receive_cancelled_mid_claim_gives_its_messages_back(redis_prefix: str) -> None:
    async def test(nodes: list[RedisQueues]) -> None:
        a, b = nodes
        await a.create_queue("jobs", {"VisibilityTimeout": "60"})
        await a.send("jobs", [msg("wanted")])
        poll = asyncio.create_task(a.receive("jobs", wait_seconds=5))
        await asyncio.sleep(0)  # the claim has started: its script is on its way to Redis
        poll.cancel()  # as when an SQS client disconnects from a long poll
        with pytest.raises(asyncio.CancelledError):
            await poll
        await asyncio.sleep(0.3)
        # Not hidden for 60 s from everyone: the other node gets it at once.
        [got] = await b.receive("jobs")
        assert got.body == "wanted"
        assert got.attributes["ApproximateReceiveCount"] == "2"

    run(redis_prefix, test)


def test_a_dead_letter_queue_created_again_on_another_node_gets_the_messages(
    redis_prefix: str,
) -> None:
    async def test(nodes: list[RedisQueues]) -> None:
        a, b = nodes
        await a.create_queue("dlq", {})
        policy = {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:dlq"}
        policy["maxReceiveCount"] = "1"
        await a.create_queue("jobs", {"RedrivePolicy": json.dumps(policy)})
        await a.send("jobs", [msg("poison")])
        assert len(await a.receive("jobs", visibility_timeout=0)) == 1
        await b.delete_queue("dlq")
        await b.create_queue("dlq", {})
        assert await a.receive("jobs", visibility_timeout=0) == []  # moved, not delivered
        assert [m.body for m in await b.receive("dlq")] == ["poison"]

    run(redis_prefix, test)


def test_fifo_groups_are_processed_in_order_and_one_at_a_time_across_nodes(
    redis_prefix: str,
) -> None:
    async def test(nodes: list[RedisQueues]) -> None:
        attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        await nodes[0].create_queue("jobs.fifo", attributes)
        groups = [f"g{i}" for i in range(5)]
        for n in range(20):
            batch = [msg(f"{g}:{n}", message_group_id=g) for g in groups]
            await nodes[n % 2].send("jobs.fifo", batch)
        busy: set[str] = set()
        order: dict[str, list[int]] = {g: [] for g in groups}
        overlaps = 0

        async def worker(node: RedisQueues) -> None:
            nonlocal overlaps
            idle = 0
            while idle < 3:
                got = await node.receive("jobs.fifo", max_messages=3, visibility_timeout=30)
                if not got:
                    idle += 1
                    await asyncio.sleep(0.05)
                    continue
                idle = 0
                mine = {m.attributes["MessageGroupId"] for m in got}
                overlaps += len(mine & busy)
                busy.update(mine)
                await asyncio.sleep(0.01)  # the work; other workers poll meanwhile
                for m in got:
                    group, n = m.body.split(":")
                    order[group].append(int(n))
                busy.difference_update(mine)
                assert await node.delete("jobs.fifo", [m.receipt_handle for m in got]) == [
                    None
                ] * len(got)

        await asyncio.gather(*(worker(nodes[i % 2]) for i in range(6)))
        assert overlaps == 0
        assert order == {g: list(range(20)) for g in groups}

    run(redis_prefix, test)

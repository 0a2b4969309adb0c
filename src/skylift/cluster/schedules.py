"""Each schedule fires once per tick across all nodes: the scheduler's gate on Redis.

Every node runs every schedule's timer, but a node fires a tick only while it holds the
schedule's lease (`lease.py`), and the tick is marked fired in the same fenced script
(``P:sched:RULE:last``, the tick's time in ms): a tick fires at most once, however many
nodes wake for it, and a node whose lease ran out can fire nothing. A lease lasts
`LEASE_TTL` and is renewed three times as often; when its holder dies, another node
takes it within about `LEASE_TTL` and fires the tick the dead node missed (the
scheduler's catch-up), so the hand-over costs no tick as long as `LEASE_TTL` is shorter
than the schedule's period (1 minute at least: EventBridge's finest).

Rates count from one anchor for all nodes (``P:sched:RULE:anchor``, set by the first
node to start), so every node computes the same fire times.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from skylift.cluster.lease import Lease
from skylift.cluster.node import Node
from skylift.sources.background import Background, stopping
from skylift.sources.scheduler import Entry

logger = logging.getLogger("skylift.schedules")
LEASE_TTL = 10.0  # seconds; divided by the schedule speed (`--schedule-speed`)


class LeasedSchedules:
    """The `Gate` of a node sharing Redis with others (`Scheduler(gate=...)`)."""

    def __init__(self, node: Node, ttl: float = LEASE_TTL) -> None:
        self.node = node
        self.ttl = ttl
        self.leases: dict[str, Lease] = {}
        self._background = Background()

    def _key(self, entry: Entry, part: str) -> str:
        # The expression is part of the key: a changed schedule starts counting afresh.
        rule = entry.rule_arn.rsplit("/", 1)[-1]
        return self.node.key("sched", rule, entry.trigger.expression, part)

    async def anchor(self, entry: Entry, started: datetime) -> datetime:
        key = self._key(entry, "anchor")
        await self.node.redis.set(key, started.isoformat(), nx=True)
        stored = await self.node.redis.get(key)
        text = stored.decode() if isinstance(stored, bytes) else str(stored)
        return datetime.fromisoformat(text)

    async def claim(self, entry: Entry, when: datetime) -> bool:
        lease = self.leases.get(entry.rule_arn)
        if lease is None:
            return False
        return await lease.advance(self._key(entry, "last"), round(when.timestamp() * 1000))

    def start(self, entries: Sequence[Entry], acquired: Callable[[Entry], None]) -> None:
        for entry in entries:
            lease = Lease(
                self.node.redis, self._key(entry, "lease"), node=self.node.id, ttl=self.ttl
            )
            self.leases[entry.rule_arn] = lease
            self._background.spawn(self._keep(entry, lease, acquired))

    async def _keep(self, entry: Entry, lease: Lease, acquired: Callable[[Entry], None]) -> None:
        while True:
            held = lease.token
            try:
                await lease.keep()
            except Exception as exc:  # Redis is unreachable: hold nothing until it is back
                if stopping():
                    raise asyncio.CancelledError from exc
                lease.token = 0
                logger.error("schedule %s: cannot reach the lease: %s", entry.rule_arn, exc)
            if lease.token and lease.token != held:
                logger.info("schedule %s: this node fires it now", entry.rule_arn)
                acquired(entry)
            await asyncio.sleep(self.ttl / 3)

    async def stop(self) -> None:
        await self._background.stop()
        for lease in self.leases.values():
            try:
                await lease.release()  # hand over now, not after the lease runs out
            except Exception as exc:
                logger.warning("could not release the lease %s: %s", lease.key, exc)

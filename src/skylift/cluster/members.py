"""Which nodes share the Redis: each registers and heartbeats; `skylift status --cluster`.

A node writes its record (id, URL, pid, host, start, functions, instances, last
heartbeat) into the hash ``P:nodes`` every `HEARTBEAT` seconds, and refreshes its
liveness key ``P:node:ID`` with an expiry of `ALIVE_TTL`. A node whose key expired
stopped heartbeating (killed, hung, cut off from Redis): it is shown as lost, and kept
in the list for `FORGET_AFTER` so an operator sees what went. What it had received from
queues comes back to other nodes after the visibility timeout, as SQS returns any
message not deleted in time; a node that stops cleanly leaves the list at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from skylift.cluster.node import Node
from skylift.sources.background import stopping

logger = logging.getLogger("skylift.cluster")
HEARTBEAT = 2.0  # seconds between heartbeats
ALIVE_TTL = 10.0  # seconds without a heartbeat before a node is lost
FORGET_AFTER = 3600.0  # seconds a lost node stays listed

Report = Callable[[], dict[str, Any]]  # the functions and instances of this node, now


class Membership:
    """This node's entry in the cluster, kept fresh until `leave`."""

    def __init__(
        self, node: Node, url: str, report: Report, *, heartbeat: float = HEARTBEAT
    ) -> None:
        self.node = node
        self.record: dict[str, Any] = {
            "id": node.id,
            "url": url,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
        }
        self.report = report
        self.heartbeat = heartbeat
        self._task: asyncio.Task[None] | None = None

    async def join(self) -> None:
        """Register now (a Redis failure here stops the start), then keep heartbeating."""
        await self._beat()
        self._task = asyncio.ensure_future(self._run())

    async def _beat(self) -> None:
        now = time.time()
        record = {**self.record, **self.report(), "heartbeat": now}
        async with self.node.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.node.key("nodes"), self.node.id, json.dumps(record))
            pipe.set(self.node.key("node", self.node.id), "1", px=round(ALIVE_TTL * 1000))
            await pipe.execute()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self._beat()
                await forget_lost(self.node)
            except Exception as exc:  # Redis is away: say so, and beat again when it is back
                if stopping():
                    raise asyncio.CancelledError from exc
                logger.error("cluster: heartbeat failed: %s", exc)

    async def leave(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.node.redis.hdel(self.node.key("nodes"), self.node.id)
            await self.node.redis.delete(self.node.key("node", self.node.id))
        except Exception as exc:
            logger.warning("cluster: could not leave the node list: %s", exc)


async def nodes(node: Node) -> list[dict[str, Any]]:
    """Every registered node's record, with ``"state"``: ``"up"`` or ``"lost"``."""
    records = await node.redis.hgetall(node.key("nodes"))
    found = [json.loads(value) for value in records.values()]
    async with node.redis.pipeline(transaction=False) as pipe:
        for record in found:
            pipe.exists(node.key("node", record["id"]))
        alive = await pipe.execute()
    for record, up in zip(found, alive, strict=True):
        record["state"] = "up" if up else "lost"
    return sorted(found, key=lambda r: (r["started"], r["id"]))


async def forget_lost(node: Node) -> None:
    """Drop nodes lost for longer than `FORGET_AFTER` from the list."""
    now = time.time()
    for record in await nodes(node):
        if record["state"] == "lost" and now - record["heartbeat"] > FORGET_AFTER:
            await node.redis.hdel(node.key("nodes"), record["id"])


async def leases(node: Node) -> dict[str, str]:
    """Which node fires each schedule: ``{"RULE EXPRESSION": node id}``."""
    held = {}
    async for key in node.redis.scan_iter(match=node.key("sched", "*", "*", "lease")):
        name = key.decode() if isinstance(key, bytes) else str(key)
        value = await node.redis.get(name)
        if value is not None:
            text = value.decode() if isinstance(value, bytes) else str(value)
            rule, expression = name[len(node.key("sched")) + 1 : -len(":lease")].split(":", 1)
            held[f"{rule} {expression}"] = text.rsplit("|", 1)[0]
    return held

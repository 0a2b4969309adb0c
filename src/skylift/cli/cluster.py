"""`skylift status --cluster --state redis://...`: the nodes sharing a Redis state.

It reads Redis directly, so it works with every node down, and shows a node that
stopped heartbeating as lost (`cluster/members.py`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from skylift.errors import SkyliftError

COLUMNS = ("NODE", "STATE", "URL", "PID", "STARTED", "HEARTBEAT", "INSTANCES", "FUNCTIONS")


def read(state_url: str) -> dict[str, Any]:
    """The cluster as JSON: its nodes and who fires each schedule."""
    from skylift.cluster.members import leases, nodes
    from skylift.cluster.node import Node
    from skylift.queues import redis_url

    redis_url.check(state_url)

    async def fetch() -> dict[str, Any]:
        node = Node(state_url)
        try:
            return {"nodes": await nodes(node), "schedules": await leases(node)}
        finally:
            await node.close()

    try:
        return asyncio.run(fetch())
    except Exception as exc:
        raise SkyliftError(
            f"cannot read the cluster at {redis_url.shown(state_url)}: {exc}"
        ) from None


def render(cluster: dict[str, Any], now: float | None = None) -> str:
    """One node per row, then which node fires each schedule."""
    now = time.time() if now is None else now
    rows = [list(COLUMNS)]
    for node in cluster["nodes"]:
        rows.append(
            [
                node["id"],
                node["state"],
                node["url"],
                str(node["pid"]),
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(node["started"])),
                f"{max(0.0, now - node['heartbeat']):.0f}s ago",
                str(node.get("instances", 0)),
                ",".join(node.get("functions", [])),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    if len(rows) == 1:
        lines.append("(no node has registered: start one with skylift up --state URL)")
    lost = sum(node["state"] == "lost" for node in cluster["nodes"])
    lines.append("")
    lines.append(
        f"{len(cluster['nodes']) - lost} node(s) up, {lost} lost (no heartbeat for 10 s; "
        "their received messages come back after their visibility timeout)"
    )
    for schedule, holder in sorted(cluster["schedules"].items()):
        lines.append(f"schedule {schedule}: fired by {holder}")
    return "\n".join(lines)

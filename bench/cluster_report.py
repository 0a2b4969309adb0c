"""The text cluster_bench.py writes to docs/benchmarks.md: one table per handler."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cluster_bench import Measured, Result


def cores(result: Result) -> str:
    """Each node's CPU in cores, e.g. `0.41 + 0.39`."""
    return " + ".join(f"{c:.2f}" for c in result.node_cpu)


def table(m: Measured) -> list[str]:
    best = {name: max(results, key=lambda r: r.rate) for name, results in m.results.items()}
    sqlite = best["SQLite, 1 node"].rate
    one = best.get("Redis, 1 node")
    capacity = m.handler.capacity(1) is not None
    head = "| configuration | messages/s | vs SQLite | vs 1 Redis node |"
    rule = "|---|---:|---:|---:|"
    if capacity:
        head += " of capacity |"
        rule += "---:|"
    lines = [head + " node CPU (cores) | Redis CPU | every round |", rule + "---|---:|---|"]
    for name, results in m.results.items():
        b = best[name]
        nodes = len(b.node_cpu)
        row = f"| {name} | {b.rate:,.0f} | {b.rate / sqlite:.2f} | "
        row += f"{b.rate / one.rate:.2f} |" if one and name.startswith("Redis") else "- |"
        if capacity:
            row += f" {b.rate / (m.handler.capacity(nodes) or 1):.0%} |"
        redis = f"{b.redis_cpu:.0%}" if b.redis_cpu is not None else "-"
        rounds = ", ".join(f"{r.rate:,.0f}" for r in results)
        lines.append(row + f" {cores(b)} | {redis} | {rounds} |")
    return lines


def verdict(cpu_bound: Measured, waiting: Measured) -> str:
    """What this run shows, in numbers: the targets, met or not."""

    def best(m: Measured, name: str) -> Result:
        return max(m.results[name], key=lambda r: r.rate)

    sqlite, one = best(cpu_bound, "SQLite, 1 node"), best(cpu_bound, "Redis, 1 node")
    ratio = one.rate / sqlite.rate
    rates = [best(waiting, f"Redis, {n} node{'s' * (n > 1)}") for n in (1, 2, 3)]
    cpu = [best(cpu_bound, f"Redis, {n} node{'s' * (n > 1)}") for n in (1, 2, 3)]
    redis = max((r.redis_cpu or 0) for m in (cpu_bound, waiting) for rs in m.results.values()
                for r in rs)  # fmt: skip
    rising = rates[0].rate < rates[1].rate < rates[2].rate
    waited = (
        ": doing less with less CPU, the Redis node waited, on its round trips to "
        "redis-server (each waits its turn on a machine loaded past its cores, where SQLite "
        "works in the node's own process)"
        if one.rate < sqlite.rate and sum(one.node_cpu) < 0.8 * sum(sqlite.node_cpu)
        else ""
    )
    return (
        f"This run: Redis with one node made {ratio:.2f} x the SQLite rate (target 0.5: "
        f"{'met' if ratio >= 0.5 else 'not met'}); its node used {sum(one.node_cpu):.2f} cores "
        f"against SQLite's {sum(sqlite.node_cpu):.2f}{waited}. With the waiting handler, 1, 2 "
        "and 3 "
        f"nodes handled {', '.join(f'{r.rate:,.0f}' for r in rates)} messages/s "
        f"({rates[1].rate / rates[0].rate:.2f} x and {rates[2].rate / rates[0].rate:.2f} x "
        f"one node: {'rising with nodes' if rising else 'not rising with every node'}), "
        f"each node using {', '.join(f'{sum(r.node_cpu) / len(r.node_cpu):.2f}' for r in rates)}"
        " cores on average. With the CPU-bound handler, 1, 2 and 3 nodes handled "
        f"{', '.join(f'{r.rate:,.0f}' for r in cpu)} messages/s: on one machine they share "
        f"its cores. Redis never used more than {redis:.0%} of a core: it was not the limit."
    )


def section(
    measured: list[Measured],
    command: str,
    senders: int,
    load_before: float,
    load_after: float,
    own: bool,
) -> str:
    cpu_bound, waiting = measured
    h = waiting.handler
    per_node = h.capacity(1) or 0
    redis = (
        "its own redis-server 7 on the same machine, `appendonly yes`, `appendfsync everysec`"
        if own
        else "the Redis given with `--redis` (its CPU counts every client's work)"
    )
    return "\n".join(
        [
            "## Queues on several nodes: SQLite and Redis with 1, 2 and 3 nodes",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
            f"cores, load average {load_before:.1f} before and {load_after:.1f} after "
            f"(other work shared the machine). Command: `make bench` (`{command}`). "
            f"Messages of 100 bytes sent with SendMessageBatch by one httpx process per node "
            f"({senders} connections each, the messages split evenly over the nodes) to "
            "`skylift up` nodes whose queue trigger (batches of 10) hands each batch to the "
            "handler; the clock runs from the first send (the senders started beforehand) "
            f"until every message was handled (the waiting handler: see below). Redis: "
            f"{redis}. Configurations run "
            "interleaved; the best round is shown, then every round. Node CPU: each node's "
            "processes (server, zygote, instances), user + system time over the run from "
            "/proc, in cores; Redis CPU: the server's, from /proc of the pid `INFO server` "
            "gives.",
            "",
            f"**CPU-bound handler** ({cpu_bound.handler.messages:,} messages; it appends the "
            "batch to a file and returns; up to 20 batches at once per node, the trigger's "
            "default):",
            "",
            *table(cpu_bound),
            "",
            f"**Waiting handler**, draining a backlog: {h.messages:,} messages are queued "
            "before the nodes start (the bench sends them to the backend itself), the nodes "
            "start together, and the clock runs from when every node is up until the last "
            "message is handled (those handled before are not counted), so the rate is the "
            "nodes', not the senders'. The handler waits "
            f"{h.wait * 1000:.0f} ms per "
            "batch, as for a database call, then appends the batch to a file; each node runs "
            f"at most {h.concurrency} batches at once, the trigger's MaximumConcurrency "
            f"(`@app.queue(..., max_concurrency={h.concurrency})`): a node's capacity is "
            f"{h.concurrency} x 10 / {h.wait:g} s = {per_node:,.0f} messages/s; "
            '"of capacity" is the rate over the nodes\' capacity):',
            "",
            *table(waiting),
            "",
            "Target (issue 12): Redis with one node >= 0.5 x SQLite; throughput rising with "
            "nodes until Redis' own CPU is the limit. What a node adds depends on what bounds "
            "it. A CPU-bound handler is bound by cores, and here every node, every sender and "
            "Redis share the same ones: a second node on this machine adds no cores, only "
            "more processes competing for them (nodes on separate machines each bring their "
            "own). A node whose capacity is its concurrency, with handlers that wait (most "
            "queue consumers wait on a database or an API), adds its capacity as long as CPU "
            "is left, here and on separate machines alike; Redis' CPU shows how far it is "
            "from being the limit.",
            "",
            verdict(cpu_bound, waiting),
        ]
    )

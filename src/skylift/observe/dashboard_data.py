"""The dashboard's numbers, read from the registry `/metrics` renders, so the two agree.

Each snapshot refreshes the scrape endpoint's queue depths and collects its registry, as
a scrape does, then reads the samples by name and label. Rates and percentiles are what
Prometheus users compute from the same series: invocations per second over the last
`RATE_WINDOW` seconds (`rate(skylift_invocations_total[10s])`), and p50 / p99 over the
last `QUANTILE_WINDOW` (`histogram_quantile(0.99, rate(..._bucket[1m]))`), from snapshots
kept while someone watches: the increase since the newest snapshot at or before the
window's start (a page open for less than a window counts from its first snapshot).
Totals (invocations, errors, throttles, cold starts) and gauges (instances, queue depths
and ages) are the scraped values as they are.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import Metric

from skylift.observe.alerts_service import quantile
from skylift.observe.metrics import DURATION_BUCKETS
from skylift.observe.metrics_http import MetricsEndpoint

RATE_WINDOW = 10.0
QUANTILE_WINDOW = 60.0
# Several open tabs share one snapshot taken at most this often.
MIN_GAP = 0.5


@dataclass
class FunctionTotals:
    """One function's counters at one moment; `buckets` per bucket, not cumulative."""

    attempts: float = 0.0  # every outcome, throttles included
    invocations: float = 0.0  # ran: success, error, timeout
    errors: float = 0.0  # error and timeout, as Lambda's Errors metric counts them
    throttles: float = 0.0
    cold_starts: float = 0.0
    busy: float = 0.0
    idle: float = 0.0
    starting: float = 0.0
    limit: float = 0.0
    buckets: list[float] = field(default_factory=list)


@dataclass
class QueueTotals:
    visible: float = 0.0
    in_flight: float = 0.0
    delayed: float = 0.0
    oldest_age: float = 0.0


def read(families: Iterable[Metric]) -> tuple[dict[str, FunctionTotals], dict[str, QueueTotals]]:
    """Functions' and queues' numbers from collected metric families (what a scrape shows)."""
    functions: dict[str, FunctionTotals] = defaultdict(FunctionTotals)
    queues: dict[str, QueueTotals] = defaultdict(QueueTotals)
    cumulative: dict[str, dict[float, float]] = defaultdict(dict)
    for family in families:
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "skylift_invocations_total":
                totals = functions[labels["function"]]
                totals.attempts += value
                outcome = labels["outcome"]
                if outcome != "throttle":
                    totals.invocations += value
                if outcome in ("error", "timeout"):
                    totals.errors += value
            elif name == "skylift_throttles_total":
                functions[labels["function"]].throttles = value
            elif name == "skylift_cold_starts_total":
                functions[labels["function"]].cold_starts = value
            elif name == "skylift_concurrency_limit":
                functions[labels["function"]].limit = value
            elif name == "skylift_instances":
                state = labels["state"]
                if state in ("busy", "idle", "starting"):
                    setattr(functions[labels["function"]], state, value)
            elif name == "skylift_invocation_duration_seconds_bucket":
                cumulative[labels["function"]][float(labels["le"])] = value
            elif name == "skylift_queue_messages":
                state = labels["state"]
                if state in ("visible", "in_flight", "delayed"):
                    setattr(queues[labels["queue"]], state, value)
            elif name == "skylift_queue_oldest_message_age_seconds":
                queues[labels["queue"]].oldest_age = value
    for function, by_bound in cumulative.items():
        running = [by_bound[bound] for bound in sorted(by_bound)]
        per_bucket = [b - a for a, b in zip([0.0, *running], running, strict=False)]
        functions[function].buckets = per_bucket
    return dict(functions), dict(queues)


class Board:
    """Snapshots of the metrics for the dashboard, with the history its rates need."""

    def __init__(
        self, endpoint: MetricsEndpoint, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.history: deque[tuple[float, dict[str, FunctionTotals]]] = deque()
        self._last: dict[str, Any] | None = None
        self._last_at = 0.0
        self._lock = asyncio.Lock()

    async def snapshot(self) -> dict[str, Any]:
        """`{"functions": [...], "queues": [...]}`, shared by callers within MIN_GAP."""
        async with self._lock:  # one refresh at a time keeps the history in time order
            now = self.clock()
            if self._last is None or now - self._last_at >= MIN_GAP:
                self._last = await self._take(now)
                self._last_at = now
            return self._last

    async def _take(self, now: float) -> dict[str, Any]:
        await self.endpoint.refresh()
        functions, queues = read(self.endpoint.registry.collect())
        # Keep one snapshot from before the longest window: the base of its increase.
        while len(self.history) > 1 and self.history[1][0] <= now - QUANTILE_WINDOW:
            self.history.popleft()
        rate_base = self._base(now - RATE_WINDOW)
        quantile_base = self._base(now - QUANTILE_WINDOW)
        self.history.append((now, functions))
        return {
            "functions": [
                _function(name, totals, now, rate_base, quantile_base)
                for name, totals in sorted(functions.items())
            ],
            "queues": [
                {
                    "name": name,
                    "visible": int(q.visible),
                    "in_flight": int(q.in_flight),
                    "delayed": int(q.delayed),
                    "oldest_age": q.oldest_age,
                }
                for name, q in sorted(queues.items())
            ],
            "time": time.time(),
        }

    def _base(self, start: float) -> tuple[float, dict[str, FunctionTotals]] | None:
        """The newest snapshot taken at or before `start`, else the oldest one kept (a
        page open for less than a window counts from its first snapshot)."""
        base = None
        for entry in self.history:
            if entry[0] > start:
                break
            base = entry
        return base or (self.history[0] if self.history else None)


def _function(
    name: str,
    totals: FunctionTotals,
    now: float,
    rate_base: tuple[float, dict[str, FunctionTotals]] | None,
    quantile_base: tuple[float, dict[str, FunctionTotals]] | None,
) -> dict[str, Any]:
    rps = p50 = p99 = None
    if rate_base is not None and now > rate_base[0]:
        before = rate_base[1].get(name, FunctionTotals())
        rps = (totals.attempts - before.attempts) / (now - rate_base[0])
    if quantile_base is not None:
        before_buckets = quantile_base[1].get(name, FunctionTotals()).buckets
        deltas = [
            int(a - (before_buckets[i] if i < len(before_buckets) else 0.0))
            for i, a in enumerate(totals.buckets)
        ]
        if len(deltas) == len(DURATION_BUCKETS) + 1:
            p50 = quantile(0.5, DURATION_BUCKETS, deltas)
            p99 = quantile(0.99, DURATION_BUCKETS, deltas)
    return {
        "name": name,
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "invocations": int(totals.invocations),
        "errors": int(totals.errors),
        "throttles": int(totals.throttles),
        "cold_starts": int(totals.cold_starts),
        "busy": int(totals.busy),
        "idle": int(totals.idle),
        "starting": int(totals.starting),
        "limit": int(totals.limit),
    }

"""Prometheus metrics of functions, queues and HTTP requests, rendered on scrape.

Counts are plain ints and lists here (about 0.2 µs an invocation) rather than
prometheus_client's labelled children (1.4 µs cached, 3.8 µs with `.labels()`, measured
on this machine); `collect` turns them into prometheus_client metric families when
Prometheus scrapes. Invocations are counted in batches (`count`, fed by
`observe/intake.py`), HTTP requests are appended to a list and counted when it fills or
when read; `sync` (the intake's `drain`) runs before every read, so a scrape includes
every invocation that ended before it. What the pools already count (cold starts,
throttles, busy and idle instances) and queue depths are read at scrape.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from skylift.engine.instance import InvocationResult
from skylift.observe.histogram import Histogram
from skylift.observe.records import TIMED_OUT
from skylift.queues.protocol import QueueStats
from skylift.spec import FunctionSpec

if TYPE_CHECKING:
    from skylift.cluster.health import BackendHealth
    from skylift.engine.pool import Pool
    from skylift.observe.collect import Observed, Tally

# Seconds: from a warm in-process call (~0.1 ms) to Lambda's 15-minute limit.
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
)  # fmt: skip
INIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OUTCOMES = ("success", "error", "timeout")
HTTP_BATCH = 1024  # requests noted before they are counted (and when read)


@dataclass(slots=True)
class FunctionCounts:
    # (trigger, outcome) -> invocations; every outcome of the triggers a function
    # declares is there from the start (at 0), so that `rate()` sees its first one.
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)
    duration: Histogram = field(default_factory=lambda: Histogram(DURATION_BUCKETS))
    init: Histogram = field(default_factory=lambda: Histogram(INIT_BUCKETS))

    @classmethod
    def of(cls, spec: FunctionSpec | None) -> FunctionCounts:
        triggers = declared_triggers(spec) if spec is not None else ("invoke",)
        return cls({(t, outcome): 0 for t in triggers for outcome in OUTCOMES})

    def add(self, trigger: str, outcome: str, count: int = 1) -> None:
        key = (trigger, outcome)
        self.outcomes[key] = self.outcomes.get(key, 0) + count

    def totals(self) -> dict[str, int]:
        """Invocations by outcome, whatever invoked them."""
        found = dict.fromkeys(OUTCOMES, 0)
        for (_, outcome), count in self.outcomes.items():
            found[outcome] += count
        return found


def declared_triggers(spec: FunctionSpec) -> tuple[str, ...]:
    """The triggers (`TRIGGERS`' names) a function declares; a synchronous Invoke when none."""
    found = [
        name
        for name, declared in (
            ("api", spec.routes),
            ("url", spec.url),
            ("sqs", spec.queues),
            ("schedule", spec.schedules),
            ("s3", spec.uploads),
        )
        if declared
    ]
    return tuple(found) or ("invoke",)


class Metrics:
    """An invoker observer and an HTTP counter; a prometheus_client collector on scrape."""

    def __init__(self, pools: Mapping[str, Pool]) -> None:
        self.pools = pools
        self.functions = {name: FunctionCounts.of(pool.spec) for name, pool in pools.items()}
        # (route, method, status) -> count; route -> duration histogram.
        self.requests: dict[tuple[str, str, int], int] = {}
        self.request_durations: dict[str, Histogram] = {}
        # Requests not yet counted, as noted: (route, method, status, seconds). Always
        # this list (emptied in place): the front appends to it directly.
        self.noted: list[tuple[str, str, int, float]] = []
        # Called before any read: hands over invocations not yet counted (the intake's).
        self.sync: Callable[[], None] = _nothing
        # Filled by the scrape handler just before rendering (the backends are async).
        self.queues: dict[str, QueueStats] = {}
        self.async_events: dict[str, QueueStats] = {}
        self.backend: BackendHealth | None = None  # with a Redis state: is it reachable
        # More collectors scraped with these, after them (the handlers' embedded metrics).
        self.more: list[Collector] = []

    def __call__(
        self, spec: FunctionSpec, result: InvocationResult, instance: object = None
    ) -> None:
        _count(self.functions, spec, result)

    def count(self, batch: Sequence[Observed]) -> None:
        """Count a batch of finished invocations (what `__call__` does for one): per
        function, its durations are gathered and observed in one call, its successes
        added at once; the rare failure and init duration are counted as they come."""
        functions = self.functions
        # (function, trigger) -> durations, and how many of them failed.
        durations: dict[tuple[str, str], list[float]] = {}
        failed: dict[tuple[str, str], int] = {}
        specs: dict[str, FunctionSpec] = {}
        # A batch is mostly runs of one function and trigger: the same objects as the
        # invocation before need no key built and looked up.
        last_spec: FunctionSpec | None = None
        last_trigger = ""
        found: list[float] = []
        key = ("", "")
        for spec, result, _, _ in batch:
            trigger = result.trigger
            if spec is not last_spec or trigger is not last_trigger:
                last_spec, last_trigger = spec, trigger
                key = (spec.name, trigger)
                found = durations.get(key)  # type: ignore[assignment]
                if found is None:
                    found = durations[key] = []
                    specs[spec.name] = spec
            found.append(result.duration_ms)
            if result.error is not None or result.init_ms is not None:
                counts = _counts(functions, spec)
                if result.error is not None:
                    failed[key] = failed.get(key, 0) + 1
                    outcome = "timeout" if TIMED_OUT in result.payload else "error"
                    counts.add(result.trigger, outcome)
                if result.init_ms is not None:
                    counts.init.observe(result.init_ms / 1000)
        for (name, trigger), values in durations.items():
            counts = _counts(functions, specs[name])
            counts.add(trigger, "success", len(values) - failed.get((name, trigger), 0))
            counts.duration.observe_many(values, 1000)

    def count_tallies(self, tallies: Sequence[Tally]) -> None:
        """Count the common invocations of a batch (`observe/collect.py`): successes, their
        durations already in buckets."""
        functions = self.functions
        for spec, trigger, count, buckets, total_ms in tallies:
            counts = _counts(functions, spec)
            counts.add(trigger, "success", count)
            counts.duration.add(buckets, total_ms / 1000)

    def http(self, route: str, method: str, status: int, seconds: float) -> None:
        """Note one HTTP request: one append on the request path, counted in batches.
        The front (`gateway/front.py`) appends to `noted` itself, the same way."""
        noted = self.noted
        noted.append((route, method, status, seconds))
        if len(noted) >= HTTP_BATCH:
            self.count_http()

    def count_http(self) -> None:
        """Count the requests noted so far (before a read, and every `HTTP_BATCH`)."""
        noted = self.noted
        if not noted:
            return
        taken = noted.copy()
        noted.clear()
        requests, durations = self.requests, self.request_durations
        # As columns (in C). The common case, every request of one route, method and
        # status, is then three counts in C too; one route's durations are taken whole.
        routes, methods, statuses, seconds = zip(*taken, strict=True)
        total = len(taken)
        route, method, status = routes[0], methods[0], statuses[0]
        one_route = routes.count(route) == total
        if one_route and methods.count(method) == total and statuses.count(status) == total:
            key = (route, method, status)
            requests[key] = requests.get(key, 0) + total
        else:
            keys = zip(routes, methods, statuses, strict=True)
            for key, count in collections.Counter(keys).items():
                requests[key] = requests.get(key, 0) + count
        by_route: Mapping[str, Sequence[float]]
        if one_route:
            by_route = {route: seconds}
        else:
            grouped: dict[str, list[float]] = collections.defaultdict(list)
            for route, value in zip(routes, seconds, strict=True):
                grouped[route].append(value)
            by_route = grouped
        for route, values in by_route.items():
            histogram = durations.get(route)
            if histogram is None:
                histogram = durations[route] = Histogram(DURATION_BUCKETS)
            histogram.observe_many(values)

    def registry(self) -> CollectorRegistry:
        """A registry holding these metrics and the process's (CPU, memory, fds)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        for collector in self.more:  # after `self`, whose `collect` syncs first
            registry.register(collector)
        ProcessCollector(registry=registry)
        return registry

    def collect(self) -> Iterable[Metric]:
        self.sync()
        self.count_http()
        yield from self._invocations()
        yield from self._instances()
        yield from self._queues()
        yield from self._http()
        yield from self._backend()

    def _invocations(self) -> Iterable[Metric]:
        invocations = CounterMetricFamily(
            "skylift_invocations",
            "Invocations by trigger and outcome (success, error, timeout, throttle).",
            labels=["function", "trigger", "outcome"],
        )
        duration = HistogramMetricFamily(
            "skylift_invocation_duration_seconds",
            "How long invocations ran (REPORT's Duration).",
            labels=["function"],
        )
        init = HistogramMetricFamily(
            "skylift_init_duration_seconds",
            "Init phases of new instances (REPORT's Init Duration).",
            labels=["function"],
        )
        for name, counts in self.functions.items():
            for (trigger, outcome), count in counts.outcomes.items():
                invocations.add_metric([name, trigger, outcome], count)
            pool = self.pools.get(name)  # its throttles: counted by the pool, not by trigger
            invocations.add_metric([name, "", "throttle"], pool.throttles if pool else 0)
            duration.add_metric([name], counts.duration.buckets(), counts.duration.total)
            init.add_metric([name], counts.init.buckets(), counts.init.total)
        yield from (invocations, duration, init)

    def _instances(self) -> Iterable[Metric]:
        cold = CounterMetricFamily(
            "skylift_cold_starts", "Invocations that started a new instance.", labels=["function"]
        )
        throttles = CounterMetricFamily(
            "skylift_throttles",
            "Invocations refused (429, TooManyRequestsException) at a concurrency limit.",
            labels=["function"],
        )
        concurrent = GaugeMetricFamily(
            "skylift_concurrent_executions", "Invocations running now.", labels=["function"]
        )
        instances = GaugeMetricFamily(
            "skylift_instances", "Live instances by state.", labels=["function", "state"]
        )
        limit = GaugeMetricFamily(
            "skylift_concurrency_limit",
            "The most instances the function may run at once.",
            labels=["function"],
        )
        for name, pool in self.pools.items():
            status = pool.status()
            cold.add_metric([name], pool.cold_starts)
            throttles.add_metric([name], pool.throttles)
            concurrent.add_metric([name], pool.busy)
            busy, idle = int(status["busy"]), int(status["idle"])
            instances.add_metric([name, "busy"], busy)
            instances.add_metric([name, "idle"], idle)
            instances.add_metric([name, "starting"], max(0, int(status["instances"]) - busy - idle))
            limit.add_metric([name], pool.limit)
        yield from (cold, throttles, concurrent, instances, limit)

    def _queues(self) -> Iterable[Metric]:
        messages = GaugeMetricFamily(
            "skylift_queue_messages",
            "Messages in a queue: visible, in_flight (received, not deleted), delayed.",
            labels=["queue", "state"],
        )
        oldest = GaugeMetricFamily(
            "skylift_queue_oldest_message_age_seconds",
            "Age of the oldest message (SQS's ApproximateAgeOfOldestMessage).",
            labels=["queue"],
        )
        for name, stats in sorted(self.queues.items()):
            messages.add_metric([name, "visible"], stats.visible)
            messages.add_metric([name, "in_flight"], stats.in_flight)
            messages.add_metric([name, "delayed"], stats.delayed)
            oldest.add_metric([name], stats.oldest_age_seconds or 0.0)
        events = GaugeMetricFamily(
            "skylift_async_events",
            "Asynchronous invocations: queued, running, waiting to retry (delayed).",
            labels=["function", "state"],
        )
        for name, stats in sorted(self.async_events.items()):
            events.add_metric([name, "queued"], stats.visible)
            events.add_metric([name, "running"], stats.in_flight)
            events.add_metric([name, "delayed"], stats.delayed)
        yield from (messages, oldest, events)

    def _http(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "skylift_http_requests",
            "HTTP requests by route (the app's route, or aws:SERVICE), method and status.",
            labels=["route", "method", "code"],
        )
        for (route, method, status), count in sorted(self.requests.items()):
            requests.add_metric([route, method, str(status)], count)
        duration = HistogramMetricFamily(
            "skylift_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response.",
            labels=["route"],
        )
        for route, histogram in sorted(self.request_durations.items()):
            duration.add_metric([route], histogram.buckets(), histogram.total)
        yield from (requests, duration)

    def _backend(self) -> Iterable[Metric]:
        if self.backend is None:
            return
        up = GaugeMetricFamily(
            "skylift_state_backend_up", "1 while this node reaches its Redis state, else 0."
        )
        up.add_metric([], 1 if self.backend.up else 0)
        errors = CounterMetricFamily(
            "skylift_state_backend_errors", "Probes of the Redis state that failed."
        )
        errors.add_metric([], self.backend.errors)
        outages = CounterMetricFamily(
            "skylift_state_backend_outages", "Times the Redis state became unreachable."
        )
        outages.add_metric([], self.backend.outages)
        yield from (up, errors, outages)


def _nothing() -> None:
    """The default `sync`: nothing is held back (results are counted as they come)."""


def _counts(functions: dict[str, FunctionCounts], spec: FunctionSpec) -> FunctionCounts:
    counts = functions.get(spec.name)
    if counts is None:
        counts = functions[spec.name] = FunctionCounts.of(spec)
    return counts


def _count(
    functions: dict[str, FunctionCounts], spec: FunctionSpec, result: InvocationResult
) -> None:
    counts = _counts(functions, spec)
    if result.error is None:
        counts.add(result.trigger, "success")
    elif TIMED_OUT in result.payload:
        counts.add(result.trigger, "timeout")
    else:
        counts.add(result.trigger, "error")
    counts.duration.observe(result.duration_ms / 1000)
    if result.init_ms is not None:
        counts.init.observe(result.init_ms / 1000)

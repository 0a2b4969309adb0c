"""Results taken off the request path in batches: every reader still sees every
invocation that ended before it read, and the logs reach the disk without a reader."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from skylift.engine.instance import InvocationResult
from skylift.observe import logs_layout as layout
from skylift.observe.collect import compiled
from skylift.observe.events import EventLog, InvocationEvents
from skylift.observe.intake import Intake
from skylift.observe.logs_read import Query, Reader
from skylift.observe.logs_store import LogStore
from skylift.observe.metrics import Metrics
from skylift.observe.outcomes import Outcomes
from skylift.spec import FunctionSpec

SPEC = FunctionSpec(name="f", handler="app.f", code_dir=".")


class Instance:
    """Stands for an instance: a stream and a cold start are keyed by it."""


C = pytest.param(
    False,
    marks=pytest.mark.skipif(not compiled(), reason="the C collector was not built"),
)


@pytest.mark.parametrize("pure", [C, True], ids=["c", "python"])
def test_readers_see_what_ended_before_they_read(tmp_path: Path, pure: bool) -> None:
    metrics, outcomes, events = Metrics({}), Outcomes(), EventLog(tmp_path)
    consumers = [metrics.count, outcomes.count, InvocationEvents(events).count]
    tallied = [metrics.count_tallies, outcomes.count_tallies]
    intake = Intake(consumers, tallied, interval=60, pure=pure)
    metrics.sync = outcomes.sync = events.sync = intake.drain
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)

    async def run() -> None:
        instance = Instance()
        observe = intake.collector
        observe(SPEC, InvocationResult("r1", b"{}", None, b"", 2.0, init_ms=5.0), instance)
        observe(SPEC, InvocationResult("r2", b"{}", None, b"", 3.0), instance)  # a tally
        failed = InvocationResult("r3", b'{"errorMessage": "no"}', "Unhandled", b"", 1.0)
        observe(SPEC, failed, instance)
        scraped = generate_latest(registry).decode()
        total = 'skylift_invocations_total{function="f",outcome="%s",trigger="invoke"} 1.0'
        assert total.replace("1.0", "2.0") % "success" in scraped
        assert total % "error" in scraped
        assert 'skylift_invocation_duration_seconds_sum{function="f"} 0.006' in scraped
        assert outcomes.summary("f")["recent_errors"] == 1
        assert outcomes.summary("f")["recent_invocations"] == 3
        events.record("f", "Throttled", "limit 1")  # after the cold start, as it happened
        assert [e.reason for e in events.events("f")] == ["ColdStart", "Throttled"]

    asyncio.run(run())


@pytest.mark.parametrize("pure", [C, True], ids=["c", "python"])
def test_logs_are_written_without_a_reader(tmp_path: Path, pure: bool) -> None:
    store = LogStore(tmp_path, interval=0.05)
    store.start()
    intake = Intake(logs=store, interval=0.05, pure=pure)

    async def run() -> list[str]:
        intake.collector(SPEC, InvocationResult("r1", b"{}", None, b"hello\n", 2.0), Instance())
        reader = Reader(layout.root(tmp_path), Query())
        for _ in range(200):  # up to 10 s on a loaded machine; about 0.1 s usually
            found = [e.message for e in reader.poll()]
            if found:
                return found
            await asyncio.sleep(0.05)
        return []

    try:
        messages = asyncio.run(run())
    finally:
        store.close()
    assert messages[0].startswith("START RequestId: r1") and messages[1] == "hello"


def test_a_batch_is_counted_exactly_per_function_outcome_and_bucket() -> None:
    """Counting a batch at once (durations observed together, successes added at once)
    scrapes the same as counting each invocation: every outcome, bucket and sum."""
    one, other = SPEC, FunctionSpec(name="g", handler="app.g", code_dir=".")
    again = FunctionSpec(name="f", handler="app.f", code_dir=".")  # f reloaded: a new spec
    timed_out = b'{"errorType": "Sandbox.Timedout", "errorMessage": "late"}'
    batch = []
    for n in range(600):
        spec = (one if n % 7 else again) if n % 3 else other
        if n % 50 == 7:
            found = InvocationResult(f"r{n}", timed_out, "Unhandled", b"", 3000.0)
        elif n % 10 == 1:
            found = InvocationResult(f"r{n}", b'{"errorType": "E"}', "Unhandled", b"", 1.0)
        else:
            found = InvocationResult(f"r{n}", b"{}", None, b"", 0.4 + n, init_ms=n or None)
        # Runs of one trigger, the same name made anew now and then (equal, not the same).
        found.trigger = "".join(["a", "pi"]) if n % 5 == 0 else "api" if n % 40 < 20 else "sqs"
        batch.append((spec, found, Instance(), 0))
    batched, each = Metrics({}), Metrics({})
    batched.count(batch)
    for spec, found, instance, _ in batch:
        each(spec, found, instance)
    rates, rates_each = Outcomes(), Outcomes()
    rates.count(batch)
    for spec, found, _, ended in batch:
        rates_each.count([(spec, found, None, ended)])
    for name in ("f", "g"):
        assert rates.summary(name) == rates_each.summary(name)
    assert rates.summary("f")["recent_invocations"] == 400
    for n in range(1500):  # past the HTTP batch: counted as they fill it, and when read
        # The first batch of one route, method and status; then two routes, a 500 in one.
        route, status = ("POST /a", 200) if n % 4 or n < 1024 else ("GET /b", 404)
        status = 500 if n % 9 == 0 and n >= 1024 and route == "POST /a" else status
        batched.http(route, route[:4].strip(), status, n / 10000)
        each.http(route, route[:4].strip(), status, n / 10000)
        each.count_http()  # one request at a time: always one route, method and status

    found = scraped_alike(batched, each)
    success = (
        "skylift_invocations_total",
        "[('function', 'f'), ('outcome', 'success'), ('trigger', 'api')]",
    )
    assert found[success] == sum(
        1 for spec, r, _, _ in batch if spec.name == "f" and r.trigger == "api" and not r.error
    )
    get_b = (
        "skylift_http_requests_total",
        "[('code', '404'), ('method', 'GET'), ('route', 'GET /b')]",
    )
    assert found[get_b] == 119  # 1024, 1028, ... 1496
    post_a = (
        "skylift_http_requests_total",
        "[('code', '200'), ('method', 'POST'), ('route', 'POST /a')]",
    )
    assert found[post_a] == 1024 + sum(1 for n in range(1024, 1500) if n % 4 and n % 9)


def test_one_routes_requests_of_several_statuses_count_as_one_at_a_time() -> None:
    """A batch of one route whose statuses differ (its durations taken whole, its codes
    counted apart) reads as requests counted one by one."""
    batched, each = Metrics({}), Metrics({})
    for n in range(1100):  # a full batch (1,024) of one route, and the rest when read
        status = 500 if n % 7 == 0 else 200
        batched.http("POST /a", "POST", status, n / 10000)
        each.http("POST /a", "POST", status, n / 10000)
        each.count_http()

    found = scraped_alike(batched, each)
    errors = (
        "skylift_http_requests_total",
        "[('code', '500'), ('method', 'POST'), ('route', 'POST /a')]",
    )
    assert found[errors] == len(range(0, 1100, 7))


def scraped_alike(batched: Metrics, each: Metrics) -> dict[tuple[str, str], float]:
    """What `batched` exposes, checked sample by sample against what `each` does."""
    found, expected = scraped(batched), scraped(each)
    assert found.keys() == expected.keys()
    for key, number in expected.items():
        assert found[key] == pytest.approx(number, rel=1e-12), key
    return found


def scraped(metrics: Metrics) -> dict[tuple[str, str], float]:
    """Every sample `metrics` exposes, by name and labels."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    return {
        (s.name, str(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
    }

"""Results taken off the request path in batches: every reader still sees every
invocation that ended before it read, and the logs reach the disk without a reader."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from skylift.engine.instance import InvocationResult
from skylift.observe import logs_layout as layout
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


def test_readers_see_what_ended_before_they_read(tmp_path: Path) -> None:
    metrics, outcomes, events = Metrics({}), Outcomes(), EventLog(tmp_path)
    intake = Intake([metrics.count, outcomes.count, InvocationEvents(events).count], interval=60)
    metrics.sync = outcomes.sync = events.sync = intake.drain
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)

    async def run() -> None:
        instance = Instance()
        intake(SPEC, InvocationResult("r1", b"{}", None, b"", 2.0, init_ms=5.0), instance)
        failed = InvocationResult("r2", b'{"errorMessage": "no"}', "Unhandled", b"", 1.0)
        intake(SPEC, failed, instance)
        scraped = generate_latest(registry).decode()
        assert 'skylift_invocations_total{function="f",outcome="success"} 1.0' in scraped
        assert 'skylift_invocations_total{function="f",outcome="error"} 1.0' in scraped
        assert outcomes.summary("f")["recent_errors"] == 1
        events.record("f", "Throttled", "limit 1")  # after the cold start, as it happened
        assert [e.reason for e in events.events("f")] == ["ColdStart", "Throttled"]

    asyncio.run(run())


def test_logs_are_written_without_a_reader(tmp_path: Path) -> None:
    store = LogStore(tmp_path, interval=0.05)
    store.start()
    intake = Intake([store.add], interval=0.05)

    async def run() -> list[str]:
        intake(SPEC, InvocationResult("r1", b"{}", None, b"hello\n", 2.0), Instance())
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

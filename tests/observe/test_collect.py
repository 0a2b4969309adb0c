"""The collector's conformance suite: the C collector and the Python one, given the same
invocations, keep the same notable ones, tally the same counts, and pack the same bytes
for the stored logs, and the platform reads the same from either."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from skylift.engine.instance import InvocationResult
from skylift.log_config import LogConfig
from skylift.observe import collect
from skylift.observe import logs_frame as frame
from skylift.observe.events import EventLog, InvocationEvents
from skylift.observe.intake import Intake
from skylift.observe.logs_read import Query, Reader
from skylift.observe.logs_store import LogStore
from skylift.observe.metrics import DURATION_BUCKETS, Metrics
from skylift.observe.outcomes import Outcomes
from skylift.spec import FunctionSpec

F = FunctionSpec(name="f", handler="app.f", code_dir=".", memory=256)
F_AGAIN = FunctionSpec(name="f", handler="app.f", code_dir=".", memory=256)  # reloaded
G = FunctionSpec(name="g", handler="app.g", code_dir=".", log_config=LogConfig(format="JSON"))
TIMED_OUT = b'{"errorType": "Sandbox.Timedout", "errorMessage": "late"}'
EMF = b'{"_aws": {"Timestamp": 1, "CloudWatchMetrics": []}}\n'

needs_c = pytest.mark.skipif(
    not collect.compiled() and os.environ.get("CI") != "true",
    reason="the C collector was not built (no C compiler when skylift was installed)",
)


class Instance:
    """Stands for an instance: a stream and a cold start are keyed by it."""


def invocations() -> list[collect.Observed]:
    """A bit of everything, in runs and mixed: successes (tallied), failures, timeouts,
    cold starts, EMF output, JSON log format, no instance, no event, a reloaded spec, a
    body and an event over the kept limit, numbers out of their fields' range, unicode
    request ids, durations on the buckets' bounds."""
    instances = [Instance() for _ in range(5)]
    found: list[collect.Observed] = []
    for n in range(700):
        spec = G if n % 11 == 0 else (F_AGAIN if n % 97 == 3 else F)
        instance = None if n % 53 == 0 else instances[n % 5]
        event: bytes | None = b'{"n": %d}' % n if n % 13 else None
        body, error, output, init = b'"ok %d"' % n, None, b"line %d\n" % n, None
        if n % 31 == 0:
            body, error = b'{"errorType": "E", "errorMessage": "no"}', "Unhandled"
        if n % 67 == 5:
            body, error = TIMED_OUT, "Unhandled"
        if n % 41 == 2:
            init = 12.5 + n
        if n % 43 == 1:
            output = b"before\n" + EMF
        if n == 300:
            event = b'"' + b"e" * frame.LIMIT + b'"'
        if n == 301:
            body = b'"' + b"b" * frame.LIMIT + b'"'
        duration = (0.5, 1.0, 2.5, 0.0, 123.456, 1e6)[n % 6] + (n % 4) * 0.001
        result = InvocationResult(
            f"r{n}-ü" if n % 17 == 0 else f"r{n}",
            body,
            error,
            output,
            duration,
            init_ms=init,
            max_memory_mb=-3 if n == 400 else (2**40 if n == 401 else 40 + n % 9),
            event=event,
        )
        result.trigger = "api" if n % 3 else "sqs"
        found.append((spec, result, instance, 1_796_000_000_000_000_000 + n * 1_000_003))
    return found


def run(pure: bool, batch: list[collect.Observed], tmp: Path) -> tuple[object, ...]:
    store = LogStore(tmp)
    armed: list[int] = []
    collector = collect.make(
        store.open,
        lambda: armed.append(1),
        lambda: None,
        DURATION_BUCKETS,
        max_batch=1 << 30,
        max_bytes=1 << 40,
        pure=pure,
    )
    assert (type(collector) is collect.PyCollector) == pure
    for observed in batch:
        collector(*observed)
    assert collector.pending == len(batch)
    taken = collector.take()
    batch_files = dict(store._batch)  # the rows, until the store seals the batch
    assert taken is not None and collector.take() is None and collector.pending == 0
    notable, tallies, rows, size = taken
    streams = {}
    for (function, _), pieces in batch_files.items():
        joined = b"".join(p.digest() if isinstance(p, frame.Large) else p for p in pieces)
        streams.setdefault(function, []).append(joined)
    tallied = [(spec.name, spec is F_AGAIN, *rest) for spec, *rest in tallies]
    return armed, notable, tallied, rows, size, streams


@needs_c
def test_both_collectors_keep_tally_and_pack_alike(tmp_path: Path) -> None:
    batch = invocations()
    c = run(False, batch, tmp_path / "c")
    python = run(True, batch, tmp_path / "python")
    armed, notable, tallies, rows, size, streams = c
    assert armed == [1]  # once: when the batch got its first invocation
    assert [o[1].request_id for o in notable] == [o[1].request_id for o in python[1]]
    for x, y in zip(notable, python[1], strict=True):
        assert x[0] is y[0] and x[1] is y[1] and x[2] is y[2] and x[3] == y[3]
    assert tallies == python[2]
    assert (rows, size) == python[3:5] and rows == len(batch)
    assert sorted(streams) == sorted(python[5])
    for function, found in streams.items():
        assert sorted(found) == sorted(python[5][function])
    # What is notable: every failure, cold start, EMF output, invocation without an
    # instance, and each instance's first of the batch (and first after a reload).
    ids = {o[1].request_id for o in notable}
    for _, result, instance, _ in batch:
        if result.error or result.init_ms is not None or instance is None:
            assert result.request_id in ids
        if collect.EMF_MARK in result.logs:
            assert result.request_id in ids
    assert len(notable) < len(batch) / 3  # most are tallied
    assert sum(t[3] for t in tallies) + len(notable) == len(batch)


@needs_c
def test_each_row_reads_back_as_it_was_given(tmp_path: Path) -> None:
    """The C collector's rows, framed, read back field by field (what the Python one's
    already do: test_log_frames)."""
    batch = invocations()
    _, _, _, _, _, streams = run(False, batch, tmp_path)
    rows = {}
    for data in [d for found in streams.values() for d in found]:
        framed = b"".join(frame.framed(data))
        found = frame.rows(framed)
        assert found is not None
        rows.update({row.request_id: row for row in found})
    for spec, result, _, ended in batch:
        row = rows[result.request_id]
        assert row.end_ms == ended // 1_000_000
        assert row.duration_ms == result.duration_ms
        assert row.init_ms == result.init_ms
        assert row.memory_mb == spec.memory
        assert row.max_memory_mb == min(max(result.max_memory_mb, 0), 0xFFFFFFFF)
        assert row.json_format == (spec is G)
        assert row.failed == (result.error is not None)
        assert row.output == result.logs
        if len(result.payload) > frame.LIMIT:
            assert row.body is None and row.body_digest is not None
        else:
            assert row.body == result.payload
        if result.event is None or len(result.event) > frame.LIMIT:
            assert row.event is None
        else:
            assert row.event == result.event


def test_the_platform_reads_the_same_from_either(tmp_path: Path) -> None:
    """Metrics, error rates, events and the stored logs, through the intake, alike; and
    alike with every consumer given every invocation (what the intake did before it
    tallied: the reference)."""
    batch = invocations()
    seen = []
    modes: list[bool | None] = [False, True, None] if collect.compiled() else [True, None]
    for pure in modes:
        where = tmp_path / {False: "c", True: "python", None: "reference"}[pure]
        store, metrics, outcomes, events = LogStore(where), Metrics({}), Outcomes(), EventLog(where)
        consumers = [metrics.count, outcomes.count, InvocationEvents(events).count]
        if pure is None:
            for start in range(0, len(batch), 250):
                for consumer in [*consumers, store.add]:
                    consumer(batch[start : start + 250])
        else:
            tallied = [metrics.count_tallies, outcomes.count_tallies]
            intake = Intake(consumers, tallied, store, interval=60, pure=pure)
            for n, observed in enumerate(batch):
                intake.collector(*observed)
                if n % 250 == 249:
                    intake.drain()  # several batches: an instance's first of each is notable
            intake.drain()
        store.flush()
        store.close()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(metrics)
        samples = {
            (s.name, str(sorted(s.labels.items()))): s.value
            for family in registry.collect()
            for s in family.samples
        }
        logs = sorted((e.timestamp, e.message) for e in Reader(where / "logs", Query()).poll())
        described = [(e.reason, e.message) for e in events.events("f") + events.events("g")]
        seen.append((samples, outcomes.summary("f"), outcomes.summary("g"), described, logs))
        events.close()
    reference = seen[-1]
    for found in seen[:-1]:
        assert found[0].keys() == reference[0].keys()
        for key, value in reference[0].items():
            assert found[0][key] == pytest.approx(value, rel=1e-12), key
        assert found[1:] == reference[1:]
    assert len(reference[4]) > 4 * len(batch)  # START, the output, END and REPORT of each
    assert {"ColdStart", "Timeout"} <= {reason for reason, _ in reference[3]}


def test_ci_builds_the_c_collector() -> None:
    """Under CI the C collector must be there: else the suite would test one of two."""
    if os.environ.get("CI") != "true":
        pytest.skip("checked under CI=true, where .ci/run installs a C compiler")
    assert collect.compiled()


@pytest.mark.parametrize("pure", [pytest.param(False, marks=needs_c), True], ids=["c", "python"])
def test_a_batch_taken_from_inside_a_call_loses_nothing(tmp_path: Path, pure: bool) -> None:
    """`open_stream` is Python: whatever it lets run (a drain) may take the batch while the
    collector is inside a call. Nothing is lost or counted twice, and nothing crashes."""
    store = LogStore(tmp_path)
    taken: list[collect.Taken | None] = []

    def open_stream(spec: FunctionSpec, instance: object) -> tuple[collect.Pieces, int]:
        found = store.open(spec, instance)
        if collector.pending:
            taken.append(collector.take())
        return found

    collector = collect.make(
        open_stream, lambda: None, lambda: None, DURATION_BUCKETS,
        max_batch=1 << 30, max_bytes=1 << 40, pure=pure,
    )  # fmt: skip
    batch = invocations()[:300]
    for observed in batch:
        collector(*observed)
    taken.append(collector.take())
    found = [t for t in taken if t is not None]
    # The C one packs as each call comes, so it did take batches from inside calls; the
    # Python one opens streams inside `take`, where the batch is already taken.
    assert len(found) > 1 if not pure else len(found) == 1
    assert sum(len(t[0]) + sum(tally[2] for tally in t[1]) for t in found) == len(batch)
    assert sum(t[2] for t in found) == len(batch)  # every row packed, once


@pytest.mark.parametrize("pure", [pytest.param(False, marks=needs_c), True], ids=["c", "python"])
def test_an_invocation_that_cannot_be_observed_costs_only_itself(pure: bool) -> None:
    """A result the collector cannot read (a duration that is no number) is left out,
    logged; the rest of its batch is kept, tallied and packed."""
    batch = invocations()[:100]
    odd = InvocationResult("odd", b"{}", None, b"", "soon", event=b"{}")  # type: ignore[arg-type]
    pieces: list[object] = []
    collector = collect.make(
        lambda spec, instance: (pieces, 0), lambda: None, lambda: None, DURATION_BUCKETS,
        max_batch=1 << 30, max_bytes=1 << 40, pure=pure,
    )  # fmt: skip
    for n, observed in enumerate(batch):
        if n == 50:
            try:
                collector(F, odd, observed[2])
            except TypeError:  # the C one raises for it at once; the invoker logs it
                pass
        collector(*observed)
    taken = collector.take()
    assert taken is not None
    notable, tallies, _, _ = taken
    assert len(notable) + sum(t[2] for t in tallies) == len(batch)
    assert "odd" not in {o[1].request_id for o in notable}


def test_a_store_given_a_batch_leaves_a_collectors_open_batch_alone(tmp_path: Path) -> None:
    """`LogStore.add` (a batch packed in Python) while a collector fills the store's
    batch: both are written whole, each row once."""
    store = LogStore(tmp_path)
    batch = invocations()[:40]
    collector = collect.make(
        store.open, lambda: None, lambda: None, DURATION_BUCKETS,
        max_batch=1 << 30, max_bytes=1 << 40, pure=True,
    )  # fmt: skip
    for observed in batch[:20]:
        collector(*observed)
    taken = collector.take()  # rows packed into the store's open batch, not sealed yet
    store.add(batch[20:])
    assert taken is not None
    store.seal(taken[2], taken[3])
    store.flush()
    store.close()
    found = Reader(tmp_path / "logs", Query()).poll()
    started = [
        e.request_id
        for e in found
        if e.message.startswith("START") or '"platform.start"' in e.message
    ]
    assert sorted(started) == sorted(o[1].request_id for o in batch)

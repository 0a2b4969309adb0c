"""The event store behind `skylift describe` and the history kept for `skylift replay`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson

from skylift.engine.instance import InvocationResult
from skylift.observe import history
from skylift.observe.events import EventLog, read, table
from skylift.observe.logs_store import LogStore
from skylift.spec import FunctionSpec


def test_repeats_count_up_the_list_is_bounded_and_survives_a_restart(tmp_path: Path) -> None:
    log = EventLog(tmp_path, keep=3)
    for _ in range(4):
        log.record("f", "Throttled", "ConcurrentInvocationLimitExceeded: limit 2")
    for n in range(3):
        log.record("f", "Scaled", f"target {n}")
    log.close()
    kept = read(tmp_path, "f")
    assert [(e.reason, e.message, e.count) for e in kept] == [
        ("Scaled", "target 0", 1),
        ("Scaled", "target 1", 1),
        ("Scaled", "target 2", 1),
    ]
    again = EventLog(tmp_path, ["f"], keep=3)
    again.record("f", "Crashed", "exit status 1 (request r)")
    assert [e.reason for e in again.events("f")] == ["Scaled", "Scaled", "Crashed"]
    assert again.events("f")[-1].type == "Warning"


def test_table_shows_kubectl_columns_and_aggregated_counts(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.record("f", "Throttled", "limit 0")
    log.record("f", "Throttled", "limit 0")
    [event] = log.events("f")
    event.first, event.last = 1000.0, 1090.0
    lines = table([event], now=1100.0)
    assert lines[0].split() == ["Type", "Reason", "Age", "From", "Message"]
    row = ["Warning", "Throttled", "10s", "(x2", "over", "90s)", "invoker", "limit", "0"]
    assert lines[2].split() == row


def test_a_large_event_is_kept_as_its_digest_and_size(tmp_path: Path) -> None:
    big = orjson.dumps({"blob": "y" * history.LIMIT})
    store = LogStore(tmp_path)
    function = FunctionSpec(name="fn", handler="app.handler", code_dir=".")
    deep = b"[" * 300 + b"\n" + b"]" * 300  # deeper than orjson writes (254 levels)
    for result in [
        InvocationResult("r1", b'{"ok": 1}', None, b"", 1.0, event=big),
        InvocationResult("r2", b"{}", None, b"", 1.0, event=b'{"a": 1}'),
        # An event with line breaks (pretty-printed JSON): kept as it came.
        InvocationResult("r3", b'"hi"', None, b"", 1.0, event=b'{\n "a": 1\n}'),
        InvocationResult("r5", b"{}", None, b"", 1.0, event=deep),
        # An empty result (a custom runtime may send one).
        InvocationResult("r6", b"", None, b"", 1.0, event=b"{}"),
        # An event that is not JSON cannot be replayed (the Invoke API refuses it).
        InvocationResult("r4", b'"hi"', None, b"", 1.0, event=b"not\njson"),
    ]:
        store(function, result)
    store.flush()
    kept = history.find(tmp_path, "r1")
    assert kept is not None and kept.event is None and kept.result == '{"ok": 1}'
    assert kept.event_digest == {"sha256": hashlib.sha256(big).hexdigest(), "size": len(big)}
    assert "digest" in (kept.unreplayable() or "")
    for request_id, event, result in [
        ("r2", '{"a": 1}', "{}"),
        ("r3", '{\n "a": 1\n}', '"hi"'),
        ("r5", deep.decode(), "{}"),
        ("r6", "{}", ""),
    ]:
        kept = history.find(tmp_path, request_id)
        assert kept is not None and (kept.event, kept.result) == (event, result)
        assert kept.unreplayable() is None
    kept = history.find(tmp_path, "r4")
    assert kept is not None and kept.event is None and kept.event_digest is not None
    assert kept.event_digest["size"] == len(b"not\njson")


def test_a_first_invocation_that_timed_out_is_still_a_cold_start(tmp_path: Path) -> None:
    from skylift.engine.instance import timed_out
    from skylift.observe.events import InvocationEvents
    from skylift.spec import FunctionSpec

    class Instance:  # the observer only tells instances apart
        pass

    log = EventLog(tmp_path)
    observe = InvocationEvents(log)
    spec = FunctionSpec(name="f", handler="app.f", code_dir=".")
    instance = Instance()
    payload = orjson.dumps(timed_out("r1", 1.0))
    observe(spec, InvocationResult("r1", payload, "Unhandled", b"", 1000.0), instance)
    observe(spec, InvocationResult("r2", b"{}", None, b"", 1.0, init_ms=None), instance)
    observe(spec, InvocationResult("r3", b"{}", None, b"", 1.0, init_ms=3.0), Instance())
    assert [(e.reason, e.message) for e in log.events("f")] == [
        ("ColdStart", "started a new instance"),
        ("Timeout", "Task timed out after 1.00 seconds (request r1)"),
        ("ColdStart", "started a new instance (init 3.0 ms)"),
    ]


def test_pending_history_is_bounded_in_bytes_when_writing_falls_behind(tmp_path: Path) -> None:
    from skylift.observe.logs_store import MAX_PENDING_BYTES, LogStore
    from skylift.spec import FunctionSpec

    store = LogStore(tmp_path)  # not started: nothing is written, as with a stalled disk
    spec = FunctionSpec(name="f", handler="app.f", code_dir=".")
    big = b'"' + b"x" * (6 * 1024 * 1024) + b'"'
    calls = MAX_PENDING_BYTES // len(big) + 5
    for n in range(calls):
        store(spec, InvocationResult(f"r{n}", b"{}", None, b"", 1.0, event=big), None)
    assert store.dropped == calls - len(store._pending) > 0
    assert len(store._pending) * len(big) <= MAX_PENDING_BYTES + len(big)

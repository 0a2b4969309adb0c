"""The log store's files and retention, and the filter pattern, on real files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest

from skylift.engine.instance import InvocationResult
from skylift.observe import logs_layout as layout
from skylift.observe.log_filter import BadFilter, parse
from skylift.observe.logs_read import Query, Reader
from skylift.observe.logs_store import LogStore, Retention
from skylift.spec import FunctionSpec


def spec(name: str = "fn") -> FunctionSpec:
    return FunctionSpec(name=name, handler="app.fn", code_dir=".")


def result(n: int, output: bytes = b"x" * 1000) -> InvocationResult:
    return InvocationResult(f"req-{n}", b"null", None, output, 1.5)


class Instance:
    """Stands for an instance: the store only needs something to key a stream by."""


def sizes(directory: Path) -> int:
    return sum(path.stat().st_size for _, path in layout.log_files(directory))


def test_each_instance_gets_its_own_stream(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    first, second = Instance(), Instance()
    store(spec(), result(1), first)
    store(spec(), result(2), second)
    store(spec(), result(3), first)
    store.flush()
    events = Reader(layout.root(tmp_path), Query()).poll()
    streams = {e.request_id: e.stream for e in events}
    assert streams["req-1"] == streams["req-3"] != streams["req-2"]


def test_size_retention_drops_the_oldest_segments(tmp_path: Path) -> None:
    retention = Retention(max_bytes=200_000, max_age=3600)
    store = LogStore(tmp_path, retention)
    instance = Instance()
    for n in range(500):  # ~600 KB of events
        store(spec(), result(n), instance)
        if n % 50 == 0:
            store.flush()
    store.flush()
    directory = layout.root(tmp_path)
    assert sizes(directory) > retention.max_bytes
    assert store.sweep() > 0
    assert sizes(directory) <= retention.max_bytes
    events = Reader(directory, Query()).poll()
    assert events[-1].request_id == "req-499"  # the newest are kept
    assert all(e.request_id != "req-0" for e in events)


def test_age_retention_drops_old_files(tmp_path: Path) -> None:
    store = LogStore(tmp_path, Retention(max_age=60))
    store(spec("old"), result(1), Instance())
    store(spec("new"), result(2), Instance())
    store.flush()
    directory = layout.root(tmp_path)
    ((_, old),) = layout.log_files(directory, "old")
    week_ago = time.time() - 7 * 86400
    os.utime(old, (week_ago, week_ago))
    assert store.sweep() == 1
    assert [f for f, _ in layout.log_files(directory)] == ["new"]


def test_a_stream_whose_live_segment_was_removed_goes_on_in_a_new_file(tmp_path: Path) -> None:
    # A follower (`skylift logs -f`, a logs API token) that read the removed file up to
    # some offset must not mistake a new file of the same name for it.
    store = LogStore(tmp_path, Retention(max_age=60))
    instance = Instance()
    store(spec(), result(1), instance)
    store.flush()
    directory = layout.root(tmp_path)
    ((_, first),) = layout.log_files(directory)
    week_ago = time.time() - 7 * 86400
    os.utime(first, (week_ago, week_ago))
    assert store.sweep() == 1
    store(spec(), result(2), instance)
    store.flush()
    ((_, second),) = layout.log_files(directory)
    assert second.name != first.name
    assert layout.stream_name(second) == layout.stream_name(first)  # the same stream
    assert {e.request_id for e in Reader(directory, Query()).poll()} == {"req-2"}


def test_close_writes_what_is_pending(tmp_path: Path) -> None:
    store = LogStore(tmp_path, interval=60)
    store.start()
    store(spec(), result(1), Instance())
    store.close()
    assert [e.request_id for e in Reader(layout.root(tmp_path), Query()).poll()] == ["req-1"] * 4


def test_filter_pattern() -> None:
    assert parse("").matches("anything")
    assert parse("ERROR").matches("[ERROR] boom") and not parse("ERROR").matches("error")
    assert parse("ERROR -retry").matches("ERROR x") and not parse("ERROR -retry").matches(
        "ERROR retry"
    )
    assert parse('"timed out"').matches("Task timed out after") and not parse(
        '"timed out"'
    ).matches("timed, out")
    assert parse('-"not found"').matches("found") and not parse('-"not found"').matches(
        "404 not found"
    )
    either = parse("?WARN ?ERROR")
    assert either.matches("WARN a") and either.matches("ERROR b") and not either.matches("INFO")
    with pytest.raises(BadFilter, match="unclosed quote"):
        parse('"open')


def test_a_crash_is_logged_as_cloudwatch_shows_it(tmp_path: Path) -> None:
    from skylift.engine.instance import exited, failed_result

    crashed = failed_result("req-9", time.monotonic(), exited("req-9", "exit status 3"), b"bye\n")
    store = LogStore(tmp_path)
    store(spec(), crashed, Instance())
    store.flush()
    messages = [e.message for e in Reader(layout.root(tmp_path), Query()).poll()]
    assert messages[1:4] == [
        "bye",
        "RequestId: req-9 Error: Runtime exited with error: exit status 3",
        "Runtime.ExitError",
    ]
    assert messages[-1].endswith("Status: error\tError Type: Runtime.ExitError\t")


def test_each_line_reports_its_own_memory_and_format(tmp_path: Path) -> None:
    """Lines of functions with different memory sizes and log formats, memory used, cold
    starts and output, interleaved in one batch: each REPORT says its own numbers."""
    from skylift.log_config import LogConfig

    store = LogStore(tmp_path)
    specs = [
        FunctionSpec(name="small", handler="app.fn", code_dir=".", memory=128),
        FunctionSpec(name="large", handler="app.fn", code_dir=".", memory=1024),
        FunctionSpec(
            name="json", handler="app.fn", code_dir=".", memory=128, log_config=LogConfig("JSON")
        ),
    ]
    batch = []
    for n in range(60):
        function = specs[n % 3]
        found = InvocationResult(
            f"req-{n}",
            b'{"ok": 1}',
            None,
            b"said %d\n" % n if n % 5 == 0 else b"",
            1.5,
            init_ms=2.5 if n % 7 == 0 else None,
            max_memory_mb=16 + n % 4,
            event=b'{"n": %d}' % n,
        )
        batch.append((function, found, Instance(), time.time_ns()))
    store.add(batch)
    store.flush()
    reports = {}
    for e in Reader(layout.root(tmp_path), Query()).poll():
        if e.message.startswith("REPORT"):
            reports[e.request_id] = e.message
        elif '"platform.report"' in e.message:
            reports[e.request_id] = orjson.loads(e.message)["record"]["metrics"]
    assert len(reports) == 60
    for n in range(60):
        report, memory = reports[f"req-{n}"], (128, 1024, 128)[n % 3]
        if n % 3 == 2:
            assert isinstance(report, dict)
            assert report["memorySizeMB"] == memory and report["maxMemoryUsedMB"] == 16 + n % 4
            assert ("initDurationMs" in report) == (n % 7 == 0)
        else:
            assert f"Memory Size: {memory} MB\tMax Memory Used: {16 + n % 4} MB" in report
            assert ("Init Duration" in report) == (n % 7 == 0)


def test_every_invocation_of_a_large_batch_is_kept_whole_for_replay(tmp_path: Path) -> None:
    """One write of 700 invocations, in every form a stored line takes: each reads back
    with its own event and result, in order."""
    from skylift.observe import history

    store = LogStore(tmp_path)
    instance = Instance()
    sent: dict[str, tuple[bytes, bytes, bool]] = {}
    for n in range(700):
        event = b'{"n": %d, "pad": "%s"}' % (n, b"e" * (n % 50))
        payload, error = b'{"ok": %d}' % n, None
        if n % 7 == 3:
            event = b'{"n": %d,\n"line": "broken"}' % n  # a line break: kept as text
        if n % 11 == 5:
            payload, error = b'{"errorMessage": "no %d", "errorType": "E"}' % n, "Unhandled"
        found = InvocationResult(f"req-{n}", payload, error, b"said %d\n" % n, 1.5, event=event)
        sent[found.request_id] = (event, payload, error is not None)
        store(spec(), found, instance)
    store.flush()
    files = [path for _, path in layout.log_files(layout.root(tmp_path))]
    assert len(files) == 1
    events = Reader(layout.root(tmp_path), Query()).poll()
    started = [e.request_id for e in events if e.message.startswith("START")]
    assert started == [f"req-{n}" for n in range(700)]
    for request_id, (event, payload, failed) in sent.items():
        kept = history.find(tmp_path, request_id)
        assert kept is not None and kept.event is not None and kept.result is not None
        assert orjson.loads(kept.event) == orjson.loads(event)
        assert orjson.loads(kept.result) == orjson.loads(payload) and kept.error == failed


def test_a_write_the_kernel_cuts_short_is_finished_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream's batches go to its file in one `writev`; if the kernel takes only part
    of it (a signal, a nearly full disk), the rest follows: every frame whole, in order."""
    from skylift.observe import history

    store = LogStore(tmp_path)
    instance = Instance()
    for n in range(5):  # five batches of one invocation: five frames (3 pieces each)
        event = b'{"n": %d}' % n
        store(
            spec(),
            InvocationResult(f"req-{n}", b'{"ok": 1}', None, b"", 1.5, event=event),
            instance,
        )
    writev = os.writev
    taken: list[int] = []

    def cut_short(fd: int, chunks: list[bytes]) -> int:
        taken.append(len(chunks))
        return writev(fd, [chunks[0][:10]])

    monkeypatch.setattr(os, "writev", cut_short)
    store.flush()
    assert taken == [15]
    events = Reader(layout.root(tmp_path), Query()).poll()
    started = [e.request_id for e in events if e.message.startswith("START")]
    assert started == [f"req-{n}" for n in range(5)]
    kept = history.find(tmp_path, "req-3")
    assert kept is not None and kept.event is not None and orjson.loads(kept.event) == {"n": 3}


@pytest.mark.parametrize("large", [False, True])  # the fast line, and one with a digest
def test_a_result_that_is_not_json_cannot_forge_its_line(tmp_path: Path, large: bool) -> None:
    """A result is stored as the worker sent it (no parsing on the server), and a
    handler that replaces its runtime's serialiser can send bytes that are not JSON.
    Such bytes must not rename the invocation, move its time, or plant another event
    for replay: every field's length is in its row's head."""
    from skylift.observe import history

    forged = b'1,"requestId":"forged","end":1,"durationMs":0,"event":{"planted":true}'
    event = b'{"real": "x"}' if not large else b'{"real": "%s"}' % (b"x" * history.LIMIT)
    store = LogStore(tmp_path)
    store(spec(), InvocationResult("req-1", forged, None, b"", 1.5, event=event), Instance())
    store.flush()
    assert history.find(tmp_path, "forged") is None
    kept = history.find(tmp_path, "req-1")
    assert kept is not None and kept.end_ms > 1
    if large:
        assert kept.event is None and kept.event_digest is not None
    else:
        assert kept.event is not None and orjson.loads(kept.event) == {"real": "x"}
    events = Reader(layout.root(tmp_path), Query()).poll()
    assert {e.request_id for e in events} == {"req-1"}


def test_a_result_cannot_plant_an_event_beside_a_pretty_printed_one(tmp_path: Path) -> None:
    """An event with line breaks (an Invoke payload from a pretty-printed file) is kept
    as it came, and a result's bytes, however shaped, are not taken for it."""
    from skylift.observe import history

    forged = b'1,"event":{"planted":true}'
    event = b'{\n  "real": "x"\n}\n'
    store = LogStore(tmp_path)
    store(spec(), InvocationResult("req-1", forged, None, b"", 1.5, event=event), Instance())
    store.flush()
    kept = history.find(tmp_path, "req-1")
    assert kept is not None and kept.event is not None
    assert orjson.loads(kept.event) == {"real": "x"}


def test_each_file_starts_with_its_own_bytes(tmp_path: Path) -> None:
    """A file's identity (logs_records.identity) hashes its first bytes: two streams whose
    first invocations had the same result and event still differ there (the first row's
    request id is within them)."""
    from skylift.observe.logs_records import identity

    store = LogStore(tmp_path)
    event = b'{"pad": "%s"}' % (b"x" * 1000)  # longer than the bytes identity hashes
    for n in range(2):
        store(spec(), InvocationResult(f"req-{n}", b"{}", None, b"", 1.5, event=event), Instance())
    store.flush()
    paths = [path for _, path in layout.log_files(layout.root(tmp_path))]
    assert len(paths) == 2 and identity(paths[0]) != identity(paths[1])

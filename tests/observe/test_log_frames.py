"""The stored logs' binary frames (observe/logs_frame.py) under what a disk, a follower,
a handler's bytes and an older state folder can do to them, read through the public
readers: `Reader` (skylift logs, the logs API, the dashboard) and `history.find` (replay)."""

from __future__ import annotations

import errno
import itertools
import os
import random
from pathlib import Path

import orjson
import pytest

from skylift.engine.instance import InvocationResult
from skylift.log_config import LogConfig
from skylift.observe import history
from skylift.observe import logs_frame as framing
from skylift.observe import logs_layout as layout
from skylift.observe.logs_read import LogEvent, Query, Reader
from skylift.observe.logs_store import LogStore
from skylift.spec import FunctionSpec

SPEC = FunctionSpec(name="fn", handler="app.fn", code_dir=".")
NAME = "2026-01-01-" + "ab" * 16


class Instance:
    """Stands for an instance: the store only needs something to key a stream by."""


def frames(tmp_path: Path, count: int, event: bytes = b'{"n": 1}') -> list[bytes]:
    """`count` frames of one invocation each (req-0, req-1, ...), as the store writes
    them (the same bytes every run: the ends are fixed)."""
    store = LogStore(tmp_path / "written")
    instance = Instance()
    written = b""
    found = []
    for n in range(count):
        result = InvocationResult(f"req-{n}", b'{"ok": %d}' % n, None, b"out %d\n" % n, 1.5)
        result.event = event
        store.add([(SPEC, result, instance, 1_796_000_000_000_000_000 + n * 1_000_000)])
        store.flush()
        ((_, path),) = layout.log_files(layout.root(tmp_path / "written"))
        data = path.read_bytes()
        found.append(data[len(written) :])
        written = data
    return found


def stream(tmp_path: Path) -> Path:
    path = layout.root(tmp_path) / "fn" / f"{NAME}.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def started(events: list[LogEvent]) -> list[str]:
    return [e.request_id for e in events if e.message.startswith("START")]


def test_a_follower_sees_a_frame_only_once_it_is_whole(tmp_path: Path) -> None:
    first, second, third = frames(tmp_path, 3)
    path = stream(tmp_path)
    reader = Reader(layout.root(tmp_path), Query())
    path.write_bytes(first + second[:7])  # a write in progress: not even its header
    assert started(reader.poll()) == ["req-0"]
    with path.open("ab") as file:
        file.write(second[7:-20])  # its header, most of its row
    assert reader.poll() == []
    with path.open("ab") as file:
        file.write(second[-20:] + third)
    events = reader.poll()
    assert started(events) == ["req-1", "req-2"]
    assert [e.message for e in events if e.request_id == "req-2"][1] == "out 2"


def test_a_follower_that_came_before_the_first_frame_was_whole_sees_each_event_once(
    tmp_path: Path,
) -> None:
    first, second = frames(tmp_path, 2)
    path = stream(tmp_path)
    path.write_bytes(first[:20])
    reader = Reader(layout.root(tmp_path), Query())
    assert reader.poll() == []
    with path.open("ab") as file:
        file.write(first[20:])
    assert started(reader.poll()) == ["req-0"]
    with path.open("ab") as file:
        file.write(second)
    assert started(reader.poll()) == ["req-1"]
    assert reader.poll() == []


def test_a_write_the_disk_cuts_short_keeps_its_whole_frames_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk takes part of a write of two frames: the first, whole, stays (a
    follower may have read it), the part of the second goes, so the next frames follow
    whole ones."""
    store = LogStore(tmp_path)
    instance = Instance()
    event = b'{"pad": "%s"}' % (b"x" * 4000)

    def put(n: int) -> None:
        store(SPEC, InvocationResult(f"req-{n}", b"{}", None, b"", 1.5, event=event), instance)

    put(0)
    store.flush()
    put(1)
    put(2)  # two batches: two frames in one write
    writev = os.writev

    def full(fd: int, chunks: list[bytes]) -> int:
        assert len(chunks) == 6
        os.write(fd, b"".join(chunks[:3]) + chunks[3] + chunks[4][:100])  # then no space
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "writev", full)
    follower = Reader(layout.root(tmp_path), Query())
    assert started(follower.poll()) == ["req-0"]
    with pytest.raises(OSError):
        store.flush()  # (the writer thread closes its files then; here they stay open)
    monkeypatch.setattr(os, "writev", writev)
    put(3)
    store.flush()
    assert started(follower.poll()) == ["req-1", "req-3"]
    assert started(Reader(layout.root(tmp_path), Query()).poll()) == ["req-0", "req-1", "req-3"]
    assert history.find(tmp_path, "req-3") is not None and history.find(tmp_path, "req-2") is None


def test_numbers_no_server_writes_read_as_zero(tmp_path: Path) -> None:
    """A duration that is not finite, an end past the year 9999 (a damaged byte in a
    row's head): the invocation is read, with 0 there, and nothing raises."""
    path = stream(tmp_path)
    rows = b""
    for n, (end, duration) in enumerate([(2**62, 1.5), (1000, float("nan")), (1000, 1e308)]):
        rid = b"odd-%d" % n
        head = framing.ROW.pack(end, duration, 0.0, 1, 128, framing.JSON_FORMAT, len(rid), 0, 2, 2)
        rows += head + rid + b"{}" + b"{}"
    path.write_bytes(b"".join(framing.framed(rows)))
    events = Reader(layout.root(tmp_path), Query()).poll()
    assert [e.request_id for e in events if '"platform.start"' in e.message] == [
        "odd-0",
        "odd-1",
        "odd-2",
    ]
    reports = [orjson.loads(e.message) for e in events if '"platform.report"' in e.message]
    assert [r["record"]["metrics"]["durationMs"] for r in reports] == [1.5, 0.0, 0.0]


def test_a_digest_of_a_size_no_result_has_reads_as_it_is(tmp_path: Path) -> None:
    rid = b"odd-size"
    digest = framing.DIGEST.pack(b"\x01" * 32, 2**63)
    flags = framing.JSON_FORMAT | framing.BODY_DIGEST
    head = framing.ROW.pack(1000, 1.5, 0.0, 1, 128, flags, len(rid), 0, len(digest), 2)
    stream(tmp_path).write_bytes(b"".join(framing.framed(head + rid + digest + b"{}")))
    events = Reader(layout.root(tmp_path), Query()).poll()
    done = orjson.loads(events[1].message)
    assert done["type"] == "platform.runtimeDone"
    assert done["record"]["metrics"]["producedBytes"] == 2**63  # the digest's size, as it is
    kept = history.find(tmp_path, "odd-size")
    assert kept is not None and kept.result_digest == {"sha256": "01" * 32, "size": 2**63}


@pytest.mark.parametrize("share", [0.5, -20, -4])  # in its head, its body, its trailer
def test_a_frame_cut_short_costs_only_its_own_invocations(tmp_path: Path, share: float) -> None:
    """Damage from elsewhere (skylift's writer leaves no frame cut short before another):
    a frame's end gone, the next frame right after it."""
    first, second, third = frames(tmp_path, 3)
    cut = int(len(second) * share) if share > 0 else int(share)
    stream(tmp_path).write_bytes(first + second[:cut] + third)
    events = Reader(layout.root(tmp_path), Query()).poll()
    assert started(events) == ["req-0", "req-2"]
    kept = history.find(tmp_path, "req-2")
    assert kept is not None and kept.result == '{"ok": 2}' and kept.event == '{"n": 1}'
    assert history.find(tmp_path, "req-1") is None


def test_any_damage_reads_without_an_error(tmp_path: Path) -> None:
    """Whatever a file holds, reading it answers (what it can), never raises."""
    data = b"".join(frames(tmp_path, 4))
    path = stream(tmp_path)
    chance = random.Random(7)
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(chance.randint(1, 4)):
            at = chance.randrange(len(damaged))
            kind = chance.random()
            if kind < 0.5:
                damaged[at] = chance.randrange(256)
            elif kind < 0.75:
                del damaged[at : at + chance.randint(1, 40)]
            else:
                damaged[at:at] = chance.randbytes(chance.randint(1, 40))
        path.write_bytes(bytes(damaged))
        reader = Reader(layout.root(tmp_path), Query())
        reader.tail(chance.randint(1, len(damaged)))
        reader.poll()
        Reader(layout.root(tmp_path), Query()).page(3)
        history.find(tmp_path, "req-2")
    path.write_bytes(data)
    assert started(Reader(layout.root(tmp_path), Query()).poll()) == [f"req-{n}" for n in range(4)]


def test_bytes_shaped_like_a_frame_are_only_the_event_they_are_in(tmp_path: Path) -> None:
    """A handler's event (or result) holding a whole frame of another request id: every
    field's length is in its row's head, and a tail finds frames from the file's start,
    so the planted one is never read as a frame."""
    (planted,) = frames(tmp_path / "planted", 1)
    planted = planted.replace(b"req-0", b"forge")
    event = orjson.dumps({"pad": "x" * 3000}) + planted + orjson.dumps({"pad": "y" * 3000})
    path = stream(tmp_path)
    path.write_bytes(b"".join(frames(tmp_path, 2, event=event)))
    assert started(Reader(layout.root(tmp_path), Query()).poll()) == ["req-0", "req-1"]
    assert history.find(tmp_path, "forge") is None
    kept = history.find(tmp_path, "req-1")
    assert kept is not None and kept.event_digest is not None  # not JSON: not replayable
    for keep in range(1, path.stat().st_size, 997):  # a tail starting anywhere
        reader = Reader(layout.root(tmp_path), Query())
        reader.tail(keep)
        assert set(started(reader.poll())) <= {"req-0", "req-1"}


def test_a_tail_starts_at_a_whole_frame(tmp_path: Path) -> None:
    data = frames(tmp_path, 5)
    stream(tmp_path).write_bytes(b"".join(data))
    reader = Reader(layout.root(tmp_path), Query())
    reader.tail(len(data[-1]) + len(data[-2]) // 2)  # half of the one before the last
    events = reader.poll()
    assert started(events) == ["req-3", "req-4"]
    assert events[-1].message.startswith("REPORT RequestId: req-4")


def test_a_tail_anywhere_in_a_long_file_starts_at_the_frame_holding_it(tmp_path: Path) -> None:
    """Over several of the blocks the headers are walked in (64 KiB)."""
    data = frames(tmp_path, 400, event=orjson.dumps({"pad": "p" * 300}))
    stream(tmp_path).write_bytes(b"".join(data))
    ends = list(itertools.accumulate(map(len, data)))
    assert ends[-1] > 2 * 64 * 1024
    for keep in range(1, ends[-1], 4093):
        reader = Reader(layout.root(tmp_path), Query())
        reader.tail(keep)
        expected = [f"req-{n}" for n, end in enumerate(ends) if end > ends[-1] - keep]
        assert started(reader.poll()) == expected


def test_a_tail_waits_for_the_frame_being_written(tmp_path: Path) -> None:
    data = frames(tmp_path, 3)
    path = stream(tmp_path)
    path.write_bytes(data[0] + data[1] + data[2][:30])
    reader = Reader(layout.root(tmp_path), Query())
    reader.tail(10)
    assert reader.poll() == []
    with path.open("ab") as file:
        file.write(data[2][30:])
    assert started(reader.poll()) == ["req-2"]


def test_numbers_out_of_their_fields_range_are_kept_clamped(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store(SPEC, InvocationResult("big", b"{}", None, b"", 1.5, max_memory_mb=2**40), Instance())
    store(SPEC, InvocationResult("neg", b"{}", None, b"", 1.5, max_memory_mb=-3), Instance())
    store.flush()
    reports = {
        e.request_id: e.message
        for e in Reader(layout.root(tmp_path), Query()).poll()
        if e.message.startswith("REPORT")
    }
    assert f"Max Memory Used: {2**32 - 1} MB" in reports["big"]
    assert "Max Memory Used: 0 MB" in reports["neg"]


def test_a_state_folder_from_before_frames_is_read_alike(tmp_path: Path) -> None:
    """A stream stored as JSON lines (one invocation each, as skylift wrote them before
    frames) is read beside one of frames: `skylift logs`, its filters, and replay."""
    old = layout.root(tmp_path) / "fn" / f"2025-12-31-{'cd' * 16}.jsonl"
    old.parent.mkdir(parents=True)
    line = {
        "id": "old-1",
        "result": {"ok": "old"},
        "event": {"n": "old"},
        "requestId": "old-1",
        "end": 1_700_000_000_000,
        "durationMs": 2.5,
        "initMs": 120.0,
        "maxMemoryMB": 40,
        "memoryMB": 256,
        "format": "Text",
        "output": "hello from before\n",
        "error": None,
    }
    old.write_bytes(orjson.dumps(line) + b"\n")
    store = LogStore(tmp_path)
    store(SPEC, InvocationResult("new-1", b"{}", None, b"hello from now\n", 1.5), Instance())
    store.flush()
    events = Reader(layout.root(tmp_path), Query()).poll()
    assert started(events) == ["old-1", "new-1"]
    assert [e.message for e in events if e.message.startswith("hello")] == [
        "hello from before",
        "hello from now",
    ]
    report = next(e.message for e in events if e.message.startswith("REPORT RequestId: old-1"))
    assert "Memory Size: 256 MB" in report and "Init Duration: 120.00 ms" in report
    only = Reader(layout.root(tmp_path), Query(request_id="old-1")).poll()
    assert {e.request_id for e in only} == {"old-1"} and len(only) == 4
    kept = history.find(tmp_path, "old-1")
    assert kept is not None and orjson.loads(kept.event or "") == {"n": "old"}
    assert orjson.loads(kept.result or "") == {"ok": "old"}


def test_a_file_whose_first_bytes_are_damaged_is_followed_once(tmp_path: Path) -> None:
    first, second, third = frames(tmp_path, 3)
    path = stream(tmp_path)
    path.write_bytes(b"junk" + first)  # shorter than the bytes identity hashes
    reader = Reader(layout.root(tmp_path), Query())
    assert started(reader.poll()) == ["req-0"]
    with path.open("ab") as file:
        file.write(second)
    assert started(reader.poll()) == ["req-1"]
    with path.open("ab") as file:
        file.write(third)  # past them now
    assert path.stat().st_size > 256
    assert started(reader.poll()) == ["req-2"]
    assert reader.poll() == []


def test_each_kind_of_invocation_in_one_frame_reads_back_as_it_was(tmp_path: Path) -> None:
    """One batch, one instance: a success, a failure, a cold start, one without an event,
    a success whose result is over the limit, a failure whose error payload is; and a
    function with the JSON log format in the same batch."""
    big = b'"%s"' % (b"r" * history.LIMIT)
    error = orjson.dumps({"errorType": "ValueError", "errorMessage": "bad " + "e" * history.LIMIT})
    json_spec = FunctionSpec(
        name="js", handler="app.fn", code_dir=".", log_config=LogConfig(format="JSON")
    )
    instance, other = Instance(), Instance()
    ended = 1_796_000_000_000_000_000
    results = [
        (SPEC, InvocationResult("ok", b'{"a": 1}', None, b"said\n", 2.0, event=b'{"e": 1}')),
        (
            SPEC,
            InvocationResult("bad", b'{"errorMessage": "no"}', "Unhandled", b"", 3.0, event=b"{}"),
        ),
        (SPEC, InvocationResult("cold", b"1", None, b"", 4.0, init_ms=120.5, event=b"{}")),
        (SPEC, InvocationResult("bare", b"2", None, b"", 5.0)),
        (SPEC, InvocationResult("large", big, None, b"", 6.0, event=b"{}")),
        (SPEC, InvocationResult("huge-error", error, "Unhandled", b"", 7.0, event=b"{}")),
        (json_spec, InvocationResult("js-1", b"3", None, b"", 8.0, event=b"{}")),
        (json_spec, InvocationResult("js-large", big, None, b"", 9.0, event=b"{}")),
    ]
    store = LogStore(tmp_path)
    store.add(
        [
            (spec, result, other if spec is json_spec else instance, ended + n)
            for n, (spec, result) in enumerate(results)
        ]
    )
    store.flush()
    events = Reader(layout.root(tmp_path), Query()).poll()
    reports = {e.request_id: e.message for e in events if e.message.startswith("REPORT")}
    assert set(reports) == {"ok", "bad", "cold", "bare", "large", "huge-error"}
    assert "Init Duration: 120.50 ms" in reports["cold"]
    assert all("Init Duration" not in reports[r] for r in ("ok", "bad", "bare", "large"))
    assert "Duration: 3.00 ms" in reports["bad"]
    assert "Duration: 7.00 ms" in reports["huge-error"]
    assert [e.message for e in events if e.request_id == "ok"][1] == "said"
    platform = [orjson.loads(e.message) for e in events if e.request_id == "js-1"]
    assert [p["type"] for p in platform] == [
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
    ]
    assert platform[1]["record"]["metrics"]["producedBytes"] == 1  # b"3"
    # A result kept as its digest still says how large it was.
    done = [orjson.loads(e.message) for e in events if e.request_id == "js-large"][1]
    assert done["record"]["metrics"]["producedBytes"] == len(big) > framing.LIMIT
    ok = history.find(tmp_path, "ok")
    assert ok is not None and (ok.event, ok.result, ok.error) == ('{"e": 1}', '{"a": 1}', False)
    bad = history.find(tmp_path, "bad")
    assert bad is not None and (bad.result, bad.error) == ('{"errorMessage": "no"}', True)
    bare = history.find(tmp_path, "bare")
    assert bare is not None and bare.event is None and bare.event_digest is None
    assert "no event was kept" in (bare.unreplayable() or "")
    large = history.find(tmp_path, "large")
    assert large is not None and large.result is None and large.unreplayable() is None
    assert large.result_digest is not None and large.result_digest["size"] == len(big)
    kept = history.find(tmp_path, "huge-error")
    assert kept is not None and kept.error and kept.result == error.decode()

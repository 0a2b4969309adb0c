"""The logs reader and API under what the store and clients can do to them: a file
removed by retention and created again under its name, a page that would read every
stored byte, thousands of files at once, an oversized token, a time out of range."""

from __future__ import annotations

import base64
import os
import time
import tracemalloc
import zlib
from pathlib import Path

import orjson
import pytest

from skylift.engine.instance import InvocationResult
from skylift.observe import logs_api
from skylift.observe import logs_layout as layout
from skylift.observe.logs_api import LogsApi, decode, encode
from skylift.observe.logs_query import BadQuery, query
from skylift.observe.logs_read import LogEvent, Query, Reader
from skylift.observe.logs_store import LogStore, Retention
from skylift.spec import FunctionSpec

SPEC = FunctionSpec(name="fn", handler="app.fn", code_dir=".")


class Instance:
    """Stands for an instance: the store only needs something to key a stream by."""


def put(store: LogStore, instance: Instance, first: int, count: int) -> None:
    for n in range(first, first + count):
        store(SPEC, InvocationResult(f"req-{n}", b"null", None, b"hello %d\n" % n, 1.5), instance)
    store.flush()


def started(events: list[LogEvent]) -> list[str]:
    return [e.request_id for e in events if e.message.startswith("START")]


def swept_and_written_again(tmp_path: Path, store: LogStore, instance: Instance) -> None:
    """Retention removes the stream's only segment (idle past max_age); the instance's
    next invocations create a file of the same name."""
    (segment,) = (layout.root(tmp_path) / "fn").iterdir()
    os.utime(segment, (time.time() - 7200,) * 2)
    assert store.sweep() == 1 and not segment.exists()


@pytest.mark.parametrize("later", [3, 10])  # the new file smaller, then larger than the offset
def test_a_file_created_again_under_its_name_is_read_from_its_beginning(
    tmp_path: Path, later: int
) -> None:
    store = LogStore(tmp_path, Retention(max_age=3600))
    instance = Instance()
    put(store, instance, 0, 6)
    directory = layout.root(tmp_path)
    paged = Reader(directory, Query())  # the logs API: a token between pages
    first, more = paged.page(1000)
    token = encode(paged.positions())
    follower = Reader(directory, Query())  # `skylift logs -f`: one reader, polled
    assert started(follower.poll()) == started(first) == [f"req-{n}" for n in range(6)]
    swept_and_written_again(tmp_path, store, instance)
    put(store, instance, 6, later)
    new = [f"req-{n}" for n in range(6, 6 + later)]
    resumed = Reader(directory, Query())
    resumed.resume(decode(token))
    second, more = resumed.page(1000)
    assert started(second) == new and not more
    polled = follower.poll()
    assert started(polled) == new
    assert polled == second
    ids = [e.event_id for e in first + second]
    assert len(set(ids)) == len(ids)  # the new file's events are not the old one's
    assert follower.poll() == []  # and nothing twice


def many_invocations(tmp_path: Path, count: int) -> None:
    store = LogStore(tmp_path)
    instances = [Instance() for _ in range(4)]
    for n in range(count):
        found = InvocationResult(f"req-{n}", b"null", None, b"x" * 200 + b"\n", 1.5)
        store(SPEC, found, instances[n % 4])
    store.flush()


@pytest.mark.parametrize("asked", [{"request_id": "req-399"}, {"filter": '"req-399"'}])
def test_a_rare_match_is_looked_for_a_bounded_amount_a_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, asked: dict[str, str]
) -> None:
    """A page stops after MAX_SCAN bytes of stored lines, with or without events (as
    FilterLogEvents may answer an empty page with a nextToken), and the pages together
    find what one read finds."""
    many_invocations(tmp_path, 400)  # about 200 KB
    monkeypatch.setattr(logs_api, "MAX_SCAN", 16 * 1024, raising=False)
    api = LogsApi(tmp_path, {"fn": object()}, control=None)  # type: ignore[arg-type]
    pages: list[dict[str, object]] = []
    token = None
    while True:
        page = api.filter({**asked, **({"next_token": token} if token else {})})
        pages.append(page)
        token = page.get("nextToken")
        if token is None:
            break
    assert pages[0]["events"] == [] and "nextToken" in pages[0]
    found = [e for page in pages for e in page["events"]]  # type: ignore[attr-defined]
    words = (
        ["START", "x" * 200, "END", "REPORT"]
        if "request_id" in asked
        else ["START", "END", "REPORT"]
    )
    assert [e["message"].split()[0] for e in found] == words
    assert "req-399" in found[0]["message"]
    stored = sum(p.stat().st_size for p in (layout.root(tmp_path) / "fn").iterdir())
    assert len(pages) >= stored // (16 * 1024 + 4 * 1024)  # (a line more of each file)


def test_files_last_written_before_since_are_not_read(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    old, new = Instance(), Instance()
    put(store, old, 0, 3)
    (aged,) = (layout.root(tmp_path) / "fn").iterdir()
    os.utime(aged, (time.time() - 7200,) * 2)  # (its events say now: they are not read)
    put(store, new, 3, 3)
    wanted = query("fn", "1h")
    reader = Reader(layout.root(tmp_path), wanted)
    assert started(reader.page(1000)[0]) == ["req-3", "req-4", "req-5"]
    assert started(Reader(layout.root(tmp_path), wanted).poll()) == ["req-3", "req-4", "req-5"]


def test_a_page_over_thousands_of_files_holds_little_of_each(tmp_path: Path) -> None:
    """The first page starts every file: it keeps about one line of each, not 16 KB."""
    directory = layout.root(tmp_path) / "fn"
    directory.mkdir(parents=True)
    line = orjson.dumps(
        {
            "requestId": "r",
            "end": 1_800_000_000_000,
            "durationMs": 1.5,
            "initMs": None,
            "maxMemoryMB": 40,
            "memoryMB": 128,
            "format": "Text",
            "output": "some output\n" * 10,
            "error": None,
        }
    )
    body = (line + b"\n") * 100  # 30 KB each
    for n in range(600):
        (directory / f"2026-01-01-{n:032x}.jsonl").write_bytes(body)
    tracemalloc.start()
    try:
        events, more = Reader(layout.root(tmp_path), Query()).page(1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(events) == 1 and more
    assert peak < 600 * 12 * 1024, peak  # 8 KB a file (a line and its events), was 23


def test_a_token_longer_than_the_files_need_is_refused_unread(tmp_path: Path) -> None:
    many_invocations(tmp_path, 8)  # four files
    api = LogsApi(tmp_path, {"fn": object()}, control=None)  # type: ignore[arg-type]
    names = {f"fn/2026-01-01-{n:032x}.jsonl": [n, 0, 1] for n in range(40_000)}
    raw = orjson.dumps(names)
    token = base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode()
    assert len(token) < logs_api.MAX_BODY
    began = time.perf_counter()
    with pytest.raises(BadQuery, match="log files stored could need"):
        api.filter({"next_token": token})
    assert time.perf_counter() - began < 0.5
    # A token naming far more files than are stored now (retention removed them since it
    # was given) is taken: the names no longer stored are passed over.
    gone = {f"fn/2026-01-01-{n:032x}.jsonl": [n, 0, 1] for n in range(3000)}
    older = base64.urlsafe_b64encode(zlib.compress(orjson.dumps(gone), 9)).decode()
    assert len(api.filter({"next_token": older})["events"]) == 8 * 4  # the four files, whole
    page = api.filter({})  # and a real one is taken
    assert api.filter({"next_token": page["nextForwardToken"]})["events"] == []


@pytest.mark.parametrize("since", ["²", "9" * 400 + "w", "9" * 30, "1e400s", "0001-01-01"])
def test_a_time_out_of_range_is_a_bad_query(tmp_path: Path, since: str) -> None:
    api = LogsApi(tmp_path, {"fn": object()}, control=None)  # type: ignore[arg-type]
    with pytest.raises(BadQuery, match="--since"):
        api.filter({"since": since})
    page = api.filter({"since": str(2**53 - 1)})
    assert page["startTime"] == 2**53 - 1 and orjson.dumps(page)

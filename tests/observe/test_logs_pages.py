"""The reader's pages on real files: any page size gives the events one read gives, in
the same order; the positions carried in a token resume exactly; lines written between
pages are neither lost nor repeated; and the token says when it is not one."""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import pytest

from skylift.engine.instance import InvocationResult
from skylift.observe import logs_layout as layout
from skylift.observe.logs_api import decode, encode
from skylift.observe.logs_query import BadQuery
from skylift.observe.logs_read import LogEvent, Query, Reader
from skylift.observe.logs_store import LogStore
from skylift.spec import FunctionSpec


class Instance:
    """Stands for an instance: the store only needs something to key a stream by."""


def store_some(store: LogStore, first: int, count: int, instances: list[Instance]) -> None:
    for n in range(first, first + count):
        name = ("a", "b")[n % 2]
        output = b"line %d\nmore %d\n" % (n, n)
        found = InvocationResult(f"req-{n}", b"null", None, output, 1.5)
        store(FunctionSpec(name=name, handler="app.fn", code_dir="."), found, instances[n % 3])
    store.flush()


def paged(directory: Path, query: Query, limit: int, token: str | None = None) -> list[LogEvent]:
    """Every page, each from a new reader resumed from the last page's token."""
    found: list[LogEvent] = []
    while True:
        reader = Reader(directory, query)
        if token is not None:
            reader.resume(decode(token))
        events, more = reader.page(limit)
        found += events
        token = encode(reader.positions())
        if not more:
            return found


@pytest.mark.parametrize("limit", [1, 3, 7, 1000])
def test_pages_of_any_size_give_what_one_read_gives(tmp_path: Path, limit: int) -> None:
    store = LogStore(tmp_path)
    store_some(store, 0, 40, [Instance() for _ in range(3)])
    directory = layout.root(tmp_path)
    whole = Reader(directory, Query()).poll()
    assert len(whole) == 40 * 5  # START, two lines, END, REPORT
    pages = paged(directory, Query(), limit)
    assert [e.event_id for e in pages] == [e.event_id for e in whole]
    assert pages == whole
    assert len({e.event_id for e in pages}) == len(pages)


def test_lines_written_between_pages_are_neither_lost_nor_repeated(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    instances = [Instance() for _ in range(3)]
    store_some(store, 0, 20, instances)
    directory = layout.root(tmp_path)
    query = Query(function="a")
    seen: list[LogEvent] = []
    token = None
    for round_ in range(6):
        reader = Reader(directory, query)
        if token is not None:
            reader.resume(decode(token))
        events, _ = reader.page(4)  # cut mid-invocation, mid-file
        seen += events
        token = encode(reader.positions())
        store_some(store, 20 + round_ * 10, 10, instances)  # written meanwhile
    seen += paged(directory, query, 4, token)
    ids = [e.event_id for e in seen]
    assert len(ids) == len(set(ids))
    started = sorted(int(e.request_id[4:]) for e in seen if e.message.startswith("START"))
    assert started == list(range(0, 80, 2))  # every invocation of "a", once


def test_a_filter_and_a_function_page_the_same(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store_some(store, 0, 30, [Instance() for _ in range(3)])
    directory = layout.root(tmp_path)
    from skylift.observe.logs_query import query

    wanted = query("b", None, "-START -END", None)
    assert paged(directory, wanted, 2) == Reader(directory, wanted).poll()


def deflated(raw: bytes) -> str:
    return base64.urlsafe_b64encode(zlib.compress(raw)).decode()


def test_a_token_not_given_by_the_api_is_refused() -> None:
    cut = encode({"a/x": (1, 0, 7)})[:-3]
    for token in ("abc", "!!", cut, deflated(b"[1, 2]"), deflated(b'{"a/x": [-1, 0, 0]}')):
        with pytest.raises(BadQuery, match="not a token this server gave"):
            decode(token)
    assert decode(encode({"a/x.jsonl": (10, 2, 3), "b/y.jsonl": (5, 0, 4)})) == {
        "a/x.jsonl": (10, 2, 3),
        "b/y.jsonl": (5, 0, 4),
    }


@pytest.mark.parametrize("step_ms", [5, -1])
def test_pages_and_one_read_agree_whether_or_not_a_file_is_in_time_order(
    tmp_path: Path, step_ms: int
) -> None:
    """Invocations 2 ms long ending 5 ms apart are in time order; ending 1 ms earlier
    each, they are not (a clock step): one read and any pages still agree."""
    store = LogStore(tmp_path)
    instances = [Instance(), Instance()]
    base = 1_800_000_000_000
    batch = []
    for n in range(30):
        found = InvocationResult(f"req-{n}", b"null", None, b"out %d\n" % n, 2.0)
        spec = FunctionSpec(name="f", handler="app.fn", code_dir=".")
        ended = (base + n * step_ms + (n % 2) * 3) * 1_000_000
        batch.append((spec, found, instances[n % 2], ended))
    store.add(batch)
    store.flush()
    directory = layout.root(tmp_path)
    whole = Reader(directory, Query()).poll()
    times = [e.timestamp for e in whole]
    assert (times == sorted(times)) == (step_ms > 0)
    for limit in (1, 2, 5):
        assert paged(directory, Query(), limit) == whole

"""SqliteQueues: the conformance suite, plus what only a file-backed store promises."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conformance import Opener, QueueBackendConformance, msg

from skylift.queues import QueueBackend, SqliteQueues
from skylift.queues.errors import InvalidParameterValue, QueueBackendClosed


class TestSqliteConformance(QueueBackendConformance):
    @pytest.fixture
    def open_backend(self, tmp_path: Path) -> Opener:
        async def open_backend() -> QueueBackend:
            return SqliteQueues(tmp_path / "queues.db")

        return open_backend


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_everything_survives_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "queues.db"

    async def before() -> list[str]:
        queues = SqliteQueues(path)
        await queues.create_queue("jobs", {"VisibilityTimeout": "60"})
        await queues.send("jobs", [msg("kept"), msg("in flight")])
        [got] = await queues.receive("jobs")
        await queues.close()
        return [got.body, got.receipt_handle]

    async def after(in_flight: str, handle: str) -> None:
        queues = SqliteQueues(path)
        assert (await queues.get_attributes("jobs"))["VisibilityTimeout"] == "60"
        stats = await queues.stats("jobs")
        assert (stats.visible, stats.in_flight) == (1, 1)
        [got] = await queues.receive("jobs")
        assert got.body != in_flight
        assert await queues.delete("jobs", [handle, got.receipt_handle]) == [None, None]
        assert (await queues.stats("jobs")).visible == 0
        await queues.close()

    asyncio.run(after(*asyncio.run(before())))


_SENDER = textwrap.dedent(
    """
    import asyncio, sys
    from skylift.queues import OutgoingMessage, SqliteQueues

    async def main():
        queues = SqliteQueues(sys.argv[1])
        await queues.create_queue("jobs", {})
        n = 0
        while True:
            results = await queues.send("jobs", [OutgoingMessage(f"m{n + i}") for i in range(10)])
            n += 10
            # Acknowledge only after send() returned, as an API response would.
            print(" ".join(r.message_id for r in results), flush=True)

    asyncio.run(main())
    """
)


def test_acknowledged_sends_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "queues.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _SENDER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    acknowledged: set[str] = set()
    try:
        while len(acknowledged) < 300:
            line = child.stdout.readline()
            assert line, "the sender exited early"
            acknowledged.update(line.split())
    finally:
        child.send_signal(signal.SIGKILL)  # mid-stream, no chance to clean up
        child.wait(10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    async def stored() -> set[str]:
        queues = SqliteQueues(path)
        ids: set[str] = set()
        while got := await queues.receive("jobs", max_messages=10):
            ids.update(m.message_id for m in got)
        await queues.close()
        return ids

    assert acknowledged <= asyncio.run(stored())


def test_two_connections_share_a_file(tmp_path: Path) -> None:
    async def scenario() -> None:
        one = SqliteQueues(tmp_path / "q.db")
        two = SqliteQueues(tmp_path / "q.db", poll_interval=0.1)
        await one.create_queue("jobs", {})
        await two.set_attributes("jobs", {"VisibilityTimeout": "1"})

        async def send_later() -> None:
            await asyncio.sleep(0.2)
            await one.send("jobs", [msg("across")])

        sender = asyncio.create_task(send_later())
        [got] = await two.receive("jobs", wait_seconds=5)
        await sender
        assert got.body == "across"
        # `one` sees the visibility timeout `two` set, despite having cached the queue.
        assert await one.receive("jobs") == []
        await asyncio.sleep(1.1)
        assert [m.body for m in await one.receive("jobs")] == ["across"]
        await one.close()
        await two.close()

    asyncio.run(scenario())


def test_expired_messages_are_dropped(tmp_path: Path) -> None:
    clock = Clock()

    async def scenario() -> None:
        queues = SqliteQueues(tmp_path / "q.db", clock=clock)
        await queues.create_queue("jobs", {"MessageRetentionPeriod": "60"})
        await queues.send("jobs", [msg("old")])
        clock.now += 30
        await queues.send("jobs", [msg("new")])
        clock.now += 31
        assert (await queues.stats("jobs")).visible == 1
        assert [m.body for m in await queues.receive("jobs", max_messages=10)] == ["new"]
        clock.now += 60
        assert (await queues.stats("jobs")).in_flight == 0
        assert await queues.receive("jobs", max_messages=10) == []
        await queues.close()

    asyncio.run(scenario())


def test_fifo_deduplication_window_is_five_minutes(tmp_path: Path) -> None:
    clock = Clock()

    async def scenario() -> None:
        queues = SqliteQueues(tmp_path / "q.db", clock=clock)
        await queues.create_queue("jobs.fifo", {"FifoQueue": "true"})
        send = [msg("x", message_group_id="g", message_deduplication_id="d")]
        first = await queues.send("jobs.fifo", send)
        clock.now += 299
        assert (await queues.send("jobs.fifo", send))[0].message_id == first[0].message_id
        clock.now += 2
        assert (await queues.send("jobs.fifo", send))[0].message_id != first[0].message_id
        assert (await queues.stats("jobs.fifo")).visible == 2
        await queues.close()

    asyncio.run(scenario())


def test_visibility_cannot_extend_past_twelve_hours_from_receive(tmp_path: Path) -> None:
    clock = Clock()

    async def scenario() -> None:
        queues = SqliteQueues(tmp_path / "q.db", clock=clock)
        await queues.create_queue("jobs", {"VisibilityTimeout": "43200"})
        await queues.send("jobs", [msg()])
        [got] = await queues.receive("jobs")
        clock.now += 40_000
        await queues.change_visibility("jobs", got.receipt_handle, 3_200)
        with pytest.raises(InvalidParameterValue, match="43200"):
            await queues.change_visibility("jobs", got.receipt_handle, 3_201)
        await queues.close()

    asyncio.run(scenario())


def test_closed_backend_refuses_calls_and_ends_long_polls(tmp_path: Path) -> None:
    async def scenario() -> None:
        queues = SqliteQueues(tmp_path / "q.db")
        await queues.create_queue("jobs", {})
        poll = asyncio.create_task(queues.receive("jobs", wait_seconds=20))
        await asyncio.sleep(0.1)
        await queues.close()
        assert await asyncio.wait_for(poll, 1) == []
        with pytest.raises(QueueBackendClosed):
            await queues.send("jobs", [msg()])

    asyncio.run(scenario())


def test_a_file_of_the_previous_schema_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "queues.db"

    async def write() -> None:
        queues = SqliteQueues(path)
        await queues.create_queue("jobs", {})
        await queues.send("jobs", [msg("from before")])
        await queues.close()

    asyncio.run(write())
    # Make it a version 1 file, as skylift wrote before tags and system attributes.
    db = sqlite3.connect(path)
    db.executescript(
        "ALTER TABLE messages DROP COLUMN system_attributes; DROP TABLE tags; "
        "PRAGMA user_version = 1;"
    )
    db.close()

    async def read() -> None:
        queues = SqliteQueues(path)
        await queues.tag_queue("jobs", {"team": "a"})
        [got] = await queues.receive("jobs")
        assert got.body == "from before"
        assert await queues.list_tags("jobs") == {"team": "a"}
        await queues.close()

    asyncio.run(read())

"""Group commit in SqliteQueues: calls made together share a transaction, yet each one
succeeds or fails as if it had run alone."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from conformance import msg

from skylift.queues import SqliteQueues
from skylift.queues.errors import QueueDoesNotExist, QueueError


def count_commits(path: Path) -> int:
    """Transactions committed to the file's write-ahead log so far (its commit frames)."""
    wal = path.with_name(path.name + "-wal").read_bytes()
    page = int.from_bytes(wal[8:12], "big")
    frames = range(32, len(wal), 24 + page)
    return sum(1 for offset in frames if int.from_bytes(wal[offset + 4 : offset + 8], "big"))


def test_concurrent_sends_commit_together_and_fail_alone(tmp_path: Path) -> None:
    path = tmp_path / "queues.db"

    async def main() -> None:
        queues = SqliteQueues(path)
        await queues.create_queue("jobs", {})
        before = count_commits(path)
        sends = [queues.send("jobs", [msg(f"m{i}-{j}") for j in range(10)]) for i in range(8)]
        sends.insert(3, queues.send("missing", [msg("lost")]))
        too_big = [msg("x" * 200_000)] * 6  # over the 1 MiB of a batch
        sends.insert(5, queues.send("jobs", too_big))
        results = await asyncio.gather(*sends, return_exceptions=True)
        assert isinstance(results[3], QueueDoesNotExist)
        assert isinstance(results[5], QueueError) and results[5].code == "BatchRequestTooLong"
        accepted = [r for r in results if isinstance(r, list)]
        assert len(accepted) == 8 and all(len(r) == 10 for r in accepted)
        # Eight sends acknowledged by one commit, not eight.
        assert count_commits(path) - before == 1
        bodies = set()
        while got := await queues.receive("jobs", max_messages=10):
            bodies |= {m.body for m in got}
            await queues.delete("jobs", [m.receipt_handle for m in got])
        assert bodies == {f"m{i}-{j}" for i in range(8) for j in range(10)}
        await queues.close()

    asyncio.run(main())


def test_acknowledged_means_committed(tmp_path: Path) -> None:
    path = tmp_path / "queues.db"

    async def main() -> None:
        queues = SqliteQueues(path)
        await queues.create_queue("jobs", {})
        await asyncio.gather(*(queues.send("jobs", [msg(str(i))]) for i in range(5)))
        # Another connection (another process) sees every acknowledged message at once.
        other = sqlite3.connect(path)
        assert other.execute("SELECT count(*) FROM messages").fetchone() == (5,)
        other.close()
        await queues.close()

    asyncio.run(main())


def test_a_receive_cancelled_after_its_claim_gives_the_messages_back(tmp_path: Path) -> None:
    async def main() -> None:
        queues = SqliteQueues(tmp_path / "queues.db")
        await queues.create_queue("jobs", {"VisibilityTimeout": "600"})
        await queues.send("jobs", [msg("a"), msg("b")])
        receive = asyncio.ensure_future(queues.receive("jobs", max_messages=10))
        await asyncio.sleep(0)  # the receive has queued its claim
        await asyncio.sleep(0)  # the claim committed; the receive has not resumed yet
        receive.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receive
        # Not hidden for the 600 s visibility timeout, and the lost receive is not counted.
        got = await queues.receive("jobs", max_messages=10)
        assert sorted(m.body for m in got) == ["a", "b"]
        assert {m.attributes["ApproximateReceiveCount"] for m in got} == {"1"}
        await queues.close()

    asyncio.run(main())


def test_a_send_cancelled_before_the_commit_stores_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        queues = SqliteQueues(tmp_path / "queues.db")
        await queues.create_queue("jobs", {})
        send = asyncio.ensure_future(queues.send("jobs", [msg("never")]))
        await asyncio.sleep(0)  # queued, not yet flushed
        send.cancel()
        with pytest.raises(asyncio.CancelledError):
            await send
        await asyncio.sleep(0.01)
        assert (await queues.stats("jobs")).visible == 0
        await queues.close()

    asyncio.run(main())


def test_a_handle_from_another_database_is_refused_in_the_same_process(tmp_path: Path) -> None:
    # The process keeps the handles it just gave out (to skip their HMAC on delete); one
    # given out by another database, signed with another key, must still be refused.
    async def main() -> None:
        first = SqliteQueues(tmp_path / "first.db")
        second = SqliteQueues(tmp_path / "second.db")
        for queues in (first, second):
            await queues.create_queue("jobs", {})
            await queues.send("jobs", [msg("a")])
        [got] = await first.receive("jobs")
        [error] = await second.delete("jobs", [got.receipt_handle])
        assert error is not None and error.code == "ReceiptHandleIsInvalid"
        assert (await second.stats("jobs")).visible == 1
        assert await first.delete("jobs", [got.receipt_handle]) == [None]
        await first.close()
        await second.close()

    asyncio.run(main())

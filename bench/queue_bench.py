"""The ceiling of a queue backend: raw claim+delete rate, no HTTP, no handler.

Sends N messages in batches of 10, then loops receive(10) + delete(batch of 10) until the
queue is empty, and prints messages per second for each phase and for the whole round
trip. Run: ``.venv/bin/python bench/queue_bench.py [--messages 20000] [--body-bytes 100]``;
``--redis redis://127.0.0.1:6379/0`` measures the Redis backend instead of SQLite (on a
key prefix of its own, deleted after).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from skylift.queues import OutgoingMessage, QueueBackend, SqliteQueues


async def bench(path: Path, messages: int, body_bytes: int) -> dict[str, float]:
    return await bench_backend(SqliteQueues(path), messages, body_bytes)


async def bench_redis(url: str, messages: int, body_bytes: int) -> dict[str, float]:
    import redis

    from skylift.queues.redis import RedisQueues

    prefix = f"skylift-bench-{uuid.uuid4().hex[:8]}:"
    try:
        return await bench_backend(RedisQueues(url, prefix=prefix), messages, body_bytes)
    finally:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.unlink(key)
        client.close()


async def bench_backend(queues: QueueBackend, messages: int, body_bytes: int) -> dict[str, float]:
    await queues.create_queue("bench", {})
    body = "x" * body_bytes
    batch = [OutgoingMessage(body) for _ in range(10)]

    started = time.perf_counter()
    for _ in range(messages // 10):
        await queues.send("bench", batch)
    sent = time.perf_counter()

    received = 0
    while True:
        got = await queues.receive("bench", max_messages=10, wait_seconds=0)
        if not got:
            break
        results = await queues.delete("bench", [m.receipt_handle for m in got])
        assert not any(results), results
        received += len(got)
    done = time.perf_counter()
    await queues.close()
    assert received == messages, (received, messages)
    return {
        "send (batches of 10)": messages / (sent - started),
        "receive 10 + delete 10": messages / (done - sent),
        "send + receive + delete": messages / (done - started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--body-bytes", type=int, default=100)
    parser.add_argument("--redis", metavar="URL", help="measure the Redis backend at URL")
    args = parser.parse_args()
    if args.redis:
        rates = asyncio.run(bench_redis(args.redis, args.messages, args.body_bytes))
        print(f"{args.messages} messages of {args.body_bytes} bytes, Redis at {args.redis}")
    else:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "queues.db"
            rates = asyncio.run(bench(path, args.messages, args.body_bytes))
        print(
            f"{args.messages} messages of {args.body_bytes} bytes, SQLite WAL, synchronous=NORMAL"
        )
    for phase, rate in rates.items():
        print(f"  {phase:<26} {rate:>10,.0f} msg/s")


if __name__ == "__main__":
    main()

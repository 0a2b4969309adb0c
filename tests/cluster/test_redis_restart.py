"""Redis crashes and restarts under two `skylift up` nodes: they say so in their logs and
`/metrics`, reconnect by themselves, and lose no message the SQS API acknowledged.

The Redis is the test's own (`redis-server` on a free port and data folder, `appendonly
yes`, `appendfsync always`: each write is on disk before its reply), killed with SIGKILL
mid-run, as a crash would. Handlers record each message id in the shared test Redis.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
import redis
from botocore.config import Config
from cluster_helpers import CLIENT, URL, nodes, redis_prefix, write_apps

from skylift.testing import ServerLog

__all__ = ["redis_prefix"]  # a fixture, used by name

MESSAGES = 3000
APP = """
    import redis
    from skylift import App

    app = App()
    app.declare_queue("work", visibility_timeout=5)
    SEEN = redis.Redis.from_url({url!r})


    @app.queue("work", batch_size=10)
    def work(event, context):
        SEEN.rpush({key!r}, *[record["messageId"] for record in event["Records"]])
"""
NO_RETRY = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30)


class RedisServer:
    """A redis-server of the test's own, persisting to `folder` with every write fsynced."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI") == "true":
                pytest.fail("redis-server is not installed; CI must install it (see .ci/run)")
            pytest.skip("redis-server is not installed")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        folder.mkdir()
        self.args = [
            binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(folder),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "",
        ]  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()

    def crash(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/_skylift/metrics", timeout=10).text
    [line] = [row for row in text.splitlines() if row.startswith(name + " ")]
    return float(line.split()[1])


def test_nodes_ride_out_a_redis_restart_and_lose_nothing_acknowledged(
    tmp_path: Path, redis_prefix: str, own_redis: RedisServer
) -> None:
    key = redis_prefix + "handled"
    seen = redis.Redis.from_url(URL)
    logs = [ServerLog(), ServerLog()]
    acked: list[str] = []
    failed = Counter[str]()
    apps = write_apps(tmp_path, APP.format(url=URL, key=key), report=False)
    with nodes(apps, ["--quiet", "--state", own_redis.url], logs) as urls:

        def send(worker: int) -> None:
            client = boto3.client("sqs", endpoint_url=urls[worker], config=NO_RETRY, **CLIENT)
            queue = f"{urls[worker]}/123456789012/work"
            for batch in range(worker, MESSAGES // 10, 2):
                entries = [{"Id": str(i), "MessageBody": f"{batch}-{i}"} for i in range(10)]
                while True:  # what Redis did not acknowledge is sent again
                    try:
                        answer = client.send_message_batch(QueueUrl=queue, Entries=entries)
                    except Exception as exc:
                        failed[type(exc).__name__] += 1
                        time.sleep(0.2)
                        continue
                    acked.extend(e["MessageId"] for e in answer["Successful"])
                    break
                time.sleep(0.002)  # a steady stream across the outage
            client.close()

        senders = [threading.Thread(target=send, args=(w,)) for w in range(2)]
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 60
        while seen.llen(key) < MESSAGES // 4:
            assert time.monotonic() < deadline, "the nodes handle nothing"
            time.sleep(0.01)
        own_redis.crash()
        # Each node notices, and says so in /metrics (which answers throughout).
        for url in urls:
            deadline = time.monotonic() + 15
            while metric(url, "skylift_state_backend_up") != 0:
                assert time.monotonic() < deadline, "the outage is not in /metrics"
                time.sleep(0.1)
        time.sleep(2)
        own_redis.start()
        for url in urls:
            deadline = time.monotonic() + 15
            while metric(url, "skylift_state_backend_up") != 1:
                assert time.monotonic() < deadline, "the nodes did not reconnect"
                time.sleep(0.1)
            assert metric(url, "skylift_state_backend_errors_total") >= 1
            assert metric(url, "skylift_state_backend_outages_total") == 1
        for sender in senders:
            sender.join(120)
        deadline = time.monotonic() + 60
        while not set(acked) <= (handled := {m.decode() for m in seen.lrange(key, 0, -1)}):
            assert time.monotonic() < deadline, f"{len(set(acked) - handled)} acked, not handled"
            time.sleep(0.2)
        total = seen.llen(key)
    seen.close()
    print(
        f"\nredis restart: {len(acked)} messages acknowledged, all handled, "
        f"{total - len(handled)} twice; failed sends during the outage: {dict(failed)}"
    )
    assert len(acked) == MESSAGES
    assert sum(failed.values()) > 0  # the outage was real: some sends were refused
    for log in logs:
        assert "is unreachable" in log.text and "answers again after" in log.text, log.text

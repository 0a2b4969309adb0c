"""Real `skylift up` nodes sharing the test Redis, and what their handlers report.

Handlers report through their node's SQS API into the shared queue `handled` (a sandbox
may keep them from writing files the test could read), naming the node by its code
folder (each node serves its own copy of the app).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).parents[1] / "queues"))
from redis_server import URL, redis_prefix

__all__ = ["URL", "redis_prefix"]

CLIENT = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
REPORT = """
    import json, os
    import boto3
    from skylift import App

    app = App()
    app.declare_queue("handled")
    SQS = boto3.client("sqs")
    NODE = os.path.basename(os.environ["LAMBDA_TASK_ROOT"])


    def report(**fields):
        url = SQS.get_queue_url(QueueName="handled")["QueueUrl"]
        SQS.send_message(QueueUrl=url, MessageBody=json.dumps({"node": NODE, **fields}))
"""


def write_app(directory: Path, source: str) -> str:
    directory.mkdir()
    (directory / "app.py").write_text(textwrap.dedent(REPORT) + textwrap.dedent(source))
    return str(directory)


def skylift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args], capture_output=True, text=True, timeout=60
    )


def cluster(state: str) -> dict[str, Any]:
    done = skylift("status", "--cluster", "--state", state, "--json")
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def kill(url: str, state: str) -> str:
    """SIGKILL the node serving `url` (a `skylift up` this test started); its id."""
    [node] = [n for n in cluster(state)["nodes"] if n["url"] == url]
    os.kill(node["pid"], signal.SIGKILL)
    return str(node["id"])


def reports(url: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The next `count` reports the handlers sent (fewer if `timeout` passes first)."""
    sqs = boto3.client("sqs", endpoint_url=url, **CLIENT)
    queue = sqs.get_queue_url(QueueName="handled")["QueueUrl"]
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return found


def async_in_flight(state: str, function: str) -> int:
    """How many of `function`'s asynchronous events some node is running now."""
    import asyncio

    from skylift.cluster.node import async_prefix
    from skylift.queues.redis import RedisQueues
    from skylift.sources.async_invocations import store_name

    async def count() -> int:
        store = RedisQueues(state, prefix=async_prefix(state))
        try:
            return (await store.stats(store_name(function))).in_flight
        finally:
            await store.close()

    return asyncio.run(count())

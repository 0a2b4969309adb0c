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
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import boto3

from skylift.testing import ServerLog, serve

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


def write_app(directory: Path, source: str, *, report: bool = True) -> str:
    """`source` as `directory`/app.py, after `REPORT` (its `app` and `report`) unless
    `report` is False."""
    directory.mkdir()
    prefix = textwrap.dedent(REPORT) if report else ""
    (directory / "app.py").write_text(prefix + textwrap.dedent(source))
    return str(directory)


def write_apps(
    folder: Path, source: str, names: Sequence[str] = ("one", "two"), *, report: bool = True
) -> list[str]:
    """The same app in a folder per node (a node's name in `report` is its folder's)."""
    return [write_app(folder / name, source, report=report) for name in names]


@contextmanager
def nodes(
    apps: Sequence[str],
    options: Sequence[str],
    logs: Sequence[ServerLog] | None = None,
    timeout: float = 30.0,
) -> Iterator[list[str]]:
    """A node (`skylift up`) of each app folder, all with `options`, started in turn
    (each within `timeout` seconds): their URLs; all stopped after."""
    each: Sequence[ServerLog | None] = logs if logs is not None else [None] * len(apps)
    with ExitStack() as stack:
        yield [
            stack.enter_context(serve(app, options=options, log=log, timeout=timeout))
            for app, log in zip(apps, each, strict=True)
        ]


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
    """The next `count` reports the handlers sent (fewer if `timeout` passes first).

    Never more: a receive asks only for the reports still missing, so those that arrived
    meanwhile (a slow test on a busy machine) stay in the queue for the next call.
    """
    sqs = boto3.client("sqs", endpoint_url=url, **CLIENT)
    queue = sqs.get_queue_url(QueueName="handled")["QueueUrl"]
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        wanted = min(10, count - len(found))
        answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=wanted, WaitTimeSeconds=1)
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

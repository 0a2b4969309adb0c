"""What the backup tests share: an app with a queue and a bucket, AWS clients, and the
`skylift` command line run as a user runs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]  # boto3 ships no type hints
from botocore.config import Config  # type: ignore[import-untyped]

APP = """
from skylift import App

app = App()
app.declare_queue("work", visibility_timeout=60)
app.declare_queue("orders.fifo", content_based_deduplication=True)
app.declare_bucket("files")


@app.http("/ping", "GET")
def ping(event, context):
    return {"statusCode": 200, "body": "pong"}
"""


def write_app(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(textwrap.dedent(APP))
    return directory


def client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}),
    )


def skylift(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def drain(sqs: Any, queue: str) -> list[dict[str, Any]]:
    """Every message now visible in `queue` (left in flight: no one else sees them)."""
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return found
        found.extend(batch)


def snapshot_tree(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` with its bytes: to show that nothing changed."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }

"""A full disk: every AWS API answers its service-side error (503 ServiceUnavailable,
which SDKs retry) instead of "this is a bug"; once space is freed the same server carries
on, and nothing it acknowledged before is lost. Runs on a 2 MiB tmpfs (root only)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]  # boto3 ships no type hints
import pytest
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from skylift.testing import ServerLog, serve

APP = """
from skylift import App

app = App()
app.declare_queue("jobs")
app.declare_bucket("files")


@app.function()
def noop(event, context):
    return None
"""
NO_RETRIES = Config(retries={"total_max_attempts": 1})


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs in CI: {mounted.stderr!r}")
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk` with one file; remove it to free the space."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as full:
        (disk / "probe").write_bytes(b"\0" * 8192)
    assert full.value.errno == errno.ENOSPC
    return filler


def client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=NO_RETRIES,
    )


def refused(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response  # type: ignore[no-any-return]


def test_a_full_disk_is_a_503_then_the_server_carries_on(small_disk: Path) -> None:
    (small_disk / "app.py").write_text(textwrap.dedent(APP))
    with serve(str(small_disk), options=["--quiet"]) as url:
        sqs, s3, lam = client("sqs", url), client("s3", url), client("lambda", url)
        queue = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
        sent = [sqs.send_message(QueueUrl=queue, MessageBody=f"before {i}") for i in range(5)]
        s3.put_object(Bucket="files", Key="before.txt", Body=b"kept")

        filler = fill(small_disk)
        for answer in (
            refused(sqs.send_message, QueueUrl=queue, MessageBody="x" * 200_000),
            refused(s3.put_object, Bucket="files", Key="during.bin", Body=b"\0" * 200_000),
        ):
            assert answer["ResponseMetadata"]["HTTPStatusCode"] == 503, answer
            assert answer["Error"]["Code"] == "ServiceUnavailable"
            assert "disk" in answer["Error"]["Message"]
            assert "bug" not in answer["Error"]["Message"]
        # An asynchronous invocation cannot be stored: Lambda's service-side error.
        event = b'{"pad": "' + b"x" * 200_000 + b'"}'
        answer = refused(lam.invoke, FunctionName="noop", InvocationType="Event", Payload=event)
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert answer["Error"]["Code"] == "ServiceException"
        assert "disk" in answer["Error"]["Message"] and "bug" not in answer["Error"]["Message"]
        # What was stored before is still served.
        assert s3.get_object(Bucket="files", Key="before.txt")["Body"].read() == b"kept"

        filler.unlink()  # space is back: the same server carries on
        sqs.send_message(QueueUrl=queue, MessageBody="after")
        s3.put_object(Bucket="files", Key="after.txt", Body=b"new")
        lam.invoke(FunctionName="noop", InvocationType="Event", Payload=b"{}")
        bodies = []
        for _ in range(10):
            got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            bodies += [m["Body"] for m in got.get("Messages", [])]
            if len(bodies) >= 6:
                break
        assert sorted(bodies) == sorted([f"before {i}" for i in range(5)] + ["after"])
        assert len(sent) == 5
        assert s3.get_object(Bucket="files", Key="after.txt")["Body"].read() == b"new"
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket="files")["Contents"]]
        assert listed == ["after.txt", "before.txt"]


def test_invocation_logs_that_cannot_be_written_are_said_once_not_as_tracebacks(
    small_disk: Path,
) -> None:
    (small_disk / "app.py").write_text(textwrap.dedent(APP))
    log = ServerLog()
    with serve(str(small_disk), log=log) as url:
        lam = client("lambda", url)
        lam.invoke(FunctionName="noop")
        filler = fill(small_disk)
        for _ in range(4):  # each one's log is due to be written while the disk is full
            assert lam.invoke(FunctionName="noop")["StatusCode"] == 200
            time.sleep(0.5)
        filler.unlink()
        time.sleep(0.5)
    assert "Traceback" not in log.text
    assert log.text.count("invocation logs are dropped until space is freed") == 1

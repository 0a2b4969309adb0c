"""Every trigger end to end from `skylift up`, driven by the real boto3 clients."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config

from skylift.testing import serve

APP = """
import json, os
from skylift import App

app = App()
LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seen.jsonl")


def record(name, event):
    with open(LOG, "a") as f:
        f.write(json.dumps({"fn": name, "event": event}) + "\\n")


@app.http("/hello", methods=["GET"])
def hello(event, context):
    return {"hello": "world"}


@app.queue("orders", batch_size=10)
def take_order(event, context):
    record("take_order", event)


@app.upload("uploads", prefix="in/", suffix=".csv")
def ingest(event, context):
    record("ingest", event)


@app.upload("uploads", events=["s3:ObjectRemoved:*"])
def removed(event, context):
    record("removed", event)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sources")
    (directory / "app.py").write_text(textwrap.dedent(APP))
    # The handlers record events in a file beside their code: no sandbox (it is read-only).
    with serve(str(directory), options=["--sandbox", "off"]) as url:
        yield url, directory


def client(service: str, url: str):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(s3={"addressing_style": "path"}),
    )


def seen(directory: Path, fn: str, count: int, timeout: float = 10) -> list[dict]:
    path = directory / "seen.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            events = [json.loads(line) for line in path.read_text().splitlines()]
            found = [e["event"] for e in events if e["fn"] == fn]
            if len(found) >= count:
                return found
        time.sleep(0.05)
    raise AssertionError(f"{fn} was not invoked {count} times")


def test_boto3_sqs_messages_fire_the_queue_function(server):
    url, directory = server
    sqs = client("sqs", url)
    queue_url = sqs.get_queue_url(QueueName="orders")["QueueUrl"]
    sqs.send_message_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": str(i), "MessageBody": f"order-{i}"} for i in range(3)],
    )
    deadline = time.monotonic() + 10
    bodies: list[str] = []
    while len(bodies) < 3 and time.monotonic() < deadline:
        events = seen(directory, "take_order", 1)
        bodies = sorted(r["body"] for e in events for r in e["Records"])
        time.sleep(0.05)
    assert bodies == ["order-0", "order-1", "order-2"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_boto3_s3_uploads_fire_the_upload_function(server):
    url, directory = server
    s3 = client("s3", url)
    s3.put_object(Bucket="uploads", Key="in/march report.csv", Body=b"a,b\n1,2\n")
    s3.put_object(Bucket="uploads", Key="in/ignored.txt", Body=b"not csv")
    (event,) = seen(directory, "ingest", 1)
    (record,) = event["Records"]
    assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == "uploads"
    assert record["s3"]["object"]["key"] == "in/march+report.csv"  # URL-encoded, as S3 does
    assert record["s3"]["object"]["size"] == 8
    body = s3.get_object(Bucket="uploads", Key="in/march report.csv")["Body"].read()
    assert body == b"a,b\n1,2\n"

    s3.delete_object(Bucket="uploads", Key="in/ignored.txt")
    (gone,) = seen(directory, "removed", 1)
    assert gone["Records"][0]["eventName"] == "ObjectRemoved:Delete"
    assert gone["Records"][0]["s3"]["object"]["key"] == "in/ignored.txt"
    time.sleep(0.3)
    assert len(seen(directory, "ingest", 1)) == 1  # the .txt upload matched no filter


def test_the_apps_own_routes_still_answer(server):
    url, _ = server
    assert httpx.get(url + "/hello").json() == {"hello": "world"}
    assert httpx.get(url + "/uploads/in").status_code == 404  # not S3 without an AWS SDK


def test_boto3_lambda_invokes_through_the_same_port(server):
    url, _ = server
    response = client("lambda", url).invoke(FunctionName="hello", Payload=b"{}", LogType="Tail")
    assert json.loads(response["Payload"].read()) == {"hello": "world"}
    assert "REPORT RequestId:" in base64.b64decode(response["LogResult"]).decode()


def test_skylift_invoke_url_uses_the_invoke_api(server):
    url, _ = server
    done = subprocess.run(
        [sys.executable, "-m", "skylift.cli", "invoke", "hello", "--url", url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"hello": "world"}
    assert "START RequestId:" in done.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "skylift.cli", "invoke", "nope", "--url", url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2 and "ResourceNotFoundException" in missing.stderr

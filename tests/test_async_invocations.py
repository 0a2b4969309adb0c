"""Asynchronous invocations end to end: boto3 `InvocationType="Event"` against a real
`skylift up --fast-retries`; retries, destinations and the dead-letter queue as Lambda."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

APP = """
import json, os
from skylift import App

app = App()
LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.jsonl")


def record(name, event, context):
    with open(LOG, "a") as f:
        f.write(json.dumps({"fn": name, "event": event, "id": context.aws_request_id}) + "\\n")


@app.function(on_success="queue:done")
def works(event, context):
    record("works", event, context)
    return {"doubled": event["n"] * 2}


@app.function(on_failure="queue:failed", dead_letter_queue="dead")
def fails(event, context):
    record("fails", event, context)
    raise ValueError("cannot do " + str(event["n"]))


@app.function(retries=0, on_failure="function:sink")
def once(event, context):
    record("once", event, context)
    raise RuntimeError("no second chance")


@app.function()
def sink(event, context):
    record("sink", event, context)
"""


def start(app: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skylift.cli",
            "up",
            str(app),
            "--port",
            "0",
            "--quiet",
            "--fast-retries",
            "--sandbox",  # the handlers record runs in a file beside their code
            "off",
        ],
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "serving on" in line:
            return proc, line.rsplit(" ", 1)[-1].strip()
    raise AssertionError(f"skylift up did not start: exit {proc.wait()}")


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    os.kill(proc.pid, sig)
    proc.wait(10)
    assert proc.stderr is not None
    proc.stderr.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = tmp_path_factory.mktemp("async")
    (app / "app.py").write_text(textwrap.dedent(APP))
    proc, url = start(app)
    yield url, app
    stop(proc)


def client(service: str, url: str):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}),
    )


def calls(app: Path, fn: str) -> list[dict]:
    path = app / "calls.jsonl"
    if not path.exists():
        return []
    return [c for c in map(json.loads, path.read_text().splitlines()) if c["fn"] == fn]


def receive(url: str, queue: str, timeout: float = 15) -> dict:
    sqs = client("sqs", url)
    queue_url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sqs.receive_message(
            QueueUrl=queue_url, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if got:
            return got[0]
    raise AssertionError(f"nothing arrived on {queue}")


def test_success_goes_to_the_on_success_destination(server):
    url, app = server
    response = client("lambda", url).invoke(
        FunctionName="works", InvocationType="Event", Payload=b'{"n": 21}'
    )
    assert response["StatusCode"] == 202
    request_id = response["ResponseMetadata"]["RequestId"]
    record = json.loads(receive(url, "done")["Body"])
    assert record["version"] == "1.0"
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestContext"]["functionArn"].endswith(":function:works:$LATEST")
    assert record["requestPayload"] == {"n": 21}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"doubled": 42}
    assert [c["id"] for c in calls(app, "works")] == [request_id]  # same id the handler saw


def test_failures_are_retried_twice_then_recorded_and_dead_lettered(server):
    url, app = server
    client("lambda", url).invoke(FunctionName="fails", InvocationType="Event", Payload=b'{"n": 7}')
    record = json.loads(receive(url, "failed")["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorMessage"] == "cannot do 7"
    attempts = calls(app, "fails")
    assert len(attempts) == 3 and len({c["id"] for c in attempts}) == 1  # one request id
    dead = receive(url, "dead")
    assert json.loads(dead["Body"]) == {"n": 7}  # the raw event
    attributes = dead["MessageAttributes"]
    assert attributes["RequestID"]["StringValue"] == attempts[0]["id"]
    assert attributes["ErrorMessage"]["StringValue"] == "cannot do 7"


def test_no_retries_and_a_function_destination(server):
    url, app = server
    client("lambda", url).invoke(FunctionName="once", InvocationType="Event", Payload=b"{}")
    deadline = time.monotonic() + 10
    while not calls(app, "sink") and time.monotonic() < deadline:
        time.sleep(0.05)
    (sunk,) = calls(app, "sink")
    assert sunk["event"]["requestContext"]["condition"] == "RetriesExhausted"
    assert sunk["event"]["requestContext"]["approximateInvokeCount"] == 1
    assert len(calls(app, "once")) == 1


def test_an_async_event_over_1_mb_is_refused(server):
    url, _ = server
    with pytest.raises(ClientError) as info:
        client("lambda", url).invoke(
            FunctionName="works",
            InvocationType="Event",
            Payload=json.dumps({"n": 1, "pad": "x" * (1024 * 1024)}).encode(),
        )
    assert info.value.response["Error"]["Code"] == "RequestEntityTooLargeException"


def test_skylift_invoke_async_prints_the_request_id(server):
    url, app = server
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "skylift.cli",
            "invoke",
            "works",
            "--async",
            "--url",
            url,
            "--event",
            "-",
        ],
        input='{"n": 5}',
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    request_id = done.stdout.strip()
    deadline = time.monotonic() + 10
    while request_id not in [c["id"] for c in calls(app, "works")]:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_accepted_events_survive_a_kill(tmp_path):
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    proc, url = start(tmp_path)
    lam = client("lambda", url)
    for n in range(30):
        lam.invoke(FunctionName="works", InvocationType="Event", Payload=json.dumps({"n": n}))
    stop(proc, signal.SIGKILL)  # right after the 202s: most have not run yet
    proc, _ = start(tmp_path)
    try:
        deadline = time.monotonic() + 60  # in-flight events return after 2 x 3 s + 30 s
        while len({c["event"]["n"] for c in calls(tmp_path, "works")}) < 30:
            assert time.monotonic() < deadline, "accepted events were lost"
            time.sleep(0.05)
    finally:
        stop(proc)


BURST_APP = """
import json, os, time
from skylift import App

app = App()
LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "burst.txt")


@app.function(max_concurrency=1)
def slow(event, context):
    time.sleep(0.2)
    with open(LOG, "a") as f:
        f.write(json.dumps(event) + "\\n")


@app.upload("inbox", max_concurrency=1)
def ingest(event, context):
    time.sleep(0.2)
    with open(LOG, "a") as f:
        f.write(event["Records"][0]["s3"]["object"]["key"] + "\\n")
"""


def test_a_burst_beyond_the_functions_concurrency_all_runs_without_loss(tmp_path):
    (tmp_path / "app.py").write_text(textwrap.dedent(BURST_APP))
    proc, url = start(tmp_path)
    try:
        lam = client("lambda", url)
        for n in range(10):
            lam.invoke(FunctionName="slow", InvocationType="Event", Payload=json.dumps({"n": n}))
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(s3={"addressing_style": "path"}),
        )
        for n in range(10):
            s3.put_object(Bucket="inbox", Key=f"file-{n}", Body=b"x")
        log = tmp_path / "burst.txt"
        deadline = time.monotonic() + 20  # one at a time: about 2 s each way, no thrashing
        while not log.exists() or len(log.read_text().splitlines()) < 20:
            assert time.monotonic() < deadline, "a burst was dropped or stalled"
            time.sleep(0.05)
        lines = log.read_text().splitlines()
        assert sorted(json.loads(x)["n"] for x in lines if x.startswith("{")) == list(range(10))
        assert sorted(x for x in lines if x.startswith("file-")) == sorted(
            f"file-{n}" for n in range(10)
        )
    finally:
        stop(proc)

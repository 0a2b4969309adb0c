"""Two `skylift up` servers sharing one Redis: one set of queues, each message received once.

Real servers (skylift.testing.serve), real boto3 against each, the real `skylift` CLI.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import boto3
from redis_server import URL, redis_prefix

from skylift.testing import serve

__all__ = ["redis_prefix"]  # a fixture, used by name

CLIENT = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
APP = """
    from skylift import App

    app = App()
    app.declare_queue("jobs", visibility_timeout=120)

    @app.function()
    def noop(event, context):
        return None
"""


# The handler reports what it handled through its own server's SQS API (a sandbox may
# keep it from writing files the test could read).
TRIGGERED_APP = """
    import boto3
    from skylift import App

    app = App()
    app.declare_queue("orders", visibility_timeout=120)
    app.declare_queue("handled")
    SQS = boto3.client("sqs")

    @app.queue("orders", batch_size=5)
    def take(event, context):
        url = SQS.get_queue_url(QueueName="handled")["QueueUrl"]
        entries = [
            {"Id": str(i), "MessageBody": record["messageId"]}
            for i, record in enumerate(event["Records"])
        ]
        SQS.send_message_batch(QueueUrl=url, Entries=entries)
"""


def write_app(directory: Path, source: str = APP) -> str:
    directory.mkdir()
    (directory / "app.py").write_text(textwrap.dedent(source))
    return str(directory)


def skylift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_two_servers_share_queues_and_receive_each_message_once(
    tmp_path: Path, redis_prefix: str
) -> None:
    state = f"{URL}?prefix={redis_prefix}"
    options = ["--quiet", "--state", state]
    one, two = write_app(tmp_path / "one"), write_app(tmp_path / "two")
    with serve(one, options=options) as url_one, serve(two, options=options) as url_two:
        sqs = [boto3.client("sqs", endpoint_url=url, **CLIENT) for url in (url_one, url_two)]
        queue_url = sqs[0].get_queue_url(QueueName="jobs")["QueueUrl"]
        sent: list[str] = []
        for batch in range(30):
            entries = [{"Id": str(i), "MessageBody": f"m{batch}-{i}"} for i in range(10)]
            answer = sqs[batch % 2].send_message_batch(QueueUrl=queue_url, Entries=entries)
            sent += [entry["MessageId"] for entry in answer["Successful"]]
        received: list[str] = []
        lock = threading.Lock()

        def consume(client: object) -> None:
            while True:
                answer = client.receive_message(  # type: ignore[attr-defined]
                    QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                )
                messages = answer.get("Messages", [])
                if not messages:
                    return
                with lock:
                    received.extend(m["MessageId"] for m in messages)

        threads = [threading.Thread(target=consume, args=(sqs[i % 2],)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(sent) == 300
        assert Counter(received) == Counter(sent)  # each once, in total across both servers
        attributes = sqs[1].get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
        assert attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "300"

        # The CLI reaches the same queues with --state, whether a server runs or not.
        done = skylift("send", "jobs", "from the cli", one, "--state", state)
        assert done.returncode == 0, done.stderr
        [got] = sqs[1].receive_message(QueueUrl=queue_url)["Messages"]
        assert (got["MessageId"], got["Body"]) == (done.stdout.strip(), "from the cli")
    listing = skylift("queues", two, "--state", state)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[1].split()[:4] == ["jobs", "0", "301", "0"]
    # The servers kept nothing of the queues in their own state folders.
    assert not (tmp_path / "one" / ".skylift" / "queues.db").exists()


def test_an_unreachable_state_url_fails_at_once_with_advice(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app")
    done = skylift("up", app, "--port", "0", "--state", "redis://127.0.0.1:1/0")
    assert done.returncode == 2
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in done.stderr
    assert "correct --state" in done.stderr
    done = skylift("queues", app, "--state", "postgres://db/0")
    assert done.returncode == 2 and "is not a Redis URL" in done.stderr


def test_a_queue_trigger_on_two_servers_handles_each_message_once(
    tmp_path: Path, redis_prefix: str
) -> None:
    options = ["--quiet", "--state", f"{URL}?prefix={redis_prefix}"]
    one = write_app(tmp_path / "one", TRIGGERED_APP)
    two = write_app(tmp_path / "two", TRIGGERED_APP)
    with serve(one, options=options) as url_one, serve(two, options=options):
        sqs = boto3.client("sqs", endpoint_url=url_one, **CLIENT)
        orders = sqs.get_queue_url(QueueName="orders")["QueueUrl"]
        handled_url = sqs.get_queue_url(QueueName="handled")["QueueUrl"]
        sent = []
        for batch in range(20):
            entries = [{"Id": str(i), "MessageBody": f"{batch}-{i}"} for i in range(10)]
            answer = sqs.send_message_batch(QueueUrl=orders, Entries=entries)
            sent += [entry["MessageId"] for entry in answer["Successful"]]
        handled: list[str] = []
        deadline = time.monotonic() + 60
        quiet_since = None
        # Until every message was handled, and then a second more: a duplicate would come.
        while time.monotonic() < deadline:
            answer = sqs.receive_message(
                QueueUrl=handled_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            handled += [m["Body"] for m in answer.get("Messages", [])]
            if len(handled) < len(sent) or answer.get("Messages"):
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 1:
                break
        attributes = sqs.get_queue_attributes(QueueUrl=orders, AttributeNames=["All"])
    assert Counter(handled) == Counter(sent)
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"

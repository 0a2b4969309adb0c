"""Queue -> function through the event source mapping: real SQLite queues, real workers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from skylift.queues.protocol import OutgoingMessage

APP = """
import json, os
from skylift import App

app = App()
LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seen.jsonl")


def record(name, event):
    with open(LOG, "a") as f:
        f.write(json.dumps({"fn": name, "event": event}) + "\\n")


@app.queue("orders", batch_size=5)
def take(event, context):
    record("take", event)


app.declare_queue("partial", visibility_timeout=1)


@app.queue("partial", batch_size=10, report_batch_item_failures=True)
def partial(event, context):
    record("partial", event)
    failed = [r["messageId"] for r in event["Records"] if r["body"].startswith("bad")]
    if any(r["body"] == "nonsense" for r in event["Records"]):
        return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}


app.declare_queue("bulk", visibility_timeout=60)


@app.queue("bulk", batch_size=250, max_batching_window=1)
def bulk(event, context):
    record("bulk", event)


app.declare_queue("big.fifo", visibility_timeout=60, content_based_deduplication=True)


@app.queue("big.fifo", batch_size=10)
def big_fifo(event, context):
    record("big_fifo", event)


app.declare_queue("flaky", visibility_timeout=1, dead_letter_queue="flaky-dlq",
                  max_receive_count=2)


@app.queue("flaky")
def flaky(event, context):
    record("flaky", event)
    raise RuntimeError("always fails")
"""


@pytest.fixture
def app(live, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    platform = live(tmp_path, state_dir=tmp_path / "state")
    platform.run(platform.platform.start_sources())
    return platform


def seen(app_dir: Path, fn: str) -> list[dict]:
    path = app_dir / "seen.jsonl"
    if not path.exists():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    return [e["event"] for e in entries if e["fn"] == fn]


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def send(app, queue: str, *bodies: str, **attributes) -> None:
    queues = app.platform.state.queues
    app.run(queues.send(queue, [OutgoingMessage(b, **attributes) for b in bodies]))


def stats(app, queue: str):
    return app.run(app.platform.state.queues.stats(queue))


def test_messages_arrive_as_the_sqs_event_and_are_deleted(app, tmp_path):
    send(
        app,
        "orders",
        "one",
        "two",
        "three",
        message_attributes={"kind": {"DataType": "String", "StringValue": "book"}},
    )
    wait_for(lambda: sum(len(e["Records"]) for e in seen(tmp_path, "take")) == 3)
    records = [r for e in seen(tmp_path, "take") for r in e["Records"]]
    assert sorted(r["body"] for r in records) == ["one", "three", "two"]
    record = records[0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:orders"
    assert record["awsRegion"] == "us-east-1"
    assert set(record["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "book",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert len(record["md5OfBody"]) == 32 and record["receiptHandle"]
    wait_for(lambda: stats(app, "orders").in_flight == 0)
    assert stats(app, "orders").visible == 0


def test_a_batch_size_over_ten_is_claimed_and_deleted_whole(app, tmp_path):
    """BatchSize 250 with a 1 s window, as Lambda allows: the poller claims beyond
    ReceiveMessage's 10 at once, and deletes every handled message (10 per delete)."""
    for first in range(0, 250, 10):
        send(app, "bulk", *(f"m{i}" for i in range(first, first + 10)))
    wait_for(lambda: stats(app, "bulk").visible + stats(app, "bulk").in_flight == 0)
    events = seen(tmp_path, "bulk")
    bodies = [r["body"] for e in events for r in e["Records"]]
    assert sorted(bodies) == sorted(f"m{i}" for i in range(250))  # each once
    assert max(len(e["Records"]) for e in events) > 10


def test_a_batch_over_six_mb_is_invoked_as_several_under_the_limit(app, tmp_path):
    """Twelve messages of 900 KB fit one claim of BatchSize 250 but not one event: as on
    Lambda, no invocation's event passes the 6 MB payload limit, and each message is
    handled once."""
    for i in range(12):
        send(app, "bulk", f"{i:02d}" + "x" * 900_000)
    wait_for(lambda: stats(app, "bulk").visible + stats(app, "bulk").in_flight == 0)
    events = seen(tmp_path, "bulk")
    assert all(len(json.dumps(e)) <= 6 * 1024 * 1024 for e in events)
    bodies = sorted(r["body"][:2] for e in events for r in e["Records"])
    assert bodies == [f"{i:02d}" for i in range(12)]
    assert len(events) >= 2


def test_a_fifo_batch_over_six_mb_keeps_its_order(app, tmp_path):
    """Ten messages of 900 KB of one group: the parts of the batch run one after the
    other, in the group's order."""
    for i in range(10):
        send(app, "big.fifo", f"{i:02d}" + "x" * 900_000, message_group_id="g")
    wait_for(lambda: stats(app, "big.fifo").visible + stats(app, "big.fifo").in_flight == 0)
    events = seen(tmp_path, "big_fifo")
    assert all(len(json.dumps(e)) <= 6 * 1024 * 1024 for e in events) and len(events) >= 2
    assert [r["body"][:2] for e in events for r in e["Records"]] == [f"{i:02d}" for i in range(10)]


def test_batch_item_failures_return_only_the_failed_messages(app, tmp_path):
    send(app, "partial", "good-1", "bad-1", "good-2")
    # The failed one comes back after the 1 s visibility timeout, alone.
    wait_for(
        lambda: any(
            [r["body"] for r in e["Records"]] == ["bad-1"] for e in seen(tmp_path, "partial")
        )
    )
    bodies = [r["body"] for e in seen(tmp_path, "partial") for r in e["Records"]]
    assert bodies.count("good-1") == 1 and bodies.count("good-2") == 1
    again = [r for e in seen(tmp_path, "partial") for r in e["Records"] if r["body"] == "bad-1"]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in again][:2] == ["1", "2"]


def test_an_unknown_item_identifier_fails_the_whole_batch(app, tmp_path):
    send(app, "partial", "nonsense")
    wait_for(
        lambda: (
            sum(r["body"] == "nonsense" for e in seen(tmp_path, "partial") for r in e["Records"])
            >= 2
        )
    )


def test_a_failing_function_sends_messages_to_the_dead_letter_queue(app, tmp_path):
    send(app, "flaky", "doomed")
    wait_for(lambda: stats(app, "flaky-dlq").visible == 1, timeout=15)
    attempts = [r for e in seen(tmp_path, "flaky") for r in e["Records"]]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in attempts] == ["1", "2"]
    assert stats(app, "flaky").visible == 0 and stats(app, "flaky").in_flight == 0


def test_the_poller_outlives_a_deleted_and_recreated_queue(app, tmp_path):
    queues = app.platform.state.queues
    app.run(queues.delete_queue("orders"))
    time.sleep(1.5)  # the poller meets QueueDoesNotExist, says so, and keeps polling
    app.run(queues.create_queue("orders", {}))
    send(app, "orders", "after-recreate")
    wait_for(
        lambda: any(
            r["body"] == "after-recreate" for e in seen(tmp_path, "take") for r in e["Records"]
        ),
        timeout=15,
    )


def test_a_trace_header_reaches_the_record_attributes(app, tmp_path):
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    system = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
    send(app, "orders", "traced", system_attributes=system)
    send(app, "orders", "plain")
    wait_for(lambda: sum(len(e["Records"]) for e in seen(tmp_path, "take")) == 2)
    records = {r["body"]: r for e in seen(tmp_path, "take") for r in e["Records"]}
    assert records["traced"]["attributes"]["AWSTraceHeader"] == trace
    assert "AWSTraceHeader" not in records["plain"]["attributes"]

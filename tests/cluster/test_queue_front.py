"""A front node (`skylift up --no-queue-polling`) takes messages through the SQS API and
leaves them in the shared Redis, counted in its /metrics, until a node that polls joins:
what `skylift export kubernetes --state` builds on to scale the queue workers to zero."""

from __future__ import annotations

import time
from pathlib import Path

import boto3
import httpx
from cluster_helpers import CLIENT, URL, redis_prefix, reports, skylift, write_app

from skylift.testing import serve

__all__ = ["redis_prefix"]  # a fixture, used by name

APP = """
    app.declare_queue("orders")


    @app.queue("orders", batch_size=1)
    def take(event, context):
        [record] = event["Records"]
        report(body=record["body"])
"""


def visible(sqs: object, queue: str) -> int:
    answer = sqs.get_queue_attributes(  # type: ignore[attr-defined]
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(answer["Attributes"]["ApproximateNumberOfMessages"])


def test_a_front_node_takes_messages_and_a_polling_node_processes_them(
    tmp_path: Path, redis_prefix: str
) -> None:
    state = f"{URL}?prefix={redis_prefix}"
    front, worker = write_app(tmp_path / "front", APP), write_app(tmp_path / "worker", APP)
    with serve(front, options=["--quiet", "--state", state, "--no-queue-polling"]) as url:
        sqs = boto3.client("sqs", endpoint_url=url, **CLIENT)
        orders = sqs.get_queue_url(QueueName="orders")["QueueUrl"]
        entries = [{"Id": str(i), "MessageBody": f"order-{i}"} for i in range(3)]
        sqs.send_message_batch(QueueUrl=orders, Entries=entries)
        time.sleep(1.5)  # a polling node receives within milliseconds: this one must not
        assert visible(sqs, orders) == 3
        metrics = httpx.get(url + "/metrics").text
        assert 'skylift_queue_messages{queue="orders",state="visible"} 3.0' in metrics
        with serve(worker, options=["--quiet", "--state", state]):
            handled = reports(url, 3, timeout=30)
        assert sorted(r["body"] for r in handled) == ["order-0", "order-1", "order-2"]
        assert {r["node"] for r in handled} == {"worker"}
        assert visible(sqs, orders) == 0
        sqs.close()


def test_no_queue_polling_without_a_shared_state_is_refused(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", APP)
    done = skylift("up", app, "--no-queue-polling", "--port", "0")
    assert done.returncode == 2
    assert "--no-queue-polling needs --state redis://" in done.stderr
    assert not (tmp_path / "app" / ".skylift").exists()  # nothing started

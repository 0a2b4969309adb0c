"""Nodes on one Redis list each other (`skylift status --cluster`); a killed node is shown
as lost, and the messages it had received go to another node after their visibility
timeout."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import boto3
import httpx
import redis
from cluster_helpers import (
    CLIENT,
    URL,
    cluster,
    kill,
    redis_prefix,
    reports,
    skylift,
    write_app,
    write_apps,
)

from skylift.testing import serve

__all__ = ["redis_prefix"]  # a fixture, used by name

APP = """
    import time

    app.declare_queue("orders", visibility_timeout=8)


    @app.queue("orders", batch_size=1, timeout=120)
    def take(event, context):
        [record] = event["Records"]
        if record["attributes"]["ApproximateReceiveCount"] == "1":
            time.sleep(100)  # the first node holds it until it is killed
        report(body=record["body"])
"""


def in_flight(sqs: object, queue: str) -> int:
    answer = sqs.get_queue_attributes(  # type: ignore[attr-defined]
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )
    return int(answer["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


def test_a_killed_node_is_lost_and_its_messages_come_back(
    tmp_path: Path, redis_prefix: str
) -> None:
    state = f"{URL}?prefix={redis_prefix}"
    options = ["--quiet", "--state", state]
    one, two = write_apps(tmp_path, APP)
    with serve(one, options=options) as url_one:
        sqs = boto3.client("sqs", endpoint_url=url_one, **CLIENT)
        orders = sqs.get_queue_url(QueueName="orders")["QueueUrl"]
        entries = [{"Id": str(i), "MessageBody": f"order-{i}"} for i in range(3)]
        sqs.send_message_batch(QueueUrl=orders, Entries=entries)
        deadline = time.monotonic() + 20
        while in_flight(sqs, orders) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert in_flight(sqs, orders) == 3  # all three received by the first node
        with serve(two, options=options) as url_two:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # until a heartbeat counted the instances
                [first, second] = cluster(state)["nodes"]
                if first["instances"] >= 3:
                    break
                time.sleep(0.3)
            assert (first["url"], second["url"]) == (url_one, url_two)
            assert (
                first["functions"] == ["take"] and first["instances"] >= 3
            )  # one per batch at least
            assert {first["state"], second["state"]} == {"up"}
            killed = kill(url_one, state)
            # Within the visibility timeout, the second node handles all three.
            handled = reports(url_two, 3, timeout=30)
            assert sorted(r["body"] for r in handled) == ["order-0", "order-1", "order-2"]
            assert {r["node"] for r in handled} == {"two"}
            # No heartbeat for 10 s: the first node is lost.
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                states = {n["id"]: n["state"] for n in cluster(state)["nodes"]}
                if states[killed] == "lost":
                    break
                time.sleep(0.5)
            assert states == {killed: "lost", second["id"]: "up"}
            table = skylift("status", "--cluster", "--state", state)
            assert table.returncode == 0, table.stderr
            [row] = [line for line in table.stdout.splitlines() if line.startswith(killed)]
            assert row.split()[1:3] == ["lost", url_one]
            assert "1 node(s) up, 1 lost" in table.stdout
        # A node that stops cleanly leaves the list at once.
        assert [n["id"] for n in cluster(state)["nodes"]] == [killed]


SLOW = """
    import time


    @app.http("/slow", methods=["GET"])
    def slow(event, context):
        time.sleep(1.5)  # a stop waits up to 2 s for requests in flight
        return {"statusCode": 200, "body": "done"}
"""


def test_a_stopping_node_leaves_the_list_before_its_requests_in_flight_end(
    tmp_path: Path, redis_prefix: str
) -> None:
    state = f"{URL}?prefix={redis_prefix}"
    app = write_app(tmp_path / "one", SLOW)
    listed = redis.Redis.from_url(URL)
    try:
        with serve(app, options=["--quiet", "--state", state]) as url:
            [node] = cluster(state)["nodes"]
            answers: list[httpx.Response] = []
            caller = threading.Thread(
                target=lambda: answers.append(httpx.get(url + "/slow", timeout=30))
            )
            caller.start()
            time.sleep(0.3)  # the request is in its handler
            os.kill(node["pid"], signal.SIGTERM)
            deadline = time.monotonic() + 1
            while listed.hkeys(redis_prefix + "nodes") and time.monotonic() < deadline:
                time.sleep(0.02)
            # Off the list while it still finishes what it took on: it is no member now.
            assert listed.hkeys(redis_prefix + "nodes") == [] and caller.is_alive()
            caller.join()
            assert answers[0].status_code == 200 and answers[0].text == "done"
    finally:
        listed.close()


def test_status_cluster_says_which_redis_to_read() -> None:
    done = skylift("status", "--cluster")
    assert done.returncode == 2
    assert "pass --state URL, as given to skylift up" in done.stderr
    done = skylift("status", "--cluster", "--state", "redis://127.0.0.1:1/0")
    assert done.returncode == 2
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in done.stderr

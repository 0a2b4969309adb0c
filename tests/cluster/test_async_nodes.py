"""Asynchronous invocations on two `skylift up` nodes sharing Redis: an event accepted by
one node runs on either, once per attempt, with retries and destinations as on one node."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import boto3
from cluster_helpers import CLIENT, URL, nodes, redis_prefix, reports, write_apps

__all__ = ["redis_prefix"]  # a fixture, used by name

APP = """
    import time


    @app.function(max_concurrency=1, timeout=10)
    def work(event, context):
        time.sleep(0.3)  # one at a time per node: the other node must take its share
        report(fn="work", id=context.aws_request_id, n=event["n"])


    @app.function(on_failure="queue:failed", timeout=10)
    def fails(event, context):
        report(fn="fails", id=context.aws_request_id)
        raise ValueError("cannot do " + str(event["n"]))
"""


def test_events_accepted_by_one_node_run_once_on_either(tmp_path: Path, redis_prefix: str) -> None:
    options = ["--quiet", "--fast-retries", "--state", f"{URL}?prefix={redis_prefix}"]
    with nodes(write_apps(tmp_path, APP), options) as [url, _]:
        lam = boto3.client("lambda", endpoint_url=url, **CLIENT)
        accepted = []
        for n in range(12):  # all to the first node
            answer = lam.invoke(
                FunctionName="work", InvocationType="Event", Payload=json.dumps({"n": n})
            )
            assert answer["StatusCode"] == 202
            accepted.append(answer["ResponseMetadata"]["RequestId"])
        lam.invoke(FunctionName="fails", InvocationType="Event", Payload=b'{"n": 7}')
        found = reports(url, 15)
        runs = [r for r in found if r["fn"] == "work"]
        assert sorted(r["n"] for r in runs) == list(range(12))  # each event ran exactly once
        assert Counter(r["id"] for r in runs) == Counter(accepted)  # as the 202s said
        assert {r["node"] for r in runs} == {"one", "two"}  # the second node took some
        attempts = [r for r in found if r["fn"] == "fails"]
        assert len(attempts) == 3 and len({r["id"] for r in attempts}) == 1  # 1 + 2 retries
        sqs = boto3.client("sqs", endpoint_url=url, **CLIENT)
        failed = sqs.get_queue_url(QueueName="failed")["QueueUrl"]
        [record] = sqs.receive_message(QueueUrl=failed, WaitTimeSeconds=5)["Messages"]
        context = json.loads(record["Body"])["requestContext"]
        assert (context["condition"], context["approximateInvokeCount"]) == ("RetriesExhausted", 3)
        assert not reports(url, 1, timeout=2)  # and nothing ran again
        # The events waited in Redis, not in either node's folder.
        assert not (tmp_path / "one" / ".skylift" / "async.db").exists()

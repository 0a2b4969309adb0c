"""`skylift.testing.Client`: a user's pytest drives their app as `skylift up` serves it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest

from skylift.errors import SkyliftError
from skylift.testing import Client

ROOT = Path(__file__).resolve().parents[1]

APP = """
import json, os, time
from skylift import App

app = App()


@app.http("/items/{id}", methods=["GET", "POST"])
def item(event, context):
    return {"statusCode": 200, "headers": {"X-Id": event["pathParameters"]["id"]},
            "body": json.dumps({"id": event["pathParameters"]["id"], "body": event.get("body")})}


@app.function(timeout=1)
def slow(event, context):
    time.sleep(5)


@app.function()
def who(event, context):
    return {"pid": os.getpid(), "secret": os.environ.get("HOST_SECRET"), "event": event}


@app.queue("orders", report_batch_item_failures=True)
def on_order(event, context):
    bodies = [r["body"] for r in event["Records"]]
    failed = [r["messageId"] for r in event["Records"] if r["body"] == "bad"]
    return {"seen": bodies, "batchItemFailures": [{"itemIdentifier": i} for i in failed]}
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    app = tmp_path_factory.mktemp("client-app")
    (app / "app.py").write_text(APP)
    with Client(app) as running:
        yield running
    assert not (app / ".skylift").exists()  # its state lived in a temporary folder


def test_http_requests_reach_the_functions_through_the_gateway(client: Client) -> None:
    response = client.http.post("/items/7", json={"n": 1})
    assert response.status_code == 200
    assert response.headers["x-id"] == "7"
    assert response.json() == {"id": "7", "body": '{"n":1}'}
    assert client.http.get("/nothing").status_code == 404


def test_invoke_runs_in_a_sandboxed_instance_with_timeouts_enforced(client: Client) -> None:
    os.environ["HOST_SECRET"] = "hunter2"
    try:
        done = client.invoke("who", {"a": 1})
    finally:
        del os.environ["HOST_SECRET"]
    assert done.error is None
    assert done.result["event"] == {"a": 1}
    assert done.result["secret"] is None  # built, not inherited: no host secrets
    assert done.result["pid"] != os.getpid()
    timed_out = client.invoke("slow")
    assert timed_out.error == "Unhandled"
    assert "Task timed out after 1.00 seconds" in timed_out.result["errorMessage"]


def test_send_runs_the_queue_function_through_its_mapping(client: Client) -> None:
    done = client.send("orders", "first")
    assert done.error is None and done.result["seen"] == ["first"]
    failed = client.send("orders", "bad")
    assert failed.result["batchItemFailures"]
    with pytest.raises(SkyliftError, match="no function is triggered by queue 'nope'"):
        client.send("nope", "x")


def test_the_aws_apis_answer_boto3_at_the_client_url(client: Client) -> None:
    sqs = boto3.client(
        "sqs",
        endpoint_url=client.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    url = sqs.get_queue_url(QueueName="orders")["QueueUrl"]
    assert url.endswith("/orders")


def test_events_are_exact_aws_shapes_a_handler_accepts(client: Client) -> None:
    event = client.events.sqs(["a", "b"], queue="orders")
    assert [r["body"] for r in event["Records"]] == ["a", "b"]
    assert event["Records"][0]["eventSourceARN"].endswith(":orders")
    assert client.invoke("on_order", event).result["seen"] == ["a", "b"]
    put = client.events.s3("photos", "x.jpg")["Records"][0]
    assert put["eventName"] == "ObjectCreated:Put" and put["s3"]["object"]["key"] == "x.jpg"
    assert client.events.schedule()["detail-type"] == "Scheduled Event"
    assert client.events.http("POST", "/items/1", body="{}")["routeKey"] == "POST /items/1"


def test_two_clients_run_side_by_side(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    with Client(tmp_path) as first, Client(ROOT / "examples" / "make-change") as second:
        change = second.http.post("/change", json={"amount": "0.41"})
        assert change.status_code == 200, change.text
        assert json.loads(change.text)["res"][0] == {"1": "quarters"}
        assert first.invoke("who").error is None


def test_an_app_that_fails_to_import_raises_at_once(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import nosuchmodule\n")
    with pytest.raises(SkyliftError, match="nosuchmodule"):
        Client(tmp_path)

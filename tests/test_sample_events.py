"""`skylift events generate` and the sample `skylift invoke` sends when given no event."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from skylift.testing import serve

ECHO = """
from skylift import App

app = App()


@app.http("/items/{id}", methods=["POST"])
def http_echo(event, context):
    return {"statusCode": 200, "body": __import__("json").dumps(event)}


@app.http("/rest/{id}", methods=["POST"], payload="1.0")
def rest_echo(event, context):
    return {"statusCode": 200, "body": __import__("json").dumps(event)}


@app.queue("orders")
def on_order(event, context):
    return event


@app.schedule("rate(5 minutes)")
def tick(event, context):
    return event


@app.upload("photos")
def on_photo(event, context):
    return event
"""


def skylift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args], capture_output=True, text=True, timeout=60
    )


def generate(*args: str) -> dict[str, Any]:
    done = skylift("events", "generate", *args)
    assert done.returncode == 0, done.stderr
    loaded: dict[str, Any] = json.loads(done.stdout)
    return loaded


def shape(value: Any) -> Any:
    """The structure of a JSON value: dict keys and value types, lists by their first item."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("samples")
    (directory / "app.py").write_text(textwrap.dedent(ECHO))
    return directory


@pytest.mark.parametrize(
    ("kind", "path", "version"),
    [("http", "/items/42", "2.0"), ("rest", "/rest/42", "1.0")],
)
def test_an_api_gateway_sample_has_the_shape_and_values_of_a_served_request(
    app_dir: Path, kind: str, path: str, version: str
) -> None:
    resource = path.replace("42", "{id}")
    sample = generate(
        "apigateway",
        kind,
        "--method",
        "POST",
        "--path",
        f"{path}?q=1",
        "--resource",
        resource,
        "--body",
        '{"a": 1}',
        "--header",
        "User-Agent: skylift-sample",
    )
    with serve(str(app_dir)) as url:
        request = urllib.request.Request(
            f"{url}{path}?q=1",
            data=b'{"a": 1}',
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "skylift-sample"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            served = json.loads(response.read())
    # urllib sends headers of its own (Accept-Encoding, Connection, Content-Length).
    for event in (sample, served):
        for key in ("headers", "multiValueHeaders"):
            if event.get(key):
                event[key] = {k: v for k, v in event[key].items() if k.lower() == "host"}
    assert shape(sample) == shape(served)
    assert sample["pathParameters"] == served["pathParameters"] == {"id": "42"}
    assert sample["body"] == served["body"] == '{"a": 1}'
    if version == "2.0":
        assert sample["routeKey"] == served["routeKey"] == "POST /items/{id}"
        assert sample["rawQueryString"] == served["rawQueryString"] == "q=1"
    else:
        assert sample["resource"] == served["resource"] == "/rest/{id}"
        assert sample["queryStringParameters"] == served["queryStringParameters"] == {"q": "1"}


def test_samples_of_every_trigger_are_in_aws_shapes() -> None:
    sqs = generate("sqs", "--body", "hello", "--queue", "orders", "--region", "eu-west-1")
    (record,) = sqs["Records"]
    assert record["body"] == "hello"
    assert record["eventSourceARN"] == "arn:aws:sqs:eu-west-1:123456789012:orders"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["md5OfBody"] == "5d41402abc4b2a76b9719d911017c592"  # md5("hello")

    put = generate("s3", "put", "--bucket", "photos", "--key", "a b.jpg", "--size", "7")
    (record,) = put["Records"]
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["arn"] == "arn:aws:s3:::photos"
    assert record["s3"]["object"]["key"] == "a+b.jpg"  # form-encoded, as S3 sends keys
    assert record["s3"]["object"]["size"] == 7
    removed = generate("s3", "delete", "--key", "gone.txt")["Records"][0]
    assert removed["eventName"] == "ObjectRemoved:Delete"
    assert "size" not in removed["s3"]["object"]

    tick = generate("schedule", "--rule", "nightly")
    assert tick["detail-type"] == "Scheduled Event"
    assert tick["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/nightly"]

    url = generate("lambda-url", "--method", "PUT", "--path", "/x")
    context = url["requestContext"]
    assert url["routeKey"] == "$default" and context["http"]["method"] == "PUT"
    assert context["domainName"] == f"{context['apiId']}.lambda-url.us-east-1.on.aws"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "unknown event type 'nope'; use one of: apigateway"),
        (["s3"], "s3 needs a kind: one of put, delete"),
        (["s3", "copy"], "unknown s3 event kind 'copy'; use one of put, delete"),
        (["sqs", "fifo"], "sqs events have no kinds; drop 'fifo'"),
        (["apigateway", "http", "--header", "nocolon"], "is not NAME:VALUE"),
        (
            ["apigateway", "http", "--path", "/a", "--resource", "/b/{id}"],
            "--path '/a' does not match --resource '/b/{id}'",
        ),
    ],
)
def test_a_wrong_sample_request_says_what_exists(args: list[str], message: str) -> None:
    done = skylift("events", "generate", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("function", "check"),
    [
        ("on_order", lambda e: e["Records"][0]["eventSourceARN"].endswith(":orders")),
        ("tick", lambda e: e["detail-type"] == "Scheduled Event"),
        ("on_photo", lambda e: e["Records"][0]["s3"]["bucket"]["name"] == "photos"),
        ("http_echo", lambda e: e["statusCode"] == 200 and json.loads(e["body"]) == {}),
    ],
)
def test_invoke_without_an_event_sends_the_trigger_sample(
    app_dir: Path, function: str, check: Any
) -> None:
    done = skylift("invoke", function, str(app_dir))
    assert done.returncode == 0, done.stderr
    assert check(json.loads(done.stdout)), done.stdout

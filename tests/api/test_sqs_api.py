"""SqsApi over real HTTP (uvicorn on 127.0.0.1), driven by the real boto3 SQS client.

Error expectations come from SQS's Smithy model (the ``awsQueryError`` traits: legacy code
and HTTP status per error shape), not from skylift's own tables, so a wrong mapping fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import boto3  # type: ignore[import-untyped]  # boto3 ships no type hints
import botocore.config  # type: ignore[import-untyped]
import httpx
import pytest
import uvicorn
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from skylift.api import sqs as sqs_module
from skylift.api import sqs_actions, sqs_move_tasks, sqs_params
from skylift.api.sqs import SqsApi, is_sqs_request
from skylift.queues import SqliteQueues, errors
from skylift.queues.errors import QueueError

ACCOUNT = "123456789012"
MIB = 1024 * 1024

# SQS error shape -> (legacy code botocore reports, HTTP status, fault), from the SQS Smithy
# model's awsQueryError traits; unmodeled common errors per the SQS "Common Errors" page.
SQS_ERRORS: dict[str, tuple[str, int, str]] = {
    "QueueDoesNotExist": ("AWS.SimpleQueueService.NonExistentQueue", 400, "Sender"),
    "QueueNameExists": ("QueueAlreadyExists", 400, "Sender"),
    "InvalidAttributeName": ("InvalidAttributeName", 400, "Sender"),
    "InvalidAttributeValue": ("InvalidAttributeValue", 400, "Sender"),
    "InvalidMessageContents": ("InvalidMessageContents", 400, "Sender"),
    "ReceiptHandleIsInvalid": ("ReceiptHandleIsInvalid", 404, "Sender"),
    "PurgeQueueInProgress": ("AWS.SimpleQueueService.PurgeQueueInProgress", 403, "Sender"),
    "EmptyBatchRequest": ("AWS.SimpleQueueService.EmptyBatchRequest", 400, "Sender"),
    "TooManyEntriesInBatchRequest": (
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        400,
        "Sender",
    ),
    "BatchRequestTooLong": ("AWS.SimpleQueueService.BatchRequestTooLong", 400, "Sender"),
    "BatchEntryIdsNotDistinct": ("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400, "Sender"),
    "InvalidBatchEntryId": ("AWS.SimpleQueueService.InvalidBatchEntryId", 400, "Sender"),
    "UnsupportedOperation": ("AWS.SimpleQueueService.UnsupportedOperation", 400, "Sender"),
    "QueueDeletedRecently": ("AWS.SimpleQueueService.QueueDeletedRecently", 400, "Sender"),
    "InvalidAddress": ("InvalidAddress", 404, "Sender"),
    "ResourceNotFoundException": ("ResourceNotFoundException", 404, "Sender"),
    "InvalidParameterValue": ("InvalidParameterValue", 400, "Sender"),
    "MissingParameter": ("MissingParameter", 400, "Sender"),
    "InvalidAction": ("InvalidAction", 400, "Sender"),
    "ServiceUnavailable": ("ServiceUnavailable", 503, "Receiver"),
    "InternalError": ("InternalError", 500, "Receiver"),
}


# The JSON protocol's __type name where real SQS's differs from the error code (recorded
# responses of real SQS: botocore reports it as QueryErrorCode).
JSON_TYPES = {
    "InvalidParameterValue": "InvalidParameterValueException",
    "MissingParameter": "MissingRequiredParameterException",
}


class SeamQueues(SqliteQueues):
    """SqliteQueues, except that GetQueueAttributes on ``raise-<Class>`` raises that error:
    a seam for checking every error class on the wire."""

    raisable: ClassVar[dict[str, type[QueueError]]] = {}

    async def get_attributes(self, name: str) -> dict[str, str]:
        if name.startswith("raise-"):
            raise self.raisable[name.removeprefix("raise-")]("boom")
        return await super().get_attributes(name)


def _error_classes() -> dict[str, type[QueueError]]:
    found: dict[str, type[QueueError]] = {}
    for module in (errors, sqs_module, sqs_actions, sqs_params, sqs_move_tasks):
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, QueueError) and value is not QueueError:
                found[name] = value
    return found


class Server:
    """SqsApi under uvicorn on a free 127.0.0.1 port, on its own thread and event loop."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server: uvicorn.Server | None = None
        self.thread = threading.Thread(target=asyncio.run, args=(self._serve(path),), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not (self.server and self.server.started):
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)

    async def _serve(self, path: Path) -> None:
        queues = SeamQueues(path)
        api = SqsApi(queues, region="us-east-1", account_id=ACCOUNT)
        config = uvicorn.Config(api, lifespan="on", log_level="warning", ws="none")
        self.server = uvicorn.Server(config)
        try:
            await self.server.serve(sockets=[self.sock])
        finally:
            await queues.close()

    def close(self) -> None:
        assert self.server is not None
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("sqs") / "q.db")
    yield running
    running.close()


def make_client(url: str, *, validate: bool = True) -> Any:
    config = botocore.config.Config(
        retries={"total_max_attempts": 1}, parameter_validation=validate
    )
    return boto3.client(
        "sqs",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=config,
    )


@pytest.fixture(scope="module")
def sqs(server: Server) -> Any:
    return make_client(server.url)


@pytest.fixture(scope="module")
def raw_sqs(server: Server) -> Any:
    """A client that skips botocore's own parameter checks, to reach the server's."""
    return make_client(server.url, validate=False)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A queue name of this test's own."""
    test_name: str = request.node.name
    return test_name.removeprefix("test_").replace("_", "-")[:60]


def sqs_error(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response: dict[str, Any] = caught.value.response
    return response


def md5_of_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """MD5OfMessageAttributes as the SQS Developer Guide defines it, written independently
    of skylift's: per attribute in name order, length-prefixed name, type and value, with a
    transport byte 1 (string) or 2 (binary) before the value."""
    digest = hashlib.md5()

    def field(data: bytes) -> None:
        digest.update(len(data).to_bytes(4, "big") + data)

    for key in sorted(attributes):
        value = attributes[key]
        field(key.encode())
        field(value["DataType"].encode())
        if "BinaryValue" in value:
            digest.update(b"\x02")
            field(value["BinaryValue"])
        else:
            digest.update(b"\x01")
            field(value["StringValue"].encode())
    return digest.hexdigest()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


# -- queues -------------------------------------------------------------------------------


def test_queue_lifecycle(sqs: Any, server: Server, name: str) -> None:
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
    assert url == f"{server.url}/{ACCOUNT}/{name}"
    # Creating again with the same attributes returns the queue; different ones are refused.
    assert (
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"] == url
    )
    with pytest.raises(sqs.exceptions.QueueNameExists) as exists:
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "46"})
    assert exists.value.response["Error"]["Code"] == "QueueAlreadyExists"
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url

    everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert everything["VisibilityTimeout"] == "45"
    assert everything["QueueArn"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"
    assert everything["ApproximateNumberOfMessages"] == "0"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "5"})
    some = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds", "FifoQueue"])
    assert some["Attributes"] == {"DelaySeconds": "5"}
    assert "Attributes" not in sqs.get_queue_attributes(QueueUrl=url)  # none asked for

    # An AWS-style URL (as a SAM template's !Ref gives) names the same queue.
    aws_url = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{name}"
    sqs.send_message(QueueUrl=aws_url, MessageBody="via the AWS URL", DelaySeconds=0)
    [got] = sqs.receive_message(QueueUrl=url)["Messages"]
    assert got["Body"] == "via the AWS URL"

    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=name)


def test_list_queues_by_prefix_and_page(sqs: Any, server: Server) -> None:
    names = [f"listed-{i}" for i in range(5)]
    for queue in names:
        sqs.create_queue(QueueName=queue)
    sqs.create_queue(QueueName="unlisted")
    listed = sqs.list_queues(QueueNamePrefix="listed-")
    assert listed["QueueUrls"] == [f"{server.url}/{ACCOUNT}/{n}" for n in names]
    assert "NextToken" not in listed
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix="nothing-")
    pages = list(
        sqs.get_paginator("list_queues").paginate(
            QueueNamePrefix="listed-", PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(page["QueueUrls"]) for page in pages] == [2, 2, 1]
    assert [url for page in pages for url in page["QueueUrls"]] == listed["QueueUrls"]


# -- messages -----------------------------------------------------------------------------


def test_send_receive_delete_with_message_attributes(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    attributes: dict[str, dict[str, Any]] = {
        "trace.id": {"DataType": "String", "StringValue": "abc"},
        "trace.depth": {"DataType": "Number", "StringValue": "12.5"},
        "blob": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
        "kind": {"DataType": "String.custom", "StringValue": "z"},
    }
    body = "héllo wörld ✓"
    sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
    assert sent["MD5OfMessageBody"] == md5(body)
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attributes)

    [got] = sqs.receive_message(
        QueueUrl=url,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
        VisibilityTimeout=0,
    )["Messages"]
    assert (got["MessageId"], got["Body"], got["MD5OfBody"]) == (sent["MessageId"], body, md5(body))
    assert got["MessageAttributes"] == attributes  # Binary comes back as the same bytes
    assert got["MD5OfMessageAttributes"] == md5_of_attributes(got["MessageAttributes"])
    assert set(got["Attributes"]) == {"SentTimestamp", "ApproximateReceiveCount"}

    # A prefix and a name select a subset; the digest covers exactly what is returned.
    [subset] = sqs.receive_message(
        QueueUrl=url, MessageAttributeNames=["trace.*", "kind"], VisibilityTimeout=0
    )["Messages"]
    assert set(subset["MessageAttributes"]) == {"trace.id", "trace.depth", "kind"}
    assert subset["MD5OfMessageAttributes"] == md5_of_attributes(subset["MessageAttributes"])
    assert "Attributes" not in subset

    [plain] = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    assert "MessageAttributes" not in plain and "MD5OfMessageAttributes" not in plain
    assert plain["Attributes"]["ApproximateReceiveCount"] == "3"
    assert {"SenderId", "SentTimestamp", "ApproximateFirstReceiveTimestamp"} <= set(
        plain["Attributes"]
    )
    sqs.delete_message(QueueUrl=url, ReceiptHandle=plain["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_batches_report_failed_entries_and_send_the_rest(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sent = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "MessageBody": "first"},
            {"Id": "bad", "MessageBody": "delayed too long", "DelaySeconds": 901},
            {
                "Id": "c",
                "MessageBody": "third",
                "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "3"}},
            },
        ],
    )
    assert [(e["Id"], e["MD5OfMessageBody"]) for e in sent["Successful"]] == [
        ("a", md5("first")),
        ("c", md5("third")),
    ]
    assert sent["Successful"][1]["MD5OfMessageAttributes"] == md5_of_attributes(
        {"n": {"DataType": "Number", "StringValue": "3"}}
    )
    [failed] = sent["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == (
        "bad",
        "InvalidParameterValue",
        True,
    )
    assert "DelaySeconds" in failed["Message"]

    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in got) == ["first", "third"]
    deleted = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": f"m{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        + [{"Id": "forged", "ReceiptHandle": "not-a-handle"}],
    )
    assert sorted(e["Id"] for e in deleted["Successful"]) == ["m0", "m1"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in deleted["Failed"]] == [
        ("forged", "ReceiptHandleIsInvalid", True)
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_whole_batch_errors(sqs: Any, raw_sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    one = {"MessageBody": "x"}
    for entries, error in [
        ([{"Id": "same", **one}, {"Id": "same", **one}], sqs.exceptions.BatchEntryIdsNotDistinct),
        ([{"Id": "no spaces", **one}], sqs.exceptions.InvalidBatchEntryId),
        ([{"Id": f"e{i}", **one} for i in range(11)], sqs.exceptions.TooManyEntriesInBatchRequest),
        (
            [{"Id": f"e{i}", "MessageBody": "x" * 200_000} for i in range(6)],
            sqs.exceptions.BatchRequestTooLong,
        ),
    ]:
        with pytest.raises(error) as caught:
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert caught.value.response["Error"]["QueryErrorCode"] == error.__name__
    with pytest.raises(sqs.exceptions.EmptyBatchRequest):
        raw_sqs.delete_message_batch(QueueUrl=url, Entries=[])
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_visibility_timeout_hides_a_message_until_it_runs_out(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="job")
    [first] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    time.sleep(1.1)
    [again] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30, AttributeNames=["All"])[
        "Messages"
    ]
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"

    # Giving it back at once makes it visible again; the batch form reports bad handles.
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=0
    )
    [third] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"]
    changed = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "ok", "ReceiptHandle": third["ReceiptHandle"], "VisibilityTimeout": 0},
            {"Id": "forged", "ReceiptHandle": "nope", "VisibilityTimeout": 0},
        ],
    )
    assert [e["Id"] for e in changed["Successful"]] == ["ok"]
    assert [(f["Id"], f["Code"]) for f in changed["Failed"]] == [
        ("forged", "ReceiptHandleIsInvalid")
    ]
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["MessageId"] == first["MessageId"]


def test_long_poll_returns_a_message_sent_while_waiting(
    sqs: Any, server: Server, name: str
) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    other = make_client(server.url)

    def send_later() -> float:
        time.sleep(0.5)
        # The server answers other requests while the long poll waits.
        started = time.monotonic()
        other.list_queues()
        other.send_message(QueueUrl=url, MessageBody="late")
        return time.monotonic() - started

    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        sending = pool.submit(send_later)
        received = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)
        waited = time.monotonic() - started
        assert sending.result() < 0.5
    assert [m["Body"] for m in received["Messages"]] == ["late"]
    assert 0.45 < waited < 1.5
    started = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert time.monotonic() - started >= 0.95


def test_an_abandoned_long_poll_takes_no_message(sqs: Any, server: Server, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    body = json.dumps({"QueueUrl": url, "WaitTimeSeconds": 20}).encode()
    headers = {"x-amz-target": "AmazonSQS.ReceiveMessage"}
    with pytest.raises(httpx.ReadTimeout):  # the client gives up and hangs up mid-poll
        httpx.post(server.url + "/", content=body, headers=headers, timeout=0.3)
    time.sleep(0.1)
    sqs.send_message(QueueUrl=url, MessageBody="for whoever is still listening")
    # Had the server kept polling for the gone client, the message would now be in flight.
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"].startswith("for whoever")


def test_dead_letter_queue_and_move_task_back(sqs: Any, server: Server, name: str) -> None:
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)  # moved on the 2nd receive

    [dead] = sqs.receive_message(QueueUrl=dlq_url, AttributeNames=["All"], VisibilityTimeout=0)[
        "Messages"
    ]
    assert dead["Body"] == "poison"
    assert dead["Attributes"]["DeadLetterQueueSourceArn"].endswith(f":{name}")
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq_url)["queueUrls"] == [url]

    task = sqs.start_message_move_task(SourceArn=dlq_arn)
    assert task["TaskHandle"]
    [back] = sqs.receive_message(QueueUrl=url)["Messages"]
    assert back["Body"] == "poison"
    with pytest.raises(sqs.exceptions.ResourceNotFoundException):
        sqs.start_message_move_task(SourceArn=dlq_arn + "-missing")
    [listed] = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert (listed["Status"], listed["ApproximateNumberOfMessagesMoved"]) == ("COMPLETED", 1)


def test_fifo_queue_keeps_order_and_drops_duplicates(sqs: Any, name: str) -> None:
    url = sqs.create_queue(
        QueueName=f"{name}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    sequence = []
    for body in ["one", "two", "one", "three"]:
        sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
        sequence.append(sent["SequenceNumber"])
    assert sequence[2] == sequence[0]  # the duplicate is acknowledged, not stored again
    sqs.send_message(
        QueueUrl=url, MessageBody="four", MessageGroupId="g", MessageDeduplicationId="d4"
    )
    sqs.send_message(
        QueueUrl=url, MessageBody="four again", MessageGroupId="g", MessageDeduplicationId="d4"
    )
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
    assert [m["Body"] for m in got["Messages"]] == ["one", "two", "three", "four"]
    assert {m["Attributes"]["MessageGroupId"] for m in got["Messages"]} == {"g"}


def test_purge_empties_a_queue_once_a_minute(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="a")
    sqs.send_message(QueueUrl=url, MessageBody="b")
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    with pytest.raises(sqs.exceptions.PurgeQueueInProgress) as again:
        sqs.purge_queue(QueueUrl=url)
    assert again.value.response["Error"]["Code"] == "AWS.SimpleQueueService.PurgeQueueInProgress"
    assert again.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


# -- errors -------------------------------------------------------------------------------


def test_errors_as_botocore_reports_them(sqs: Any, raw_sqs: Any, server: Server, name: str) -> None:
    missing = f"{server.url}/{ACCOUNT}/{name}-missing"
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as caught:
        sqs.send_message(QueueUrl=missing, MessageBody="x")
    error = caught.value.response["Error"]
    assert (error["Code"], error["QueryErrorCode"], error["Type"]) == (
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "Sender",
    )
    assert caught.value.response["ResponseMetadata"]["RequestId"]

    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="forged")
    with pytest.raises(sqs.exceptions.InvalidAttributeName) as unknown:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Colour"])
    assert "Colour" in unknown.value.response["Error"]["Message"]
    with pytest.raises(sqs.exceptions.InvalidAttributeName):
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Colour": "blue"})
    with pytest.raises(sqs.exceptions.InvalidAttributeValue):
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "-1"})
    with pytest.raises(sqs.exceptions.InvalidMessageContents):
        sqs.send_message(QueueUrl=url, MessageBody="bell \x07")

    too_long = sqs_error(sqs.send_message, QueueUrl=url, MessageBody="x" * (MIB + 1))
    assert too_long["Error"]["Code"] == "InvalidParameterValue"
    assert "1048576" in too_long["Error"]["Message"]
    sqs.send_message(QueueUrl=url, MessageBody="x" * MIB)  # exactly the limit is fine

    # Inputs botocore would refuse itself reach the server's checks with validation off.
    for call, kwargs, code in [
        (raw_sqs.send_message, {"QueueUrl": url}, "MissingParameter"),
        (
            raw_sqs.receive_message,
            {"QueueUrl": url, "MaxNumberOfMessages": 11},
            "InvalidParameterValue",
        ),
        (
            raw_sqs.receive_message,
            {"QueueUrl": url, "MaxNumberOfMessages": 0},
            "InvalidParameterValue",
        ),
        (
            raw_sqs.receive_message,
            {"QueueUrl": url, "WaitTimeSeconds": "soon"},
            "InvalidParameterValue",
        ),
        (raw_sqs.get_queue_url, {}, "MissingParameter"),
        (raw_sqs.delete_queue, {"QueueUrl": "http://nowhere/"}, "InvalidAddress"),
    ]:
        assert sqs_error(call, **kwargs)["Error"]["Code"] == code, (call, kwargs)
    with pytest.raises(sqs.exceptions.UnsupportedOperation):
        sqs.add_permission(
            QueueUrl=url, Label="everyone", AWSAccountIds=[ACCOUNT], Actions=["SendMessage"]
        )


def test_bad_requests_on_the_wire(server: Server) -> None:
    def post(target: str | None, body: bytes, **headers: str) -> httpx.Response:
        if target is not None:
            headers["x-amz-target"] = target
        return httpx.post(server.url + "/", content=body, headers=headers)

    unknown = post("AmazonSQS.FlyAway", b"{}")
    assert unknown.status_code == 400
    assert unknown.headers["x-amzn-query-error"] == "InvalidAction;Sender"
    assert unknown.json()["__type"] == "com.amazonaws.sqs#InvalidAction"
    assert "FlyAway" in unknown.json()["message"]
    assert post("DynamoDB_20120810.ListTables", b"{}").status_code == 400
    assert post(None, b"{}").headers["x-amzn-query-error"] == "InvalidAction;Sender"

    for body in [b"{not json", b"[1, 2]", b'"text"']:
        malformed = post("AmazonSQS.ListQueues", body)
        assert (malformed.status_code, malformed.json()["__type"]) == (
            400,
            "com.amazonaws.sqs#InvalidParameterValueException",
        )
    wrong = post("AmazonSQS.ListQueues", json.dumps({"MaxResults": "ten"}).encode())
    assert wrong.headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    binary = {
        "QueueUrl": "q",
        "MessageBody": "x",
        "MessageAttributes": {"b": {"DataType": "Binary", "BinaryValue": "%%%"}},
    }
    assert post("AmazonSQS.SendMessage", json.dumps(binary).encode()).status_code == 400
    huge = post("AmazonSQS.SendMessage", b" " * (sqs_module.MAX_BODY + 1))
    assert huge.headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"

    # The query protocol of older SDKs is answered in XML (see test_sqs_query.py).
    form = post(
        None,
        b"Action=ListQueues&Version=2012-11-05",
        **{"content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 200
    assert form.text.startswith('<?xml version="1.0"?><ListQueuesResponse')


def test_every_queue_error_maps_to_what_botocore_expects(server: Server) -> None:
    classes = _error_classes()
    unmapped = {cls.code for cls in classes.values()} - set(SQS_ERRORS)
    assert not unmapped, f"add these SQS error codes to SQS_ERRORS: {unmapped}"
    SeamQueues.raisable.update(classes)
    sqs = make_client(server.url)
    mismatched = []
    for class_name, cls in sorted(classes.items()):
        expected_code, status, fault = SQS_ERRORS[cls.code]
        modeled = sqs.exceptions.from_code(cls.code)
        with pytest.raises(ClientError) as caught:
            sqs.get_queue_attributes(QueueUrl=f"raise-{class_name}", AttributeNames=["All"])
        response = caught.value.response
        got = (type(caught.value), response["Error"]["Code"], response["Error"]["Type"])
        assert got == (modeled, expected_code, fault), class_name
        assert response["Error"]["QueryErrorCode"] == JSON_TYPES.get(cls.code, cls.code)
        if response["ResponseMetadata"]["HTTPStatusCode"] != status:
            mismatched.append((cls.code, response["ResponseMetadata"]["HTTPStatusCode"], status))
    assert mismatched == []


def test_queue_attribute_names_match_botocores_model(sqs: Any) -> None:
    model = sqs.meta.service_model.shape_for("QueueAttributeName")
    assert set(model.enum) - {"All"} == sqs_actions.QUEUE_ATTRIBUTES


def test_is_sqs_request() -> None:
    def scope(method: str = "POST", **headers: str) -> dict[str, Any]:
        raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
        return {"type": "http", "method": method, "headers": raw}

    assert is_sqs_request(scope(x_amz_target="AmazonSQS.SendMessage"))
    assert not is_sqs_request(scope("GET", x_amz_target="AmazonSQS.SendMessage"))
    assert not is_sqs_request(scope(x_amz_target="DynamoDB_20120810.GetItem"))
    signed = "AWS4-HMAC-SHA256 Credential=x/20250101/us-east-1/sqs/aws4_request, Signature=s"
    form = "application/x-www-form-urlencoded"
    assert is_sqs_request(scope(content_type=form, authorization=signed))
    assert not is_sqs_request(scope(content_type=form))  # a user's own HTML form
    assert not is_sqs_request({"type": "websocket", "headers": []})

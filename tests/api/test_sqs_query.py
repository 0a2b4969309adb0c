"""SQS's query protocol (``Action=...`` forms, XML answers), spoken by real botocore.

botocore spoke the query protocol to SQS until 1.31; ``data/sqs/2012-11-05/service-2.json``
is that release's SQS model (documentation stripped), so the requests and the parsing of
answers below are botocore's own query serializer and parser, as older SDKs and tools use.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import botocore.config  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
import httpx
import pytest
from test_sqs_api import ACCOUNT, Server, md5_of_attributes, name, server

from skylift.testing import serve

__all__ = ["name", "server"]  # fixtures, shared with test_sqs_api

MODELS = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def query_sqs(server: Server) -> Any:
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(MODELS))
    client = boto3.Session(botocore_session=session).client(
        "sqs",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )
    assert client.meta.service_model.protocol == "query"  # not the JSON model
    return client


def test_queues_over_the_query_protocol(query_sqs: Any, server: Server, name: str) -> None:
    url = query_sqs.create_queue(
        QueueName=name, Attributes={"VisibilityTimeout": "40"}, tags={"team": "a"}
    )["QueueUrl"]
    assert url == f"{server.url}/{ACCOUNT}/{name}"
    assert query_sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert query_sqs.list_queues(QueueNamePrefix=name)["QueueUrls"] == [url]
    query_sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "0"})
    attributes = query_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attributes["VisibilityTimeout"], attributes["QueueArn"]) == (
        "40",
        f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}",
    )
    query_sqs.tag_queue(QueueUrl=url, Tags={"env": "dev"})
    query_sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert query_sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "dev"}
    query_sqs.delete_queue(QueueUrl=url)
    with pytest.raises(query_sqs.exceptions.QueueDoesNotExist) as caught:
        query_sqs.get_queue_url(QueueName=name)
    error = caught.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "AWS.SimpleQueueService.NonExistentQueue",
        "The specified queue does not exist.",
    )


def test_messages_over_the_query_protocol(query_sqs: Any, name: str) -> None:
    url = query_sqs.create_queue(QueueName=name)["QueueUrl"]
    body = 'line one\r\nline <two> & "three" ✓'
    attributes: dict[str, dict[str, Any]] = {
        "kind": {"DataType": "String", "StringValue": "book & <co>"},
        "count": {"DataType": "Number", "StringValue": "3"},
        "blob": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
    }
    sent = query_sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attributes)
    [got] = query_sqs.receive_message(
        QueueUrl=url, AttributeNames=["All"], MessageAttributeNames=["All"], VisibilityTimeout=0
    )["Messages"]
    assert got["Body"] == body  # the CR survives XML
    assert got["MessageAttributes"] == attributes
    assert got["Attributes"]["ApproximateReceiveCount"] == "1"

    batch = query_sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "MessageBody": "second", "DelaySeconds": 0},
            {"Id": "bad", "MessageBody": "too late", "DelaySeconds": 901},
        ],
    )
    assert [e["Id"] for e in batch["Successful"]] == ["a"]
    [failed] = batch["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == (
        "bad",
        "InvalidParameterValue",
        True,
    )
    received = query_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in received) == sorted([body, "second"])
    changed = query_sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "c", "ReceiptHandle": received[0]["ReceiptHandle"], "VisibilityTimeout": 0}
        ],
    )
    assert [e["Id"] for e in changed["Successful"]] == ["c"]
    deleted = query_sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "d", "ReceiptHandle": m["ReceiptHandle"]} for m in received[1:]]
        + [{"Id": "forged", "ReceiptHandle": "nope"}],
    )
    assert [e["Id"] for e in deleted["Successful"]] == ["d"]
    assert deleted["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    [last] = query_sqs.receive_message(QueueUrl=url)["Messages"]
    query_sqs.delete_message(QueueUrl=url, ReceiptHandle=last["ReceiptHandle"])
    assert "Messages" not in query_sqs.receive_message(QueueUrl=url)


def test_errors_and_move_tasks_over_the_query_protocol(query_sqs: Any, name: str) -> None:
    dlq = query_sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}-dlq"
    policy = f'{{"deadLetterTargetArn": "{arn}", "maxReceiveCount": 1}}'
    url = query_sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    assert query_sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [url]
    query_sqs.start_message_move_task(SourceArn=arn)
    [task] = query_sqs.list_message_move_tasks(SourceArn=arn)["Results"]
    assert (task["Status"], task["ApproximateNumberOfMessagesMoved"]) == ("COMPLETED", 0)
    with pytest.raises(query_sqs.exceptions.InvalidAttributeName):
        query_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Colour"])
    with pytest.raises(query_sqs.exceptions.ClientError) as caught:
        query_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_form_requests_from_other_tools(server: Server, name: str) -> None:
    """What a hand-written client sends: a GET with the parameters in the URL, and a POST to
    the queue's own URL without a QueueUrl parameter (as some older SDKs send)."""
    created = httpx.get(server.url + "/", params={"Action": "CreateQueue", "QueueName": name})
    assert created.status_code == 200
    assert created.headers["content-type"] == "text/xml"
    assert 'xmlns="http://queue.amazonaws.com/doc/2012-11-05/"' in created.text
    sent = httpx.post(
        f"{server.url}/{ACCOUNT}/{name}",
        data={"Action": "SendMessage", "MessageBody": "hi", "Version": "2012-11-05"},
    )
    assert sent.status_code == 200
    assert f"<MD5OfMessageBody>{hashlib.md5(b'hi').hexdigest()}</MD5OfMessageBody>" in sent.text
    unknown = httpx.post(server.url + "/", data={"Action": "FlyAway"})
    assert unknown.status_code == 400
    assert "<Code>InvalidAction</Code>" in unknown.text


def test_query_requests_reach_sqs_through_the_gateway(tmp_path: Path) -> None:
    """On `skylift up`'s one port, signed and presigned query requests go to SQS, not to the
    app's routes."""
    (tmp_path / "app.py").write_text(
        "from skylift import App\napp = App()\n\n@app.http('/')\n"
        "def home(event, context):\n    return {'statusCode': 200, 'body': 'app'}\n"
    )
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(MODELS))
    with serve(str(tmp_path)) as url:
        client = boto3.Session(botocore_session=session).client(
            "sqs",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        queue = client.create_queue(QueueName="through-the-gateway")["QueueUrl"]
        client.send_message(QueueUrl=queue, MessageBody="hello")
        presigned = client.generate_presigned_url(
            "receive_message", Params={"QueueUrl": queue}, HttpMethod="GET"
        )
        answer = httpx.get(presigned)
        assert answer.status_code == 200
        assert "<Body>hello</Body>" in answer.text
        assert httpx.get(url + "/").text == "app"

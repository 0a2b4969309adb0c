"""SQS as SQS answers, through the real boto3 client: error shapes, FIFO delivery, batch rules,
attribute filters, tags, system attributes, move tasks and the smaller rules.

Expected values come from SQS's documentation and from responses recorded against real SQS
(the message attribute digests below are real SQS's), not from skylift's own tables.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from test_sqs_api import ACCOUNT, Server, make_client, md5_of_attributes, name, server, sqs

__all__ = ["name", "server", "sqs"]  # fixtures, shared with test_sqs_api


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response: dict[str, Any] = caught.value.response
    return response


def post(server: Server, action: str, params: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        server.url + "/",
        content=json.dumps(params).encode(),
        headers={"x-amz-target": f"AmazonSQS.{action}"},
    )


def fifo_queue(sqs: Any, name: str, **attributes: str) -> str:
    url: str = sqs.create_queue(
        QueueName=f"{name[:70]}.fifo", Attributes={"FifoQueue": "true", **attributes}
    )["QueueUrl"]
    return url


def arn_of(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    arn: str = attributes["Attributes"]["QueueArn"]
    return arn


# -- errors -------------------------------------------------------------------------------


def test_json_errors_carry_sqs_type_names_and_words(
    sqs: Any, server: Server, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    raw = make_client(server.url, validate=False)

    # botocore reads the __type name into QueryErrorCode, the header's code into Code.
    invalid = error_of(raw.receive_message, QueueUrl=url, MaxNumberOfMessages=11)["Error"]
    assert (invalid["Code"], invalid["QueryErrorCode"]) == (
        "InvalidParameterValue",
        "InvalidParameterValueException",
    )
    assert invalid["Message"] == (
        "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and "
        "10, if provided."
    )
    missing = post(server, "SendMessage", {"QueueUrl": url})
    assert missing.status_code == 400
    assert missing.json() == {
        "__type": "com.amazonaws.sqs#MissingRequiredParameterException",
        "message": "The request must contain the parameter MessageBody.",
    }
    assert missing.headers["x-amzn-query-error"] == "MissingParameter;Sender"

    # AWS's words in the answer; what to do about it in skylift's log.
    with caplog.at_level(logging.WARNING, logger="skylift.api.sqs"):
        gone = error_of(sqs.get_queue_url, QueueName=f"{name}-missing")["Error"]
    assert (gone["QueryErrorCode"], gone["Message"]) == (
        "QueueDoesNotExist",
        "The specified queue does not exist.",
    )
    assert f"{name}-missing" in caplog.text and "create it first" in caplog.text
    exists = error_of(sqs.create_queue, QueueName=name, Attributes={"DelaySeconds": "5"})
    assert exists["Error"]["Message"] == (
        "A queue already exists with the same name and a different value for attribute DelaySeconds"
    )


# -- FIFO ---------------------------------------------------------------------------------


def test_fifo_message_given_back_is_delivered_before_the_rest(sqs: Any, name: str) -> None:
    url = fifo_queue(sqs, name, ContentBasedDeduplication="true")
    for body in ["m1", "m2", "m3"]:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    m1, m2, _m3 = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"], VisibilityTimeout=0
    )
    # m1 is still in flight before it: m2 waits.
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=m1["ReceiptHandle"], VisibilityTimeout=0
    )
    # m1 and m2 come again, in order, while m3 behind them is still in flight.
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in again] == ["m1", "m2"]


def test_fifo_purge_clears_the_deduplication_cache(sqs: Any, name: str) -> None:
    url = fifo_queue(sqs, name)
    once = {"MessageBody": "once", "MessageGroupId": "g", "MessageDeduplicationId": "d"}
    sqs.send_message(QueueUrl=url, **once)
    sqs.purge_queue(QueueUrl=url)
    sqs.send_message(QueueUrl=url, **once)
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["once"]


def test_fifo_delay_seconds_zero_means_the_queues_delay(sqs: Any, name: str) -> None:
    url = fifo_queue(sqs, name, DelaySeconds="30", ContentBasedDeduplication="true")
    sqs.send_message(QueueUrl=url, MessageBody="late", MessageGroupId="g", DelaySeconds=0)
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "a", "MessageBody": "b", "MessageGroupId": "g", "DelaySeconds": 0}],
    )
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (
        counts["ApproximateNumberOfMessages"],
        counts["ApproximateNumberOfMessagesDelayed"],
    ) == (
        "0",
        "2",
    )


def test_fifo_batch_without_group_or_deduplication_id_fails_whole(sqs: Any, name: str) -> None:
    url = fifo_queue(sqs, name)
    good = {"Id": "good", "MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "d"}
    for bad in (
        {"Id": "bad", "MessageBody": "y", "MessageDeduplicationId": "e"},
        {"Id": "bad", "MessageBody": "y", "MessageGroupId": "g"},
    ):
        refused = error_of(sqs.send_message_batch, QueueUrl=url, Entries=[good, bad])
        assert refused["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert refused["Error"]["Code"] == "InvalidParameterValue"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)  # not even the good one


# -- visibility ---------------------------------------------------------------------------


def test_change_visibility_takes_an_earlier_receipt_handle(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="job")
    [first] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    [second] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"]
    assert first["ReceiptHandle"] != second["ReceiptHandle"]
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    [third] = sqs.receive_message(QueueUrl=url)["Messages"]
    assert third["MessageId"] == first["MessageId"]


# -- attribute filters --------------------------------------------------------------------


def test_message_attribute_name_filters_select_as_sqs(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    attributes = {
        "General": {"DataType": "String", "StringValue": "Kenobi"},
        "Hello": {"DataType": "String", "StringValue": "There"},
        "Help.Me": {"DataType": "String", "StringValue": "Me"},
    }
    sqs.send_message(QueueUrl=url, MessageBody="msg", MessageAttributes=attributes)

    def received(names: list[str]) -> dict[str, Any]:
        [message] = sqs.receive_message(
            QueueUrl=url, MessageAttributeNames=names, VisibilityTimeout=0
        )["Messages"]
        return message

    # Digests as real SQS answered them for this message.
    for names in (["All"], [".*"]):
        everything = received(names)
        assert everything["MessageAttributes"] == attributes
        assert everything["MD5OfMessageAttributes"] == "4c360f3fdafd970e05fae2f149d997f5"
    prefixed = received(["Hel.*"])
    assert set(prefixed["MessageAttributes"]) == {"Hello", "Help.Me"}
    assert prefixed["MD5OfMessageAttributes"] == "83fee93c1bcd8b9a5a923ffacdc636c7"
    assert set(received(["Hello", "Absent"])["MessageAttributes"]) == {"Hello"}
    assert "MessageAttributes" not in received(["Absent"])


# -- tags, system attributes, queue attributes --------------------------------------------


def test_queue_tags(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name, tags={"team": "payments", "env": "dev"})["QueueUrl"]
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "payments", "env": "dev"}
    sqs.tag_queue(QueueUrl=url, Tags={"env": "prod", "cost-center": "42"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "prod", "cost-center": "42"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["env", "cost-center"])
    assert "Tags" not in sqs.list_queue_tags(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.list_queue_tags(QueueUrl=f"{url}-missing")


def test_aws_trace_header_system_attribute(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    system = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="traced", MessageSystemAttributes=system)
    assert sent["MD5OfMessageSystemAttributes"] == md5_of_attributes(system)
    batch = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "a", "MessageBody": "also traced", "MessageSystemAttributes": system}],
    )
    assert batch["Successful"][0]["MD5OfMessageSystemAttributes"] == md5_of_attributes(system)
    got = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["AWSTraceHeader"]
    )["Messages"]
    assert [m["Attributes"] for m in got] == [{"AWSTraceHeader": trace}] * 2


def test_sqs_managed_encryption_is_reported(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["SqsManagedSseEnabled"] == "true"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": "alias/aws/sqs"})
    kms = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["SqsManagedSseEnabled"])
    assert kms["Attributes"] == {"SqsManagedSseEnabled": "false"}


def test_a_deleted_queues_name_is_taken_for_60_seconds(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDeletedRecently) as caught:
        sqs.create_queue(QueueName=name)
    assert caught.value.response["Error"]["Code"] == "AWS.SimpleQueueService.QueueDeletedRecently"


# -- move tasks ---------------------------------------------------------------------------


def test_message_move_tasks_list_cancel_and_rate(sqs: Any, name: str) -> None:
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = arn_of(sqs, dlq_url)
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": f"m{i}"} for i in range(10)]
    )
    for _ in range(2):  # the second receive moves them all to the dead-letter queue
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert arn_of(sqs, url)  # the source is some queue's dead-letter queue: accepted

    # Not a dead-letter queue: refused, as SQS words it. (At 1 message a second the task
    # below runs for 9 s: long enough to be seen RUNNING on a loaded machine.)
    refused = error_of(sqs.start_message_move_task, SourceArn=arn_of(sqs, url))["Error"]
    assert refused["Message"] == "Source queue must be configured as a Dead Letter Queue."

    handle = sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=1)[
        "TaskHandle"
    ]
    [running] = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert (running["Status"], running["TaskHandle"]) == ("RUNNING", handle)
    assert (
        running["MaxNumberOfMessagesPerSecond"],
        running["ApproximateNumberOfMessagesToMove"],
    ) == (1, 10)
    again = error_of(sqs.start_message_move_task, SourceArn=dlq_arn)["Error"]
    assert again["Message"].startswith("There is already a task running.")
    moved = sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
    assert moved < 10
    [cancelled] = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    assert cancelled["Status"] == "CANCELLED" and "TaskHandle" not in cancelled
    time.sleep(1.2)  # a cancelled task moves no more
    counts = sqs.get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert counts["Attributes"]["ApproximateNumberOfMessages"] == str(10 - moved)

    bad = error_of(sqs.cancel_message_move_task, TaskHandle="not-a-handle")["Error"]
    assert bad["Message"] == "Value for parameter TaskHandle is invalid."
    with pytest.raises(sqs.exceptions.ResourceNotFoundException):
        sqs.cancel_message_move_task(TaskHandle=handle)  # no longer running
    too_fast = error_of(
        sqs.start_message_move_task, SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=501
    )
    assert too_fast["Error"]["Code"] == "InvalidParameterValue"


# -- smaller rules ------------------------------------------------------------------------


def test_an_empty_policy_removes_it(sqs: Any, name: str) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    url = sqs.create_queue(QueueName=name, Attributes={"Policy": policy})["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"] == {
        "Policy": policy
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    assert "Attributes" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])


def test_a_queue_may_be_its_own_dead_letter_queue(sqs: Any, name: str) -> None:
    arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 1})
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="kept")
    for _ in range(3):
        assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]


def test_non_ascii_attribute_names_are_accepted(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    attributes = {"größe": {"DataType": "String", "StringValue": "L"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attributes)
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attributes)
    [got] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert got["MessageAttributes"] == attributes


def test_fifo_queue_false_on_a_standard_queue_is_an_unknown_attribute(sqs: Any, name: str) -> None:
    with pytest.raises(sqs.exceptions.InvalidAttributeName):
        sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "false"})
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix=name)


def test_send_message_batch_leaves_out_an_empty_failed(server: Server, sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    answer = post(
        server, "SendMessageBatch", {"QueueUrl": url, "Entries": [{"Id": "a", "MessageBody": "x"}]}
    ).json()
    assert set(answer) == {"Successful"}
    assert answer["Successful"][0]["MD5OfMessageBody"] == hashlib.md5(b"x").hexdigest()

"""Receipt handles are signed: one rebuilt by a client (a guessed token, another row) is
refused with ReceiptHandleIsInvalid and deletes nothing, through the real SQS API."""

from __future__ import annotations

import base64
import secrets
import struct
import textwrap
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]  # boto3 ships no type hints
import pytest

from skylift.testing import serve

APP = """
from skylift import App

app = App()
app.declare_queue("jobs", visibility_timeout=300)


@app.function()
def noop(event, context):
    return None
"""


@pytest.fixture(scope="module")
def sqs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home: Path = tmp_path_factory.mktemp("receipts")
    (home / "app.py").write_text(textwrap.dedent(APP))
    with serve(str(home), options=["--quiet"]) as url:
        yield boto3.client(
            "sqs",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )


def in_flight(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_a_handle_rebuilt_with_a_random_token_deletes_nothing(sqs: Any) -> None:
    url = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="being processed")
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    raw = bytearray(base64.b64decode(message["ReceiptHandle"]))
    # The handle's fields (queue, row, token, message id) are readable by anyone who
    # decodes it; a client that rewrites the token must still not get to delete.
    raw[16:24] = struct.pack(">q", secrets.randbits(63))
    forged = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=forged)
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=forged, VisibilityTimeout=0)
    batch = sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": "forged", "ReceiptHandle": forged}]
    )
    assert batch["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    assert in_flight(sqs, url) == 1, "the in-flight message must still be there"

    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert in_flight(sqs, url) == 0


@pytest.mark.parametrize("key_length", [0, 1, 32, 64, 65, 200])
def test_the_mac_is_hmac_sha256(key_length: int) -> None:
    """The padded-state shortcut signs exactly as HMAC-SHA256 does (RFC 2104), so handles
    given out by an earlier skylift stay valid; a handle signed with another key fails."""
    import hmac

    from skylift.queues import receipts

    key = secrets.token_bytes(key_length)
    for packed in (b"", b"x", secrets.token_bytes(60), secrets.token_bytes(300)):
        assert receipts._mac(key, packed) == hmac.digest(key, packed, "sha256")[:16]
    handle = receipts.Receipt(1, 2, "0" * 36, 3).encode(key)
    receipts._ISSUED.clear()  # decode it the long way, checking the MAC
    assert receipts.decode(handle, key) == receipts.Receipt(1, 2, "0" * 36, 3)
    with pytest.raises(receipts.ReceiptHandleIsInvalid):
        receipts.decode(handle, key + b"!")

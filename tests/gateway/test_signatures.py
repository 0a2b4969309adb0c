"""`skylift up --credentials FILE`: every SQS, S3 and Lambda request needs a SigV4
signature by one of the file's keys. Real server, real boto3, the real AWS CLI."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import boto3
import botocore.auth
import botocore.crt.auth
import httpx
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from click.testing import CliRunner

from skylift.cli import main
from skylift.testing import ServerLog, serve

APP = """
    import json
    import os

    import boto3
    from skylift import App

    app = App()

    @app.function()
    def echo(event, context):
        print("ECHO RAN", json.dumps(event))
        return event

    @app.function()
    def relay(event, context):
        # The function's own (derived) credentials, as any Lambda code uses them.
        answer = boto3.client("lambda").invoke(FunctionName="echo", Payload=b'{"via": "relay"}')
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="from-function")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="hi")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="functions")
        s3.put_object(Bucket="functions", Key="from-function", Body=b"x")
        return {"key": os.environ["AWS_ACCESS_KEY_ID"][:11], **json.loads(answer["Payload"].read())}
"""
ALICE = ("AKIAALICE0000000001", "alice-secret-0123456789abcdef")
BOB = ("AKIABOB00000000000002", "bob-secret-0123456789abcdef")
CREDENTIALS = f"""
[alice]
aws_access_key_id = {ALICE[0]}
aws_secret_access_key = {ALICE[1]}
region = us-east-1

[bob]
aws_access_key_id={BOB[0]}
aws_secret_access_key={BOB[1]}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("signed")
    (root / "app.py").write_text(textwrap.dedent(APP))
    (root / "credentials").write_text(CREDENTIALS)
    log = ServerLog()
    with serve(str(root), log=log, options=["--credentials", str(root / "credentials")]) as url:
        yield url, log, root


def client(url: str, service: str, key: tuple[str, str] = ALICE, **config: object):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(retries={"total_max_attempts": 1}, **config),  # type: ignore[arg-type]
    )


def code_of(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]


def test_each_key_in_the_file_opens_sqs_s3_and_lambda(server):
    url, _, _ = server
    for key in (ALICE, BOB):
        sqs = client(url, "sqs", key)
        queue = sqs.create_queue(QueueName="orders")["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody="one pizza")
        got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"][0]
        assert got["Body"] == "one pizza"
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=got["ReceiptHandle"])
        s3 = client(url, "s3", key)
        s3.create_bucket(Bucket="team")
        s3.put_object(Bucket="team", Key="notes/a b+c.txt", Body=b"hello")
        assert s3.get_object(Bucket="team", Key="notes/a b+c.txt")["Body"].read() == b"hello"
        answer = client(url, "lambda", key).invoke(FunctionName="echo", Payload=b'{"n": 1}')
        assert json.loads(answer["Payload"].read()) == {"n": 1}


def test_a_presigned_url_works_until_it_expires(server):
    url, _, _ = server
    links = []
    # boto3's default for S3 (signature version 2) and SigV4's X-Amz-* parameters.
    for version in (None, "s3v4"):
        s3 = client(url, "s3", signature_version=version)
        s3.create_bucket(Bucket="shared")
        s3.put_object(Bucket="shared", Key="report 1.csv", Body=b"a,b\n")
        link = s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": "shared", "Key": "report 1.csv", "ResponseContentType": "text/csv"},
            ExpiresIn=2,
        )
        assert ("X-Amz-Signature" in link) == (version == "s3v4")
        answer = httpx.get(link)
        assert answer.content == b"a,b\n"
        assert answer.headers["content-type"] == "text/csv"
        tampered = httpx.get(link.replace("report%201.csv", "other.csv"))
        assert tampered.status_code == 403
        assert b"<Code>SignatureDoesNotMatch</Code>" in tampered.content
        wrong_key = httpx.get(link.replace(ALICE[0], BOB[0]))
        assert b"<Code>SignatureDoesNotMatch</Code>" in wrong_key.content
        links.append(link)
    time.sleep(3.1)
    for link in links:
        expired = httpx.get(link)
        assert expired.status_code == 403
        assert b"<Code>AccessDenied</Code>" in expired.content
        assert b"Request has expired" in expired.content


def test_a_wrong_secret_is_refused_in_each_services_words(server):
    url, log, _ = server
    wrong = (ALICE[0], "not-alices-secret-at-all-0000")
    assert code_of(lambda: client(url, "sqs", wrong).list_queues()) == (
        "SignatureDoesNotMatch",
        403,
    )
    assert code_of(lambda: client(url, "s3", wrong).list_buckets()) == (
        "SignatureDoesNotMatch",
        403,
    )
    invoke = client(url, "lambda", wrong).invoke
    assert code_of(lambda: invoke(FunctionName="echo", Payload=b'{"wrong": 1}')) == (
        "InvalidSignatureException",
        403,
    )
    time.sleep(0.2)
    assert '"wrong": 1' not in log.text
    assert f"signed with {ALICE[0]}: signature does not match" in log.text


def test_an_unknown_key_is_refused(server):
    url, _, _ = server
    stranger = ("AKIASTRANGER00000003", "whatever-secret-000000000000")
    assert code_of(lambda: client(url, "sqs", stranger).list_queues()) == (
        "InvalidClientTokenId",
        403,
    )
    assert code_of(lambda: client(url, "s3", stranger).list_buckets()) == (
        "InvalidAccessKeyId",
        403,
    )
    invoke = client(url, "lambda", stranger).invoke
    assert code_of(lambda: invoke(FunctionName="echo", Payload=b"{}")) == (
        "UnrecognizedClientException",
        403,
    )


def signed(url: str, service: str, body: bytes, headers: dict[str, str], path: str = "/"):
    """A request signed by alice with botocore's signer, as (url, headers)."""
    request = AWSRequest(method="POST", url=url + path, data=body, headers=headers)
    auth_class = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
    auth_class(Credentials(*ALICE), service, "us-east-1").add_auth(request)
    return dict(request.headers.items())


def test_a_body_changed_after_signing_is_refused(server):
    url, _, _ = server
    target = {"X-Amz-Target": "AmazonSQS.ListQueues", "Content-Type": "application/x-amz-json-1.0"}
    headers = signed(url, "sqs", b"{}", target)
    assert httpx.post(url + "/", content=b"{}", headers=headers).status_code == 200
    answer = httpx.post(url + "/", content=b'{"QueueNamePrefix": "o"}', headers=headers)
    assert answer.status_code == 403
    assert answer.headers["x-amzn-query-error"] == "SignatureDoesNotMatch;Sender"
    invoke = "/2015-03-31/functions/echo/invocations"
    headers = signed(url, "lambda", b'{"amount": 1}', {}, invoke)
    answer = httpx.post(url + invoke, content=b'{"amount": 1000}', headers=headers)
    assert answer.status_code == 403
    assert answer.headers["x-amzn-errortype"] == "InvalidSignatureException"
    # S3 signs the body's SHA-256 header; a body that does not match it is S3's own error.
    client(url, "s3").create_bucket(Bucket="tamper")
    headers = signed(url, "s3", b"original", {}, "/tamper/key")
    answer = httpx.put(url + "/tamper/key", content=b"replaced", headers=headers)
    assert answer.status_code == 403  # the method is signed too: PUT is not the POST signed
    request = AWSRequest(method="PUT", url=url + "/tamper/key", data=b"original")
    botocore.auth.S3SigV4Auth(Credentials(*ALICE), "s3", "us-east-1").add_auth(request)
    answer = httpx.put(url + "/tamper/key", content=b"replaced", headers=dict(request.headers))
    assert answer.status_code == 400
    assert b"<Code>XAmzContentSHA256Mismatch</Code>" in answer.content
    assert code_of(lambda: client(url, "s3").get_object(Bucket="tamper", Key="key"))[0] == (
        "NoSuchKey"
    )


def test_a_request_without_a_signature_is_refused(server):
    url, _, _ = server
    sqs = httpx.post(
        url + "/",
        content=b"{}",
        headers={
            "X-Amz-Target": "AmazonSQS.ListQueues",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )
    assert sqs.status_code == 403
    assert sqs.headers["x-amzn-query-error"] == "MissingAuthenticationToken;Sender"
    s3 = httpx.get(url + "/team/notes", headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    assert s3.status_code == 403 and b"<Code>AccessDenied</Code>" in s3.content
    invoke = httpx.post(url + "/2015-03-31/functions/echo/invocations", content=b"{}")
    assert invoke.status_code == 403
    assert invoke.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"


@contextlib.contextmanager
def clock(moment: datetime.datetime) -> Iterator[None]:
    """The client's clock set to `moment`, for botocore's signers (its own and awscrt's)."""

    def now(remove_tzinfo: bool = True) -> datetime.datetime:
        return moment.replace(tzinfo=None) if remove_tzinfo else moment

    with (
        mock.patch.object(botocore.auth, "get_current_datetime", now),
        mock.patch.object(botocore.crt.auth, "get_current_datetime", now),
    ):
        yield


def test_a_clock_more_than_15_minutes_off_is_refused(server):
    url, _, _ = server
    late = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=16)
    with clock(late + datetime.timedelta(minutes=2)):  # 14 minutes off: still accepted
        assert client(url, "sqs").list_queues()["ResponseMetadata"]["HTTPStatusCode"] == 200
    for moment in (late, late + datetime.timedelta(minutes=32)):
        with clock(moment):
            with pytest.raises(ClientError) as caught:
                client(url, "sqs").list_queues()
            error = caught.value.response["Error"]
            assert error["Code"] == "SignatureDoesNotMatch"
            assert error["Message"].startswith(("Signature expired", "Signature not yet current"))
            s3 = client(url, "s3")
            assert code_of(s3.list_buckets) == ("RequestTimeTooSkewed", 403)


def test_functions_keep_calling_the_apis_with_their_own_credentials(server):
    url, _, _ = server
    answer = client(url, "lambda").invoke(FunctionName="relay", Payload=b"{}")
    result = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, result
    assert result == {"key": "ASIASKYLIFT", "via": "relay"}
    s3 = client(url, "s3")
    assert s3.get_object(Bucket="functions", Key="from-function")["Body"].read() == b"x"


def test_the_aws_cli_signs_with_a_profile_of_the_file(server, tmp_path):
    url, _, root = server
    aws = Path(sys.executable).with_name("aws")
    if not aws.exists():
        pytest.fail("the AWS CLI is a test dependency (awscli): pip install -e '.[test]'")
    env = {
        **os.environ,
        "AWS_SHARED_CREDENTIALS_FILE": str(root / "credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.pop("AWS_ACCESS_KEY_ID", None)
    env.pop("AWS_SECRET_ACCESS_KEY", None)
    (tmp_path / "up.txt").write_text("from the cli")

    def aws_cli(*args: str, profile: str = "bob") -> subprocess.CompletedProcess[str]:
        command = [str(aws), "--profile", profile, "--endpoint-url", url, *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    made = aws_cli("sqs", "create-queue", "--queue-name", "cli")
    assert made.returncode == 0, made.stderr
    copied = aws_cli("s3", "cp", str(tmp_path / "up.txt"), "s3://team/cli/up.txt")
    assert copied.returncode == 0, copied.stderr
    assert client(url, "s3").get_object(Bucket="team", Key="cli/up.txt")["Body"].read() == (
        b"from the cli"
    )
    (tmp_path / "wrong").write_text(f"[bob]\naws_access_key_id={BOB[0]}\naws_secret_access_key=x\n")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "wrong")
    refused = aws_cli("sqs", "list-queues")
    assert refused.returncode != 0
    assert "SignatureDoesNotMatch" in refused.stderr


def test_a_bad_credentials_file_stops_the_start_saying_what_to_fix(tmp_path):
    (tmp_path / "app.py").write_text("from skylift import App\napp = App()\n")
    cases = {
        "[alice]\naws_access_key_id = AKIAALICE0000000001\n": "needs both",
        "": "no profiles",
        "just text": "not an AWS credentials file",
        "[a]\naws_access_key_id=ASIASKYLIFT00000001\naws_secret_access_key=0123456789abcdef0\n": (
            "skylift's own"
        ),
    }
    for text, says in cases.items():
        (tmp_path / "credentials").write_text(text)
        command = ["up", "--port", "0", "--credentials", str(tmp_path / "credentials")]
        done = CliRunner().invoke(main, [*command, str(tmp_path)])
        assert done.exit_code == 2, text
        assert says in done.output, done.output
    assert not (tmp_path / ".skylift").exists()  # nothing started, nothing changed

"""S3Store beyond the conformance suite: the ``--objects`` URL, the bucket prefix, what
skylift's S3 API answers on top of it (events, copies, ranges), and what an operator sees
when the endpoint is missing at start or goes away later."""

from __future__ import annotations

import base64
import logging
import os
import socket
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from api.s3_support import serve
from skylift.api import S3Api
from skylift.errors import SkyliftError
from skylift.storage.errors import InvalidBucketName, ServiceUnavailable
from skylift.storage.protocol import ObjectInfo
from skylift.storage.s3_store import S3Store
from skylift.storage.s3_url import parse
from storage.conformance import Blocking
from storage.s3_server import CREDENTIALS, MotoServer, free_port, moto_server, s3_endpoint

__all__ = ["moto_server", "s3_endpoint"]  # fixtures, used by name

CLIENT = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
ONCE = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def s3_url(endpoint: str, prefix: str = "") -> str:
    return endpoint.replace("http://", "s3+http://", 1) + "/" + prefix


# -- the URL --


def test_the_url_names_endpoint_scheme_prefix_and_region() -> None:
    target = parse("s3+http://127.0.0.1:9000/team-a-?region=eu-west-1&profile=ops")
    assert (target.endpoint, target.prefix, target.region, target.profile) == (
        "http://127.0.0.1:9000",
        "team-a-",
        "eu-west-1",
        "ops",
    )
    assert parse("s3://minio.internal").endpoint == "https://minio.internal"
    assert parse("s3:///team-?aws=true").endpoint is None  # Amazon S3, asked for by name


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("s3:///team-a-", "?aws=true"),  # never real AWS by accident
        ("s3://key:secret@127.0.0.1:9000/", "AWS_ACCESS_KEY_ID"),
        ("s3+http://127.0.0.1:9000/?colour=red", "unknown option colour"),
        ("s3+http://127.0.0.1:9000/Team_A", "lowercase letters"),
        ("s3+http://127.0.0.1:9000/?aws=maybe", "true or false"),
    ],
)
def test_a_bad_url_says_what_to_write(url: str, says: str) -> None:
    with pytest.raises(SkyliftError) as caught:
        parse(url)
    assert says in str(caught.value)


def test_skylift_up_with_no_endpoint_listening_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("from skylift import App\napp = App()\n")
    url = f"s3+http://127.0.0.1:{free_port()}/sky-"
    done = subprocess.run(
        [sys.executable, "-m", "skylift.cli", "up", str(tmp_path), "--objects", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**CREDENTIALS, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert url in done.stderr and "does not answer ListBuckets" in done.stderr
    assert "Could not connect to the endpoint URL" in done.stderr
    assert "Start it" in done.stderr


# -- the prefix --


def test_buckets_live_under_the_prefix_and_others_are_not_listed(s3_endpoint: str) -> None:
    store = Blocking(S3Store(parse(s3_url(s3_endpoint, "team-a-"))))
    try:
        external = boto3.client("s3", endpoint_url=s3_endpoint, **CLIENT)
        external.create_bucket(Bucket="someone-elses")
        store.create_bucket("photos")
        store.put_object("photos", "cat.jpg", b"meow", content_type="image/jpeg")
        assert [b.name for b in store.list_buckets()] == ["photos"]
        got = external.get_object(Bucket="team-a-photos", Key="cat.jpg")
        assert (got["Body"].read(), got["ContentType"]) == (b"meow", "image/jpeg")
        with pytest.raises(InvalidBucketName) as caught:
            store.create_bucket("a" * 60)  # 67 characters with the prefix
        assert caught.value.hint is not None and "prefix" in caught.value.hint
    finally:
        store.close()


# -- skylift's S3 API on top --


@pytest.fixture
def api(s3_endpoint: str) -> Iterator[tuple[Any, list[tuple[str, str, Any]]]]:
    events: list[tuple[str, str, Any]] = []

    async def on_change(name: str, bucket: str, subject: ObjectInfo | str, rid: str) -> None:
        events.append((name, bucket, subject))

    store = S3Store(parse(s3_url(s3_endpoint)))
    with serve(S3Api(store, region="us-east-1", on_change=on_change)) as base:
        yield boto3.client("s3", endpoint_url=base, config=ONCE, **CLIENT), events


def test_the_s3_api_fires_each_write_event_once(api: tuple[Any, list[Any]]) -> None:
    s3, events = api
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="a.txt", Body=b"hello world", Metadata={"who": "ann"})
    s3.copy_object(Bucket="bkt", Key="b.txt", CopySource={"Bucket": "bkt", "Key": "a.txt"})
    upload = s3.create_multipart_upload(Bucket="bkt", Key="big.bin")["UploadId"]
    part = s3.upload_part(
        Bucket="bkt", Key="big.bin", UploadId=upload, PartNumber=1, Body=b"x" * 10
    )
    s3.complete_multipart_upload(
        Bucket="bkt",
        Key="big.bin",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    s3.delete_object(Bucket="bkt", Key="a.txt")
    assert [(name, bucket) for name, bucket, _ in events] == [
        ("ObjectCreated:Put", "bkt"),
        ("ObjectCreated:Copy", "bkt"),
        ("ObjectCreated:CompleteMultipartUpload", "bkt"),
        ("ObjectRemoved:Delete", "bkt"),
    ]
    sequencers = [subject.sequencer for _, _, subject in events[:3]]
    assert sequencers == sorted(sequencers)
    got = s3.get_object(Bucket="bkt", Key="b.txt", Range="bytes=6-10")
    assert (got["Body"].read(), got["ContentRange"]) == (b"world", "bytes 6-10/11")
    assert s3.head_object(Bucket="bkt", Key="b.txt")["Metadata"] == {"who": "ann"}
    listed = s3.list_objects_v2(Bucket="bkt")["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("b.txt", 11), ("big.bin", 10)]


def test_a_bucket_policy_never_reaches_the_endpoint(
    api: tuple[Any, list[Any]], s3_endpoint: str
) -> None:
    s3, _ = api
    s3.create_bucket(Bucket="open")
    public = '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}'
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_policy(Bucket="open", Policy=public)
    assert caught.value.response["Error"]["Code"] == "NotImplemented"
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_policy(Bucket="open")
    assert caught.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
    external = boto3.client("s3", endpoint_url=s3_endpoint, **CLIENT)
    with pytest.raises(ClientError) as caught:  # the endpoint's bucket has none either
        external.get_bucket_policy(Bucket="open")
    assert caught.value.response["Error"]["Code"] == "NoSuchBucketPolicy"


@pytest.mark.parametrize("kind", ["COMPOSITE", "FULL_OBJECT"])
def test_multipart_checksums_are_computed_from_the_parts(
    api: tuple[Any, list[Any]], kind: str
) -> None:
    s3, _ = api
    s3.create_bucket(Bucket="bkt")
    first, last = os.urandom(5 * 1024 * 1024), os.urandom(1000)
    upload = s3.create_multipart_upload(
        Bucket="bkt", Key="c", ChecksumAlgorithm="CRC32", ChecksumType=kind
    )["UploadId"]
    parts = []
    for number, data in ((1, first), (2, last)):
        answer = s3.upload_part(
            Bucket="bkt",
            Key="c",
            UploadId=upload,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="CRC32",
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": crc32(data)})
    done = s3.complete_multipart_upload(
        Bucket="bkt", Key="c", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    if kind == "COMPOSITE":
        expected = crc32(base64.b64decode(crc32(first)) + base64.b64decode(crc32(last))) + "-2"
    else:
        expected = crc32(first + last)
    assert (done["ChecksumCRC32"], done["ChecksumType"]) == (expected, kind)
    head = s3.head_object(Bucket="bkt", Key="c", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ContentLength"]) == (expected, len(first) + 1000)


def test_an_outage_answers_service_unavailable_and_logs_the_endpoint(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    server = MotoServer()  # its own, to stop
    store = S3Store(parse(s3_url(server.url)))
    try:
        with serve(S3Api(store, region="us-east-1")) as base:
            s3 = boto3.client("s3", endpoint_url=base, config=ONCE, **CLIENT)
            s3.create_bucket(Bucket="bkt")
            s3.put_object(Bucket="bkt", Key="k", Body=b"before")
            server.stop()
            with caplog.at_level(logging.WARNING, logger="skylift.storage"):
                for call in (
                    lambda: s3.put_object(Bucket="bkt", Key="k", Body=b"during"),
                    lambda: s3.get_object(Bucket="bkt", Key="k"),
                ):
                    with pytest.raises(ClientError) as caught:
                        call()
                    error = caught.value.response["Error"]
                    assert error["Code"] == "ServiceUnavailable"
                    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        warnings = [r.getMessage() for r in caplog.records if r.name == "skylift.storage"]
        assert len(warnings) == 1  # once per outage, not once per request
        assert server.url in warnings[0] and "unreachable" in warnings[0]
    finally:
        server.stop()


def test_the_store_raises_service_unavailable_with_a_hint(s3_endpoint: str) -> None:
    store = Blocking(S3Store(parse(f"s3+http://127.0.0.1:{free_port()}/")))
    try:
        with pytest.raises(ServiceUnavailable) as caught:
            store.list_buckets()
        assert caught.value.status == 503
        assert caught.value.hint is not None and "check that it runs" in caught.value.hint
    finally:
        store.close()


def test_upload_bodies_wait_in_the_state_folder_and_a_dead_nodes_are_removed(
    tmp_path: Path,
) -> None:
    spools = tmp_path / ".skylift" / "s3-spool"
    host = socket.gethostname()
    left = spools / f"{host}-{dead_pid()}"  # a node of this host killed mid-upload
    left.mkdir(parents=True)
    (left / "0123.upload").write_bytes(b"x" * 1024)
    elsewhere = spools / "another-host-1"  # another host's node sharing the folder
    elsewhere.mkdir()
    store = S3Store(parse("s3+http://127.0.0.1:9/x-"), spools=spools)
    assert store.spool == spools / f"{host}-{os.getpid()}" and store.spool.is_dir()
    assert not left.exists() and elsewhere.is_dir()
    store.close()
    assert not store.spool.exists() and elsewhere.is_dir()


def dead_pid() -> int:
    """A pid no process has now: a child's, once reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid

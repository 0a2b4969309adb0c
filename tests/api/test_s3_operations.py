"""CopyObject, DeleteObjects, tagging, conditional writes, stored headers, checksums,
bucket policies and locations, through the real boto3 client and raw HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from api.s3_support import client, error_of, events, root, s3, serve, url
from skylift.api import S3Api
from skylift.storage import DirectoryStore

__all__ = ["events", "root", "s3", "url"]  # fixtures used below

MiB = 1024 * 1024


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


# -- PutObject --


def test_a_large_put_streams_to_disk_without_holding_the_body(s3: Any, url: str) -> None:
    size = 64 * MiB

    def body() -> Iterator[bytes]:
        block = b"z" * MiB
        for _ in range(size // MiB):
            yield block

    tracemalloc.start()
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            put = http.put("/bkt/huge", content=body(), headers={"content-length": str(size)})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert put.status_code == 200
    assert put.headers["etag"] == f'"{hashlib.md5(b"z" * size).hexdigest()}"'
    # Client and server share this process: both together stay far below the body's size.
    assert peak < 16 * MiB, peak
    assert s3.head_object(Bucket="bkt", Key="huge")["ContentLength"] == size


def test_a_put_cut_short_leaves_no_object_and_no_temporary_file(
    s3: Any, url: str, root: Path
) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(
            b"PUT /bkt/cut HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"a" * 5000
        )
        tmp = root / "bkt" / ".skylift" / "tmp"
        deadline = time.monotonic() + 10
        while not any(tmp.glob("*")):  # the body is being received
            assert time.monotonic() < deadline
            time.sleep(0.01)
    deadline = time.monotonic() + 10
    while any(tmp.glob("*")):
        assert time.monotonic() < deadline, list(tmp.glob("*"))
        time.sleep(0.01)
    assert "Contents" not in s3.list_objects_v2(Bucket="bkt")


def test_system_headers_are_stored_and_returned(s3: Any) -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    s3.put_object(
        Bucket="bkt",
        Key="page.html.gz",
        Body=b"...",
        ContentType="text/html",
        CacheControl="max-age=3600, public",
        ContentDisposition='attachment; filename="page.html"',
        ContentEncoding="gzip",
        ContentLanguage="de-CH",
        Expires=expires,
    )
    for answer in (
        s3.get_object(Bucket="bkt", Key="page.html.gz"),
        s3.head_object(Bucket="bkt", Key="page.html.gz"),
    ):
        assert answer["CacheControl"] == "max-age=3600, public"
        assert answer["ContentDisposition"] == 'attachment; filename="page.html"'
        assert answer["ContentEncoding"] == "gzip"
        assert answer["ContentLanguage"] == "de-CH"
        assert answer["Expires"] == expires
        assert answer["ServerSideEncryption"] == "AES256"


def test_checksums_are_verified_stored_and_returned_on_request(s3: Any, url: str) -> None:
    put = s3.put_object(Bucket="bkt", Key="k", Body=b"data", ChecksumAlgorithm="SHA256")
    sha = base64.b64encode(hashlib.sha256(b"data").digest()).decode()
    assert put["ChecksumSHA256"] == sha
    assert put["ServerSideEncryption"] == "AES256"
    plain = s3.head_object(Bucket="bkt", Key="k")
    assert "ChecksumSHA256" not in plain
    asked = s3.head_object(Bucket="bkt", Key="k", ChecksumMode="ENABLED")
    assert (asked["ChecksumSHA256"], asked["ChecksumType"]) == (sha, "FULL_OBJECT")
    got = s3.get_object(Bucket="bkt", Key="k", ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == sha
    # boto3's default: a CRC32 the server checks.
    s3.put_object(Bucket="bkt", Key="default", Body=b"hello")
    assert s3.head_object(Bucket="bkt", Key="default", ChecksumMode="ENABLED")[
        "ChecksumCRC32"
    ] == crc32(b"hello")
    with httpx.Client(base_url=url) as http:
        bad = http.put("/bkt/k", content=b"DATA", headers={"x-amz-checksum-sha256": sha})
    assert (bad.status_code, "<Code>BadDigest</Code>" in bad.text) == (400, True)
    assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == b"data"
    attributes = s3.get_object_attributes(Bucket="bkt", Key="k", ObjectAttributes=["Checksum"])
    assert attributes["Checksum"] == {"ChecksumSHA256": sha, "ChecksumType": "FULL_OBJECT"}


@pytest.mark.parametrize("algorithm", ["CRC32C", "CRC64NVME"])
def test_crc32c_and_crc64nvme_are_verified(s3: Any, url: str, algorithm: str) -> None:
    from awscrt import checksums

    compute = checksums.crc32c if algorithm == "CRC32C" else checksums.crc64nvme
    size = 4 if algorithm == "CRC32C" else 8
    expected = base64.b64encode(compute(b"hello", 0).to_bytes(size, "big")).decode()
    put = s3.put_object(Bucket="bkt", Key="c", Body=b"hello", ChecksumAlgorithm=algorithm)
    assert put[f"Checksum{algorithm}"] == expected
    header = f"x-amz-checksum-{algorithm.lower()}"
    with httpx.Client(base_url=url) as http:
        bad = http.put("/bkt/c", content=b"HELLO", headers={header: expected})
    assert (bad.status_code, "<Code>BadDigest</Code>" in bad.text) == (400, True)
    assert s3.get_object(Bucket="bkt", Key="c")["Body"].read() == b"hello"


def test_conditional_writes(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="once", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="bkt", Key="once", Body=b"second", IfNoneMatch="*")
    assert error_of(caught) == ("PreconditionFailed", 412)
    etag = s3.head_object(Bucket="bkt", Key="once")["ETag"]
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="bkt", Key="once", Body=b"third", IfMatch='"00000000"')
    assert error_of(caught) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="bkt", Key="missing", Body=b"x", IfMatch=etag)
    assert error_of(caught) == ("NoSuchKey", 404)
    assert s3.get_object(Bucket="bkt", Key="once")["Body"].read() == b"first"
    s3.put_object(Bucket="bkt", Key="once", Body=b"fourth", IfMatch=etag)
    assert s3.get_object(Bucket="bkt", Key="once")["Body"].read() == b"fourth"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]] == ["once"]


def test_a_write_that_lands_during_a_conditional_upload_makes_it_409(
    s3: Any, url: str, root: Path
) -> None:
    release = threading.Event()

    def body() -> Iterator[bytes]:
        yield b"first half, "
        release.wait(10)
        yield b"second half"

    answers: list[httpx.Response] = []

    def conditional_put() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            headers = {"if-none-match": "*", "content-length": "23"}
            answers.append(http.put("/bkt/race", content=body(), headers=headers))

    thread = threading.Thread(target=conditional_put)
    thread.start()
    tmp = root / "bkt" / ".skylift" / "tmp"
    deadline = time.monotonic() + 10
    while not any(tmp.glob("*")):  # the condition held; its body is being received
        assert time.monotonic() < deadline
        time.sleep(0.01)
    s3.put_object(Bucket="bkt", Key="race", Body=b"the other writer")
    release.set()
    thread.join(15)
    (answer,) = answers
    assert answer.status_code == 409
    assert "<Code>ConditionalRequestConflict</Code>" in answer.text
    assert s3.get_object(Bucket="bkt", Key="race")["Body"].read() == b"the other writer"
    assert not any(tmp.glob("*"))


def test_storage_classes_s3_refuses_are_refused(s3: Any, url: str) -> None:
    s3.put_object(Bucket="bkt", Key="ia", Body=b"x", StorageClass="STANDARD_IA")
    assert s3.head_object(Bucket="bkt", Key="ia")["StorageClass"] == "STANDARD_IA"
    assert s3.list_objects_v2(Bucket="bkt")["Contents"][0]["StorageClass"] == "STANDARD_IA"
    for storage_class in ("EXPRESS_ONEZONE", "OUTPOSTS", "CHEAP"):
        with httpx.Client(base_url=url) as http:
            refused = http.put(
                "/bkt/no", content=b"x", headers={"x-amz-storage-class": storage_class}
            )
        assert refused.status_code == 400
        assert "<Code>InvalidStorageClass</Code>" in refused.text
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]] == ["ia"]


# -- copies and deletes --


def test_copy_object_keeps_or_replaces_metadata_and_fires_copy(s3: Any, events: list[Any]) -> None:
    s3.create_bucket(Bucket="other")
    s3.put_object(
        Bucket="bkt",
        Key="src",
        Body=b"payload",
        ContentType="text/plain",
        Metadata={"a": "1"},
        Tagging="team=blue",
    )
    events.clear()
    copied = s3.copy_object(Bucket="other", Key="dst", CopySource={"Bucket": "bkt", "Key": "src"})
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"payload").hexdigest()}"'
    got = s3.get_object(Bucket="other", Key="dst")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (
        b"payload",
        "text/plain",
        {"a": "1"},
    )
    assert s3.get_object_tagging(Bucket="other", Key="dst")["TagSet"] == [
        {"Key": "team", "Value": "blue"}
    ]
    s3.copy_object(
        Bucket="bkt",
        Key="src",
        CopySource="bkt/src",
        MetadataDirective="REPLACE",
        ContentType="application/json",
        Metadata={"b": "2"},
    )
    head = s3.head_object(Bucket="bkt", Key="src")
    assert (head["ContentType"], head["Metadata"]) == ("application/json", {"b": "2"})
    assert [(e[0], e[1], e[2].key) for e in events] == [
        ("ObjectCreated:Copy", "other", "dst"),
        ("ObjectCreated:Copy", "bkt", "src"),
    ]
    with pytest.raises(ClientError) as caught:
        s3.copy_object(Bucket="bkt", Key="src", CopySource="bkt/src")
    assert error_of(caught) == ("InvalidRequest", 400)  # onto itself, changing nothing
    with pytest.raises(ClientError) as caught:
        s3.copy_object(Bucket="bkt", Key="x", CopySource="bkt/missing")
    assert error_of(caught) == ("NoSuchKey", 404)


def test_copy_source_conditions(s3: Any) -> None:
    etag = s3.put_object(Bucket="bkt", Key="src", Body=b"v1")["ETag"]
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    for options in (
        {"CopySourceIfMatch": '"0000"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfUnmodifiedSince": earlier},
        {"CopySourceIfModifiedSince": datetime.now(UTC)},  # not modified since now
    ):
        with pytest.raises(ClientError) as caught:
            s3.copy_object(Bucket="bkt", Key="dst", CopySource="bkt/src", **options)
        assert error_of(caught) == ("PreconditionFailed", 412), options
    s3.copy_object(Bucket="bkt", Key="dst", CopySource="bkt/src", CopySourceIfMatch=etag)
    s3.copy_object(
        Bucket="bkt", Key="dst2", CopySource="bkt/src", CopySourceIfModifiedSince=earlier
    )
    assert {o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]} == {
        "src",
        "dst",
        "dst2",
    }


def test_delete_objects_verbose_and_quiet_with_per_key_errors(s3: Any, events: list[Any]) -> None:
    for key in ("a", "b", "c"):
        s3.put_object(Bucket="bkt", Key=key, Body=b"x")
    events.clear()
    answer = s3.delete_objects(
        Bucket="bkt",
        Delete={"Objects": [{"Key": "a"}, {"Key": "never-there"}, {"Key": "../escape"}]},
    )
    assert sorted(d["Key"] for d in answer["Deleted"]) == ["a", "never-there"]
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [("../escape", "InvalidArgument")]
    quiet = s3.delete_objects(Bucket="bkt", Delete={"Objects": [{"Key": "b"}], "Quiet": True})
    assert "Deleted" not in quiet and "Errors" not in quiet
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]] == ["c"]
    assert [(e[0], e[2]) for e in events] == [
        ("ObjectRemoved:Delete", "a"),
        ("ObjectRemoved:Delete", "b"),
    ]


# -- tagging --


def test_object_tagging(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="k", Body=b"x", Tagging="project=blue&cost%20centre=42")
    assert s3.get_object(Bucket="bkt", Key="k")["TagCount"] == 2
    tags = s3.get_object_tagging(Bucket="bkt", Key="k")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [
        ("cost centre", "42"),
        ("project", "blue"),
    ]
    s3.put_object_tagging(
        Bucket="bkt", Key="k", Tagging={"TagSet": [{"Key": "only", "Value": "one"}]}
    )
    assert s3.get_object_tagging(Bucket="bkt", Key="k")["TagSet"] == [
        {"Key": "only", "Value": "one"}
    ]
    too_many = [{"Key": f"k{n}", "Value": "v"} for n in range(11)]
    with pytest.raises(ClientError) as caught:
        s3.put_object_tagging(Bucket="bkt", Key="k", Tagging={"TagSet": too_many})
    assert error_of(caught)[1] == 400
    s3.delete_object_tagging(Bucket="bkt", Key="k")
    assert s3.get_object_tagging(Bucket="bkt", Key="k")["TagSet"] == []
    assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == b"x"  # bytes untouched
    with pytest.raises(ClientError) as caught:
        s3.get_object_tagging(Bucket="bkt", Key="missing")
    assert error_of(caught) == ("NoSuchKey", 404)


# -- buckets --


def test_head_bucket_location_and_policy(s3: Any) -> None:
    head = s3.head_bucket(Bucket="bkt")
    assert head["BucketRegion"] == "us-east-1"
    assert s3.get_bucket_location(Bucket="bkt")["LocationConstraint"] is None
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_policy(Bucket="bkt")
    assert error_of(caught) == ("NoSuchBucketPolicy", 404)
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::bkt/*",
                }
            ],
        }
    )
    s3.put_bucket_policy(Bucket="bkt", Policy=policy)
    assert json.loads(s3.get_bucket_policy(Bucket="bkt")["Policy"]) == json.loads(policy)
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_policy(Bucket="bkt", Policy="not json")
    assert error_of(caught) == ("MalformedPolicy", 400)
    assert json.loads(s3.get_bucket_policy(Bucket="bkt")["Policy"]) == json.loads(policy)
    s3.delete_bucket_policy(Bucket="bkt")
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_policy(Bucket="bkt")
    assert error_of(caught) == ("NoSuchBucketPolicy", 404)


def test_location_of_a_bucket_in_another_region(root: Path) -> None:
    with serve(S3Api(DirectoryStore(root), region="eu-west-1")) as base:
        s3 = client(base)
        s3.create_bucket(
            Bucket="eu-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        assert s3.get_bucket_location(Bucket="eu-bucket")["LocationConstraint"] == "eu-west-1"


def test_bad_location_constraints_on_us_east_1(url: str) -> None:
    s3 = client(url)
    with pytest.raises(ClientError) as caught:
        s3.create_bucket(
            Bucket="elsewhere", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    assert error_of(caught) == ("IllegalLocationConstraintException", 400)
    assert "eu-west-1 location constraint is incompatible" in str(caught.value)
    assert s3.list_buckets()["Buckets"] == []

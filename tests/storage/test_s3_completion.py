"""How ``S3Store`` puts a joined or re-recorded object in place on a real S3-compatible
server: uploads with a full-object checksum are joined under a staging key and copied
into place only when they check out; objects over CopyObject's limit are copied in
ranges (the limit is lowered here, never a 5 GiB object)."""

from __future__ import annotations

import base64
import os
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
from skylift.storage.errors import PreconditionFailed
from skylift.storage.protocol import Attributes, Condition, ObjectInfo
from skylift.storage.s3_multipart import STAGING
from skylift.storage.s3_store import S3Store
from skylift.storage.s3_url import parse
from storage.conformance import Blocking
from storage.s3_server import moto_server, s3_endpoint

__all__ = ["moto_server", "s3_endpoint"]  # fixtures, used by name

MiB = 1024 * 1024
CLIENT = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
ONCE = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@pytest.fixture
def store(s3_endpoint: str, tmp_path: Path) -> Iterator[S3Store]:
    backend = S3Store(parse(s3_endpoint.replace("http://", "s3+http://", 1)), spool=tmp_path)
    yield backend
    backend.close()


@pytest.fixture
def endpoint(s3_endpoint: str) -> Any:
    """A client of the endpoint itself (what any other S3 client of it sees)."""
    return boto3.client("s3", endpoint_url=s3_endpoint, config=ONCE, **CLIENT)


def test_a_bad_full_object_checksum_through_the_s3_api_keeps_the_earlier_object(
    store: S3Store, endpoint: Any
) -> None:
    with serve(S3Api(store, region="us-east-1")) as base:
        s3 = boto3.client("s3", endpoint_url=base, config=ONCE, **CLIENT)
        s3.create_bucket(Bucket="bkt")
        s3.put_object(Bucket="bkt", Key="k", Body=b"earlier")
        upload = s3.create_multipart_upload(
            Bucket="bkt", Key="k", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
        )["UploadId"]
        first, last = os.urandom(5 * MiB), b"last"
        parts = []
        for number, data in ((1, first), (2, last)):
            answer = s3.upload_part(
                Bucket="bkt", Key="k", UploadId=upload, PartNumber=number, Body=data
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        with pytest.raises(ClientError) as caught:
            s3.complete_multipart_upload(
                Bucket="bkt",
                Key="k",
                UploadId=upload,
                MultipartUpload={"Parts": parts},
                ChecksumCRC32=crc32(b"something else"),
                ChecksumType="FULL_OBJECT",
            )
        error = caught.value.response["Error"]
        assert (error["Code"], error["Message"]) == (
            "BadDigest",
            "The CRC32 you specified did not match the calculated checksum.",
        )
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == b"earlier"
    listed = endpoint.list_objects_v2(Bucket="bkt")
    assert [o["Key"] for o in listed["Contents"]] == ["k"]  # no staged object left


def test_a_staged_upload_is_listed_and_driven_by_its_own_key(store: S3Store, endpoint: Any) -> None:
    blocking = Blocking(store)
    try:
        blocking.create_bucket("bkt")
        upload = blocking.create_upload(
            "bkt", "k", Attributes(), checksum_algorithm="CRC32", checksum_type="FULL_OBJECT"
        )
        outside = endpoint.list_multipart_uploads(Bucket="bkt")["Uploads"]
        (staged_key,) = [u["Key"] for u in outside]
        assert staged_key.startswith(STAGING) and staged_key.endswith("/k")
        (listed,) = blocking.list_uploads("bkt")
        assert (listed.key, listed.checksum_type) == ("k", "FULL_OBJECT")
        data = os.urandom(1000)
        blocking.upload_part(upload, 1, data)
        # The listed id (no algorithm) works as the one CreateMultipartUpload gave.
        _, parts = blocking.get_upload("bkt", "k", listed.upload_id)
        info = blocking.complete_upload(listed, [(1, parts[0].etag)])
        assert blocking.get_object("bkt", "k")[1] == data
        assert (info.size, info.parts) == (1000, 1)
        assert blocking.list_uploads("bkt") == []
        keys = endpoint.list_objects_v2(Bucket="bkt")["Contents"]
        assert [o["Key"] for o in keys] == ["k"]
    finally:
        blocking.close()


@pytest.mark.parametrize("kind", [None, "FULL_OBJECT"])
def test_objects_over_the_copy_limit_are_completed_and_tagged_by_ranges(
    store: S3Store, endpoint: Any, kind: str | None
) -> None:
    store.copy_limit = 5 * MiB  # CopyObject's 5 GiB, lowered
    blocking = Blocking(store)
    try:
        blocking.create_bucket("bkt")
        first, last = os.urandom(5 * MiB), os.urandom(1000)
        upload = blocking.create_upload(
            "bkt",
            "big",
            Attributes(tags={"a": "1"}),
            checksum_algorithm="CRC32" if kind else None,
            checksum_type=kind,
        )
        parts = [blocking.upload_part(upload, n, d) for n, d in ((1, first), (2, last))]
        done = blocking.complete_upload(upload, [(p.number, p.etag) for p in parts])
        tagged = blocking.set_tags("bkt", "big", {"b": "2"})
        info, data = blocking.get_object("bkt", "big")
        assert data == first + last
        assert (info.etag, info.tags, info.parts) == (done.etag, {"b": "2"}, 2)
        if kind:
            assert info.checksum == tagged.checksum == done.checksum
            assert done.checksum is not None and done.checksum.value == crc32(first + last)
        keys = endpoint.list_objects_v2(Bucket="bkt")["Contents"]
        assert [o["Key"] for o in keys] == ["big"]
        assert endpoint.list_multipart_uploads(Bucket="bkt").get("Uploads", []) == []
    finally:
        blocking.close()


def test_a_single_part_object_over_the_copy_limit_is_tagged_by_ranges(
    store: S3Store, endpoint: Any
) -> None:
    store.copy_limit = 5 * MiB  # CopyObject's 5 GiB, lowered
    blocking = Blocking(store)
    try:
        blocking.create_bucket("bkt")
        data = os.urandom(5 * MiB + 1)
        put = blocking.put_object("bkt", "one", data)
        blocking.set_tags("bkt", "one", {"b": "2"})
        info, read = blocking.get_object("bkt", "one")
        assert (read, info.etag, info.tags) == (data, put.etag, {"b": "2"})
        # The endpoint's object is now a multipart copy of two ranges (a CopyObject
        # would have kept the single-part ETag).
        head = endpoint.head_object(Bucket="bkt", Key="one")
        assert head["ETag"].endswith('-2"')
    finally:
        blocking.close()


def test_a_staged_upload_keeps_its_completions_conditions(store: S3Store) -> None:
    blocking = Blocking(store)
    try:
        blocking.create_bucket("bkt")

        def completed(data: bytes, condition: Condition) -> ObjectInfo:
            upload = blocking.create_upload(
                "bkt", "k", Attributes(), checksum_algorithm="CRC32", checksum_type="FULL_OBJECT"
            )
            part = blocking.upload_part(upload, 1, data)
            return blocking.complete_upload(upload, [(1, part.etag)], condition=condition)

        first = completed(b"first", Condition(if_none_match=True))
        with pytest.raises(PreconditionFailed):
            completed(b"second", Condition(if_none_match=True))
        with pytest.raises(PreconditionFailed):
            completed(b"second", Condition(if_match='"0123"'))
        assert blocking.get_object("bkt", "k")[1] == b"first"
        completed(b"third", Condition(if_match=first.etag))
        assert blocking.get_object("bkt", "k")[1] == b"third"
        assert [o.key for o in blocking.list_objects("bkt").objects] == ["k"]
    finally:
        blocking.close()

"""``S3Store``'s staging prefix on a real S3-compatible server: a staged completion that
fails after the endpoint joined the parts (a 412, a 503) stays retryable, staged objects
are skylift's own (hidden, refused to clients, no obstacle to DeleteBucket), and every
upload has its own staging key."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from api.s3_support import serve
from skylift.api import S3Api
from skylift.storage.errors import (
    BucketNotEmpty,
    InvalidArgument,
    InvalidPart,
    NoSuchUpload,
    PreconditionFailed,
    ServiceUnavailable,
)
from skylift.storage.protocol import Attributes, Condition, Upload
from skylift.storage.s3_staging import STAGING
from skylift.storage.s3_store import S3Store
from skylift.storage.s3_url import parse
from storage.conformance import Blocking
from storage.s3_server import moto_server, s3_endpoint

__all__ = ["moto_server", "s3_endpoint"]  # fixtures, used by name

CLIENT = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
ONCE = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
FULL = {"checksum_algorithm": "CRC32", "checksum_type": "FULL_OBJECT"}


@pytest.fixture
def store(s3_endpoint: str, tmp_path: Path) -> Iterator[Blocking]:
    backend = S3Store(parse(s3_endpoint.replace("http://", "s3+http://", 1)), spool=tmp_path)
    blocking = Blocking(backend)
    blocking.create_bucket("bkt")
    yield blocking
    blocking.close()
    backend.close()


@pytest.fixture
def endpoint(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint, config=ONCE, **CLIENT)


def staged_upload(store: Blocking, data: bytes, key: str = "k") -> tuple[Upload, list[Any]]:
    upload = store.create_upload("bkt", key, Attributes(metadata={"m": "1"}), **FULL)
    part = store.upload_part(upload, 1, data)
    return upload, [(1, part.etag)]


def raced(store: Blocking, endpoint: Any) -> None:
    """Another node writes `k` between this completion's check and its copy, which the
    endpoint fails with a 412 as S3 does (moto checks no conditions on CopyObject)."""
    backend: Any = store.store
    real = backend.endpoint.call

    def racing(operation: str, **params: Any) -> Any:
        if operation == "copy_object" and params["Key"] == "k":
            backend.endpoint.call = real
            endpoint.put_object(Bucket="bkt", Key="k", Body=b"other node")
            assert params["IfNoneMatch"] == "*"
            raise PreconditionFailed("If-None-Match")
        return real(operation, **params)

    backend.endpoint.call = racing


def endpoint_keys(endpoint: Any) -> list[str]:
    return [o["Key"] for o in endpoint.list_objects_v2(Bucket="bkt").get("Contents", [])]


def test_a_failed_precondition_after_the_join_leaves_the_upload_retryable(
    store: Blocking, endpoint: Any
) -> None:
    upload, parts = staged_upload(store, b"later")
    raced(store, endpoint)
    with pytest.raises(PreconditionFailed):
        store.complete_upload(upload, parts, condition=Condition(if_none_match=True))
    assert endpoint.get_object(Bucket="bkt", Key="k")["Body"].read() == b"other node"
    endpoint.delete_object(Bucket="bkt", Key="k")
    info = store.complete_upload(upload, parts, condition=Condition(if_none_match=True))
    got, data = store.get_object("bkt", "k")
    assert data == b"later"
    assert (got.etag, got.metadata, got.parts) == (info.etag, {"m": "1"}, 1)
    assert endpoint_keys(endpoint) == ["k"]  # the staged object went with the copy
    with pytest.raises(NoSuchUpload):
        store.complete_upload(upload, parts)


def test_a_transient_failure_after_the_join_leaves_the_upload_retryable(
    store: Blocking, endpoint: Any
) -> None:
    data = os.urandom(1000)
    upload, parts = staged_upload(store, data)
    backend: Any = store.store
    real = backend.endpoint.call
    failures = []

    def flaky(operation: str, **params: Any) -> Any:
        if operation == "copy_object" and not failures:  # the endpoint's 503, once
            failures.append(operation)
            raise ServiceUnavailable("the test's endpoint failed the copy")
        return real(operation, **params)

    backend.endpoint.call = flaky
    with pytest.raises(ServiceUnavailable):
        store.complete_upload(upload, parts)
    assert failures == ["copy_object"]
    with pytest.raises(NoSuchUpload):  # another upload id is not this one
        store.complete_upload(replace(upload, upload_id="x.y.z"), parts)
    forged = upload.upload_id.replace("FULL_OBJECT-", "FULL_OBJECT-../", 1)
    with pytest.raises(NoSuchUpload):  # a token is never a path
        store.complete_upload(replace(upload, upload_id=forged), parts)
    with pytest.raises(InvalidPart):  # other parts are not these
        store.complete_upload(upload, [(1, '"' + "0" * 32 + '"')])
    store.complete_upload(upload, parts)
    assert store.get_object("bkt", "k")[1] == data
    assert endpoint_keys(endpoint) == ["k"]


def test_aborting_an_upload_whose_completion_failed_removes_its_staged_object(
    store: Blocking, endpoint: Any
) -> None:
    upload, parts = staged_upload(store, b"later")
    raced(store, endpoint)
    with pytest.raises(PreconditionFailed):
        store.complete_upload(upload, parts, condition=Condition(if_none_match=True))
    store.abort_upload("bkt", "k", upload.upload_id)
    assert endpoint_keys(endpoint) == ["k"]
    with pytest.raises(NoSuchUpload):
        store.abort_upload("bkt", "k", upload.upload_id)


def test_staged_objects_are_hidden_and_never_block_deleting_the_bucket(
    store: Blocking, endpoint: Any
) -> None:
    upload, parts = staged_upload(store, b"later")
    raced(store, endpoint)
    with pytest.raises(PreconditionFailed):
        store.complete_upload(upload, parts, condition=Condition(if_none_match=True))
    assert any(key.startswith(STAGING) for key in endpoint_keys(endpoint))
    store.put_object("bkt", "k", b"x")  # as skylift writes it (with its record)
    assert [o.key for o in store.list_objects("bkt").objects] == ["k"]
    listed = store.list_objects("bkt", delimiter="/")
    assert ([o.key for o in listed.objects], listed.common_prefixes) == (["k"], [])
    assert store.list_objects("bkt", prefix=STAGING).objects == []
    store.delete_object("bkt", "k")
    store.delete_bucket("bkt")
    assert "bkt" not in [b["Name"] for b in endpoint.list_buckets()["Buckets"]]


def test_keys_under_the_staging_prefix_are_refused_to_clients(
    store: Blocking, endpoint: Any
) -> None:
    key = STAGING + "x"
    attempts = [
        lambda: store.put_object("bkt", key, b"x"),
        lambda: store.get_object("bkt", key),
        lambda: store.head_object("bkt", key),
        lambda: store.delete_object("bkt", key),
        lambda: store.create_upload("bkt", key, Attributes()),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidArgument) as caught:
            attempt()
        assert caught.value.details()["ArgumentValue"] == key
        assert "reserved" in str(caught.value)
    assert endpoint_keys(endpoint) == []
    # An upload made under the prefix by another client of the endpoint is not listed.
    endpoint.create_multipart_upload(Bucket="bkt", Key=key)
    assert store.list_uploads("bkt") == []


def test_every_staged_upload_has_its_own_staging_key(store: Blocking, endpoint: Any) -> None:
    first, first_parts = staged_upload(store, b"first")
    second, second_parts = staged_upload(store, b"second")
    keys = [u["Key"] for u in endpoint.list_multipart_uploads(Bucket="bkt")["Uploads"]]
    assert len(set(keys)) == 2 and all(k.startswith(STAGING) for k in keys)
    # (moto lists no checksum algorithm: the ids differ in it, not in the rest)
    listed = sorted(u.upload_id.split(".", 1)[1] for u in store.list_uploads("bkt"))
    assert listed == sorted(u.upload_id.split(".", 1)[1] for u in (first, second))
    store.complete_upload(first, first_parts)
    store.complete_upload(second, second_parts)
    assert store.get_object("bkt", "k")[1] == b"second"
    assert endpoint_keys(endpoint) == ["k"]


def test_a_key_too_long_for_a_staging_key_is_joined_in_place(
    store: Blocking, endpoint: Any
) -> None:
    key = "k" * 1000
    upload, parts = staged_upload(store, b"data", key)
    assert [u["Key"] for u in endpoint.list_multipart_uploads(Bucket="bkt")["Uploads"]] == [key]
    (listed,) = store.list_uploads("bkt")
    assert listed.upload_id.split(".")[-1] == upload.upload_id.split(".")[-1]
    store.complete_upload(upload, parts)
    assert store.get_object("bkt", key)[1] == b"data"


def test_the_s3_api_answers_a_reserved_key_with_invalid_argument(store: Blocking) -> None:
    backend: Any = store.store
    with serve(S3Api(backend, region="us-east-1")) as base:
        s3 = boto3.client("s3", endpoint_url=base, config=ONCE, **CLIENT)
        with pytest.raises(ClientError) as caught:
            s3.put_object(Bucket="bkt", Key=STAGING + "x", Body=b"x")
        error = caught.value.response["Error"]
        assert error["Code"] == "InvalidArgument"
        assert "reserved" in error["Message"]
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert s3.list_objects_v2(Bucket="bkt").get("Contents", []) == []


def test_a_bucket_with_a_client_object_keeps_its_staged_objects_when_delete_fails(
    store: Blocking, endpoint: Any
) -> None:
    # More staged leftovers than one listing page holds, and a client's object sorting
    # after them: DeleteBucket fails as S3's does and removes nothing.
    with ThreadPoolExecutor(8) as pool:
        keys = [f"{STAGING}{number:032x}/k" for number in range(1001)]
        list(pool.map(lambda key: endpoint.put_object(Bucket="bkt", Key=key, Body=b""), keys))
    store.put_object("bkt", "k", b"x")
    with pytest.raises(BucketNotEmpty):
        store.delete_bucket("bkt")
    assert len(endpoint_keys_all(endpoint)) == 1002
    store.delete_object("bkt", "k")
    store.delete_bucket("bkt")
    assert "bkt" not in [b["Name"] for b in endpoint.list_buckets()["Buckets"]]


def endpoint_keys_all(endpoint: Any) -> list[str]:
    pages = endpoint.get_paginator("list_objects_v2").paginate(Bucket="bkt")
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_staged_objects_the_endpoint_will_not_delete_fail_delete_bucket_at_once(
    store: Blocking, endpoint: Any
) -> None:
    for number in range(3):
        endpoint.put_object(Bucket="bkt", Key=f"{STAGING}{number:032x}/k", Body=b"")
    backend: Any = store.store
    real = backend.endpoint.call
    listings = []

    def denying(operation: str, **params: Any) -> Any:
        if operation == "list_objects_v2" and params.get("Prefix") == STAGING:
            listings.append(params)
            assert len(listings) < 10, "listed the same staged objects again and again"
            params["MaxKeys"] = 1  # pages of one: the listing is truncated
        if operation == "delete_objects":  # as an endpoint that denies s3:DeleteObject
            keys = params["Delete"]["Objects"]
            return {"Errors": [{"Key": k["Key"], "Code": "AccessDenied"} for k in keys]}
        return real(operation, **params)

    backend.endpoint.call = denying
    with pytest.raises(BucketNotEmpty):
        store.delete_bucket("bkt")
    assert len(endpoint_keys_all(endpoint)) == 3

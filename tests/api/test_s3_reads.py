"""Reads and listings as S3 answers them: ranges, conditions, presigned URLs of both
kinds, listing details, virtual-hosted addressing and error wording."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.config
import httpx
import pytest
from botocore.exceptions import ClientError

from api.s3_support import SESSION, error_of, events, root, s3, url

__all__ = ["events", "root", "s3", "url"]  # fixtures used below


# -- ranges and conditions --


def test_ranges_as_s3_answers_them(s3: Any, url: str) -> None:
    etag = s3.put_object(Bucket="bkt", Key="abc", Body=b"0123456789", CacheControl="no-cache")[
        "ETag"
    ]
    with httpx.Client(base_url=url) as http:
        part = http.get("/bkt/abc", headers={"range": "bytes=2-5"})
        assert part.status_code == 206
        assert part.content == b"2345"
        assert part.headers["content-range"] == "bytes 2-5/10"
        assert part.headers["content-length"] == "4"
        assert (part.headers["etag"], part.headers["cache-control"]) == (etag, "no-cache")
        assert part.headers["accept-ranges"] == "bytes"
        # S3 serves one range per request; several ranges, or a reversed one, get it all.
        for header in ("bytes=0-1,4-5", "bytes=5-2"):
            whole = http.get("/bkt/abc", headers={"range": header})
            assert (whole.status_code, whole.content) == (200, b"0123456789")
        for header in ("bytes=10-", "bytes=20-30"):
            refused = http.get("/bkt/abc", headers={"range": header})
            assert refused.status_code == 416
            assert "<Code>InvalidRange</Code>" in refused.text
            assert "<ActualObjectSize>10</ActualObjectSize>" in refused.text
            assert refused.headers["content-range"] == "bytes */10"
        s3.put_object(Bucket="bkt", Key="empty", Body=b"")
        assert http.get("/bkt/empty", headers={"range": "bytes=0-"}).status_code == 416
        tail = http.get("/bkt/empty", headers={"range": "bytes=-5"})
        assert (tail.status_code, tail.content) == (200, b"")
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket="bkt", Key="missing", Range="bytes=0-1")
    assert error_of(caught) == ("NoSuchKey", 404)


def test_no_such_key_names_the_key_only(url: str, s3: Any) -> None:
    with httpx.Client(base_url=url) as http:
        missing = http.get("/bkt/nothing/here")
    assert missing.status_code == 404
    assert "<Code>NoSuchKey</Code>" in missing.text
    assert "<Message>The specified key does not exist.</Message>" in missing.text
    assert "<Key>nothing/here</Key>" in missing.text
    assert "<BucketName>" not in missing.text


def test_a_future_if_modified_since_is_ignored(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="k", Body=b"x")
    future = datetime.now(UTC) + timedelta(days=1)
    got = s3.get_object(Bucket="bkt", Key="k", IfModifiedSince=future)
    assert got["Body"].read() == b"x"
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket="bkt", Key="k", IfModifiedSince=datetime.now(UTC))
    assert error_of(caught) == ("304", 304)


# -- presigned URLs --


def test_presigned_urls_of_both_kinds_and_their_expiry(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="shared file.txt", Body=b"for you")
    params = {"Bucket": "bkt", "Key": "shared file.txt"}
    v2 = s3.generate_presigned_url("get_object", Params=params)
    assert "AWSAccessKeyId=" in v2  # boto3's default for S3
    v4_config = botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"})
    v4_client = SESSION.client("s3", endpoint_url=s3.meta.endpoint_url, config=v4_config)
    v4 = v4_client.generate_presigned_url("get_object", Params=params)
    assert "X-Amz-Signature=" in v4
    for link in (v2, v4):
        assert httpx.get(link).content == b"for you"
    put_link = v4_client.generate_presigned_url(
        "put_object", Params={"Bucket": "bkt", "Key": "uploaded"}
    )
    assert httpx.put(put_link, content=b"via link").status_code == 200
    assert s3.get_object(Bucket="bkt", Key="uploaded")["Body"].read() == b"via link"

    for expired in (
        s3.generate_presigned_url("get_object", Params=params, ExpiresIn=-10),
        v4_client.generate_presigned_url("get_object", Params=params, ExpiresIn=1),
    ):
        if "X-Amz-Date" in expired:
            # Signed two seconds ago for one second: rewrite the date rather than sleep.
            signed = (datetime.now(UTC) - timedelta(seconds=5)).strftime("%Y%m%dT%H%M%SZ")
            expired = expired.replace(expired.split("X-Amz-Date=")[1].split("&")[0], signed)
        refused = httpx.get(expired)
        assert refused.status_code == 403, expired
        assert "<Code>AccessDenied</Code>" in refused.text
        assert "<Message>Request has expired</Message>" in refused.text


# -- listings --


def test_list_objects_v1_entries_carry_owner_and_next_marker_only_with_a_delimiter(
    s3: Any,
) -> None:
    for key in ("a", "b", "c/1", "d"):
        s3.put_object(Bucket="bkt", Key=key, Body=b"x")
    page = s3.list_objects(Bucket="bkt", MaxKeys=2)
    assert page["IsTruncated"] is True
    assert "NextMarker" not in page
    assert set(page["Contents"][0]["Owner"]) == {"ID"}  # S3 no longer sends DisplayName
    page = s3.list_objects(Bucket="bkt", MaxKeys=3, Delimiter="/")
    assert page["NextMarker"] == "c/"
    v2 = s3.list_objects_v2(Bucket="bkt")
    assert "Owner" not in v2["Contents"][0]
    assert "Owner" in s3.list_objects_v2(Bucket="bkt", FetchOwner=True)["Contents"][0]


def test_list_objects_v2_echoes_start_after_only_without_a_token(s3: Any) -> None:
    for key in ("a", "b", "c", "d"):
        s3.put_object(Bucket="bkt", Key=key, Body=b"x")
    first = s3.list_objects_v2(Bucket="bkt", StartAfter="a", MaxKeys=1)
    assert first["StartAfter"] == "a"
    rest = s3.list_objects_v2(
        Bucket="bkt", StartAfter="a", ContinuationToken=first["NextContinuationToken"]
    )
    assert "StartAfter" not in rest
    assert [o["Key"] for o in rest["Contents"]] == ["c", "d"]


def test_list_buckets_carries_arns_and_checks_the_region(s3: Any, url: str) -> None:
    listed = s3.list_buckets()
    assert listed["Buckets"][0]["BucketArn"] == "arn:aws:s3:::bkt"
    assert listed["Buckets"][0]["BucketRegion"] == "us-east-1"
    assert "DisplayName" not in listed["Owner"]
    assert s3.list_buckets(BucketRegion="eu-west-1")["Buckets"] == []
    with pytest.raises(ClientError) as caught:
        s3.list_buckets(BucketRegion="not a region")
    assert error_of(caught) == ("InvalidArgument", 400)


# -- virtual-hosted-style addressing --


@pytest.mark.parametrize("suffix", ["s3.localhost", "localhost"])
def test_virtual_hosted_addressing(s3: Any, url: str, suffix: str) -> None:
    port = url.rsplit(":", 1)[1]
    host = {"host": f"bkt.{suffix}:{port}", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    with httpx.Client(base_url=url) as http:
        assert http.put("/dir/file.txt", content=b"virtual", headers=host).status_code == 200
        assert http.get("/dir/file.txt", headers=host).content == b"virtual"
        listing = http.get("/?list-type=2", headers=host)
        assert "<Key>dir/file.txt</Key>" in listing.text
    assert s3.get_object(Bucket="bkt", Key="dir/file.txt")["Body"].read() == b"virtual"

"""S3Api under a real uvicorn server, driven by the real boto3 client and by raw HTTP."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from api.s3_support import (
    Recorder,
    certificate,
    client,
    error_of,
    events,
    files,
    root,
    s3,
    serve,
    url,
)
from skylift.api import S3Api
from skylift.storage import DirectoryStore, ObjectInfo

__all__ = ["certificate", "events", "root", "s3", "url"]  # fixtures used below


# -- buckets --


def test_bucket_lifecycle(url: str) -> None:
    s3 = client(url)
    assert s3.list_buckets()["Buckets"] == []
    created = s3.create_bucket(Bucket="photos")
    assert created["Location"] == "/photos"
    # us-east-1 answers 200 to re-creating a bucket you own, for legacy compatibility.
    assert s3.create_bucket(Bucket="photos")["ResponseMetadata"]["HTTPStatusCode"] == 200
    listed = s3.list_buckets()["Buckets"]
    assert [b["Name"] for b in listed] == ["photos"]
    assert abs(listed[0]["CreationDate"] - datetime.now(UTC)) < timedelta(seconds=5)
    head = s3.head_bucket(Bucket="photos")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"

    s3.put_object(Bucket="photos", Key="cat.jpg", Body=b"meow")
    with pytest.raises(ClientError) as caught:
        s3.delete_bucket(Bucket="photos")
    assert error_of(caught) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket="photos", Key="cat.jpg")
    deleted = s3.delete_bucket(Bucket="photos")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as caught:
        s3.head_bucket(Bucket="photos")
    assert error_of(caught) == ("404", 404)  # a HEAD error has no body to name the code
    assert s3.list_buckets()["Buckets"] == []


def test_list_buckets_pages(url: str) -> None:
    s3 = client(url)
    for name in ("b-three", "a-one", "a-two"):
        s3.create_bucket(Bucket=name)
    first = s3.list_buckets(MaxBuckets=2)
    assert [b["Name"] for b in first["Buckets"]] == ["a-one", "a-two"]
    rest = s3.list_buckets(MaxBuckets=2, ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in rest["Buckets"]] == ["b-three"]
    assert "ContinuationToken" not in rest
    assert [b["Name"] for b in s3.list_buckets(Prefix="a-")["Buckets"]] == ["a-one", "a-two"]


def test_bucket_names_s3_refuses_are_refused(url: str) -> None:
    with pytest.raises(ClientError) as caught:
        client(url).create_bucket(Bucket="Not_Valid")
    assert error_of(caught) == ("InvalidBucketName", 400)


def test_other_regions_want_their_location_constraint(root: Path) -> None:
    with serve(S3Api(DirectoryStore(root), region="eu-west-1")) as base:
        s3 = client(base)
        with pytest.raises(ClientError) as caught:
            s3.create_bucket(Bucket="photos")
        assert error_of(caught) == ("IllegalLocationConstraintException", 400)
        where = {"LocationConstraint": "eu-west-1"}
        s3.create_bucket(Bucket="photos", CreateBucketConfiguration=where)
        with pytest.raises(ClientError) as caught:
            s3.create_bucket(Bucket="photos", CreateBucketConfiguration=where)
        assert error_of(caught) == ("BucketAlreadyOwnedByYou", 409)


def test_missing_bucket_is_no_such_bucket(url: str) -> None:
    s3 = client(url)
    for call in (
        lambda: s3.put_object(Bucket="nope", Key="k", Body=b"x"),
        lambda: s3.get_object(Bucket="nope", Key="k"),
        lambda: s3.list_objects_v2(Bucket="nope"),
        lambda: s3.delete_bucket(Bucket="nope"),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        assert error_of(caught) == ("NoSuchBucket", 404)
        assert caught.value.response["Error"]["BucketName"] == "nope"


# -- objects --


def test_object_round_trip_with_metadata(s3: Any, events: list[Any]) -> None:
    put = s3.put_object(
        Bucket="bkt",
        Key="docs/read me.txt",
        Body=b"hello",
        ContentType="text/plain; charset=utf-8",
        Metadata={"Owner": "Ann", "note": "two words, one comma"},
    )
    assert put["ETag"] == f'"{hashlib.md5(b"hello").hexdigest()}"'
    got = s3.get_object(Bucket="bkt", Key="docs/read me.txt")
    assert got["Body"].read() == b"hello"
    assert got["ContentType"] == "text/plain; charset=utf-8"
    assert got["ContentLength"] == 5
    assert got["ETag"] == put["ETag"]
    assert got["Metadata"] == {"owner": "Ann", "note": "two words, one comma"}
    assert abs(got["LastModified"] - datetime.now(UTC)) < timedelta(seconds=5)
    head = s3.head_object(Bucket="bkt", Key="docs/read me.txt")
    for field in ("ContentType", "ContentLength", "ETag", "Metadata", "LastModified"):
        assert head[field] == got[field]

    assert (
        s3.delete_object(Bucket="bkt", Key="docs/read me.txt")["ResponseMetadata"]["HTTPStatusCode"]
        == 204
    )
    assert (
        s3.delete_object(Bucket="bkt", Key="docs/read me.txt")["ResponseMetadata"]["HTTPStatusCode"]
        == 204
    )  # deleting nothing succeeds, and is no change
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket="bkt", Key="docs/read me.txt")
    assert error_of(caught) == ("NoSuchKey", 404)
    assert caught.value.response["Error"]["Key"] == "docs/read me.txt"
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket="bkt", Key="docs/read me.txt")
    assert error_of(caught) == ("404", 404)

    (created, bucket, info, put_id), (removed, bucket2, key, delete_id) = events
    assert (created, bucket, removed, bucket2, key) == (
        "ObjectCreated:Put",
        "bkt",
        "ObjectRemoved:Delete",
        "bkt",
        "docs/read me.txt",
    )
    assert isinstance(info, ObjectInfo)
    assert (info.key, info.size, info.etag) == ("docs/read me.txt", 5, put["ETag"])
    assert put_id == put["ResponseMetadata"]["RequestId"]
    assert delete_id != put_id


def test_non_ascii_metadata_is_decoded_then_returned_rfc_2047_encoded_as_s3_does(
    s3: Any, url: str
) -> None:
    # S3 decodes RFC 2047 encoded words before storing, and encodes non-ASCII text that way
    # "to make them mail-safe before returning"; raw UTF-8 from other clients is text too.
    city = "Zürich €"
    encoded = "=?UTF-8?B?" + base64.b64encode(city.encode()).decode() + "?="
    with httpx.Client(base_url=url) as http:
        for key, sent in (("raw", city.encode()), ("encoded", encoded.encode())):
            put = http.put(f"/bkt/{key}", content=b"x", headers={"x-amz-meta-city": sent})
            assert put.status_code == 200
            assert dict(http.get(f"/bkt/{key}").headers.raw)[b"x-amz-meta-city"] == encoded.encode()
        q_encoded = http.put(
            "/bkt/q", content=b"x", headers={"x-amz-meta-word": "=?iso-8859-1?q?caf=E9?="}
        )
        assert q_encoded.status_code == 200
    assert s3.head_object(Bucket="bkt", Key="encoded")["Metadata"] == {"city": encoded}
    word = s3.head_object(Bucket="bkt", Key="q")["Metadata"]["word"]
    assert word == "=?UTF-8?B?" + base64.b64encode("café".encode()).decode() + "?="


def test_response_headers_can_be_overridden(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="report.csv", Body=b"a,b", ContentType="text/csv")
    got = s3.get_object(
        Bucket="bkt",
        Key="report.csv",
        ResponseContentType="application/octet-stream",
        ResponseContentDisposition='attachment; filename="r.csv"',
    )
    assert got["ContentType"] == "application/octet-stream"
    assert got["ContentDisposition"] == 'attachment; filename="r.csv"'


def test_object_without_content_type_is_binary_octet_stream(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="blob", Body=b"\x00\x01")
    assert s3.head_object(Bucket="bkt", Key="blob")["ContentType"] == "binary/octet-stream"


def close_after_response(request: Any, **_: Any) -> None:
    request.headers["Connection"] = "close"


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_multi_megabyte_upload_and_download_are_byte_exact(
    root: Path, tmp_path: Path, scheme: str, request: pytest.FixtureRequest
) -> None:
    certificate = request.getfixturevalue("certificate") if scheme == "https" else None
    recorder = Recorder(S3Api(DirectoryStore(root), region="us-east-1"))
    data = os.urandom(5 * 1024 * 1024 + 123)
    source, target = tmp_path / "source.bin", tmp_path / "target.bin"
    source.write_bytes(data)
    with serve(recorder, certificate) as base:
        s3 = client(base, verify=str(certificate[0]) if certificate else None)
        # A TLS connection the client keeps idle would hold the server's shutdown open.
        s3.meta.events.register("before-send.s3", close_after_response)
        s3.create_bucket(Bucket="bkt")
        s3.upload_file(str(source), "bkt", "big/upload.bin")
        # In 5 MiB parts: each part's body is framed (and checksummed) like a PUT's.
        in_parts = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
        s3.upload_file(str(source), "bkt", "big/parts.bin", Config=in_parts)
        put = s3.put_object(Bucket="bkt", Key="big/put.bin", Body=data)
        # Small parts: the download is several concurrent ranged GETs.
        parts = TransferConfig(multipart_threshold=1 << 20, multipart_chunksize=1 << 20)
        s3.download_file("bkt", "big/upload.bin", str(target), Config=parts)
        assert target.read_bytes() == data
        got = s3.get_object(Bucket="bkt", Key="big/put.bin")
        assert got["Body"].read() == data
        target.unlink()
        s3.download_file("bkt", "big/parts.bin", str(target), Config=parts)
        assert target.read_bytes() == data
        assert s3.head_object(Bucket="bkt", Key="big/parts.bin")["ETag"].endswith('-2"')
    assert put["ETag"] == got["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    puts = [headers for method, _, headers in recorder.requests if method == "PUT"][1:]
    encodings = {headers.get("content-encoding") for headers in puts}
    # Over TLS boto3 frames the body as aws-chunked with a CRC32 trailer; over HTTP it
    # sends it plain with the checksum in a header. Both must store the same bytes.
    assert encodings == ({"aws-chunked"} if scheme == "https" else {None})
    assert any(method == "GET" and "range" in h for method, _, h in recorder.requests)


def test_content_digests_are_checked_and_a_mismatch_stores_nothing(s3: Any, url: str) -> None:
    good = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    s3.put_object(Bucket="bkt", Key="k", Body=b"data", ContentMD5=good)
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="bkt", Key="k", Body=b"DATA", ContentMD5=bad)
    assert error_of(caught) == ("BadDigest", 400)
    with httpx.Client(base_url=url) as http:
        sha = hashlib.sha256(b"other").hexdigest()
        refused = http.put("/bkt/k", content=b"DATA", headers={"x-amz-content-sha256": sha})
        assert refused.status_code == 400
        assert "<Code>XAmzContentSHA256Mismatch</Code>" in refused.text
        crc = base64.b64encode(zlib.crc32(b"other").to_bytes(4, "big")).decode()
        refused = http.put("/bkt/k", content=b"DATA", headers={"x-amz-checksum-crc32": crc})
        assert "<Code>BadDigest</Code>" in refused.text
    assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == b"data"


def aws_chunked(payload: bytes, trailer: bytes | None = None, signed: bool = False) -> bytes:
    """A body framed as botocore frames it, or with SigV4 chunk signatures."""
    if signed:
        sig = b";chunk-signature=" + b"0" * 64
        return b"".join(
            b"%x%s\r\n%s\r\n" % (len(piece), sig, piece)
            for piece in [payload[:70_000], payload[70_000:], b""]
        )
    body = AwsChunkedWrapper(
        io.BytesIO(payload), Crc32Checksum, "x-amz-checksum-crc32", chunk_size=65_536
    ).read()
    if trailer is not None:
        body = body[: body.rindex(b"x-amz-checksum-crc32:")] + trailer + b"\r\n\r\n"
    return body


def test_aws_chunked_bodies_are_unframed_and_their_trailer_checked(
    s3: Any, url: str, root: Path
) -> None:
    payload = os.urandom(150_000)
    headers = {
        "content-encoding": "aws-chunked",
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-trailer": "x-amz-checksum-crc32",
        "x-amz-decoded-content-length": str(len(payload)),
    }
    crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    with httpx.Client(base_url=url) as http:
        ok = http.put("/bkt/framed", content=aws_chunked(payload), headers=headers)
        assert ok.status_code == 200
        assert ok.headers["x-amz-checksum-crc32"] == crc
        signed = {
            "content-encoding": "aws-chunked",
            "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "x-amz-decoded-content-length": str(len(payload)),
        }
        ok = http.put("/bkt/signed", content=aws_chunked(payload, signed=True), headers=signed)
        assert ok.status_code == 200

        wrong = aws_chunked(b"x" + payload[1:], trailer=f"x-amz-checksum-crc32:{crc}".encode())
        refused = http.put("/bkt/corrupt", content=wrong, headers=headers)
        assert refused.status_code == 400
        assert "<Code>BadDigest</Code>" in refused.text
        cut = http.put("/bkt/cut", content=aws_chunked(payload)[:100_000], headers=headers)
        assert cut.status_code == 400
        assert "<Code>IncompleteBody</Code>" in cut.text
    for key in ("framed", "signed"):
        assert s3.get_object(Bucket="bkt", Key=key)["Body"].read() == payload
    # The trailer's checksum is kept with the object, as S3 keeps it.
    head = s3.head_object(Bucket="bkt", Key="framed", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (crc, "FULL_OBJECT")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]] == ["framed", "signed"]


def test_oversized_bodies_are_refused_and_the_server_carries_on(root: Path) -> None:
    with serve(S3Api(DirectoryStore(root), region="us-east-1", max_object_size=1000)) as base:
        s3 = client(base)
        s3.create_bucket(Bucket="bkt")
        with pytest.raises(ClientError) as caught:
            s3.put_object(Bucket="bkt", Key="big", Body=b"x" * 1001)
        assert error_of(caught) == ("EntityTooLarge", 400)
        assert caught.value.response["Error"]["MaxSizeAllowed"] == "1000"
        s3.put_object(Bucket="bkt", Key="small", Body=b"x" * 1000)
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]] == ["small"]


def test_ranges_and_conditions(s3: Any) -> None:
    etag = s3.put_object(Bucket="bkt", Key="abc", Body=b"0123456789")["ETag"]
    part = s3.get_object(Bucket="bkt", Key="abc", Range="bytes=2-5")
    assert (part["Body"].read(), part["ContentRange"]) == (b"2345", "bytes 2-5/10")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket="bkt", Key="abc", Range="bytes=-3")["Body"].read() == b"789"
    assert s3.get_object(Bucket="bkt", Key="abc", Range="bytes=8-99")["Body"].read() == b"89"
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket="bkt", Key="abc", Range="bytes=10-")
    assert error_of(caught) == ("InvalidRange", 416)

    assert s3.get_object(Bucket="bkt", Key="abc", IfMatch=etag)["Body"].read() == b"0123456789"
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket="bkt", Key="abc", IfMatch='"0000"')
    assert error_of(caught) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket="bkt", Key="abc", IfNoneMatch=etag)
    assert error_of(caught) == ("304", 304)


# -- listing --

KEYS = [
    "a b/one.txt",
    "a b/two.txt",
    "c+d/%41.txt",
    "c+d/%2F",
    "plain",
    "sp ace",
    "tilde~",
    "ünï/côdé.txt",
    "ünï/日本.txt",
    "zz/deep/x",
]


def test_list_objects_v2_pages_and_decodes_every_key(s3: Any) -> None:
    for key in KEYS:
        s3.put_object(Bucket="bkt", Key=key, Body=key.encode())
    paginator = s3.get_paginator("list_objects_v2")
    flat = [
        o["Key"]
        for page in paginator.paginate(Bucket="bkt", PaginationConfig={"PageSize": 3})
        for o in page.get("Contents", [])
    ]
    assert flat == sorted(KEYS, key=str.encode)

    pages = list(paginator.paginate(Bucket="bkt", Delimiter="/", PaginationConfig={"PageSize": 2}))
    # Keys and common prefixes share one order and count together against the page size.
    assert [
        (
            [o["Key"] for o in page.get("Contents", [])],
            [p["Prefix"] for p in page.get("CommonPrefixes", [])],
        )
        for page in pages
    ] == [
        ([], ["a b/", "c+d/"]),
        (["plain", "sp ace"], []),
        (["tilde~"], ["zz/"]),
        ([], ["ünï/"]),
    ]

    inside = s3.list_objects_v2(Bucket="bkt", Prefix="c+d/", Delimiter="/")
    assert [o["Key"] for o in inside["Contents"]] == ["c+d/%2F", "c+d/%41.txt"]
    assert inside["Prefix"] == "c+d/"
    after = s3.list_objects_v2(Bucket="bkt", StartAfter="sp ace")
    assert after["StartAfter"] == "sp ace"
    assert [o["Key"] for o in after["Contents"]] == [
        "tilde~",
        "zz/deep/x",
        "ünï/côdé.txt",
        "ünï/日本.txt",
    ]
    for key in KEYS:
        assert s3.get_object(Bucket="bkt", Key=key)["Body"].read() == key.encode()


def test_list_objects_v1_pages_with_markers(s3: Any) -> None:
    for key in KEYS:
        s3.put_object(Bucket="bkt", Key=key, Body=b"")
    pages = list(
        s3.get_paginator("list_objects").paginate(
            Bucket="bkt", Delimiter="/", PaginationConfig={"PageSize": 3}
        )
    )
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    prefixes = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
    assert (keys, prefixes) == (["plain", "sp ace", "tilde~"], ["a b/", "c+d/", "zz/", "ünï/"])


def test_list_entries_carry_size_etag_and_time(s3: Any) -> None:
    put = s3.put_object(Bucket="bkt", Key="k", Body=b"12345")
    (entry,) = s3.list_objects_v2(Bucket="bkt")["Contents"]
    assert (entry["Key"], entry["Size"], entry["ETag"]) == ("k", 5, put["ETag"])
    assert abs(entry["LastModified"] - datetime.now(UTC)) < timedelta(seconds=5)


# -- what the path may hold --

ESCAPES = ["../escape", "../../escape", "a/../../escape", "./escape", "a/./b"]


def test_traversal_through_boto3_is_refused_touching_nothing(s3: Any, tmp_path: Path) -> None:
    (tmp_path / "escape").write_text("keep me")
    before = files(tmp_path)
    for key in ESCAPES:
        for method, extra in (
            ("put_object", {"Body": b"pwned"}),
            ("get_object", {}),
            ("delete_object", {}),
        ):
            with pytest.raises(ClientError) as caught:
                getattr(s3, method)(Bucket="bkt", Key=key, **extra)
            assert error_of(caught) == ("InvalidArgument", 400)
    assert files(tmp_path) == before
    assert (tmp_path / "escape").read_text() == "keep me"


def test_traversal_through_raw_http_is_refused_touching_nothing(
    s3: Any, url: str, tmp_path: Path
) -> None:
    (tmp_path / "escape").write_text("keep me")
    before = files(tmp_path)
    encoded = ["/bkt/..%2F..%2Fescape", "/bkt/%2E%2E/%2e%2e/escape", "/bkt/%2F..%2F..%2Fescape"]
    # httpx removes literal dot segments from URLs; httpcore sends the target as given.
    literal = [b"/bkt/../escape", b"/bkt/../../escape", b"/bkt/a/../../../escape"]
    port = int(url.rsplit(":", 1)[1])
    with httpx.Client(base_url=url) as http, httpcore.ConnectionPool() as raw:
        for method in ("PUT", "GET", "DELETE"):
            for path in encoded:
                response = http.request(method, path, content=b"pwned" if method == "PUT" else None)
                assert response.status_code == 400, (method, path, response.text)
                assert "<Code>InvalidArgument</Code>" in response.text
            for target in literal:
                address = httpcore.URL(scheme=b"http", host=b"127.0.0.1", port=port, target=target)
                response2 = raw.request(
                    method, address, content=b"pwned" if method == "PUT" else b""
                )
                assert response2.status == 400, (method, target, response2.content)
    assert files(tmp_path) == before
    assert (tmp_path / "escape").read_text() == "keep me"


def test_keys_may_begin_with_a_slash_and_stay_inside_the_bucket(
    s3: Any, url: str, tmp_path: Path
) -> None:
    (tmp_path / "escape").write_text("keep me")
    s3.put_object(Bucket="bkt", Key="/escape", Body=b"one")
    s3.put_object(Bucket="bkt", Key="//etc/passwd", Body=b"two")
    with httpx.Client(base_url=url) as http:
        assert http.get("/bkt//escape").content == b"one"
        assert http.get("/bkt/%2Fescape").content == b"one"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]]
    assert keys == ["//etc/passwd", "/escape"]
    assert s3.get_object(Bucket="bkt", Key="//etc/passwd")["Body"].read() == b"two"
    assert (tmp_path / "escape").read_text() == "keep me"
    assert not Path("/etc/passwd").read_text().startswith("two")


def test_keys_are_decoded_once_like_s3(s3: Any, url: str) -> None:
    with httpx.Client(base_url=url) as http:
        assert http.put("/bkt/a+b", content=b"plus").status_code == 200  # "+" is a space
        assert http.put("/bkt/c%2Bd", content=b"2B").status_code == 200
        assert http.put("/bkt/%2541", content=b"25").status_code == 200
        assert http.put("/bkt/%FF", content=b"").status_code == 400  # not UTF-8
    assert s3.get_object(Bucket="bkt", Key="a b")["Body"].read() == b"plus"
    assert s3.get_object(Bucket="bkt", Key="c+d")["Body"].read() == b"2B"
    assert s3.get_object(Bucket="bkt", Key="%41")["Body"].read() == b"25"


# -- what is not served --


def test_unsupported_operations_are_501_naming_them(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="k", Body=b"x")
    for call, operation in (
        (lambda: s3.get_bucket_acl(Bucket="bkt"), "GetBucketAcl"),
        (lambda: s3.get_bucket_versioning(Bucket="bkt"), "GetBucketVersioning"),
        (
            lambda: s3.put_bucket_cors(Bucket="bkt", CORSConfiguration={"CORSRules": []}),
            "PutBucketCors",
        ),
        (lambda: s3.get_object(Bucket="bkt", Key="k", VersionId="v1"), "GetObject of a version"),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        assert error_of(caught) == ("NotImplemented", 501)
        assert operation in caught.value.response["Error"]["Message"]
    # Nothing was changed on the way: the object is still there, and alone.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]] == ["k"]


def test_every_response_names_its_request(s3: Any, url: str) -> None:
    with httpx.Client(base_url=url) as http:
        for response in (
            http.get("/"),
            http.put("/bkt/k", content=b"x"),
            http.get("/bkt/missing"),
            http.head("/bkt/missing"),
            http.get("/bkt?acl"),
            http.request("PATCH", "/bkt/k"),
        ):
            request_id = response.headers["x-amz-request-id"]
            assert request_id
            if response.status_code >= 400 and response.request.method != "HEAD":
                assert f"<RequestId>{request_id}</RequestId>" in response.text
                assert response.headers["content-type"] == "application/xml"


def test_presigned_urls_work(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="shared file.txt", Body=b"for you")
    link = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "bkt", "Key": "shared file.txt"}
    )
    assert httpx.get(link).content == b"for you"

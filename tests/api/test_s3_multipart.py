"""Multipart uploads through boto3's own calls: ETags, checksums, errors and cleanup as S3."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from api.s3_support import error_of, events, root, s3, url

__all__ = ["events", "root", "s3", "url"]  # fixtures used below

MiB = 1024 * 1024


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def multipart_etag(*parts: bytes) -> str:
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def leftovers(root: Path) -> list[str]:
    internal = root / "bkt" / ".skylift"
    return sorted(p.name for p in internal.rglob("*") if p.is_file() and p.name != "bucket.json")


def test_upload_in_parts_lists_completes_and_fires_one_event(
    s3: Any, root: Path, events: list[Any]
) -> None:
    first, last = os.urandom(5 * MiB), b"tail"
    created = s3.create_multipart_upload(
        Bucket="bkt",
        Key="big.bin",
        ContentType="application/x-thing",
        Metadata={"owner": "ann"},
        CacheControl="max-age=60",
    )
    upload_id = created["UploadId"]
    listed = s3.list_multipart_uploads(Bucket="bkt")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in listed] == [("big.bin", upload_id)]
    one = s3.upload_part(Bucket="bkt", Key="big.bin", UploadId=upload_id, PartNumber=1, Body=first)
    two = s3.upload_part(Bucket="bkt", Key="big.bin", UploadId=upload_id, PartNumber=2, Body=last)
    assert one["ETag"] == f'"{hashlib.md5(first).hexdigest()}"'
    parts = s3.list_parts(Bucket="bkt", Key="big.bin", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [
        (1, len(first), one["ETag"]),
        (2, 4, two["ETag"]),
    ]
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket="bkt", Key="big.bin")
    assert error_of(caught) == ("404", 404)  # nothing to see until completed

    done = s3.complete_multipart_upload(
        Bucket="bkt",
        Key="big.bin",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": a["ETag"]} for n, a in ((1, one), (2, two))]
        },
    )
    assert done["ETag"] == multipart_etag(first, last)
    got = s3.get_object(Bucket="bkt", Key="big.bin")
    assert got["Body"].read() == first + last
    assert (got["ContentType"], got["Metadata"], got["CacheControl"]) == (
        "application/x-thing",
        {"owner": "ann"},
        "max-age=60",
    )
    assert got["ETag"] == done["ETag"]
    attributes = s3.get_object_attributes(
        Bucket="bkt", Key="big.bin", ObjectAttributes=["ObjectParts", "ObjectSize", "ETag"]
    )
    assert attributes["ObjectParts"]["TotalPartsCount"] == 2
    assert attributes["ObjectSize"] == len(first) + 4
    assert attributes["ETag"] == done["ETag"].strip('"')
    assert [e[0] for e in events] == ["ObjectCreated:CompleteMultipartUpload"]
    assert s3.list_multipart_uploads(Bucket="bkt").get("Uploads", []) == []
    assert leftovers(root) == []


def test_completion_errors_as_s3_words_them_and_nothing_is_stored(s3: Any) -> None:
    upload_id = s3.create_multipart_upload(Bucket="bkt", Key="k")["UploadId"]
    small = [
        s3.upload_part(Bucket="bkt", Key="k", UploadId=upload_id, PartNumber=n, Body=b"x" * n)[
            "ETag"
        ]
        for n in (1, 2)
    ]

    def complete(parts: list[tuple[int, str]]) -> Any:
        return s3.complete_multipart_upload(
            Bucket="bkt",
            Key="k",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
        )

    for parts, code in (
        ([(1, small[0]), (2, small[1])], "EntityTooSmall"),  # part 1 is under 5 MiB
        ([(2, small[1]), (1, small[0])], "InvalidPartOrder"),
        ([(1, small[0]), (3, small[1])], "InvalidPart"),  # never uploaded
        ([(1, small[1])], "InvalidPart"),  # the wrong ETag
    ):
        with pytest.raises(ClientError) as caught:
            complete(parts)
        assert error_of(caught) == (code, 400)
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket="bkt", Key="k")
    assert error_of(caught) == ("404", 404)
    # The last part may be small: one small part alone completes.
    assert complete([(2, small[1])])["ETag"] == multipart_etag(b"xx")

    with pytest.raises(ClientError) as caught:
        complete([(2, small[1])])  # completed already: the upload is gone
    assert error_of(caught) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as caught:
        s3.upload_part(Bucket="bkt", Key="k", UploadId="nope", PartNumber=1, Body=b"x")
    assert error_of(caught) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as caught:
        s3.upload_part(Bucket="bkt", Key="k", UploadId=upload_id, PartNumber=10001, Body=b"x")
    assert error_of(caught) == ("InvalidArgument", 400)


def test_abort_removes_every_part(s3: Any, root: Path) -> None:
    upload_id = s3.create_multipart_upload(Bucket="bkt", Key="gone")["UploadId"]
    for n in (1, 2, 3):
        s3.upload_part(Bucket="bkt", Key="gone", UploadId=upload_id, PartNumber=n, Body=b"p" * 1000)
    assert len(leftovers(root)) > 0
    aborted = s3.abort_multipart_upload(Bucket="bkt", Key="gone", UploadId=upload_id)
    assert aborted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert leftovers(root) == []
    with pytest.raises(ClientError) as caught:
        s3.list_parts(Bucket="bkt", Key="gone", UploadId=upload_id)
    assert error_of(caught) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as caught:
        s3.abort_multipart_upload(Bucket="bkt", Key="gone", UploadId=upload_id)
    assert error_of(caught) == ("NoSuchUpload", 404)


def test_part_checksums_make_a_composite_object_checksum(s3: Any) -> None:
    first, last = os.urandom(5 * MiB), os.urandom(1000)
    created = s3.create_multipart_upload(Bucket="bkt", Key="c", ChecksumAlgorithm="CRC32")
    upload_id = created["UploadId"]
    assert (created["ChecksumAlgorithm"], created["ChecksumType"]) == ("CRC32", "COMPOSITE")
    parts = []
    for n, data in ((1, first), (2, last)):
        answer = s3.upload_part(
            Bucket="bkt",
            Key="c",
            UploadId=upload_id,
            PartNumber=n,
            Body=data,
            ChecksumAlgorithm="CRC32",
        )
        assert answer["ChecksumCRC32"] == crc32(data)
        parts.append({"PartNumber": n, "ETag": answer["ETag"], "ChecksumCRC32": crc32(data)})
    done = s3.complete_multipart_upload(
        Bucket="bkt", Key="c", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    raw = base64.b64decode(crc32(first)) + base64.b64decode(crc32(last))
    expected = f"{crc32(raw)}-2"
    assert (done["ChecksumCRC32"], done["ChecksumType"]) == (expected, "COMPOSITE")
    head = s3.head_object(Bucket="bkt", Key="c", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (expected, "COMPOSITE")


def test_full_object_crc32_is_the_crc_of_the_whole(s3: Any) -> None:
    first, last = os.urandom(5 * MiB), os.urandom(10)
    upload_id = s3.create_multipart_upload(
        Bucket="bkt", Key="f", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    parts = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(
                Bucket="bkt", Key="f", UploadId=upload_id, PartNumber=n, Body=data
            )["ETag"],
        }
        for n, data in ((1, first), (2, last))
    ]
    done = s3.complete_multipart_upload(
        Bucket="bkt", Key="f", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert (done["ChecksumCRC32"], done["ChecksumType"]) == (crc32(first + last), "FULL_OBJECT")


def test_upload_part_copy_takes_a_range_of_another_object(s3: Any) -> None:
    source = os.urandom(6 * MiB)
    s3.put_object(Bucket="bkt", Key="source", Body=source)
    upload_id = s3.create_multipart_upload(Bucket="bkt", Key="joined")["UploadId"]
    one = s3.upload_part_copy(
        Bucket="bkt",
        Key="joined",
        UploadId=upload_id,
        PartNumber=1,
        CopySource={"Bucket": "bkt", "Key": "source"},
        CopySourceRange=f"bytes=0-{5 * MiB - 1}",
    )["CopyPartResult"]
    two = s3.upload_part(Bucket="bkt", Key="joined", UploadId=upload_id, PartNumber=2, Body=b"!")
    s3.complete_multipart_upload(
        Bucket="bkt",
        Key="joined",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": a["ETag"]} for n, a in ((1, one), (2, two))]
        },
    )
    got = s3.get_object(Bucket="bkt", Key="joined")["Body"].read()
    assert got == source[: 5 * MiB] + b"!"


def test_conditional_completion(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="taken", Body=b"first")
    upload_id = s3.create_multipart_upload(Bucket="bkt", Key="taken")["UploadId"]
    etag = s3.upload_part(Bucket="bkt", Key="taken", UploadId=upload_id, PartNumber=1, Body=b"2")[
        "ETag"
    ]
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    with pytest.raises(ClientError) as caught:
        s3.complete_multipart_upload(
            Bucket="bkt", Key="taken", UploadId=upload_id, MultipartUpload=parts, IfNoneMatch="*"
        )
    assert error_of(caught) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket="bkt", Key="taken")["Body"].read() == b"first"
    current = s3.head_object(Bucket="bkt", Key="taken")["ETag"]
    s3.complete_multipart_upload(
        Bucket="bkt", Key="taken", UploadId=upload_id, MultipartUpload=parts, IfMatch=current
    )
    assert s3.get_object(Bucket="bkt", Key="taken")["Body"].read() == b"2"


def test_list_multipart_uploads_pages_and_filters(s3: Any) -> None:
    ids = {
        key: s3.create_multipart_upload(Bucket="bkt", Key=key)["UploadId"]
        for key in ("a/one", "a/two", "b/three", "top")
    }
    first = s3.list_multipart_uploads(Bucket="bkt", MaxUploads=2)
    assert [u["Key"] for u in first["Uploads"]] == ["a/one", "a/two"]
    assert first["IsTruncated"] is True
    rest = s3.list_multipart_uploads(
        Bucket="bkt", KeyMarker=first["NextKeyMarker"], UploadIdMarker=first["NextUploadIdMarker"]
    )
    assert [u["Key"] for u in rest["Uploads"]] == ["b/three", "top"]
    assert rest["IsTruncated"] is False
    grouped = s3.list_multipart_uploads(Bucket="bkt", Delimiter="/")
    assert [u["Key"] for u in grouped["Uploads"]] == ["top"]
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["a/", "b/"]
    only_a = s3.list_multipart_uploads(Bucket="bkt", Prefix="a/")
    assert [(u["Key"], u["UploadId"]) for u in only_a["Uploads"]] == [
        ("a/one", ids["a/one"]),
        ("a/two", ids["a/two"]),
    ]

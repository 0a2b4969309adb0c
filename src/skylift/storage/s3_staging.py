"""The staging prefix of ``S3Store``: where an upload with a full-object checksum is
joined (``.skylift-staging/TOKEN/KEY``, TOKEN unique per upload, so nodes sharing an
endpoint never collide) before its object is copied to KEY.

The prefix is skylift's own: its keys are hidden from listings and refused to clients
(``InvalidArgument``), and staged objects left behind never keep a bucket from being
deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections.abc import Sequence

from skylift.storage.errors import (
    InvalidArgument,
    InvalidPart,
    NoSuchKey,
    NoSuchUpload,
    StorageError,
)
from skylift.storage.protocol import check_key
from skylift.storage.s3_endpoint import Endpoint

logger = logging.getLogger("skylift.storage")

STAGING = ".skylift-staging/"  # before TOKEN/KEY of a staged upload's endpoint upload
_MAX_KEY_BYTES = 1024


def new_token(key: str) -> str | None:
    """A fresh token for a staged upload of `key`, or None if its staging key would be
    longer than S3's keys may be (that upload is joined in place)."""
    token = uuid.uuid4().hex
    return token if len(staging_key(key, token).encode()) <= _MAX_KEY_BYTES else None


def staging_key(key: str, token: str) -> str:
    return f"{STAGING}{token}/{key}"


def parse(endpoint_key: str) -> tuple[str, str] | None:
    """(token, key) of a staging key, or None if `endpoint_key` is none."""
    if not endpoint_key.startswith(STAGING):
        return None
    token, slash, key = endpoint_key[len(STAGING) :].partition("/")
    return (token, key) if slash and _is_token(token) else None


def _is_token(token: str) -> bool:
    return len(token) == 32 and all(c in "0123456789abcdef" for c in token)


def hidden(endpoint_key: str) -> bool:
    """Whether the endpoint's key is skylift's own (never listed to clients)."""
    return endpoint_key.startswith(STAGING)


def check_client_key(bucket: str, key: str) -> None:
    """``check_key``, and refuse keys under the reserved staging prefix."""
    check_key(bucket, key)
    if key.startswith(STAGING):
        raise InvalidArgument(
            f"Object keys beginning with {STAGING!r} are reserved by skylift for staged "
            "multipart uploads; use another key",
            argument="key",
            value=key,
            bucket=bucket,
            key=key,
        )


def multipart_etag(upload_id: str, listed: Sequence[tuple[int, str]]) -> str:
    """The ETag S3 gives the object joined from the parts `listed` (number, ETag)."""
    try:
        md5s = b"".join(bytes.fromhex(etag.strip().strip('"')) for _, etag in listed)
    except ValueError:
        number, etag = next((n, e) for n, e in listed if not _is_md5(e))
        raise InvalidPart(upload_id, number, etag) from None
    return f'"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(listed)}"'


def _is_md5(etag: str) -> bool:
    try:
        return len(bytes.fromhex(etag.strip().strip('"'))) == 16
    except ValueError:
        return False


def at(key: str, upload_id: str) -> str:
    """The endpoint's key of the upload `upload_id` of `key`."""
    token = split_id(upload_id)[3]
    return key if token is None else staging_key(key, token)


def upload_id(
    algorithm: str | None, kind: str | None, external: str, token: str | None = None
) -> str:
    kind = f"{kind}-{token}" if token else kind  # a staged upload's staging token
    return f"{algorithm or '-'}.{kind or '-'}.{external}"


def split_id(upload_id: str) -> tuple[str | None, str | None, str, str | None]:
    """(checksum algorithm, checksum type, the endpoint's upload id, staging token);
    ``NoSuchUpload``."""
    parts = upload_id.split(".", 2)
    if len(parts) != 3 or not parts[2]:
        raise NoSuchUpload(upload_id)
    algorithm, kind, external = parts
    token = ""
    if kind != "-":
        kind, _, token = kind.partition("-")
        if token and not _is_token(token):
            raise NoSuchUpload(upload_id)  # never a key outside its own staging folder
    return (
        (None if algorithm == "-" else algorithm),
        (None if kind == "-" else kind),
        external,
        token or None,
    )


def staged_etag(endpoint: Endpoint, bucket: str, key: str, external: str, at: str) -> str | None:
    """The ETag of the staged object at `at`, or None if there is none."""
    try:
        answer = endpoint.call("head_object", bucket=bucket, key=key, Bucket=external, Key=at)
    except NoSuchKey:
        return None
    return str(answer["ETag"])


def delete_staged(endpoint: Endpoint, bucket: str, key: str, external: str, at: str) -> None:
    with contextlib.suppress(StorageError):
        endpoint.call("delete_object", bucket=bucket, key=key, Bucket=external, Key=at)


def delete_bucket(endpoint: Endpoint, bucket: str, external: str) -> None:
    """DeleteBucket, first removing staged objects left behind if they are all it holds.

    Whether they are all it holds is decided before anything is removed, from one listing
    by "/" (every staged key rolls up into the one prefix STAGING, wherever a client's
    keys sort around it): a bucket that still holds a client's object fails with S3's
    BucketNotEmpty and keeps its staged objects too.
    """
    page = endpoint.call(
        "list_objects_v2", bucket=bucket, Bucket=external, Delimiter="/", MaxKeys=2
    )
    entries = [str(item["Key"]) for item in page.get("Contents", [])]
    entries += [str(item["Prefix"]) for item in page.get("CommonPrefixes", [])]
    if entries == [STAGING] and not page.get("IsTruncated"):
        while True:
            page = endpoint.call(
                "list_objects_v2", bucket=bucket, Bucket=external, Prefix=STAGING, MaxKeys=1000
            )
            keys = [{"Key": str(item["Key"])} for item in page.get("Contents", [])]
            failed: list[dict[str, str]] = []
            if keys:  # one DeleteObjects a page
                answer = endpoint.call(
                    "delete_objects",
                    bucket=bucket,
                    Bucket=external,
                    Delete={"Objects": keys, "Quiet": True},
                )
                failed = answer.get("Errors") or []
            if failed:  # they stay: DeleteBucket below fails (BucketNotEmpty); no listing again
                first = failed[0]
                logger.warning(
                    "skylift: %d staged objects of bucket %s could not be removed from the "
                    "endpoint (%s: %s, for %s)",
                    len(failed),
                    bucket,
                    first.get("Code"),
                    first.get("Message"),
                    first.get("Key"),
                )
                break
            if not page.get("IsTruncated"):
                break
    endpoint.call("delete_bucket", bucket=bucket, Bucket=external)

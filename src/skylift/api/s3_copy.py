"""CopyObject, and what UploadPartCopy shares with it: the ``x-amz-copy-source`` header,
its ``x-amz-copy-source-if-*`` conditions, and copying bytes into a new temporary file.

As S3: the source is ``bucket/key`` (URL-encoded, optionally with a leading "/");
``x-amz-metadata-directive`` COPY (the default) keeps the source's content type, headers
and user metadata, REPLACE takes the request's; ``x-amz-tagging-directive`` does the same
for tags. Copying an object onto itself without changing anything is refused. The copy
is a new single-part object: its ETag is the MD5 of its bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from skylift.api import s3_headers, s3_request, s3_xml
from skylift.api.s3_objects import commit, discard, precheck, write_condition
from skylift.api.s3_request import S3Request, S3RequestError
from skylift.api.s3_response import Handler, Response, Service, off_loop, xml
from skylift.storage import checksums
from skylift.storage.protocol import Attributes, Checksum, ObjectInfo

MAX_COPY = 5 * 1024**3  # S3's largest copy source in one request
_CHUNK = 1 << 20


def copy_source(request: S3Request) -> tuple[str, str]:
    """(bucket, key) that ``x-amz-copy-source`` names."""
    text = request.headers["x-amz-copy-source"]
    path, _, version = text.partition("?")
    if version and version != "versionId=null":
        raise S3RequestError(
            "NotImplemented",
            501,
            "A header you provided implies functionality that is not implemented",
            Header="x-amz-copy-source",
        )
    bucket, _, key = unquote(path).removeprefix("/").partition("/")
    if not bucket or not key:
        raise S3RequestError(
            "InvalidArgument",
            400,
            "Invalid copy source object key",
            ArgumentName="x-amz-copy-source",
            ArgumentValue=text,
        )
    return bucket, key


def check_source_conditions(headers: dict[str, str], info: ObjectInfo) -> None:
    """``x-amz-copy-source-if-*``: ``PreconditionFailed`` (412) unless they hold.

    As S3 documents: If-Match that holds wins over If-Unmodified-Since, and If-None-Match
    that fails the request wins over If-Modified-Since.
    """
    prefix = "x-amz-copy-source-if-"
    fields = {
        name.removeprefix(prefix): v for name, v in headers.items() if name.startswith(prefix)
    }
    failed = None
    if "match" in fields:
        if not s3_request.etag_matches(fields["match"], info.etag):
            failed = "x-amz-copy-source-If-Match"
    elif "unmodified-since" in fields:
        since = s3_request.http_date(fields["unmodified-since"])
        if since is not None and info.last_modified > since:
            failed = "x-amz-copy-source-If-Unmodified-Since"
    if "none-match" in fields:
        if s3_request.etag_matches(fields["none-match"], info.etag):
            failed = failed or "x-amz-copy-source-If-None-Match"
    elif "modified-since" in fields:
        since = s3_request.http_date(fields["modified-since"])
        if since is not None and since <= datetime.now(UTC) and info.last_modified <= since:
            failed = failed or "x-amz-copy-source-If-Modified-Since"
    if failed is not None:
        raise S3RequestError(
            "PreconditionFailed",
            412,
            "At least one of the pre-conditions you specified did not hold",
            Condition=failed,
        )


def copy_bytes(
    source: BinaryIO, target: Path, start: int, length: int, algorithm: str | None
) -> tuple[str, Checksum | None]:
    """Copy ``length`` bytes from ``start`` into a new file; (its ETag, its checksum)."""
    md5 = hashlib.md5(usedforsecurity=False)
    hasher = checksums.hasher(algorithm) if algorithm else None
    source.seek(start)
    remaining = length
    with open(target, "xb") as out:
        while remaining > 0:
            chunk = source.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            out.write(chunk)
            md5.update(chunk)
            if hasher is not None:
                hasher.update(chunk)
    checksum = None
    if hasher is not None and algorithm is not None:
        checksum = Checksum(algorithm, checksums.encode(hasher.digest()))
    return f'"{md5.hexdigest()}"', checksum


async def copy_object(api: Service, request: S3Request, rid: str) -> Response:
    bucket, key = request.bucket or "", request.key or ""
    source_bucket, source_key = copy_source(request)
    headers = request.headers
    directive = headers.get("x-amz-metadata-directive", "COPY").upper()
    tagging = headers.get("x-amz-tagging-directive", "COPY").upper()
    for name, value in (("metadata", directive), ("tagging", tagging)):
        if value not in ("COPY", "REPLACE"):
            raise S3RequestError(
                "InvalidArgument",
                400,
                f"Unknown {name} directive.",
                ArgumentName=f"x-amz-{name}-directive",
                ArgumentValue=value,
            )
    requested = s3_headers.attributes(headers)
    condition = write_condition(headers)
    await precheck(api, bucket, key, condition)
    target = await api.store.temp_path(bucket)
    info, file = await api.store.open_object(source_bucket, source_key)
    try:
        with file:
            check_source_conditions(headers, info)
            if info.size > MAX_COPY:
                raise S3RequestError(
                    "InvalidRequest",
                    400,
                    "The specified copy source is larger than the maximum allowable size "
                    f"for a copy source: {MAX_COPY}",
                )
            same = (source_bucket, source_key) == (bucket, key)
            if same and directive == "COPY" and not _changes(headers):
                raise S3RequestError(
                    "InvalidRequest",
                    400,
                    "This copy request is illegal because it is trying to copy an object to "
                    "itself without changing the object's metadata, storage class, website "
                    "redirect location or encryption attributes.",
                )
            algorithm = headers.get("x-amz-checksum-algorithm", "").upper() or (
                info.checksum.algorithm if info.checksum else None
            )
            etag, checksum = await off_loop(file, copy_bytes, file, target, 0, info.size, algorithm)
        attributes = _copied(info, requested, directive, tagging, checksum)
        write = api.store.put_object(
            bucket, key, target, attributes=attributes, condition=condition, etag=etag
        )
        copied = await commit(key, condition, write)
    finally:
        await discard(target)
    await api.notify("ObjectCreated:Copy", bucket, copied, rid)
    body = s3_xml.element("ETag", copied.etag)
    body += s3_xml.element("LastModified", s3_xml.iso_time(copied.last_modified))
    if copied.checksum is not None:
        body += s3_xml.element("ChecksumType", copied.checksum.type)
        body += s3_xml.element(f"Checksum{copied.checksum.algorithm}", copied.checksum.value)
    return xml(
        s3_xml.document("CopyObjectResult", body),
        headers=[("x-amz-server-side-encryption", "AES256")],
    )


def _changes(headers: dict[str, str]) -> bool:
    return (
        any(
            name in headers
            for name in (
                "x-amz-storage-class",
                "x-amz-website-redirect-location",
                "x-amz-server-side-encryption",
            )
        )
        or headers.get("x-amz-tagging-directive", "").upper() == "REPLACE"
    )


def _copied(
    source: ObjectInfo,
    requested: Attributes,
    directive: str,
    tagging: str,
    checksum: Checksum | None,
) -> Attributes:
    if directive == "REPLACE":
        chosen = requested
    else:
        kept = dict(source.headers)
        kept.pop(s3_headers.STORAGE_CLASS, None)
        kept.update({k: v for k, v in requested.headers.items() if k == s3_headers.STORAGE_CLASS})
        chosen = Attributes(source.content_type, source.metadata, kept)
    tags = requested.tags if tagging == "REPLACE" else source.tags
    return replace(chosen, tags=tags, checksum=checksum)


HANDLERS: dict[str, Handler] = {"CopyObject": copy_object}

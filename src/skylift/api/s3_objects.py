"""S3's object operations: PutObject (streamed to disk), GetObject and HeadObject (ranges,
conditions, overrides, checksums), DeleteObject, DeleteObjects, GetObjectAttributes and
object tagging."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from skylift.api import s3_body, s3_headers, s3_request, s3_xml
from skylift.api.s3_request import OVERRIDES, S3Request, S3RequestError
from skylift.api.s3_response import Handler, Response, Service, xml
from skylift.storage.errors import (
    ConditionalRequestConflict,
    NoSuchKey,
    PreconditionFailed,
    StorageError,
)
from skylift.storage.protocol import Condition, ObjectInfo, check_condition, check_key

MAX_DELETE = 1000  # keys in one DeleteObjects
_ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")


def write_condition(headers: dict[str, str]) -> Condition | None:
    """The condition of a conditional write (PutObject, CompleteMultipartUpload)."""
    none_match, match = headers.get("if-none-match"), headers.get("if-match")
    if none_match is None and match is None:
        return None
    if none_match is not None and none_match.strip() != "*":
        raise S3RequestError(
            "NotImplemented",
            501,
            "A header you provided implies functionality that is not implemented",
            Header="If-None-Match",
        )
    return Condition(if_match=match, if_none_match=none_match is not None)


async def precheck(api: Service, bucket: str, key: str, condition: Condition | None) -> None:
    """Evaluate a write's condition before its body is read: 412 (or 404) at once."""
    if condition is None:
        return
    try:
        current: ObjectInfo | None = await api.store.head_object(bucket, key)
    except NoSuchKey:
        current = None
    check_condition(bucket, key, condition, current)


async def commit(key: str, condition: Condition | None, write: Awaitable[ObjectInfo]) -> ObjectInfo:
    """Await ``write``; a condition that held at ``precheck`` but fails now means another
    write came between: S3's 409 ``ConditionalRequestConflict``."""
    try:
        return await write
    except (PreconditionFailed, NoSuchKey):
        if condition is None:
            raise
        raise ConditionalRequestConflict(key) from None


async def receive_object(
    api: Service, request: S3Request, bucket: str, limit: int
) -> tuple[Path, s3_body.Received]:
    """The request's body, streamed to a temporary file of ``bucket``'s; the caller hands
    the file to the store or removes it (``discard``)."""
    path = await api.store.temp_path(bucket)
    try:
        return path, await s3_body.receive_to_file(request, path, limit)
    except BaseException:
        await discard(path)
        raise


async def discard(path: Path) -> None:
    await asyncio.to_thread(path.unlink, missing_ok=True)


def checksum_headers(received: s3_body.Received) -> list[tuple[str, str]]:
    if received.checksum is None:
        return []
    return [*received.echo, ("x-amz-checksum-type", received.checksum.type)]


async def put_object(api: Service, request: S3Request, rid: str) -> Response:
    bucket, key = request.bucket or "", request.key or ""
    attributes = s3_headers.attributes(request.headers)
    condition = write_condition(request.headers)
    check_key(bucket, key)  # before reading the body
    await precheck(api, bucket, key, condition)
    path, received = await receive_object(api, request, bucket, api.max_object_size)
    try:
        write = api.store.put_object(
            bucket,
            key,
            path,
            attributes=replace(attributes, checksum=received.checksum),
            condition=condition,
            etag=received.etag,
        )
        info = await commit(key, condition, write)
    finally:
        await discard(path)
    await api.notify("ObjectCreated:Put", bucket, info, rid)
    headers = [("ETag", info.etag), ("x-amz-server-side-encryption", "AES256")]
    return Response(200, headers + checksum_headers(received))


async def get_object(api: Service, request: S3Request, rid: str) -> Response:
    bucket, key = request.bucket or "", request.key or ""
    head = request.method == "HEAD"
    file: BinaryIO | None = None
    if head:
        info = await api.store.head_object(bucket, key)
    else:
        info, file = await api.store.open_object(bucket, key)
    try:
        checksum_mode = request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
        headers = s3_headers.object_headers(info, checksum_mode=checksum_mode)
        if s3_request.not_modified(request.headers, info):
            if file is not None:
                file.close()
            kept = {"ETag", "Last-Modified", "Cache-Control", "Expires"}
            return Response(304, [(n, v) for n, v in headers if n in kept])
        for param, header in OVERRIDES.items():
            if param in request.query:
                headers = [(n, v) for n, v in headers if n != header]
                headers.append((header, request.query[param]))
        start, length = 0, info.size
        status = 200
        chosen = s3_request.byte_range(request.headers.get("range"), info.size)
        if chosen is not None:
            status, (start, length) = 206, chosen
            end = start + length - 1
            headers.append(("Content-Range", f"bytes {start}-{end}/{info.size}"))
            # A range's checksum is not the object's: S3 sends none with a 206.
            headers = [(n, v) for n, v in headers if not n.startswith("x-amz-checksum-")]
    except BaseException:
        if file is not None:
            file.close()
        raise
    return Response(status, headers, file=file, start=start, length=length)


async def delete_object(api: Service, request: S3Request, rid: str) -> Response:
    bucket, key = request.bucket or "", request.key or ""
    if await api.store.delete_object(bucket, key):
        await api.notify("ObjectRemoved:Delete", bucket, key, rid)
    return Response(204)


async def delete_objects(api: Service, request: S3Request, rid: str) -> Response:
    bucket = request.bucket or ""
    await api.store.head_bucket(bucket)
    root = s3_xml.parse(await s3_body.read(request, 2 * 1024 * 1024), "Delete")
    quiet = (s3_xml.child_text(root, "Quiet") or "").strip().lower() == "true"
    keys = [s3_xml.child_text(node, "Key") for node in s3_xml.children(root, "Object")]
    if not keys or len(keys) > MAX_DELETE or any(key is None for key in keys):
        raise s3_xml.malformed()
    parts: list[str] = []
    for key in keys:
        assert key is not None
        try:
            if await api.store.delete_object(bucket, key):
                await api.notify("ObjectRemoved:Delete", bucket, key, rid)
        except StorageError as exc:
            parts.append(
                f"<Error>{s3_xml.element('Key', key)}{s3_xml.element('Code', exc.code)}"
                f"{s3_xml.element('Message', exc.message)}</Error>"
            )
            continue
        if not quiet:
            parts.append(f"<Deleted>{s3_xml.element('Key', key)}</Deleted>")
    return xml(s3_xml.document("DeleteResult", "".join(parts)))


async def get_object_attributes(api: Service, request: S3Request, rid: str) -> Response:
    bucket, key = request.bucket or "", request.key or ""
    wanted = [a.strip() for a in request.headers.get("x-amz-object-attributes", "").split(",")]
    wanted = [a for a in wanted if a]
    if not wanted or any(a not in _ATTRIBUTES for a in wanted):
        raise S3RequestError("InvalidArgument", 400, "Invalid attribute name specified.")
    info = await api.store.head_object(bucket, key)
    parts = []
    if "ETag" in wanted:
        parts.append(s3_xml.element("ETag", info.etag.strip('"')))
    if "Checksum" in wanted and info.checksum is not None:
        name = f"Checksum{info.checksum.algorithm}"
        parts.append(
            f"<Checksum>{s3_xml.element(name, info.checksum.value)}"
            f"{s3_xml.element('ChecksumType', info.checksum.type)}</Checksum>"
        )
    if "ObjectParts" in wanted and info.parts is not None:
        parts.append(f"<ObjectParts><PartsCount>{info.parts}</PartsCount></ObjectParts>")
    if "StorageClass" in wanted:
        storage_class = info.headers.get(s3_headers.STORAGE_CLASS, "STANDARD")
        parts.append(s3_xml.element("StorageClass", storage_class))
    if "ObjectSize" in wanted:
        parts.append(f"<ObjectSize>{info.size}</ObjectSize>")
    modified = s3_headers.object_headers(info, checksum_mode=False)[1]
    return xml(s3_xml.document("GetObjectAttributesResponse", "".join(parts)), headers=[modified])


async def put_object_tagging(api: Service, request: S3Request, rid: str) -> Response:
    bucket, key = request.bucket or "", request.key or ""
    root = s3_xml.parse(await s3_body.read(request, 64 * 1024), "Tagging")
    pairs: list[tuple[str, str]] = []
    for tag_set in s3_xml.children(root, "TagSet"):
        for tag in s3_xml.children(tag_set, "Tag"):
            name, value = s3_xml.child_text(tag, "Key"), s3_xml.child_text(tag, "Value")
            if name is None or value is None:
                raise s3_xml.malformed()
            pairs.append((name, value))
    tags = dict(pairs)
    s3_headers.check_tags(tags, duplicates=len(tags) != len(pairs))
    info = await api.store.set_tags(bucket, key, tags)
    await api.notify("ObjectTagging:Put", bucket, info, rid)
    return Response(200)


async def get_object_tagging(api: Service, request: S3Request, rid: str) -> Response:
    info = await api.store.head_object(request.bucket or "", request.key or "")
    return xml(s3_xml.document("Tagging", tag_set(info)))


def tag_set(info: ObjectInfo) -> str:
    tags = "".join(
        f"<Tag>{s3_xml.element('Key', k)}{s3_xml.element('Value', v)}</Tag>"
        for k, v in info.tags.items()
    )
    return f"<TagSet>{tags}</TagSet>"


async def delete_object_tagging(api: Service, request: S3Request, rid: str) -> Response:
    bucket, key = request.bucket or "", request.key or ""
    info = await api.store.set_tags(bucket, key, {})
    await api.notify("ObjectTagging:Delete", bucket, info, rid)
    return Response(204)


HANDLERS: dict[str, Handler] = {
    "PutObject": put_object,
    "GetObject": get_object,
    "HeadObject": get_object,
    "DeleteObject": delete_object,
    "DeleteObjects": delete_objects,
    "GetObjectAttributes": get_object_attributes,
    "PutObjectTagging": put_object_tagging,
    "GetObjectTagging": get_object_tagging,
    "DeleteObjectTagging": delete_object_tagging,
}

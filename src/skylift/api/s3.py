"""S3's REST API over an ``ObjectStore``, as an ASGI app: the subset the boto3 ``s3`` client
speaks with path-style addressing (``http://host:port/bucket/key``).

Served: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, ListObjects(V2), PutObject,
GetObject (with ``Range``, conditional headers and ``response-*`` overrides), HeadObject
and DeleteObject. Any other operation (a subresource such as ``?acl`` or ``?uploads``,
CopyObject, POST uploads) is answered ``501 NotImplemented``, naming it. Signatures are
not verified: any access key is welcome. Virtual-hosted addressing is not served.

The store refuses keys that would leave the bucket's folder ("../x", "/etc/passwd"); that
refusal is a 400 and nothing is written. A PutObject body is held in memory whole, so
bodies over ``max_object_size`` (1 GiB by default, where S3's own single-PUT limit is
5 GiB) are refused with ``EntityTooLarge``: before reading when their declared length says
so, else as soon as they pass it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import BinaryIO

from skylift.api import s3_body, s3_request, s3_xml
from skylift.api.s3_request import (
    OVERRIDES,
    S3Request,
    S3RequestError,
    not_implemented,
)
from skylift.asgi_types import Receive, Scope, Send, lifespan
from skylift.errors import is_disk_full
from skylift.storage.errors import BucketAlreadyOwnedByYou, InvalidArgument, StorageError
from skylift.storage.protocol import MAX_LIST_KEYS, ObjectInfo, ObjectStore

ChangeListener = Callable[[str, str, ObjectInfo | str, str], Awaitable[None]]

logger = logging.getLogger("skylift.api.s3")
MAX_OBJECT_SIZE = 1 << 30
_SEND_CHUNK = 1 << 20
_SMALL_BODY = 64 * 1024  # a CreateBucket configuration; a body we drain before an error
_NO_BODY = frozenset({204, 304})
_PLAIN_HEADER = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


@dataclass(slots=True)
class _Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: BinaryIO | None = None  # sent from ``start``, ``length`` bytes, then closed
    start: int = 0
    length: int | None = None  # Content-Length, when not len(body)


class S3Api:
    """An ASGI app serving the S3 REST API (path-style) over ``store``.

    ``on_change(event_name, bucket, info_or_key, request_id)`` is awaited after each
    change: ``("ObjectCreated:Put", bucket, ObjectInfo, id)`` after a PutObject and
    ``("ObjectRemoved:Delete", bucket, key, id)`` after a DeleteObject that removed an
    object. Example: ``uvicorn.run(S3Api(DirectoryStore(root), region="us-east-1"))``.
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        region: str,
        on_change: ChangeListener | None = None,
        max_object_size: int = MAX_OBJECT_SIZE,
    ) -> None:
        self.store = store
        self.region = region
        self.on_change = on_change
        self.max_object_size = max_object_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request_id = uuid.uuid4().hex[:16].upper()
        request: S3Request | None = None
        try:
            request = s3_request.parse(scope, receive)
            response = await self._serve(request, request_id)
        except (StorageError, S3RequestError) as exc:
            response = _error(exc, request_id)
        except Exception as exc:  # a bug or a broken disk must still get an S3 answer
            if is_disk_full(exc):  # SDKs retry a 503; it clears once space is freed
                logger.error("S3 request %s: %s; free some disk space", request_id, exc)
                failure = S3RequestError(
                    "ServiceUnavailable",
                    503,
                    "Service is unable to handle request: no space is left on the server's disk.",
                )
            else:
                logger.exception("S3 request %s failed", request_id)
                failure = S3RequestError(
                    "InternalError", 500, "We encountered an internal error. Please try again."
                )
            response = _error(failure, request_id)
        if request is not None and not request.consumed:
            await _discard_body(request, response)
        await _send(send, response, request_id, head=scope["method"] == "HEAD")

    async def _serve(self, request: S3Request, request_id: str) -> _Response:
        operation = s3_request.operation(request)
        bucket, key = request.bucket or "", request.key or ""
        if operation == "ListBuckets":
            return await self._list_buckets(request.query)
        if operation == "CreateBucket":
            return await self._create_bucket(bucket, await s3_body.read(request, _SMALL_BODY))
        if operation == "HeadBucket":
            await self.store.head_bucket(bucket)
            return _Response(200, [("x-amz-bucket-region", self.region)])
        if operation == "DeleteBucket":
            await self.store.delete_bucket(bucket)
            return _Response(204)
        if operation in ("ListObjects", "ListObjectsV2"):
            return await self._list_objects(bucket, request.query)
        if operation == "PutObject":
            return await self._put_object(request, bucket, key, request_id)
        if operation in ("GetObject", "HeadObject"):
            return await self._get_object(request, bucket, key, head=operation == "HeadObject")
        assert operation == "DeleteObject"
        if await self.store.delete_object(bucket, key):
            await self._notify("ObjectRemoved:Delete", bucket, key, request_id)
        return _Response(204)

    # -- buckets --

    async def _list_buckets(self, query: dict[str, str]) -> _Response:
        prefix, token = query.get("prefix"), query.get("continuation-token")
        limit = _int_param(query, "max-buckets", 10_000, low=1, high=10_000)
        region = query.get("bucket-region", self.region)
        chosen = [
            b
            for b in await self.store.list_buckets()
            if b.name.startswith(prefix or "") and (token is None or b.name > token)
        ]
        chosen = [] if region != self.region else chosen
        # The token is simply the last name sent: bucket names are listed in order.
        next_token = chosen[limit - 1].name if len(chosen) > limit else None
        body = s3_xml.list_buckets(
            chosen[:limit], region=self.region, prefix=prefix, token=next_token
        )
        return _Response(200, [("Content-Type", "application/xml")], body)

    async def _create_bucket(self, bucket: str, body: bytes) -> _Response:
        try:
            constraint = s3_xml.location_constraint(body)
        except ValueError as exc:
            raise S3RequestError(
                "MalformedXML",
                400,
                f"The XML you provided was not well-formed or did not validate against our "
                f"published schema: {exc}. Send a CreateBucketConfiguration, or no body.",
            ) from None
        self._check_location(constraint)
        try:
            await self.store.create_bucket(bucket)
        except BucketAlreadyOwnedByYou:
            if self.region != "us-east-1":  # us-east-1 answers 200, for legacy compatibility
                raise
        return _Response(200, [("Location", f"/{bucket}")])

    def _check_location(self, constraint: str | None) -> None:
        # As S3: us-east-1 takes no constraint, every other Region requires its own name.
        if constraint == self.region != "us-east-1":
            return
        if constraint is None and self.region == "us-east-1":
            return
        if constraint == "us-east-1":
            raise S3RequestError(
                "InvalidLocationConstraint",
                400,
                "The specified location-constraint is not valid: us-east-1 is the default "
                "Region and takes no LocationConstraint. Omit CreateBucketConfiguration.",
                LocationConstraint=constraint,
            )
        raise S3RequestError(
            "IllegalLocationConstraintException",
            400,
            f"The {constraint or 'unspecified'} location constraint is incompatible for the "
            f"region specific endpoint this request was sent to. This endpoint serves "
            f"{self.region}: "
            + (
                "omit CreateBucketConfiguration."
                if self.region == "us-east-1"
                else f"send LocationConstraint {self.region}."
            ),
        )

    async def _list_objects(self, bucket: str, query: dict[str, str]) -> _Response:
        version = 2 if "list-type" in query else 1
        if version == 2 and query["list-type"] != "2":
            raise InvalidArgument(
                "Invalid list-type: send list-type=2 for ListObjectsV2, or no list-type.",
                argument="list-type",
                value=query["list-type"],
            )
        encoding = query.get("encoding-type")
        if encoding not in (None, "url"):
            raise InvalidArgument(
                "Invalid Encoding Method specified in Request: the only encoding-type is url.",
                argument="encoding-type",
                value=encoding,
            )
        max_keys = _int_param(query, "max-keys", MAX_LIST_KEYS, low=0, high=2**31 - 1)
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter") or None
        token = query.get("continuation-token") if version == 2 else None
        start_after = query.get("start-after" if version == 2 else "marker")
        page = await self.store.list_objects(
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            max_keys=max_keys,
            continuation_token=token,
            start_after=start_after,
        )
        body = s3_xml.list_objects(
            page,
            bucket=bucket,
            version=version,
            prefix=prefix,
            delimiter=delimiter,
            max_keys=max_keys,
            url_encoded=encoding == "url",
            continuation_token=token,
            start_after=start_after if version == 2 else None,
            marker=start_after,
        )
        return _Response(200, [("Content-Type", "application/xml")], body)

    # -- objects --

    async def _put_object(
        self, request: S3Request, bucket: str, key: str, request_id: str
    ) -> _Response:
        headers = request.headers
        if "if-match" in headers or "if-none-match" in headers:
            raise not_implemented("conditional writes (PutObject with If-Match/If-None-Match)")
        data, checksums = await s3_body.read_object(request, self.max_object_size)
        metadata = {
            name.removeprefix("x-amz-meta-"): value
            for name, value in headers.items()
            if name.startswith("x-amz-meta-")
        }
        info = await self.store.put_object(
            bucket, key, data, content_type=headers.get("content-type"), metadata=metadata
        )
        await self._notify("ObjectCreated:Put", bucket, info, request_id)
        return _Response(200, [("ETag", info.etag), *checksums])

    async def _get_object(
        self, request: S3Request, bucket: str, key: str, *, head: bool
    ) -> _Response:
        file: BinaryIO | None = None
        if head:
            info = await self.store.head_object(bucket, key)
        else:
            info, file = await self.store.open_object(bucket, key)
        try:
            headers = [
                ("ETag", info.etag),
                ("Last-Modified", format_datetime(info.last_modified, usegmt=True)),
                ("Accept-Ranges", "bytes"),
                *((f"x-amz-meta-{name}", value) for name, value in info.metadata.items()),
            ]
            if s3_request.not_modified(request.headers, info):
                if file is not None:
                    file.close()
                return _Response(304, headers)
            headers.append(("Content-Type", info.content_type))
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
        except BaseException:
            if file is not None:
                file.close()
            raise
        return _Response(status, headers, file=file, start=start, length=length)

    async def _notify(self, event: str, bucket: str, subject: ObjectInfo | str, rid: str) -> None:
        if self.on_change is None:
            return
        try:
            await self.on_change(event, bucket, subject, rid)
        except Exception:  # the change happened; the client must hear so all the same
            logger.exception("on_change(%r, %r) failed for request %s", event, bucket, rid)


def _int_param(query: dict[str, str], name: str, default: int, *, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.lstrip("-").isdigit() and low <= int(text) <= high):
        raise InvalidArgument(
            f"Provided {name} not an integer or within integer range: give a whole number "
            f"from {low} to {high}.",
            argument=name,
            value=text,
        )
    return int(text)


def _error(exc: StorageError | S3RequestError, request_id: str) -> _Response:
    body = s3_xml.error(exc.code, exc.message, exc.details(), request_id)
    return _Response(exc.status, [("Content-Type", "application/xml")], body)


async def _discard_body(request: S3Request, response: _Response) -> None:
    """Read an unread request body, so the connection can serve the next request."""
    length = request.headers.get("content-length", "0")
    if (
        length.isdigit()
        and int(length) <= _SMALL_BODY
        and "transfer-encoding" not in request.headers
    ):
        try:
            await s3_body.read(request, _SMALL_BODY)
            return
        except S3RequestError:
            pass
    # Too much to read for nothing (or a client that already gave up): close instead.
    response.headers.append(("Connection", "close"))


async def _send(send: Send, response: _Response, request_id: str, *, head: bool) -> None:
    headers = [(name.encode(), _header_value(value)) for name, value in response.headers]
    headers.append((b"x-amz-request-id", request_id.encode()))
    length = len(response.body) if response.length is None else response.length
    if response.status not in _NO_BODY and not (head and response.status >= 300):
        headers.append((b"content-length", str(length).encode()))
    file = response.file
    try:
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if file is None or head:
            body = b"" if head or response.status in _NO_BODY else response.body
            await send({"type": "http.response.body", "body": body})
            return
        await asyncio.to_thread(file.seek, response.start)
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(file.read, min(_SEND_CHUNK, remaining))
            if not chunk:
                break  # cannot happen to an open file of one version; the server will complain
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        if file is not None:
            file.close()


def _header_value(text: str) -> bytes:
    # Header values travel as latin-1, so metadata a client sent comes back byte for byte.
    # Anything else (text from other sources, control characters) goes RFC 2047-encoded,
    # as S3 does for non-ASCII metadata, rather than breaking or splitting the header.
    if _PLAIN_HEADER.fullmatch(text):
        return text.encode("latin-1")
    return b"=?UTF-8?B?" + base64.b64encode(text.encode("utf-8", "replace")) + b"?="

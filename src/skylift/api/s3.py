"""S3's REST API over an ``ObjectStore``, as an ASGI app: what the boto3 ``s3`` client,
the AWS CLI and other SDKs speak, path-style (``http://host:port/bucket/key``) and
virtual-hosted-style (``http://bucket.s3.localhost:port/key``, ``bucket.localhost``).

The operations live by concern: ``s3_buckets`` (buckets, policies, listings),
``s3_objects`` (PutObject, GetObject, HeadObject, deletes, attributes, tagging),
``s3_copy`` (CopyObject) and ``s3_multipart``. Any other operation (a subresource such as
``?acl`` or ``?versioning``, POST uploads) is answered ``501 NotImplemented``, naming it.
Signatures are not verified: any access key is welcome; a presigned URL whose time is up
is refused as S3 refuses it.

The store refuses keys that would leave the bucket's folder ("../x"); that refusal is a
400 and nothing is written. Object bodies stream to disk, so memory stays flat whatever
their size; bodies over ``max_object_size`` (5 GiB by default, S3's single-PUT limit)
are refused with ``EntityTooLarge``: before reading when their declared length says so,
else as soon as they pass it.
"""

from __future__ import annotations

import logging
import uuid

from skylift.api import s3_body, s3_buckets, s3_copy, s3_multipart, s3_objects, s3_request
from skylift.api.s3_request import S3Request, S3RequestError
from skylift.api.s3_response import ChangeListener, Handler, Response, error, send
from skylift.asgi_types import Receive, Scope, Send, lifespan
from skylift.errors import is_disk_full
from skylift.storage.errors import StorageError
from skylift.storage.protocol import ObjectInfo, ObjectStore

logger = logging.getLogger("skylift.api.s3")
MAX_OBJECT_SIZE = 5 * 1024**3
_SMALL_BODY = 64 * 1024  # a body we drain before an error rather than close the connection
HANDLERS: dict[str, Handler] = {
    **s3_buckets.HANDLERS,
    **s3_objects.HANDLERS,
    **s3_copy.HANDLERS,
    **s3_multipart.HANDLERS,
}


class S3Api:
    """An ASGI app serving the S3 REST API over ``store``.

    ``on_change(event_name, bucket, info_or_key, request_id)`` is awaited after each
    change: ``("ObjectCreated:Put", bucket, ObjectInfo, id)`` after a PutObject (``:Copy``,
    ``:CompleteMultipartUpload`` likewise) and ``("ObjectRemoved:Delete", bucket, key, id)``
    after a delete that removed an object. Example:
    ``uvicorn.run(S3Api(DirectoryStore(root), region="us-east-1"))``.
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

    async def __call__(self, scope: Scope, receive: Receive, send_: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send_)
            return
        if scope["type"] != "http":
            return
        request_id = uuid.uuid4().hex[:16].upper()
        request: S3Request | None = None
        try:
            request = s3_request.parse(scope, receive)
            s3_request.check_presigned(request.query)
            response = await HANDLERS[s3_request.operation(request)](self, request, request_id)
        except (StorageError, S3RequestError) as exc:
            hint = getattr(exc, "hint", None)
            if hint:  # S3's message stays S3's; what to do about it goes to the log
                logger.info("S3 request %s: %s: %s", request_id, exc.code, hint)
            response = error(exc, request_id)
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
            response = error(failure, request_id)
        if request is not None and not request.consumed:
            await _discard_body(request, response)
        await send(send_, response, request_id, head=scope["method"] == "HEAD")

    async def notify(self, event: str, bucket: str, subject: ObjectInfo | str, rid: str) -> None:
        if self.on_change is None:
            return
        try:
            await self.on_change(event, bucket, subject, rid)
        except Exception:  # the change happened; the client must hear so all the same
            logger.exception("on_change(%r, %r) failed for request %s", event, bucket, rid)


async def _discard_body(request: S3Request, response: Response) -> None:
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

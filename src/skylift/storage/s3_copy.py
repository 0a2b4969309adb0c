"""Copies inside the external store, for ``S3Store``: an object's record rewritten by
copying the object onto itself (S3 changes metadata only that way), and a staged
multipart object moved into place.

CopyObject copies at most 5 GiB; a larger object is copied as S3 advises, by a
multipart upload of UploadPartCopy ranges (each at most 5 GiB), every range read only
while the source still has the ETag first read.
"""

from __future__ import annotations

import contextlib
from typing import Any

from skylift.storage.errors import StorageError
from skylift.storage.s3_endpoint import Endpoint

COPY_LIMIT = 5 * 1024**3  # CopyObject's and UploadPartCopy's largest source, in bytes


def copy(
    endpoint: Endpoint,
    *,
    bucket: str,
    key: str,
    external: str,
    source: str,
    etag: str,
    size: int,
    params: dict[str, Any],
    limit: int = COPY_LIMIT,
) -> None:
    """Copy the endpoint's object `source` (whose ETag is `etag`, `size` bytes) to `key`
    of the external bucket `external` with `params` (the new metadata; the destination's
    If-Match / If-None-Match); `bucket` is skylift's name, for errors."""
    where = {"bucket": bucket, "key": key, "Bucket": external, "Key": key}
    copy_source = {"Bucket": external, "Key": source}
    params = dict(params)
    conditions = {name: params.pop(name) for name in ("IfMatch", "IfNoneMatch") if name in params}
    if size <= limit:
        endpoint.call(
            "copy_object",
            CopySource=copy_source,
            CopySourceIfMatch=etag,
            MetadataDirective="REPLACE",
            **where,
            **conditions,
            **params,
        )
        return
    upload_id = str(endpoint.call("create_multipart_upload", **where, **params)["UploadId"])
    try:
        parts = []
        for number, start in enumerate(range(0, size, limit), 1):
            answer = endpoint.call(
                "upload_part_copy",
                UploadId=upload_id,
                PartNumber=number,
                CopySource=copy_source,
                CopySourceIfMatch=etag,
                CopySourceRange=f"bytes={start}-{min(start + limit, size) - 1}",
                **where,
            )
            parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
        endpoint.call(
            "complete_multipart_upload",
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            **where,
            **conditions,
        )
    except BaseException:
        with contextlib.suppress(StorageError):
            endpoint.call("abort_multipart_upload", UploadId=upload_id, **where)
        raise

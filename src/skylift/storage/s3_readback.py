"""A joined multipart object of ``S3Store`` read back from the endpoint for its additional
checksum: S3 keeps the parts' checksums nowhere a client of any S3-compatible server can
read them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from skylift.storage import checksums
from skylift.storage.errors import StorageError
from skylift.storage.files import now
from skylift.storage.multipart import object_checksum
from skylift.storage.protocol import Checksum, Part, Upload
from skylift.storage.s3_endpoint import Endpoint


def checksum(
    endpoint: Endpoint,
    upload: Upload,
    external: str,
    at: str,
    parts: list[Part],
    head: dict[str, Any],
    sent: Checksum | None,
) -> Checksum | None:
    """The checksum of the object at the endpoint's key `at` (of the external bucket
    `external`), joined from `parts`, whose HeadObject answered `head`; ``BadDigest`` if
    it is not the full-object checksum `sent`. A full-object checksum needs no part
    sizes (a resumed completion knows none)."""
    algorithm = upload.checksum_algorithm
    assert algorithm is not None
    etag = str(head["ETag"])
    reads = parts
    if upload.checksum_type == "FULL_OBJECT":
        reads = [Part(1, int(head["ContentLength"]), etag, now())]
    answer = endpoint.call(
        "get_object",
        bucket=upload.bucket,
        key=upload.key,
        Bucket=external,
        Key=at,
        IfMatch=etag,
    )
    whole = checksums.hasher(algorithm)
    summed: list[Part] = []
    with answer["Body"] as body:
        for part in reads:
            one = checksums.hasher(algorithm)
            left = part.size
            while left:
                chunk = body.read(min(left, 1 << 20))
                if not chunk:
                    raise StorageError(
                        "We encountered an internal error. Please try again.",
                        hint=f"the S3 endpoint sent fewer bytes of {upload.key!r} than "
                        "its parts hold",
                    )
                left -= len(chunk)
                for hasher in (one, whole):
                    if hasher is not None:
                        hasher.update(chunk)
            if one is not None:
                part = replace(part, checksum=Checksum(algorithm, checksums.encode(one.digest())))
            summed.append(part)
    return object_checksum(upload, summed, whole, sent)

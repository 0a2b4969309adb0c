"""What ``S3Store`` keeps beside each object in the external store, and how it reads it.

The bytes, the Content-Type and the user metadata are the external object's own. What S3
has no place for, or computes differently (skylift's sequencer, its Last-Modified and
ETag, the additional checksum as the client sent it, tags, the stored response headers,
the part count) travels as one JSON user-metadata entry, ``x-amz-meta-skylift``, so an
object is written and read in one request each. An object put into the external bucket
by other means has no record: it is described from what the endpoint says of it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from skylift.storage.protocol import DEFAULT_CONTENT_TYPE, Attributes, ObjectInfo
from skylift.storage.records import checksum_record, read_checksum

RECORD = "skylift"


def put_params(info: ObjectInfo) -> dict[str, Any]:
    """The PutObject/CopyObject parameters storing ``info``'s metadata."""
    native, extra = _split_metadata(info.metadata)
    record: dict[str, Any] = {
        "s": info.sequencer,
        "l": int(info.last_modified.timestamp()),
        "e": info.etag,
    }
    if info.headers:
        record["h"] = dict(info.headers)
    if info.checksum is not None:
        record["c"] = checksum_record(info.checksum)
    if info.tags:
        record["t"] = dict(info.tags)
    if info.parts is not None:
        record["p"] = info.parts
    if extra:
        record["u"] = extra
    # ensure_ascii: HTTP header values must be Latin-1; JSON escapes keep them ASCII.
    native[RECORD] = json.dumps(record, separators=(",", ":"), ensure_ascii=True)
    return {"ContentType": info.content_type, "Metadata": native}


def upload_params(
    attributes: Attributes, algorithm: str | None, kind: str | None
) -> dict[str, Any]:
    """CreateMultipartUpload parameters: the attributes the finished object will carry."""
    native, extra = _split_metadata(attributes.metadata)
    record: dict[str, Any] = {"h": dict(attributes.headers), "t": dict(attributes.tags)}
    if extra:
        record["u"] = extra
    native[RECORD] = json.dumps(record, separators=(",", ":"), ensure_ascii=True)
    return {"ContentType": attributes.content_type or DEFAULT_CONTENT_TYPE, "Metadata": native}


def read_info(bucket: str, key: str, answer: dict[str, Any]) -> ObjectInfo:
    """The ``ObjectInfo`` of a HeadObject/GetObject answer."""
    metadata = {name.lower(): value for name, value in answer.get("Metadata", {}).items()}
    raw = metadata.pop(RECORD, None)
    try:
        record: dict[str, Any] = json.loads(raw) if raw else {}
    except ValueError:
        record = {}
    metadata.update(record.get("u", {}))
    modified: datetime = answer["LastModified"].astimezone(UTC).replace(microsecond=0)
    if "l" in record:
        modified = datetime.fromtimestamp(record["l"], UTC)
    return ObjectInfo(
        bucket,
        key,
        int(answer["ContentLength"]),
        record.get("e") or answer["ETag"],
        answer.get("ContentType") or DEFAULT_CONTENT_TYPE,
        modified,
        metadata,
        record.get("s") or f"{int(answer['LastModified'].timestamp() * 1e9):018X}",
        headers=record.get("h", {}),
        checksum=read_checksum(record.get("c")),
        tags=record.get("t", {}),
        parts=record.get("p"),
    )


def upload_attributes(answer: dict[str, Any]) -> Attributes:
    """The attributes CreateMultipartUpload stored, from a HeadObject of the result."""
    metadata = {name.lower(): value for name, value in answer.get("Metadata", {}).items()}
    raw = metadata.pop(RECORD, None)
    record: dict[str, Any] = json.loads(raw) if raw else {}
    metadata.update(record.get("u", {}))
    return Attributes(
        content_type=answer.get("ContentType"),
        metadata=metadata,
        headers=record.get("h", {}),
        tags=record.get("t", {}),
    )


def _split_metadata(metadata: Any) -> tuple[dict[str, str], dict[str, str]]:
    """User metadata an HTTP header can carry as is, and the rest (non-ASCII values)."""
    native: dict[str, str] = {}
    extra: dict[str, str] = {}
    for name, value in dict(metadata).items():
        if name.isascii() and value.isascii() and name != RECORD:
            native[name] = value
        else:
            extra[name] = value
    return native, extra

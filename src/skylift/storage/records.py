"""The JSON records ``DirectoryStore`` keeps beside each object and upload.

Fields added after the first release are optional when read, so a store written by an
earlier version still opens.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from skylift.storage.protocol import DEFAULT_CONTENT_TYPE, Attributes, Checksum, ObjectInfo


def object_record(info: ObjectInfo, inode: int) -> dict[str, Any]:
    """``info`` as stored, with the inode of the data file it describes."""
    record: dict[str, Any] = {
        "key": info.key,
        "inode": inode,
        "size": info.size,
        "etag": info.etag,
        "content_type": info.content_type,
        "last_modified": int(info.last_modified.timestamp()),
        "metadata": dict(info.metadata),
        "sequencer": info.sequencer,
    }
    if info.headers:
        record["headers"] = dict(info.headers)
    if info.checksum is not None:
        record["checksum"] = checksum_record(info.checksum)
    if info.tags:
        record["tags"] = dict(info.tags)
    if info.parts is not None:
        record["parts"] = info.parts
    return record


def object_info(bucket: str, key: str, record: dict[str, Any]) -> ObjectInfo:
    """The ``ObjectInfo`` a record describes; ``KeyError``/``TypeError`` if malformed."""
    return ObjectInfo(
        bucket,
        key,
        record["size"],
        record["etag"],
        record["content_type"],
        datetime.fromtimestamp(record["last_modified"], UTC),
        record["metadata"],
        record["sequencer"],
        headers=record.get("headers", {}),
        checksum=read_checksum(record.get("checksum")),
        tags=record.get("tags", {}),
        parts=record.get("parts"),
    )


def recorded(bucket: str, key: str, meta: Path, stat: os.stat_result) -> ObjectInfo | None:
    """The metadata on file, if it describes the data file with this ``stat``."""
    try:
        record = json.loads(meta.read_bytes())
        if record["inode"] != stat.st_ino or record["size"] != stat.st_size:
            return None
        return object_info(bucket, key, record)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def derived(bucket: str, key: str, file: BinaryIO) -> ObjectInfo:
    """What the data file alone says: its metadata was lost, or written by hand."""
    stat = os.fstat(file.fileno())
    digest = hashlib.md5(usedforsecurity=False)
    while chunk := file.read(1 << 20):
        digest.update(chunk)
    file.seek(0)
    modified = datetime.fromtimestamp(int(stat.st_mtime), UTC)
    sequencer = f"{stat.st_mtime_ns:018X}"
    etag = f'"{digest.hexdigest()}"'
    return ObjectInfo(
        bucket, key, stat.st_size, etag, DEFAULT_CONTENT_TYPE, modified, {}, sequencer
    )


def checksum_record(checksum: Checksum | None) -> dict[str, str] | None:
    if checksum is None:
        return None
    return {"algorithm": checksum.algorithm, "value": checksum.value, "type": checksum.type}


def read_checksum(record: dict[str, str] | None) -> Checksum | None:
    if record is None:
        return None
    return Checksum(record["algorithm"], record["value"], record["type"])


def attributes_record(attributes: Attributes) -> dict[str, Any]:
    return {
        "content_type": attributes.content_type,
        "metadata": dict(attributes.metadata),
        "headers": dict(attributes.headers),
        "checksum": checksum_record(attributes.checksum),
        "tags": dict(attributes.tags),
    }


def read_attributes(record: dict[str, Any]) -> Attributes:
    return Attributes(
        content_type=record["content_type"],
        metadata=record["metadata"],
        headers=record["headers"],
        checksum=read_checksum(record["checksum"]),
        tags=record["tags"],
    )

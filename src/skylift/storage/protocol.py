"""The object store protocol: S3's bucket and object model as a small async interface.

Every backend (``DirectoryStore`` today) implements ``ObjectStore`` and passes the one
conformance suite in ``tests/storage/conformance.py``. Names and values follow S3 (ETags
quoted, user metadata keys lower-cased, keys ordered by their UTF-8 bytes) so the S3 API
layer is a thin translation; failures raise the ``StorageError`` subclass named after the
S3 error code.

The rules every backend enforces live here too (``check_bucket_name``, ``check_key``,
``user_metadata``), so all backends refuse the same requests with the same errors.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from skylift.storage.errors import (
    InvalidArgument,
    InvalidBucketName,
    KeyTooLongError,
    MetadataTooLarge,
    NoSuchKey,
    PreconditionFailed,
)

# What S3 stores, and answers on GET, when a PUT carries no Content-Type.
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
MAX_KEY_BYTES = 1024
MAX_LIST_KEYS = 1000
# "the user-defined metadata is limited to 2 KB ... the sum of the number of bytes in the
# UTF-8 encoding of each key and value" (S3 user guide, "Working with object metadata").
MAX_METADATA_BYTES = 2048

_BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


@dataclass(frozen=True, slots=True)
class BucketInfo:
    """A bucket as ListBuckets shows it. ``created`` is UTC, second precision."""

    name: str
    created: datetime


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """An object's system and user metadata, as HeadObject and ListObjectsV2 report it.

    ``etag`` is quoted, as S3 sends it: ``'"9e107d9d372bb6826bd81d3542a419d6"'`` (the MD5
    of the bytes). ``last_modified`` is UTC with whole seconds, as in HTTP dates.
    ``metadata`` is the user metadata (``x-amz-meta-*`` without the prefix), keys
    lower-cased. ``sequencer`` orders events on one key: a later write or delete gets a
    greater value (upper-case hex, fixed width).
    """

    bucket: str
    key: str
    size: int
    etag: str
    content_type: str
    last_modified: datetime
    metadata: Mapping[str, str]
    sequencer: str
    # Cache-Control, Content-Disposition, Content-Encoding, Content-Language and Expires,
    # by those names, as the client sent them.
    headers: Mapping[str, str] = field(default_factory=dict)
    checksum: Checksum | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    parts: int | None = None  # how many parts a multipart upload made it of


@dataclass(frozen=True, slots=True)
class Checksum:
    """An object's additional checksum, as S3 reports it.

    ``algorithm`` is S3's name (``"CRC32"``, ``"CRC32C"``, ``"SHA1"``, ``"SHA256"``,
    ``"CRC64NVME"``), ``value`` the base64 digest (``"...-3"`` for a composite one of a
    three-part upload), ``type`` ``"FULL_OBJECT"`` or ``"COMPOSITE"``.
    """

    algorithm: str
    value: str
    type: str = "FULL_OBJECT"


@dataclass(frozen=True, slots=True)
class Attributes:
    """What a write stores beside the bytes (all optional): see ``ObjectInfo``."""

    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    checksum: Checksum | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Condition:
    """A conditional write: ``if_match`` an ETag the current object must have (a missing
    object is ``NoSuchKey``), ``if_none_match`` that no object may exist
    (``If-None-Match: *``). A failed condition is ``PreconditionFailed`` and writes nothing.
    """

    if_match: str | None = None
    if_none_match: bool = False


@dataclass(frozen=True, slots=True)
class Upload:
    """A multipart upload in progress."""

    bucket: str
    key: str
    upload_id: str
    initiated: datetime
    attributes: Attributes
    checksum_algorithm: str | None = None  # S3's name, e.g. "CRC32"
    checksum_type: str | None = None  # "COMPOSITE" or "FULL_OBJECT"


@dataclass(frozen=True, slots=True)
class Part:
    """One uploaded part: ``etag`` is the quoted MD5 of its bytes."""

    number: int
    size: int
    etag: str
    last_modified: datetime
    checksum: Checksum | None = None


@dataclass(frozen=True, slots=True)
class ListResult:
    """One page of ListObjectsV2: objects and common prefixes, each in UTF-8 byte order.

    When ``is_truncated``, pass ``next_continuation_token`` back for the next page.
    """

    objects: list[ObjectInfo]
    common_prefixes: list[str]
    is_truncated: bool
    next_continuation_token: str | None


class ObjectStore(Protocol):
    """Buckets of objects, with S3's semantics. Every method may raise ``StorageError``."""

    async def create_bucket(self, name: str) -> BucketInfo:
        """Create an empty bucket; ``BucketAlreadyOwnedByYou`` if it exists."""
        ...

    async def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket; ``BucketNotEmpty`` while it holds objects."""
        ...

    async def list_buckets(self) -> list[BucketInfo]:
        """Every bucket, by name."""
        ...

    async def head_bucket(self, name: str) -> BucketInfo:
        """The bucket, or ``NoSuchBucket``."""
        ...

    async def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes | Path,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        attributes: Attributes | None = None,
        condition: Condition | None = None,
        etag: str | None = None,
    ) -> ObjectInfo:
        """Store ``data`` under ``key``, replacing any object there, all at once.

        ``data`` is the bytes, or a file from ``temp_path(bucket)`` that the store takes
        over (moves into place); ``etag`` saves reading it again when the caller computed
        it while writing. ``attributes`` replace ``content_type`` and ``metadata``.
        Example: ``await store.put_object("photos", "cats/tom.jpg", body,
        content_type="image/jpeg", metadata={"owner": "ann"})``.
        """
        ...

    async def temp_path(self, bucket: str) -> Path:
        """A fresh path to write an object's bytes to before ``put_object``; ``NoSuchBucket``.

        The caller removes the file if it does not hand it to the store.
        """
        ...

    async def set_tags(self, bucket: str, key: str, tags: Mapping[str, str]) -> ObjectInfo:
        """Replace the object's tag set (an empty one removes the tags)."""
        ...

    async def get_bucket_policy(self, bucket: str) -> str | None:
        """The bucket's policy document as it was stored, or None."""
        ...

    async def set_bucket_policy(self, bucket: str, policy: str | None) -> None:
        """Store (or, with None, remove) the bucket's policy document."""
        ...

    async def create_upload(
        self,
        bucket: str,
        key: str,
        attributes: Attributes,
        *,
        checksum_algorithm: str | None = None,
        checksum_type: str | None = None,
    ) -> Upload:
        """Start a multipart upload of ``key``."""
        ...

    async def upload_part(
        self,
        upload: Upload,
        number: int,
        data: bytes | Path,
        *,
        etag: str | None = None,
        checksum: Checksum | None = None,
    ) -> Part:
        """Store part ``number`` (1-10000) of ``upload``, replacing one of that number."""
        ...

    async def get_upload(self, bucket: str, key: str, upload_id: str) -> tuple[Upload, list[Part]]:
        """The upload and its parts by number; ``NoSuchUpload`` if absent."""
        ...

    async def list_uploads(self, bucket: str) -> list[Upload]:
        """Every upload in progress, by key then initiation time."""
        ...

    async def complete_upload(
        self,
        upload: Upload,
        parts: Sequence[tuple[int, str]],
        *,
        condition: Condition | None = None,
        checksum: Checksum | None = None,
    ) -> ObjectInfo:
        """Join the listed (number, ETag) parts into the object, and end the upload.

        ``InvalidPart``, ``InvalidPartOrder``, ``EntityTooSmall`` (a part but the last
        under 5 MiB) as S3. The ETag is the MD5 of the parts' MD5s, then ``-N``.
        """
        ...

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Remove the upload and its parts; ``NoSuchUpload`` if absent."""
        ...

    async def get_object(self, bucket: str, key: str) -> tuple[ObjectInfo, bytes]:
        """The object's metadata and bytes; ``NoSuchKey`` if absent."""
        ...

    async def open_object(self, bucket: str, key: str) -> tuple[ObjectInfo, BinaryIO]:
        """The object's metadata and an open binary file of exactly that version.

        For large objects: read and send it in chunks instead of holding it in memory.
        The caller closes the file, and reads it off the loop on ``file.executor`` if set.
        """
        ...

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        """The object's metadata; ``NoSuchKey`` if absent."""
        ...

    async def delete_object(self, bucket: str, key: str) -> bool:
        """Delete the object; whether there was one (deleting nothing succeeds, as in S3)."""
        ...

    async def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        max_keys: int = MAX_LIST_KEYS,
        continuation_token: str | None = None,
        start_after: str | None = None,
    ) -> ListResult:
        """One page of keys after ``start_after`` (or the token), as ListObjectsV2.

        Keys sharing ``prefix`` + text up to the first ``delimiter`` collapse into one
        common prefix; keys and common prefixes together count against ``max_keys``
        (at most 1000).
        """
        ...

    def sequencer(self, bucket: str) -> str:
        """A fresh sequencer for an event on ``bucket`` (a delete's), later than all so far."""
        ...


def check_bucket_name(name: str) -> None:
    """Raise ``InvalidBucketName`` unless ``name`` follows S3's general purpose bucket rules.

    Source: "General purpose bucket naming rules", Amazon S3 user guide.
    """
    if not 3 <= len(name) <= 63:
        raise InvalidBucketName(name, f"is {len(name)} characters long")
    if not _BUCKET_CHARS.fullmatch(name):
        raise InvalidBucketName(name, "has characters other than a-z, 0-9, '.' and '-'")
    if not (name[0].isalnum() and name[-1].isalnum()):
        raise InvalidBucketName(name, "does not start and end with a letter or digit")
    if ".." in name:
        raise InvalidBucketName(name, "has two adjacent periods")
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        raise InvalidBucketName(name, "is formatted as an IP address")
    for prefix in _RESERVED_PREFIXES:
        if name.startswith(prefix):
            raise InvalidBucketName(name, f"starts with the reserved prefix {prefix!r}")
    for suffix in _RESERVED_SUFFIXES:
        if name.endswith(suffix):
            raise InvalidBucketName(name, f"ends with the reserved suffix {suffix!r}")


def is_bucket_name(name: str) -> bool:
    """Whether ``name`` passes ``check_bucket_name``."""
    try:
        check_bucket_name(name)
    except InvalidBucketName:
        return False
    return True


def check_condition(
    bucket: str, key: str, condition: Condition, current: ObjectInfo | None
) -> None:
    """Raise what S3 answers when ``condition`` does not hold for ``current`` (the object
    now under ``key``, or None): ``PreconditionFailed``, or ``NoSuchKey`` for If-Match."""
    if condition.if_none_match and current is not None:
        raise PreconditionFailed("If-None-Match")
    if condition.if_match is not None:
        if current is None:
            raise NoSuchKey(bucket, key)
        tags = {tag.strip().removeprefix("W/").strip('"') for tag in condition.if_match.split(",")}
        if "*" not in tags and current.etag.strip('"') not in tags:
            raise PreconditionFailed("If-Match")


def check_key(bucket: str, key: str) -> bytes:
    """The key's UTF-8 bytes; ``InvalidArgument``/``KeyTooLongError`` for what S3 refuses."""
    if not key:
        raise InvalidArgument(
            "An object key cannot be empty. Give the object a name.",
            argument="key",
            value=key,
            bucket=bucket,
        )
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgument(
            f"An object key must be valid UTF-8; {key!r} has an unpaired surrogate at "
            f"{exc.start}. Decode the name with the right encoding before uploading it.",
            argument="key",
            value=key.encode("utf-8", "replace").decode(),
            bucket=bucket,
        ) from None
    if len(raw) > MAX_KEY_BYTES:
        raise KeyTooLongError(bucket, key, f"S3 keys are at most {MAX_KEY_BYTES} bytes")
    return raw


def user_metadata(bucket: str, key: str, metadata: Mapping[str, str] | None) -> dict[str, str]:
    """User metadata as S3 keeps it: names lower-cased, at most 2 KB in all."""
    if not metadata:
        return {}
    cleaned = {name.lower(): value for name, value in metadata.items()}
    size = sum(len(name.encode()) + len(value.encode()) for name, value in cleaned.items())
    if size > MAX_METADATA_BYTES:
        raise MetadataTooLarge(bucket, key, size, MAX_METADATA_BYTES)
    return cleaned

"""An object's headers both ways: the ``Attributes`` a PUT, a copy or a multipart upload
stores from its request headers, and the headers GetObject and HeadObject answer with.

As S3: ``Cache-Control``, ``Content-Disposition``, ``Content-Encoding`` (less the
``aws-chunked`` framing token), ``Content-Language`` and ``Expires`` are stored as sent
and returned; user metadata values that are RFC 2047 encoded words are decoded before
they are stored (and non-ASCII text is encoded again on the way out); ``x-amz-tagging``
is a URL-encoded query string; ``x-amz-storage-class`` must name a class S3 knows, and
one a general purpose bucket takes. Every object reports ``x-amz-server-side-encryption:
AES256``, S3's default encryption since January 2023.
"""

from __future__ import annotations

from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.utils import format_datetime
from urllib.parse import parse_qsl

from skylift.api.s3_request import S3RequestError
from skylift.storage.protocol import Attributes, ObjectInfo

SYSTEM_HEADERS = {
    "cache-control": "Cache-Control",
    "content-disposition": "Content-Disposition",
    "content-encoding": "Content-Encoding",
    "content-language": "Content-Language",
    "expires": "Expires",
}
STORAGE_CLASS = "x-amz-storage-class"
# x-amz-storage-class values (botocore's StorageClass enum); the last three belong to
# Outposts, Snow and directory buckets, which a general purpose bucket refuses.
_STORAGE_CLASSES = frozenset(
    {"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING"}
    | {"GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"}
)
MAX_TAGS = 10


def attributes(headers: dict[str, str]) -> Attributes:
    """What a write request asks to store beside the bytes; S3's error if it cannot be."""
    stored = {
        SYSTEM_HEADERS[name]: value for name, value in headers.items() if name in SYSTEM_HEADERS
    }
    encoding = stored.get("Content-Encoding")
    if encoding is not None:
        kept = [t.strip() for t in encoding.split(",") if t.strip().lower() != "aws-chunked"]
        if kept:
            stored["Content-Encoding"] = ",".join(kept)
        else:
            del stored["Content-Encoding"]
    storage_class = headers.get(STORAGE_CLASS)
    if storage_class is not None and storage_class != "STANDARD":
        if storage_class not in _STORAGE_CLASSES:
            raise S3RequestError(
                "InvalidStorageClass",
                400,
                "The storage class you specified is not valid",
                StorageClassRequested=storage_class,
            )
        stored[STORAGE_CLASS] = storage_class
    check_encryption(headers)
    metadata = {
        name.removeprefix("x-amz-meta-"): _text(value)
        for name, value in headers.items()
        if name.startswith("x-amz-meta-")
    }
    tagging = headers.get("x-amz-tagging")
    tags = parse_tagging(tagging) if tagging is not None else {}
    return Attributes(headers.get("content-type"), metadata, stored, None, tags)


def check_encryption(headers: dict[str, str]) -> None:
    """Refuse server-side encryption other than S3's default (SSE-S3, ``AES256``)."""
    sse = headers.get("x-amz-server-side-encryption")
    if sse is not None and sse != "AES256":
        raise S3RequestError(
            "NotImplemented",
            501,
            "A header you provided implies functionality that is not implemented",
            Header="x-amz-server-side-encryption",
        )


def parse_tagging(text: str) -> dict[str, str]:
    """The tag set of an ``x-amz-tagging`` header ("k1=v1&k2=v2")."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError:
        raise S3RequestError(
            "InvalidArgument",
            400,
            "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query "
            "parameters without tag name duplicates.",
            ArgumentName="x-amz-tagging",
            ArgumentValue=text,
        ) from None
    tags = dict(pairs)
    check_tags(tags, duplicates=len(tags) != len(pairs))
    return tags


def check_tags(tags: dict[str, str], *, duplicates: bool = False) -> None:
    """S3's tag rules: at most 10, keys 1-128 characters, values at most 256, no repeats."""
    if duplicates:
        raise S3RequestError("InvalidTag", 400, "Cannot provide multiple Tags with the same key")
    if len(tags) > MAX_TAGS:
        raise S3RequestError("BadRequest", 400, "Object tags cannot be greater than 10")
    for key, value in tags.items():
        if not 1 <= len(key) <= 128:
            raise S3RequestError(
                "InvalidTag", 400, "The TagKey you have provided is invalid", TagKey=key
            )
        if len(value) > 256:
            raise S3RequestError(
                "InvalidTag",
                400,
                "The TagValue you have provided is too long, max 256",
                TagKey=key,
            )


def object_headers(info: ObjectInfo, *, checksum_mode: bool) -> list[tuple[str, str]]:
    """What GetObject and HeadObject answer for ``info`` (before overrides and ranges)."""
    headers = [
        ("ETag", info.etag),
        ("Last-Modified", format_datetime(info.last_modified, usegmt=True)),
        ("Accept-Ranges", "bytes"),
        ("Content-Type", info.content_type),
        *info.headers.items(),
        *((f"x-amz-meta-{name}", value) for name, value in info.metadata.items()),
        ("x-amz-server-side-encryption", "AES256"),
    ]
    if info.tags:
        headers.append(("x-amz-tagging-count", str(len(info.tags))))
    if checksum_mode and info.checksum is not None:
        headers.append((f"x-amz-checksum-{info.checksum.algorithm.lower()}", info.checksum.value))
        headers.append(("x-amz-checksum-type", info.checksum.type))
    return headers


def _text(value: str) -> str:
    """A metadata value as text: UTF-8 bytes read as such, RFC 2047 encoded words decoded."""
    try:
        value = value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass  # latin-1 it is
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, UnicodeError, LookupError):
        return value  # not an encoded word after all: kept as sent

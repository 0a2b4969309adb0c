"""An S3 request as ``S3Api`` reads it: bucket and key from the Host (virtual-hosted
style) or the path, the query, the headers and the operation they name; the Range and
conditional headers of a read; a presigned URL's expiry; and the error that refuses a
request before it reaches the store.

Keys arrive percent-encoded in the path and are decoded exactly once, as S3 does: ``%XX``
becomes its byte and "+" a space (S3's legacy reading of the path: "a+b" fetches key
"a b"; botocore always sends "+" as "%2B" and a space as "%20", and keeps "/" and "~" as
they are, ``botocore.serialize._render_uri_template``). The query is form-decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, unquote_to_bytes

from skylift.asgi_types import Receive, Scope
from skylift.errors import SkyliftError
from skylift.storage.protocol import ObjectInfo

SERVED = (
    "ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation, "
    "Put/Get/DeleteBucketPolicy, ListObjects, ListObjectsV2, PutObject, CopyObject, "
    "GetObject, HeadObject, DeleteObject, DeleteObjects, GetObjectAttributes, "
    "Put/Get/DeleteObjectTagging, CreateMultipartUpload, UploadPart, UploadPartCopy, "
    "CompleteMultipartUpload, AbortMultipartUpload, ListParts and ListMultipartUploads"
)
# Response header a GetObject/HeadObject query parameter overrides.
OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
# (method, target, subresource) -> operation; the subresource is the query parameter
# that names it, None for none.
_OPERATIONS: dict[tuple[str, str, str | None], str] = {
    ("GET", "service", None): "ListBuckets",
    ("PUT", "bucket", None): "CreateBucket",
    ("HEAD", "bucket", None): "HeadBucket",
    ("DELETE", "bucket", None): "DeleteBucket",
    ("GET", "bucket", None): "ListObjects",
    ("GET", "bucket", "location"): "GetBucketLocation",
    ("PUT", "bucket", "policy"): "PutBucketPolicy",
    ("GET", "bucket", "policy"): "GetBucketPolicy",
    ("DELETE", "bucket", "policy"): "DeleteBucketPolicy",
    ("POST", "bucket", "delete"): "DeleteObjects",
    ("GET", "bucket", "uploads"): "ListMultipartUploads",
    ("PUT", "object", None): "PutObject",
    ("GET", "object", None): "GetObject",
    ("HEAD", "object", None): "HeadObject",
    ("DELETE", "object", None): "DeleteObject",
    ("GET", "object", "attributes"): "GetObjectAttributes",
    ("PUT", "object", "tagging"): "PutObjectTagging",
    ("GET", "object", "tagging"): "GetObjectTagging",
    ("DELETE", "object", "tagging"): "DeleteObjectTagging",
    ("POST", "object", "uploads"): "CreateMultipartUpload",
    ("PUT", "object", "uploadId"): "UploadPart",
    ("POST", "object", "uploadId"): "CompleteMultipartUpload",
    ("DELETE", "object", "uploadId"): "AbortMultipartUpload",
    ("GET", "object", "uploadId"): "ListParts",
}
_SUBRESOURCES = frozenset(sub for _, _, sub in _OPERATIONS if sub is not None)
_PARAMS: dict[str, frozenset[str]] = {
    "ListBuckets": frozenset({"prefix", "max-buckets", "continuation-token", "bucket-region"}),
    "ListObjectsV2": frozenset(
        {"list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after"}
        | {"encoding-type", "fetch-owner"}
    ),
    "ListObjects": frozenset({"prefix", "delimiter", "max-keys", "marker", "encoding-type"}),
    "GetObject": frozenset(OVERRIDES),
    "HeadObject": frozenset(OVERRIDES),
    "ListMultipartUploads": frozenset(
        {"delimiter", "encoding-type", "key-marker", "max-uploads", "prefix", "upload-id-marker"}
    ),
    "ListParts": frozenset({"max-parts", "part-number-marker"}),
    "UploadPart": frozenset({"partNumber"}),
}
# Parameters that never change the operation: botocore's operation hint and the
# signature of a presigned URL (SigV4's X-Amz-* are matched by prefix; SigV2's three).
_IGNORED = frozenset({"x-id", "AWSAccessKeyId", "Signature", "Expires"})
# Subresources not served, whose operation is not named "<Verb><Bucket|Object><Subresource>".
_NAMED = {
    ("GET", "bucket", "versions"): "ListObjectVersions",
    ("POST", "object", "restore"): "RestoreObject",
    ("POST", "object", "select"): "SelectObjectContent",
    ("GET", "object", "versionId"): "GetObject of a version",
    ("HEAD", "object", "versionId"): "HeadObject of a version",
    ("DELETE", "object", "versionId"): "DeleteObject of a version",
    ("GET", "object", "partNumber"): "GetObject of a part",
    ("HEAD", "object", "partNumber"): "HeadObject of a part",
}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class S3RequestError(SkyliftError):
    """Raised when a request is refused before it reaches the store.

    Shaped like ``StorageError``: ``code``, ``status``, ``message`` and ``details()``
    (extra elements of the XML error), so both render alike.
    """

    def __init__(self, code: str, status: int, message: str, **details: str) -> None:
        self.code = code
        self.status = status
        self.message = message
        self._details = details
        self.headers: list[tuple[str, str]] = []  # sent with the error, e.g. Content-Range
        super().__init__(f"{code}: {message}")

    def details(self) -> dict[str, str]:
        return dict(self._details)


def not_implemented(operation: str) -> S3RequestError:
    """The 501 for an operation this API does not serve."""
    return S3RequestError(
        "NotImplemented",
        501,
        f"A header or query you provided implies functionality that is not implemented: "
        f"{operation}. This S3 API serves {SERVED}.",
        Operation=operation,
    )


@dataclass(slots=True)
class S3Request:
    """One request: ``key`` is None for bucket operations, ``bucket`` for ListBuckets."""

    method: str
    bucket: str | None
    key: str | None
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased; values latin-1, repeats joined with ","
    receive: Receive
    consumed: bool = False  # whether the whole body has been received


def parse(scope: Scope, receive: Receive) -> S3Request:
    """The request an ASGI ``http`` scope describes; ``InvalidURI`` if it cannot be decoded."""
    # raw_path is the path as sent; scope["path"] is decoded already, and decoding it
    # again would turn a key's "%25" into "%". Servers without raw_path get the best we can.
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    try:
        path = unquote_to_bytes(raw.partition(b"?")[0].replace(b"+", b" ")).decode()
        pairs = parse_qsl(scope["query_string"].decode(), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise S3RequestError(
            "InvalidURI",
            400,
            "Couldn't parse the specified URI.",
            URI=raw.decode("latin-1"),
        ) from None
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    virtual = virtual_bucket(headers.get("host", ""))
    if virtual is not None:
        bucket, key = virtual, path.removeprefix("/")
    else:
        bucket, _, key = path.removeprefix("/").partition("/")
    if key and not bucket:
        raise S3RequestError("InvalidURI", 400, "Couldn't parse the specified URI.")
    return S3Request(scope["method"], bucket or None, key or None, dict(pairs), headers, receive)


def operation(request: S3Request) -> str:
    """The S3 operation ``request`` asks for, e.g. ``"PutObject"``; an S3 error if not served."""
    method, query = request.method, request.query
    target = "service" if request.bucket is None else "object" if request.key else "bucket"
    sub = next((param for param in query if param in _SUBRESOURCES), None)
    found = _OPERATIONS.get((method, target, sub))
    if found == "ListObjects" and "list-type" in query:
        found = "ListObjectsV2"
    allowed = _PARAMS.get(found or "", frozenset()) | {sub}
    for param in query:
        if param not in allowed and param not in _IGNORED and not _is_signature(param):
            raise not_implemented(_named(method, target, param))
    if "x-amz-copy-source" in request.headers:
        if found == "PutObject":
            return "CopyObject"
        if found == "UploadPart":
            return "UploadPartCopy"
    if found is None:
        if method == "POST" and target == "bucket" and sub is None:
            raise not_implemented("PostObject (browser form uploads)")
        raise S3RequestError(
            "MethodNotAllowed",
            405,
            "The specified method is not allowed against this resource.",
            Method=method,
            ResourceType=target.upper(),
        )
    return found


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first byte, length) that a ``Range`` header asks for, or None for the whole object.

    As S3: one range only; a header that is absent, malformed, reversed or names several
    ranges is ignored; a range starting past the end (any range of an empty object but a
    suffix) is ``InvalidRange`` (416, with ``Content-Range: bytes */SIZE``).
    """
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None  # "bytes=5-2" is malformed: RFC 9110 says to ignore it
    else:
        if size == 0 and int(last) > 0:
            return None  # the last bytes of nothing: S3 sends the (empty) object
        start, end = max(size - int(last), 0), size - 1
        if int(last) == 0:
            start = size  # "the last 0 bytes" cannot be satisfied
    if start >= size:
        error = S3RequestError(
            "InvalidRange",
            416,
            "The requested range is not satisfiable",
            RangeRequested=header or "",
            ActualObjectSize=str(size),
        )
        error.headers.append(("Content-Range", f"bytes */{size}"))
        raise error
    return start, end - start + 1


def not_modified(headers: dict[str, str], info: ObjectInfo) -> bool:
    """Whether a read's conditional headers call for ``304 Not Modified``.

    Raises ``PreconditionFailed`` (412) for a failed If-Match or If-Unmodified-Since.
    Evaluated in RFC 9110's order (section 13.2.2), as S3 documents for GetObject.
    """
    if "if-match" in headers:
        failed = not etag_matches(headers["if-match"], info.etag)
        condition = "If-Match"
    else:
        since = http_date(headers.get("if-unmodified-since"))
        failed = since is not None and info.last_modified > since
        condition = "If-Unmodified-Since"
    if failed:
        raise S3RequestError(
            "PreconditionFailed",
            412,
            "At least one of the pre-conditions you specified did not hold",
            Condition=condition,
        )
    if "if-none-match" in headers:
        return etag_matches(headers["if-none-match"], info.etag)
    since = http_date(headers.get("if-modified-since"))
    # A date in the future is ignored, as S3 (and RFC 9110) do: the object is sent.
    return since is not None and info.last_modified <= since <= datetime.now(UTC)


def check_presigned(query: dict[str, str]) -> None:
    """Refuse a presigned URL (SigV4 or SigV2) whose time is up, as S3 does (403)."""
    now = datetime.now(UTC).replace(microsecond=0)
    server_time = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if "X-Amz-Date" in query and "X-Amz-Expires" in query:
        try:
            signed = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            seconds = int(query["X-Amz-Expires"])
        except ValueError:
            raise S3RequestError(
                "AuthorizationQueryParametersError",
                400,
                "X-Amz-Expires should be a number",
            ) from None
        if seconds > 604800:
            raise S3RequestError(
                "AuthorizationQueryParametersError",
                400,
                "X-Amz-Expires must be less than a week (in seconds) that is 604800",
            )
        if now > signed + timedelta(seconds=seconds):
            raise S3RequestError(
                "AccessDenied",
                403,
                "Request has expired",
                **{"X-Amz-Expires": str(seconds)},
                Expires=(signed + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                ServerTime=server_time,
            )
    elif "Signature" in query and "Expires" in query:
        expires = query["Expires"]
        if not expires.isdigit() or now.timestamp() > int(expires):
            moment = datetime.fromtimestamp(int(expires), UTC) if expires.isdigit() else None
            raise S3RequestError(
                "AccessDenied",
                403,
                "Request has expired",
                Expires=moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else expires,
                ServerTime=server_time,
            )


def virtual_bucket(host: str) -> str | None:
    """The bucket a virtual-hosted-style Host names: ``BUCKET.s3.localhost[:port]`` or
    ``BUCKET.localhost[:port]``; None for path style."""
    name = host.rpartition(":")[0] if host.count(":") == 1 else host
    name = name.lower().rstrip(".")
    for suffix in (".s3.localhost", ".localhost"):
        if name.endswith(suffix):
            bucket = name.removesuffix(suffix)
            return bucket if bucket and bucket != "s3" else None
    return None


def int_param(query: dict[str, str], name: str, default: int, *, low: int, high: int) -> int:
    """The whole-number query parameter ``name``; ``InvalidArgument`` if out of range."""
    text = query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.lstrip("-").isdigit() and low <= int(text) <= high):
        raise S3RequestError(
            "InvalidArgument",
            400,
            f"Provided {name} not an integer or within integer range",
            ArgumentName=name,
            ArgumentValue=text,
        )
    return int(text)


def _named(method: str, target: str, param: str) -> str:
    if (method, target, param) in _NAMED:
        return _NAMED[method, target, param]
    verb = method.capitalize()
    subject = "Object" if target == "object" else "Bucket"
    name = "".join(part[:1].upper() + part[1:] for part in param.replace("_", "-").split("-"))
    return f"{verb}{subject}{name} (the ?{param} subresource)"


def _is_signature(param: str) -> bool:
    return param.lower().startswith("x-amz-")


def etag_matches(condition: str, etag: str) -> bool:
    """Whether an If-Match/If-None-Match list names ``etag`` (or is ``*``)."""
    tags = {tag.strip().removeprefix("W/") for tag in condition.split(",")}
    return "*" in tags or etag in tags or etag.strip('"') in tags


def http_date(value: str | None) -> datetime | None:
    """An HTTP date header's moment (UTC), or None if absent or unreadable."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # an unreadable date is ignored, as RFC 9110 asks
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

"""S3's XML bodies: the responses ``S3Api`` renders and the request bodies it reads.

Element names, order and namespace follow the Amazon S3 API reference (ListBuckets,
ListObjectsV2, ListObjects, "Error responses"), so botocore's parser reads them as it reads
S3's own. Errors carry no namespace, as in S3.

With ``encoding-type=url`` (which botocore always sends for listings, then decodes),
``Key``, ``Prefix``, ``Delimiter``, ``StartAfter``, ``Marker`` and ``NextMarker`` are
percent-encoded. botocore decodes them with ``unquote_plus``
(``botocore.handlers.decode_list_object_v2``, ``botocore.compat.unquote_str``), so a "+"
must go out as "%2B"; ``quote`` writes a space as "%20", which every decoder reads back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from urllib.parse import quote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from skylift.api.s3_request import S3RequestError
from skylift.events.s3 import LOCAL_OWNER
from skylift.storage.protocol import BucketInfo, ListResult, ObjectInfo

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
# A bare "\r" would reach the reader as "\n" (XML normalises line ends); a character
# reference keeps it.
_ENTITIES = {"\r": "&#13;"}
# S3 stopped returning Owner.DisplayName in 2025; the canonical ID stays.
OWNER = f"<Owner><ID>{LOCAL_OWNER}</ID></Owner>"


def iso_time(moment: datetime) -> str:
    """S3's XML timestamp: ``2009-10-12T17:50:30.000Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def error(code: str, message: str, details: Mapping[str, str], request_id: str) -> bytes:
    """An S3 error body: ``<Error><Code>NoSuchKey</Code><Message>...</Message>...``."""
    parts = [f"<Code>{_text(code)}</Code>", f"<Message>{_text(message)}</Message>"]
    parts += [f"<{name}>{_text(value)}</{name}>" for name, value in details.items()]
    parts.append(f"<RequestId>{_text(request_id)}</RequestId>")
    return _document("<Error>" + "".join(parts) + "</Error>")


def list_buckets(
    buckets: Iterable[BucketInfo], *, region: str, prefix: str | None, token: str | None
) -> bytes:
    """ListBuckets' ``ListAllMyBucketsResult``; ``token`` continues a truncated list."""
    entries = "".join(
        f"<Bucket><Name>{_text(b.name)}</Name><CreationDate>{iso_time(b.created)}"
        f"</CreationDate><BucketRegion>{_text(region)}</BucketRegion>"
        f"<BucketArn>arn:aws:s3:::{_text(b.name)}</BucketArn></Bucket>"
        for b in buckets
    )
    owner = OWNER
    tail = _optional("ContinuationToken", token) + _optional("Prefix", prefix)
    body = f"{owner}<Buckets>{entries}</Buckets>{tail}"
    return _document(f'<ListAllMyBucketsResult xmlns="{NAMESPACE}">{body}</ListAllMyBucketsResult>')


def list_objects(
    page: ListResult,
    *,
    bucket: str,
    version: int,
    prefix: str,
    delimiter: str | None,
    max_keys: int,
    url_encoded: bool,
    continuation_token: str | None = None,
    start_after: str | None = None,
    marker: str | None = None,
    owner: bool = False,
) -> bytes:
    """A ``ListBucketResult`` for ListObjectsV2 (``version=2``) or ListObjects (``1``)."""

    def key(value: str) -> str:
        return quote(value, safe="/") if url_encoded else value

    parts = [_element("Name", bucket), _element("Prefix", key(prefix))]
    if version == 1:
        parts.append(_element("Marker", key(marker or "")))
        if page.is_truncated and delimiter:
            # Without a delimiter S3 sends no NextMarker: the client continues from the
            # last key. With one, the last key or common prefix of the page, whichever
            # sorts later (UTF-8 order).
            last = [page.objects[-1].key] if page.objects else []
            last += page.common_prefixes[-1:]
            parts.append(_element("NextMarker", key(max(last, key=str.encode))))
    if delimiter:
        parts.append(_element("Delimiter", key(delimiter)))
    parts.append(f"<MaxKeys>{max_keys}</MaxKeys>")
    if url_encoded:
        parts.append("<EncodingType>url</EncodingType>")
    if version == 2:
        parts.append(f"<KeyCount>{len(page.objects) + len(page.common_prefixes)}</KeyCount>")
        parts.append(_optional("ContinuationToken", continuation_token))
        parts.append(_optional("NextContinuationToken", page.next_continuation_token))
        # S3 echoes StartAfter only on a first page: a continuation token supersedes it.
        if continuation_token is None:
            after = None if start_after is None else key(start_after)
            parts.append(_optional("StartAfter", after))
    parts.append(f"<IsTruncated>{'true' if page.is_truncated else 'false'}</IsTruncated>")
    parts += [_contents(info, key(info.key), owner) for info in page.objects]
    parts += [
        f"<CommonPrefixes>{_element('Prefix', key(p))}</CommonPrefixes>"
        for p in page.common_prefixes
    ]
    return _document(f'<ListBucketResult xmlns="{NAMESPACE}">{"".join(parts)}</ListBucketResult>')


def location_constraint(body: bytes) -> str | None:
    """The ``LocationConstraint`` of a CreateBucket body, if any; ``ValueError`` if malformed.

    Example: ``<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint>
    </CreateBucketConfiguration>`` gives ``"eu-west-1"``.
    """
    if not body.strip():
        return None
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ValueError(str(exc)) from None
    if _local(root.tag) != "CreateBucketConfiguration":
        raise ValueError(f"the root element is <{_local(root.tag)}>")
    for child in root:
        if _local(child.tag) == "LocationConstraint":
            return (child.text or "").strip() or None
    return None


def _contents(info: ObjectInfo, key: str, owner: bool) -> str:
    algorithm = ""
    if info.checksum is not None:
        algorithm = (
            f"<ChecksumAlgorithm>{info.checksum.algorithm}</ChecksumAlgorithm>"
            f"<ChecksumType>{info.checksum.type}</ChecksumType>"
        )
    storage_class = info.headers.get("x-amz-storage-class", "STANDARD")
    return (
        f"<Contents>{_element('Key', key)}"
        f"<LastModified>{iso_time(info.last_modified)}</LastModified>"
        f"<ETag>{_text(info.etag)}</ETag>{algorithm}<Size>{info.size}</Size>"
        f"{OWNER if owner else ''}<StorageClass>{storage_class}</StorageClass></Contents>"
    )


def element(name: str, value: str) -> str:
    """``<name>value</name>``, the value escaped."""
    return f"<{name}>{_text(value)}</{name}>"


def document(root: str, body: str) -> bytes:
    """An XML response: ``<root xmlns=S3>body</root>`` with the declaration."""
    return _document(f'<{root} xmlns="{NAMESPACE}">{body}</{root}>')


def parse(body: bytes, root: str) -> ElementTree.Element:
    """A request body whose root element must be ``root``; ``MalformedXML`` otherwise."""
    try:
        tree = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        tree = None
    if tree is None or _local(tree.tag) != root:
        raise malformed()
    return tree


def children(node: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    """The child elements called ``name`` (namespace or not)."""
    return [child for child in node if _local(child.tag) == name]


def child_text(node: ElementTree.Element, name: str) -> str | None:
    found = children(node, name)
    return (found[0].text or "") if found else None


def malformed() -> S3RequestError:
    """S3's answer to a request body that is not the XML document the operation takes."""
    return S3RequestError(
        "MalformedXML",
        400,
        "The XML you provided was not well-formed or did not validate against our published schema",
    )


def _element(name: str, value: str) -> str:
    return f"<{name}>{_text(value)}</{name}>"


def _optional(name: str, value: str | None) -> str:
    return "" if value is None else _element(name, value)


def text(value: str) -> str:
    """``value`` escaped for XML text."""
    return escape(value, _ENTITIES)


_text = text


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _document(root: str) -> bytes:
    return (_DECLARATION + root).encode()

"""S3's multipart upload: CreateMultipartUpload, UploadPart, UploadPartCopy,
CompleteMultipartUpload, AbortMultipartUpload, ListParts and ListMultipartUploads.

Parts stream to disk as PutObject bodies do. The checksum an upload declares
(``x-amz-checksum-algorithm``, ``x-amz-checksum-type``) gives the completed object its
checksum: COMPOSITE (the default for CRC32, CRC32C, SHA1 and SHA256) is the checksum of
the parts' checksums with ``-N``; FULL_OBJECT (the default for CRC64NVME) is the checksum
of the whole object, computed here for CRC32 and taken from the completion request for
the algorithms this server cannot compute.
"""

from __future__ import annotations

from skylift.api import s3_body, s3_copy, s3_headers, s3_xml
from skylift.api.s3_objects import (
    checksum_headers,
    commit,
    discard,
    precheck,
    receive_object,
    write_condition,
)
from skylift.api.s3_request import S3Request, S3RequestError, int_param
from skylift.api.s3_response import Handler, Response, Service, off_loop, xml
from skylift.events.s3 import LOCAL_OWNER
from skylift.storage import checksums
from skylift.storage.protocol import Checksum, Part, Upload

MAX_PART = 5 * 1024**3
MAX_PARTS = 10_000
_OWNER = f"<ID>{LOCAL_OWNER}</ID>"


def _checksum_elements(checksum: Checksum | None) -> str:
    if checksum is None:
        return ""
    return s3_xml.element(f"Checksum{checksum.algorithm}", checksum.value)


async def create_upload(api: Service, request: S3Request, rid: str) -> Response:
    bucket, key = request.bucket or "", request.key or ""
    headers = request.headers
    attributes = s3_headers.attributes(headers)
    algorithm = headers.get("x-amz-checksum-algorithm", "").upper() or None
    kind = headers.get("x-amz-checksum-type", "").upper() or None
    if algorithm is not None and algorithm not in checksums.SIZES:
        raise S3RequestError("InvalidRequest", 400, "Checksum algorithm provided is unsupported.")
    if kind is not None and kind not in ("COMPOSITE", "FULL_OBJECT"):
        raise S3RequestError("InvalidRequest", 400, "Value for x-amz-checksum-type is invalid.")
    if algorithm is not None and kind is None:
        kind = "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"
    if kind == "FULL_OBJECT" and algorithm not in ("CRC32", "CRC32C", "CRC64NVME"):
        raise S3RequestError(
            "InvalidRequest",
            400,
            f"The FULL_OBJECT checksum type cannot be used with the {algorithm} "
            "checksum algorithm.",
        )
    if kind == "COMPOSITE" and algorithm == "CRC64NVME":
        raise S3RequestError(
            "InvalidRequest",
            400,
            "The COMPOSITE checksum type cannot be used with the CRC64NVME checksum algorithm.",
        )
    upload = await api.store.create_upload(
        bucket, key, attributes, checksum_algorithm=algorithm, checksum_type=kind
    )
    body = s3_xml.element("Bucket", bucket) + s3_xml.element("Key", key)
    body += s3_xml.element("UploadId", upload.upload_id)
    answer = [("x-amz-server-side-encryption", "AES256")]
    if algorithm is not None and kind is not None:
        answer += [("x-amz-checksum-algorithm", algorithm), ("x-amz-checksum-type", kind)]
    return xml(s3_xml.document("InitiateMultipartUploadResult", body), headers=answer)


async def _upload(api: Service, request: S3Request) -> tuple[Upload, list[Part]]:
    return await api.store.get_upload(
        request.bucket or "", request.key or "", request.query.get("uploadId", "")
    )


def _part_number(request: S3Request) -> int:
    text = request.query.get("partNumber", "")
    if not (text.isdigit() and 1 <= int(text) <= MAX_PARTS):
        raise S3RequestError(
            "InvalidArgument",
            400,
            "Part number must be an integer between 1 and 10000, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=text,
        )
    return int(text)


async def upload_part(api: Service, request: S3Request, rid: str) -> Response:
    number = _part_number(request)
    upload, _ = await _upload(api, request)
    path, received = await receive_object(api, request, upload.bucket, MAX_PART)
    try:
        part = await api.store.upload_part(
            upload, number, path, etag=received.etag, checksum=received.checksum
        )
    finally:
        await discard(path)
    headers = [("ETag", part.etag), ("x-amz-server-side-encryption", "AES256")]
    return Response(200, headers + checksum_headers(received))


async def upload_part_copy(api: Service, request: S3Request, rid: str) -> Response:
    number = _part_number(request)
    upload, _ = await _upload(api, request)
    source_bucket, source_key = s3_copy.copy_source(request)
    target = await api.store.temp_path(upload.bucket)
    info, file = await api.store.open_object(source_bucket, source_key)
    try:
        with file:
            s3_copy.check_source_conditions(request.headers, info)
            start, length = _source_range(request.headers.get("x-amz-copy-source-range"), info.size)
            etag, checksum = await off_loop(
                file, s3_copy.copy_bytes, file, target, start, length, upload.checksum_algorithm
            )
        part = await api.store.upload_part(upload, number, target, etag=etag, checksum=checksum)
    finally:
        await discard(target)
    body = s3_xml.element("ETag", part.etag)
    body += s3_xml.element("LastModified", s3_xml.iso_time(part.last_modified))
    body += _checksum_elements(part.checksum)
    return xml(s3_xml.document("CopyPartResult", body))


def _source_range(header: str | None, size: int) -> tuple[int, int]:
    if header is None:
        return 0, size
    first, dash, last = header.removeprefix("bytes=").partition("-")
    if not (header.startswith("bytes=") and dash and first.isdigit() and last.isdigit()):
        raise S3RequestError(
            "InvalidArgument",
            400,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where "
            "first and last are the zero-based offsets of the first and last bytes to copy",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=header,
        )
    start, end = int(first), int(last)
    if start > end or end >= size:
        raise S3RequestError(
            "InvalidRange",
            416,
            "The requested range is not satisfiable",
            RangeRequested=header,
            ActualObjectSize=str(size),
        )
    return start, end - start + 1


async def complete_upload(api: Service, request: S3Request, rid: str) -> Response:
    upload, _ = await _upload(api, request)
    condition = write_condition(request.headers)
    root = s3_xml.parse(await s3_body.read(request, 4 * 1024 * 1024), "CompleteMultipartUpload")
    listed: list[tuple[int, str]] = []
    for node in s3_xml.children(root, "Part"):
        number, etag = s3_xml.child_text(node, "PartNumber"), s3_xml.child_text(node, "ETag")
        if number is None or etag is None or not number.strip().isdigit():
            raise s3_xml.malformed()
        listed.append((int(number), etag))
    if not listed:
        raise s3_xml.malformed()
    sent = s3_body.checksum_header(request.headers)
    checksum = None
    if sent is not None and upload.checksum_type == "FULL_OBJECT":
        checksum = Checksum(sent[0], sent[1], "FULL_OBJECT")
    await precheck(api, upload.bucket, upload.key, condition)
    write = api.store.complete_upload(upload, listed, condition=condition, checksum=checksum)
    info = await commit(upload.key, condition, write)
    await api.notify("ObjectCreated:CompleteMultipartUpload", upload.bucket, info, rid)
    host = request.headers.get("host", "localhost")
    body = s3_xml.element("Location", f"http://{host}/{upload.bucket}/{upload.key}")
    body += s3_xml.element("Bucket", upload.bucket) + s3_xml.element("Key", upload.key)
    body += s3_xml.element("ETag", info.etag)
    if info.checksum is not None:
        body += _checksum_elements(info.checksum)
        body += s3_xml.element("ChecksumType", info.checksum.type)
    return xml(
        s3_xml.document("CompleteMultipartUploadResult", body),
        headers=[("x-amz-server-side-encryption", "AES256")],
    )


async def abort_upload(api: Service, request: S3Request, rid: str) -> Response:
    await api.store.abort_upload(
        request.bucket or "", request.key or "", request.query.get("uploadId", "")
    )
    return Response(204)


async def list_parts(api: Service, request: S3Request, rid: str) -> Response:
    upload, parts = await _upload(api, request)
    limit = int_param(request.query, "max-parts", 1000, low=0, high=2**31 - 1)
    marker = int_param(request.query, "part-number-marker", 0, low=0, high=2**31 - 1)
    after = [part for part in parts if part.number > marker]
    page, truncated = after[: min(limit, 1000)], len(after) > min(limit, 1000)
    body = s3_xml.element("Bucket", upload.bucket) + s3_xml.element("Key", upload.key)
    body += s3_xml.element("UploadId", upload.upload_id)
    body += f"<PartNumberMarker>{marker}</PartNumberMarker>"
    if page:
        body += f"<NextPartNumberMarker>{page[-1].number}</NextPartNumberMarker>"
    body += f"<MaxParts>{limit}</MaxParts><IsTruncated>{str(truncated).lower()}</IsTruncated>"
    for part in page:
        body += (
            f"<Part><PartNumber>{part.number}</PartNumber>"
            f"<LastModified>{s3_xml.iso_time(part.last_modified)}</LastModified>"
            f"{s3_xml.element('ETag', part.etag)}<Size>{part.size}</Size>"
            f"{_checksum_elements(part.checksum)}</Part>"
        )
    body += f"<Initiator>{_OWNER}</Initiator><Owner>{_OWNER}</Owner>"
    body += "<StorageClass>STANDARD</StorageClass>"
    body += _upload_checksum(upload)
    return xml(s3_xml.document("ListPartsResult", body))


def _upload_checksum(upload: Upload) -> str:
    if upload.checksum_algorithm is None or upload.checksum_type is None:
        return ""
    return s3_xml.element("ChecksumAlgorithm", upload.checksum_algorithm) + s3_xml.element(
        "ChecksumType", upload.checksum_type
    )


async def list_uploads(api: Service, request: S3Request, rid: str) -> Response:
    bucket, query = request.bucket or "", request.query
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter") or None
    key_marker, id_marker = query.get("key-marker", ""), query.get("upload-id-marker", "")
    limit = int_param(query, "max-uploads", 1000, low=0, high=2**31 - 1)
    chosen: list[Upload] = []
    prefixes: list[str] = []
    truncated = False
    for upload in await api.store.list_uploads(bucket):
        if not upload.key.startswith(prefix):
            continue
        if key_marker and (upload.key.encode(), upload.upload_id) <= (
            key_marker.encode(),
            id_marker if id_marker else "\U0010ffff",
        ):
            continue
        if delimiter and delimiter in upload.key[len(prefix) :]:
            common = upload.key[: upload.key.index(delimiter, len(prefix)) + len(delimiter)]
            if common not in prefixes:
                prefixes.append(common)
            continue
        if len(chosen) >= min(limit, 1000):
            truncated = True
            break
        chosen.append(upload)
    body = s3_xml.element("Bucket", bucket) + s3_xml.element("KeyMarker", key_marker)
    body += s3_xml.element("UploadIdMarker", id_marker)
    if truncated and chosen:
        body += s3_xml.element("NextKeyMarker", chosen[-1].key)
        body += s3_xml.element("NextUploadIdMarker", chosen[-1].upload_id)
    body += s3_xml.element("Prefix", prefix)
    if delimiter:
        body += s3_xml.element("Delimiter", delimiter)
    body += f"<MaxUploads>{limit}</MaxUploads><IsTruncated>{str(truncated).lower()}</IsTruncated>"
    for upload in chosen:
        body += (
            f"<Upload>{s3_xml.element('Key', upload.key)}"
            f"{s3_xml.element('UploadId', upload.upload_id)}"
            f"<Initiator>{_OWNER}</Initiator><Owner>{_OWNER}</Owner>"
            f"<StorageClass>STANDARD</StorageClass>"
            f"<Initiated>{s3_xml.iso_time(upload.initiated)}</Initiated>"
            f"{_upload_checksum(upload)}</Upload>"
        )
    body += "".join(
        f"<CommonPrefixes>{s3_xml.element('Prefix', p)}</CommonPrefixes>" for p in prefixes
    )
    return xml(s3_xml.document("ListMultipartUploadsResult", body))


HANDLERS: dict[str, Handler] = {
    "CreateMultipartUpload": create_upload,
    "UploadPart": upload_part,
    "UploadPartCopy": upload_part_copy,
    "CompleteMultipartUpload": complete_upload,
    "AbortMultipartUpload": abort_upload,
    "ListParts": list_parts,
    "ListMultipartUploads": list_uploads,
}

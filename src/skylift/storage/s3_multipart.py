"""``S3Store``'s multipart uploads: the external endpoint's own multipart uploads.

The parts go straight to the endpoint; completing checks the listed parts as S3 does
(``InvalidPartOrder``, ``InvalidPart``, ``EntityTooSmall``) before the endpoint joins
them, then stores skylift's record on the result (a copy onto itself, as S3 changes
metadata). The upload id skylift hands out carries the upload's additional checksum
algorithm and type before the endpoint's id (``CRC32.COMPOSITE.<id>``), since S3 keeps
no place to read them back from.

An upload with a full-object checksum can fail after the endpoint joined its parts
(``BadDigest``, known only once the joined bytes are read back), so its endpoint upload
is made under a staging key (``STAGING + key``) and the joined object copied to its key
only when it checks out: a failed completion leaves an earlier object of that key as it
was, as S3 does.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from skylift.storage import checksums
from skylift.storage.errors import (
    BadDigest,
    NoSuchUpload,
    StorageError,
)
from skylift.storage.files import now
from skylift.storage.multipart import MIN_PART_SIZE, choose_parts, object_checksum
from skylift.storage.protocol import (
    Attributes,
    Checksum,
    Condition,
    ObjectInfo,
    Part,
    Upload,
    check_key,
    user_metadata,
)
from skylift.storage.s3_copy import COPY_LIMIT, copy
from skylift.storage.s3_endpoint import Endpoint
from skylift.storage.s3_records import put_params, upload_attributes, upload_params

T = TypeVar("T")

STAGING = ".skylift-staging/"  # before the key of a staged upload's endpoint upload
_MAX_KEY_BYTES = 1024


def staged(key: str, kind: str | None) -> bool:
    """Whether an upload of `key` with checksum type `kind` is made under a staging key:
    one with a full-object checksum, unless the staging key would be longer than S3's
    keys may be (that one is joined in place, as before)."""
    return kind == "FULL_OBJECT" and len((STAGING + key).encode()) <= _MAX_KEY_BYTES


def _at(key: str, upload_id: str) -> str:
    """The endpoint's key of the upload `upload_id` of `key`."""
    return STAGING + key if staged(key, _split_id(upload_id)[1]) else key


def _upload_id(algorithm: str | None, kind: str | None, external: str) -> str:
    return f"{algorithm or '-'}.{kind or '-'}.{external}"


def _split_id(upload_id: str) -> tuple[str | None, str | None, str]:
    """(checksum algorithm, checksum type, the endpoint's upload id); ``NoSuchUpload``."""
    parts = upload_id.split(".", 2)
    if len(parts) != 3 or not parts[2]:
        raise NoSuchUpload(upload_id)
    algorithm, kind, external = parts
    return (None if algorithm == "-" else algorithm), (None if kind == "-" else kind), external


class S3MultipartMethods:
    """Mixed into ``S3Store``: the ``ObjectStore`` multipart methods."""

    endpoint: Endpoint
    min_part_size: int = MIN_PART_SIZE
    copy_limit: int = COPY_LIMIT  # larger objects are copied in ranges (UploadPartCopy)

    def _external(self, name: str) -> str:
        raise NotImplementedError

    def _lock(self, bucket: str, key: str) -> threading.Lock:
        raise NotImplementedError

    async def _run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        raise NotImplementedError

    def _rewrite_record(
        self, info: ObjectInfo, etag: str, *, source: str | None = None, **native: Any
    ) -> None:
        """Store `info` as the record of the endpoint's object whose ETag is `etag`: S3
        changes an object's metadata only by copying it onto itself (or, from `source`,
        onto `info.key`, if `native`'s If-Match / If-None-Match hold there)."""
        copy(
            self.endpoint,
            bucket=info.bucket,
            key=info.key,
            external=self._external(info.bucket),
            source=info.key if source is None else source,
            etag=etag,
            size=info.size,
            params={**put_params(info), **native},
            limit=self.copy_limit,
        )

    def _condition(self, bucket: str, key: str, condition: Condition) -> dict[str, Any]:
        raise NotImplementedError

    def sequencer(self, bucket: str) -> str:
        raise NotImplementedError

    async def create_upload(
        self,
        bucket: str,
        key: str,
        attributes: Attributes,
        *,
        checksum_algorithm: str | None = None,
        checksum_type: str | None = None,
    ) -> Upload:
        external = self._external(bucket)
        check_key(bucket, key)
        user_metadata(bucket, key, attributes.metadata)  # refused now, not at the end
        answer = await self._run(
            self.endpoint.call,
            "create_multipart_upload",
            bucket=bucket,
            key=key,
            Bucket=external,
            Key=STAGING + key if staged(key, checksum_type) else key,
            **upload_params(attributes, checksum_algorithm, checksum_type),
        )
        upload_id = _upload_id(checksum_algorithm, checksum_type, str(answer["UploadId"]))
        return Upload(bucket, key, upload_id, now(), attributes, checksum_algorithm, checksum_type)

    async def upload_part(
        self,
        upload: Upload,
        number: int,
        data: bytes | Path,
        *,
        etag: str | None = None,
        checksum: Checksum | None = None,
    ) -> Part:
        def put() -> Part:
            external_id = _split_id(upload.upload_id)[2]
            params: dict[str, Any] = {
                "Bucket": self._external(upload.bucket),
                "Key": _at(upload.key, upload.upload_id),
                "UploadId": external_id,
                "PartNumber": number,
            }
            where = {"bucket": upload.bucket, "key": upload.key, "upload": upload.upload_id}
            try:
                if isinstance(data, Path):
                    size = data.stat().st_size
                    with open(data, "rb") as body:
                        answer = self.endpoint.call("upload_part", Body=body, **where, **params)
                else:
                    size = len(data)
                    answer = self.endpoint.call("upload_part", Body=data, **where, **params)
            except StorageError as exc:
                if exc.code != "InternalError":
                    raise
                # Some endpoints (moto) fail a part of an aborted upload with a 500: S3
                # answers NoSuchUpload, which this raises if the upload is gone.
                self._parts(upload.bucket, upload.key, upload.upload_id)
                raise
            return Part(number, size, str(answer["ETag"]), now(), checksum)

        return await self._run(put)

    async def get_upload(self, bucket: str, key: str, upload_id: str) -> tuple[Upload, list[Part]]:
        return await self._run(self._get_upload, bucket, key, upload_id)

    async def list_uploads(self, bucket: str) -> list[Upload]:
        def listed() -> list[Upload]:
            found = []
            for item in self._uploads(bucket, ""):
                algorithm = item.get("ChecksumAlgorithm")
                key, kind = str(item["Key"]), item.get("ChecksumType")
                if key.startswith(STAGING) and staged(key[len(STAGING) :], "FULL_OBJECT"):
                    key, kind = key[len(STAGING) :], "FULL_OBJECT"
                elif staged(key, kind):
                    kind = None  # joined in place: its id must not point at a staging key
                upload_id = _upload_id(algorithm, kind, str(item["UploadId"]))
                initiated = item["Initiated"].astimezone(UTC).replace(microsecond=0)
                found.append(
                    Upload(bucket, key, upload_id, initiated, Attributes(), algorithm, kind)
                )
            return sorted(found, key=lambda u: (u.key.encode(), u.initiated, u.upload_id))

        return await self._run(listed)

    async def complete_upload(
        self,
        upload: Upload,
        parts: Sequence[tuple[int, str]],
        *,
        condition: Condition | None = None,
        checksum: Checksum | None = None,
    ) -> ObjectInfo:
        return await self._run(self._complete, upload, parts, condition, checksum)

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        def abort() -> None:
            self._parts(bucket, key, upload_id)  # NoSuchUpload, as S3, if it is gone
            self.endpoint.call(
                "abort_multipart_upload",
                bucket=bucket,
                key=key,
                upload=upload_id,
                Bucket=self._external(bucket),
                Key=_at(key, upload_id),
                UploadId=_split_id(upload_id)[2],
            )

        await self._run(abort)

    # -- on worker threads --

    def _get_upload(self, bucket: str, key: str, upload_id: str) -> tuple[Upload, list[Part]]:
        algorithm, kind, external_id = _split_id(upload_id)
        parts = self._parts(bucket, key, upload_id)
        at = _at(key, upload_id)
        for item in self._uploads(bucket, at):
            if item["UploadId"] == external_id and item["Key"] == at:
                initiated = item["Initiated"].astimezone(UTC).replace(microsecond=0)
                upload = Upload(bucket, key, upload_id, initiated, Attributes(), algorithm, kind)
                return upload, parts
        raise NoSuchUpload(upload_id)

    def _uploads(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"Bucket": self._external(bucket), "Prefix": prefix}
        while True:
            page = self.endpoint.call("list_multipart_uploads", bucket=bucket, **params)
            found.extend(page.get("Uploads", []))
            if not page.get("IsTruncated"):
                return found
            params["KeyMarker"] = page["NextKeyMarker"]
            params["UploadIdMarker"] = page["NextUploadIdMarker"]

    def _parts(self, bucket: str, key: str, upload_id: str) -> list[Part]:
        external_id = _split_id(upload_id)[2]
        parts: list[Part] = []
        params: dict[str, Any] = {
            "Bucket": self._external(bucket),
            "Key": _at(key, upload_id),
            "UploadId": external_id,
        }
        while True:
            page = self.endpoint.call(
                "list_parts", bucket=bucket, key=key, upload=upload_id, **params
            )
            for item in page.get("Parts", []):
                modified: datetime = item["LastModified"].astimezone(UTC).replace(microsecond=0)
                parts.append(
                    Part(int(item["PartNumber"]), int(item["Size"]), str(item["ETag"]), modified)
                )
            if not page.get("IsTruncated"):
                return parts
            params["PartNumberMarker"] = page["NextPartNumberMarker"]

    def _complete(
        self,
        upload: Upload,
        listed: Sequence[tuple[int, str]],
        condition: Condition | None,
        sent: Checksum | None,
    ) -> ObjectInfo:
        bucket, key = upload.bucket, upload.key
        external = self._external(bucket)
        stored = {part.number: part for part in self._parts(bucket, key, upload.upload_id)}
        chosen = choose_parts(upload.upload_id, listed, stored, self.min_part_size)
        md5s = b"".join(bytes.fromhex(part.etag.strip('"')) for part in chosen)
        etag = f'"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(chosen)}"'
        at = _at(key, upload.upload_id)
        with self._lock(bucket, key):
            native = self._condition(bucket, key, condition) if condition is not None else {}
            self.endpoint.call(
                "complete_multipart_upload",
                bucket=bucket,
                key=key,
                upload=upload.upload_id,
                Bucket=external,
                Key=at,
                UploadId=_split_id(upload.upload_id)[2],
                MultipartUpload={
                    "Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in chosen]
                },
                **(native if at == key else {}),  # a staged object's copy checks them
            )
            try:
                return self._place(upload, at, chosen, etag, sent, native)
            except BadDigest:
                if at == key:  # joined in place: not announced yet, and S3 stores nothing
                    self.endpoint.call(
                        "delete_object", bucket=bucket, key=key, Bucket=external, Key=key
                    )
                raise
            finally:
                if at != key:
                    with contextlib.suppress(StorageError):
                        self.endpoint.call(
                            "delete_object", bucket=bucket, key=key, Bucket=external, Key=at
                        )

    def _place(
        self,
        upload: Upload,
        at: str,
        chosen: list[Part],
        etag: str,
        sent: Checksum | None,
        native: dict[str, Any],
    ) -> ObjectInfo:
        """Check the joined object at the endpoint's key `at` and store it with its record
        under the upload's key (a copy from a staging key, with `native`'s conditions)."""
        bucket, key = upload.bucket, upload.key
        answer = self.endpoint.call(
            "head_object", bucket=bucket, key=key, Bucket=self._external(bucket), Key=at
        )
        checksum = sent
        if upload.checksum_algorithm is not None:
            checksum = self._checksum(upload, at, chosen, str(answer["ETag"]), sent)
        attributes = upload_attributes(answer)
        info = ObjectInfo(
            bucket,
            key,
            int(answer["ContentLength"]),
            etag,
            attributes.content_type or answer.get("ContentType", ""),
            now(),
            dict(attributes.metadata),
            self.sequencer(bucket),
            headers=dict(attributes.headers),
            checksum=checksum,
            tags=dict(attributes.tags),
            parts=len(chosen),
        )
        if at == key:
            self._rewrite_record(info, str(answer["ETag"]))
        else:
            self._rewrite_record(info, str(answer["ETag"]), source=at, **native)
        return info

    def _checksum(
        self, upload: Upload, at: str, parts: list[Part], etag: str, sent: Checksum | None
    ) -> Checksum | None:
        """The joined object's additional checksum, read back from the endpoint: S3 keeps
        the parts' checksums nowhere a client of any S3-compatible server can read them."""
        algorithm = upload.checksum_algorithm
        assert algorithm is not None
        answer = self.endpoint.call(
            "get_object",
            bucket=upload.bucket,
            key=upload.key,
            Bucket=self._external(upload.bucket),
            Key=at,
            IfMatch=etag,
        )
        whole = checksums.hasher(algorithm)
        summed: list[Part] = []
        with answer["Body"] as body:
            for part in parts:
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
                    part = replace(
                        part, checksum=Checksum(algorithm, checksums.encode(one.digest()))
                    )
                summed.append(part)
        return object_checksum(upload, summed, whole, sent)

"""``S3Store``'s multipart uploads: the external endpoint's own multipart uploads.

The parts go straight to the endpoint; completing checks the listed parts as S3 does
(``InvalidPartOrder``, ``InvalidPart``, ``EntityTooSmall``) before the endpoint joins
them, then stores skylift's record on the result (a copy onto itself, as S3 changes
metadata). The upload id skylift hands out carries the upload's additional checksum
algorithm and type before the endpoint's id (``CRC32.COMPOSITE.<id>``), since S3 keeps
no place to read them back from.

An upload with a full-object checksum can fail after the endpoint joined its parts
(``BadDigest``, known only once the joined bytes are read back), so its endpoint upload
is made under a staging key (``s3_staging``) and the joined object copied to its key
only when it checks out: a failed completion leaves an earlier object of that key as it
was, as S3 does. The staged object is removed once copied, or on ``BadDigest``; after any
other failure (a 412 of the copy, a 503) it stays, and a retried completion of the same
upload id and parts, finding the endpoint's upload gone but its staged object there with
the parts' ETag, resumes from the checks and the copy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from skylift.storage import s3_readback as readback
from skylift.storage import s3_staging as staging
from skylift.storage.errors import (
    BadDigest,
    InvalidPart,
    NoSuchUpload,
    StorageError,
)
from skylift.storage.files import now
from skylift.storage.multipart import MIN_PART_SIZE, choose_parts
from skylift.storage.protocol import (
    Attributes,
    Checksum,
    Condition,
    ObjectInfo,
    Part,
    Upload,
    user_metadata,
)
from skylift.storage.s3_copy import COPY_LIMIT, copy
from skylift.storage.s3_endpoint import Endpoint
from skylift.storage.s3_records import put_params, upload_attributes, upload_params
from skylift.storage.s3_staging import (
    STAGING,
    check_client_key,
    delete_staged,
    multipart_etag,
    new_token,
    parse,
    staged_etag,
)

T = TypeVar("T")


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
        check_client_key(bucket, key)
        user_metadata(bucket, key, attributes.metadata)  # refused now, not at the end
        token = new_token(key) if checksum_type == "FULL_OBJECT" else None
        answer = await self._run(
            self.endpoint.call,
            "create_multipart_upload",
            bucket=bucket,
            key=key,
            Bucket=external,
            Key=key if token is None else staging.staging_key(key, token),
            **upload_params(attributes, checksum_algorithm, checksum_type),
        )
        upload_id = staging.upload_id(
            checksum_algorithm, checksum_type, str(answer["UploadId"]), token
        )
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
            external_id = staging.split_id(upload.upload_id)[2]
            params: dict[str, Any] = {
                "Bucket": self._external(upload.bucket),
                "Key": staging.at(upload.key, upload.upload_id),
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
                key, kind, token = str(item["Key"]), item.get("ChecksumType"), None
                if key.startswith(STAGING):
                    if (found_staged := parse(key)) is None:
                        continue  # skylift's own prefix, never a client's upload
                    (token, key), kind = found_staged, "FULL_OBJECT"
                upload_id = staging.upload_id(algorithm, kind, str(item["UploadId"]), token)
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
            at = staging.at(key, upload_id)
            try:
                self._parts(bucket, key, upload_id)  # NoSuchUpload, as S3, if it is gone
            except NoSuchUpload:
                if at == key or not staged_etag(
                    self.endpoint, bucket, key, self._external(bucket), at
                ):
                    raise
                # Joined, but its completion failed: its staged object is what is left.
                delete_staged(self.endpoint, bucket, key, self._external(bucket), at)
                return
            self.endpoint.call(
                "abort_multipart_upload",
                bucket=bucket,
                key=key,
                upload=upload_id,
                Bucket=self._external(bucket),
                Key=at,
                UploadId=staging.split_id(upload_id)[2],
            )

        await self._run(abort)

    # -- on worker threads --

    def _get_upload(self, bucket: str, key: str, upload_id: str) -> tuple[Upload, list[Part]]:
        algorithm, kind, external_id, _ = staging.split_id(upload_id)
        parts = self._parts(bucket, key, upload_id)
        at = staging.at(key, upload_id)
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
        external_id = staging.split_id(upload_id)[2]
        parts: list[Part] = []
        params: dict[str, Any] = {
            "Bucket": self._external(bucket),
            "Key": staging.at(key, upload_id),
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
        at = staging.at(key, upload.upload_id)
        try:
            stored = {part.number: part for part in self._parts(bucket, key, upload.upload_id)}
        except NoSuchUpload:
            if at == key:
                raise
            return self._resume(upload, at, listed, condition, sent)
        chosen = choose_parts(upload.upload_id, listed, stored, self.min_part_size)
        etag = multipart_etag(upload.upload_id, [(p.number, p.etag) for p in chosen])
        with self._lock(bucket, key):
            native = self._condition(bucket, key, condition) if condition is not None else {}
            self.endpoint.call(
                "complete_multipart_upload",
                bucket=bucket,
                key=key,
                upload=upload.upload_id,
                Bucket=self._external(bucket),
                Key=at,
                UploadId=staging.split_id(upload.upload_id)[2],
                MultipartUpload={
                    "Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in chosen]
                },
                **(native if at == key else {}),  # a staged object's copy checks them
            )
            return self._finish(upload, at, chosen, etag, sent, native)

    def _resume(
        self,
        upload: Upload,
        at: str,
        listed: Sequence[tuple[int, str]],
        condition: Condition | None,
        sent: Checksum | None,
    ) -> ObjectInfo:
        """Complete again an upload the endpoint joined at `at` before its completion
        failed: its staged object must be the join of the parts `listed`."""
        bucket, key = upload.bucket, upload.key
        found = staged_etag(self.endpoint, bucket, key, self._external(bucket), at)
        if found is None:
            raise NoSuchUpload(upload.upload_id)
        etag = multipart_etag(upload.upload_id, listed)
        if found != etag:
            number, part_etag = listed[-1] if listed else (1, "")
            raise InvalidPart(upload.upload_id, number, part_etag)
        with self._lock(bucket, key):
            native = self._condition(bucket, key, condition) if condition is not None else {}
            chosen = [Part(number, -1, part_etag, now()) for number, part_etag in listed]
            return self._finish(upload, at, chosen, etag, sent, native)

    def _finish(
        self,
        upload: Upload,
        at: str,
        chosen: list[Part],
        etag: str,
        sent: Checksum | None,
        native: dict[str, Any],
    ) -> ObjectInfo:
        """``_place``; the staged object is removed once copied or on ``BadDigest``."""
        bucket, key = upload.bucket, upload.key
        try:
            info = self._place(upload, at, chosen, etag, sent, native)
        except BadDigest:
            if at == key:  # joined in place: not announced yet, and S3 stores nothing
                self.endpoint.call(
                    "delete_object", bucket=bucket, key=key, Bucket=self._external(bucket), Key=key
                )
            else:
                delete_staged(self.endpoint, bucket, key, self._external(bucket), at)
            raise
        if at != key:
            delete_staged(self.endpoint, bucket, key, self._external(bucket), at)
        return info

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
            checksum = readback.checksum(
                self.endpoint, upload, self._external(bucket), at, chosen, answer, sent
            )
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

"""``DirectoryStore``'s multipart operations: thin async wrappers around
``storage.multipart.Uploads``, which keeps the parts, and the store's own PUT, which
places the joined object."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from skylift.storage.errors import NoSuchUpload
from skylift.storage.files import unlink
from skylift.storage.multipart import Uploads
from skylift.storage.protocol import (
    Attributes,
    Checksum,
    Condition,
    ObjectInfo,
    Part,
    Upload,
    user_metadata,
)


class MultipartMethods:
    """Mixed into ``DirectoryStore``: the ``ObjectStore`` multipart methods."""

    uploads: Uploads

    def _bucket_dir(self, name: str) -> Path:
        raise NotImplementedError

    def _locate(self, bucket: str, key: str) -> tuple[Path, Path, str]:
        raise NotImplementedError

    def _put(
        self,
        bucket: str,
        key: str,
        data: bytes | Path,
        attributes: Attributes,
        *,
        condition: Condition | None = None,
        etag: str | None = None,
        parts: int | None = None,
    ) -> ObjectInfo:
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
        def create() -> Upload:
            base = self._locate(bucket, key)[0]
            user_metadata(bucket, key, attributes.metadata)  # refused now, not at the end
            return self.uploads.create(
                base, bucket, key, attributes, checksum_algorithm, checksum_type
            )

        return await asyncio.to_thread(create)

    async def upload_part(
        self,
        upload: Upload,
        number: int,
        data: bytes | Path,
        *,
        etag: str | None = None,
        checksum: Checksum | None = None,
    ) -> Part:
        base = await asyncio.to_thread(self._bucket_dir, upload.bucket)
        return await asyncio.to_thread(
            self.uploads.put_part, base, upload, number, data, etag, checksum
        )

    async def get_upload(self, bucket: str, key: str, upload_id: str) -> tuple[Upload, list[Part]]:
        def get() -> tuple[Upload, list[Part]]:
            return self.uploads.get(self._bucket_dir(bucket), bucket, key, upload_id)

        return await asyncio.to_thread(get)

    async def list_uploads(self, bucket: str) -> list[Upload]:
        return await asyncio.to_thread(
            lambda: self.uploads.in_bucket(self._bucket_dir(bucket), bucket)
        )

    async def complete_upload(
        self,
        upload: Upload,
        parts: Sequence[tuple[int, str]],
        *,
        condition: Condition | None = None,
        checksum: Checksum | None = None,
    ) -> ObjectInfo:
        def complete() -> ObjectInfo:
            base = self._bucket_dir(upload.bucket)
            joined, etag, count, found = self.uploads.join(base, upload, parts, checksum)
            try:
                attributes = replace(upload.attributes, checksum=found)
                info = self._put(
                    upload.bucket,
                    upload.key,
                    joined,
                    attributes,
                    condition=condition,
                    etag=etag,
                    parts=count,
                )
            finally:
                unlink(joined)
            try:
                self.uploads.remove(base, upload.upload_id)
            except NoSuchUpload:
                pass  # aborted while we joined: the object is stored all the same
            return info

        return await asyncio.to_thread(complete)

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        def abort() -> None:
            base = self._bucket_dir(bucket)
            self.uploads.get(base, bucket, key, upload_id)
            self.uploads.remove(base, upload_id)

        await asyncio.to_thread(abort)

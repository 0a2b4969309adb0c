"""An object of the external store read as a seekable binary file (``open_object``).

The GET that opened it streams the bytes as they are read; a seek elsewhere (a ranged
GET, a part copied from a range) closes that stream and asks for the bytes from the new
position with ``Range`` and ``If-Match`` the version first read, so the file is always
one version of the object, and a range never downloads what comes before it.
"""

from __future__ import annotations

import io
from concurrent.futures import Executor
from typing import Any

from skylift.storage.s3_endpoint import Endpoint


class RemoteReader(io.BufferedReader):
    """A buffered ``RemoteObject``, read on ``executor`` (the store's own threads): a
    read that waits on a hung endpoint holds up none of asyncio's default pool."""

    def __init__(self, raw: RemoteObject, buffer_size: int, executor: Executor) -> None:
        super().__init__(raw, buffer_size)
        self.executor = executor


class RemoteObject(io.RawIOBase):
    """The bytes of ``key``'s version ``etag`` (the endpoint's ETag), from ``body`` on."""

    def __init__(
        self,
        endpoint: Endpoint,
        where: dict[str, str],
        etag: str,
        size: int,
        body: Any,
    ) -> None:
        self.endpoint = endpoint
        self.where = where  # bucket, key (skylift's), Bucket, Key (the endpoint's)
        self.etag = etag
        self.size = size
        self.position = 0
        self.body: Any = body

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        target = max(0, base + offset)
        if target != self.position:
            self._drop()
            self.position = target
        return self.position

    def readinto(self, buffer: Any) -> int:
        if self.position >= self.size:
            return 0
        if self.body is None:
            answer = self.endpoint.call(
                "get_object", Range=f"bytes={self.position}-", IfMatch=self.etag, **self.where
            )
            self.body = answer["Body"]
        chunk = self.body.read(len(buffer))
        buffer[: len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)

    def close(self) -> None:
        self._drop()
        super().close()

    def _drop(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None

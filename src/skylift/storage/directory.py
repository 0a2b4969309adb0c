"""Buckets as folders: the object store on a local file system.

Each bucket is a folder under ``root`` (the platform passes ``.skylift/objects/``); where
each key's data and metadata files live is ``storage.layout``'s business, and listing
pages come from ``storage.listing``.

Writes are atomic: the bytes go to a temporary file in the bucket's ``.skylift/tmp`` (the
S3 API streams a request body there, see ``temp_path``), then ``os.replace`` moves the
data and then the metadata into place. Multipart uploads keep their parts under
``.skylift/uploads`` until completed or aborted (``storage.multipart``); uploads left by
an earlier run are removed when the store opens. The metadata records the
data file's inode, so a reader that comes between the two renames (or finds a crash's
leftovers) sees that they disagree, retries, and at last trusts the data file alone: an
object is never served with another version's size or ETag. Writes to one key are
serialised by ``key_locks.py``; ``shared=True`` is a folder several nodes write to.

On a case-insensitive file system (macOS's default), keys that differ only in case share
one object, although S3 keys are case-sensitive.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from skylift.storage import layout
from skylift.storage.directory_buckets import (
    bucket_info,
    bucket_names,
    clear_writes_in_flight,
    create_bucket,
    delete_bucket,
)
from skylift.storage.directory_multipart import MultipartMethods
from skylift.storage.errors import (
    NoSuchBucket,
    NoSuchKey,
)
from skylift.storage.files import file_etag, move_into, now, settle, unlink, write_file
from skylift.storage.key_locks import KeyLocks
from skylift.storage.layout import INTERNAL, data_path, meta_path
from skylift.storage.listing import list_page
from skylift.storage.multipart import Uploads
from skylift.storage.protocol import (
    DEFAULT_CONTENT_TYPE,
    MAX_LIST_KEYS,
    Attributes,
    BucketInfo,
    Condition,
    ListResult,
    ObjectInfo,
    check_condition,
    is_bucket_name,
    user_metadata,
)
from skylift.storage.records import derived, object_record, recorded

_RETRIES = (0.0, 0.001, 0.005, 0.02)  # seconds to wait for a writer between its two renames


class DirectoryStore(MultipartMethods):
    """An ``ObjectStore`` keeping each bucket as a folder under ``root``.

    Example: ``store = DirectoryStore(Path(".skylift/objects"))``.
    """

    def __init__(self, root: Path, *, fsync: bool = False, shared: bool = False) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        # fsync costs a disk flush per write; a local platform rarely needs it.
        self.fsync = fsync
        self._locks = KeyLocks(self.root, shared=shared)
        self._sequence_lock = threading.Lock()
        self._last_sequence = 0
        self.uploads = Uploads(fsync=fsync)
        if shared:
            return  # what is in flight may be another live node's
        # Multipart uploads do not outlive the server that took them: a client cannot
        # resume one anyway once its process is gone, and the parts would fill the disk.
        for name in bucket_names(self.root):
            self.uploads.sweep(self.root / name)
        clear_writes_in_flight(self.root)

    # -- the protocol: each call runs on a worker thread, off the event loop --

    async def create_bucket(self, name: str) -> BucketInfo:
        return await asyncio.to_thread(create_bucket, self.root, name)

    async def delete_bucket(self, name: str) -> None:
        await asyncio.to_thread(lambda: delete_bucket(self.root, self._bucket_dir(name), name))

    async def list_buckets(self) -> list[BucketInfo]:
        return await asyncio.to_thread(self._list_buckets)

    async def head_bucket(self, name: str) -> BucketInfo:
        return await asyncio.to_thread(lambda: bucket_info(name, self._bucket_dir(name)))

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
        if attributes is None:
            attributes = Attributes(content_type=content_type, metadata=metadata or {})
        return await asyncio.to_thread(
            self._put, bucket, key, data, attributes, condition=condition, etag=etag
        )

    async def temp_path(self, bucket: str) -> Path:
        def make() -> Path:
            tmp = self._bucket_dir(bucket) / INTERNAL / "tmp"
            tmp.mkdir(parents=True, exist_ok=True)
            return tmp / f"{uuid.uuid4().hex}.upload"

        return await asyncio.to_thread(make)

    async def set_tags(self, bucket: str, key: str, tags: Mapping[str, str]) -> ObjectInfo:
        return await asyncio.to_thread(self._set_tags, bucket, key, dict(tags))

    async def get_bucket_policy(self, bucket: str) -> str | None:
        def read() -> str | None:
            try:
                return (self._bucket_dir(bucket) / INTERNAL / "policy.json").read_text()
            except FileNotFoundError:
                return None

        return await asyncio.to_thread(read)

    async def set_bucket_policy(self, bucket: str, policy: str | None) -> None:
        def write() -> None:
            path = self._bucket_dir(bucket) / INTERNAL / "policy.json"
            if policy is None:
                unlink(path)
                return
            staged = path.with_name(f"policy.{uuid.uuid4().hex}.tmp")
            staged.write_text(policy)
            os.replace(staged, path)

        await asyncio.to_thread(write)

    async def get_object(self, bucket: str, key: str) -> tuple[ObjectInfo, bytes]:
        def read() -> tuple[ObjectInfo, bytes]:
            info, file = self._open(bucket, key)
            with file:
                return info, file.read()

        return await asyncio.to_thread(read)

    async def open_object(self, bucket: str, key: str) -> tuple[ObjectInfo, BinaryIO]:
        return await asyncio.to_thread(self._open, bucket, key)

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        def head() -> ObjectInfo:
            _, folder, leaf = self._locate(bucket, key)
            return self._info(bucket, key, folder, leaf)

        return await asyncio.to_thread(head)

    async def delete_object(self, bucket: str, key: str) -> bool:
        return await asyncio.to_thread(self._delete, bucket, key)

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
        def page() -> ListResult:
            base = self._bucket_dir(bucket)
            return list_page(
                bucket,
                lambda wanted, cursor: layout.keys(base, wanted, cursor),
                lambda key, found: self._info(bucket, key, *found),
                prefix=prefix,
                delimiter=delimiter,
                max_keys=max_keys,
                continuation_token=continuation_token,
                start_after=start_after,
            )

        return await asyncio.to_thread(page)

    def sequencer(self, bucket: str) -> str:
        # Nanoseconds since the epoch keep growing across restarts; the counter keeps two
        # calls in one clock tick apart. One sequence for all buckets is still per-bucket
        # monotonic. Fixed width, so later is also greater as a string.
        with self._sequence_lock:
            self._last_sequence = max(self._last_sequence + 1, time.time_ns())
            return f"{self._last_sequence:018X}"

    # -- buckets --

    def _bucket_dir(self, name: str) -> Path:
        # A name S3 would refuse cannot exist, and never becomes a path.
        path = self.root / name
        if not is_bucket_name(name) or not path.is_dir():
            raise NoSuchBucket(name)
        return path

    def _list_buckets(self) -> list[BucketInfo]:
        return [bucket_info(name, self.root / name) for name in bucket_names(self.root)]

    # -- objects --

    def _locate(self, bucket: str, key: str) -> tuple[Path, Path, str]:
        """(bucket folder, folder holding the key's files, last segment), or a refusal."""
        base = self._bucket_dir(bucket)
        return (base, *layout.locate(base, bucket, key))

    def _lock(self, bucket: str, key: str) -> AbstractContextManager[None]:
        return self._locks.hold(bucket, key)

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
        base, folder, leaf = self._locate(bucket, key)
        user = user_metadata(bucket, key, attributes.metadata)
        tmp = base / INTERNAL / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        stem = uuid.uuid4().hex
        data_tmp, meta_tmp = tmp / f"{stem}.data", tmp / f"{stem}.json"
        try:
            if isinstance(data, Path):
                os.replace(data, data_tmp)  # from this store's own temp_path: same disk
                size, inode = settle(data_tmp, fsync=self.fsync)
                etag = etag or file_etag(data_tmp)
            else:
                size, inode = len(data), write_file(data_tmp, data, fsync=self.fsync)
                etag = etag or f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
            with self._lock(bucket, key):
                if condition is not None:
                    self._check(bucket, key, folder, leaf, condition)
                # Stamped under the lock, so the later write of a key has the later sequencer.
                info = ObjectInfo(
                    bucket,
                    key,
                    size,
                    etag,
                    attributes.content_type or DEFAULT_CONTENT_TYPE,
                    now(),
                    user,
                    self.sequencer(bucket),
                    headers=dict(attributes.headers),
                    checksum=attributes.checksum,
                    tags=dict(attributes.tags),
                    parts=parts,
                )
                write_file(
                    meta_tmp, json.dumps(object_record(info, inode)).encode(), fsync=self.fsync
                )
                move_into(data_tmp, data_path(folder, leaf))
                os.replace(meta_tmp, meta_path(folder, leaf))
            return info
        finally:
            unlink(data_tmp)
            unlink(meta_tmp)

    def _check(self, bucket: str, key: str, folder: Path, leaf: str, condition: Condition) -> None:
        try:
            current: ObjectInfo | None = self._info(bucket, key, folder, leaf)
        except NoSuchKey:
            current = None
        check_condition(bucket, key, condition, current)

    def _set_tags(self, bucket: str, key: str, tags: dict[str, str]) -> ObjectInfo:
        _, folder, leaf = self._locate(bucket, key)
        with self._lock(bucket, key):
            info = replace(self._info(bucket, key, folder, leaf), tags=tags)
            stat = os.stat(data_path(folder, leaf))
            staged = folder / f".{uuid.uuid4().hex}.tags"
            try:
                write_file(
                    staged, json.dumps(object_record(info, stat.st_ino)).encode(), fsync=self.fsync
                )
                os.replace(staged, meta_path(folder, leaf))
            finally:
                unlink(staged)
        return info

    def _delete(self, bucket: str, key: str) -> bool:
        base, folder, leaf = self._locate(bucket, key)
        with self._lock(bucket, key):
            existed = unlink(data_path(folder, leaf))
            if unlink(meta_path(folder, leaf)) or existed:
                while folder != base:  # drop folders the delete left empty
                    try:
                        folder.rmdir()
                    except OSError:
                        break
                    folder = folder.parent
        return existed

    def _info(self, bucket: str, key: str, folder: Path, leaf: str) -> ObjectInfo:
        for wait in _RETRIES:
            if wait:
                time.sleep(wait)
            try:
                stat = os.stat(data_path(folder, leaf))
            except (FileNotFoundError, NotADirectoryError):
                raise NoSuchKey(bucket, key) from None
            info = recorded(bucket, key, meta_path(folder, leaf), stat)
            if info is not None:
                return info
        info, file = self._open(bucket, key, (folder, leaf))
        file.close()
        return info

    def _open(
        self, bucket: str, key: str, located: tuple[Path, str] | None = None
    ) -> tuple[ObjectInfo, BinaryIO]:
        folder, leaf = located or self._locate(bucket, key)[1:]
        file: BinaryIO | None = None
        try:
            for wait in _RETRIES:
                if wait:
                    time.sleep(wait)
                if file is not None:
                    file.close()
                try:
                    file = open(data_path(folder, leaf), "rb")  # noqa: SIM115 - returned open
                except (FileNotFoundError, NotADirectoryError):
                    raise NoSuchKey(bucket, key) from None
                stat = os.fstat(file.fileno())
                info = recorded(bucket, key, meta_path(folder, leaf), stat)
                if info is not None:
                    return info, file
            assert file is not None
            return derived(bucket, key, file), file
        except BaseException:
            if file is not None:
                file.close()
            raise

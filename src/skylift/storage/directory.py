"""Buckets as folders: the object store on a local file system.

Each bucket is a folder under ``root`` (the platform passes ``.skylift/objects/``); where
each key's data and metadata files live is ``storage.layout``'s business, and listing
pages come from ``storage.listing``.

Writes are atomic: the bytes go to a temporary file in the bucket's ``.skylift/tmp``, then
``os.replace`` moves the data and then the metadata into place. The metadata records the
data file's inode, so a reader that comes between the two renames (or finds a crash's
leftovers) sees that they disagree, retries, and at last trusts the data file alone: an
object is never served with another version's size or ETag. One process owns a store;
writes to one key are serialised by in-process locks.

On a case-insensitive file system (macOS's default), keys that differ only in case share
one object, although S3 keys are case-sensitive.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from skylift.storage import layout
from skylift.storage.errors import (
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    CorruptStore,
    NoSuchBucket,
    NoSuchKey,
)
from skylift.storage.layout import INTERNAL, data_path, meta_path
from skylift.storage.listing import Cursor, list_page
from skylift.storage.protocol import (
    DEFAULT_CONTENT_TYPE,
    MAX_LIST_KEYS,
    BucketInfo,
    ListResult,
    ObjectInfo,
    check_bucket_name,
    is_bucket_name,
    user_metadata,
)

_RETRIES = (0.0, 0.001, 0.005, 0.02)  # seconds to wait for a writer between its two renames


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


class DirectoryStore:
    """An ``ObjectStore`` keeping each bucket as a folder under ``root``.

    Example: ``store = DirectoryStore(Path(".skylift/objects"))``.
    """

    def __init__(self, root: Path, *, fsync: bool = False) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        # fsync costs a disk flush per write; a local platform rarely needs it.
        self.fsync = fsync
        self._locks = [threading.Lock() for _ in range(64)]
        self._sequence_lock = threading.Lock()
        self._last_sequence = 0
        _clear_writes_in_flight(self.root)

    # -- the protocol: each call runs on a worker thread, off the event loop --

    async def create_bucket(self, name: str) -> BucketInfo:
        return await asyncio.to_thread(self._create_bucket, name)

    async def delete_bucket(self, name: str) -> None:
        await asyncio.to_thread(self._delete_bucket, name)

    async def list_buckets(self) -> list[BucketInfo]:
        return await asyncio.to_thread(self._list_buckets)

    async def head_bucket(self, name: str) -> BucketInfo:
        return await asyncio.to_thread(lambda: self._bucket_info(name, self._bucket_dir(name)))

    async def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        return await asyncio.to_thread(self._put, bucket, key, data, content_type, metadata)

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

    def _bucket_info(self, name: str, path: Path) -> BucketInfo:
        try:
            created = json.loads((path / INTERNAL / "bucket.json").read_bytes())["created"]
        except (OSError, ValueError, KeyError, TypeError):
            created = int(path.stat().st_mtime)  # a folder made by hand is a bucket too
        return BucketInfo(name, datetime.fromtimestamp(created, UTC))

    def _create_bucket(self, name: str) -> BucketInfo:
        check_bucket_name(name)
        path = self.root / name
        try:
            path.mkdir()
        except FileExistsError:
            raise BucketAlreadyOwnedByYou(name) from None
        created = _now()
        (path / INTERNAL / "tmp").mkdir(parents=True)
        (path / INTERNAL / "bucket.json").write_text(
            json.dumps({"created": int(created.timestamp())})
        )
        return BucketInfo(name, created)

    def _delete_bucket(self, name: str) -> None:
        path = self._bucket_dir(name)
        if next(layout.walk(path, "", Cursor(b""), b""), None) is not None:
            raise BucketNotEmpty(name)
        # Renamed first, so the bucket vanishes at once rather than file by file.
        doomed = self.root / f".deleting-{uuid.uuid4().hex}"
        path.rename(doomed)
        shutil.rmtree(doomed)

    def _list_buckets(self) -> list[BucketInfo]:
        with os.scandir(self.root) as entries:
            names = [e.name for e in entries if e.is_dir() and is_bucket_name(e.name)]
        return [self._bucket_info(name, self.root / name) for name in sorted(names)]

    # -- objects --

    def _locate(self, bucket: str, key: str) -> tuple[Path, Path, str]:
        """(bucket folder, folder holding the key's files, last segment), or a refusal."""
        base = self._bucket_dir(bucket)
        return (base, *layout.locate(base, bucket, key))

    def _lock(self, bucket: str, key: str) -> threading.Lock:
        return self._locks[hash((bucket, key)) % len(self._locks)]

    def _put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        content_type: str | None,
        metadata: Mapping[str, str] | None,
    ) -> ObjectInfo:
        base, folder, leaf = self._locate(bucket, key)
        user = user_metadata(bucket, key, metadata)
        etag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
        tmp = base / INTERNAL / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        stem = uuid.uuid4().hex
        data_tmp, meta_tmp = tmp / f"{stem}.data", tmp / f"{stem}.json"
        try:
            inode = self._write(data_tmp, data)
            with self._lock(bucket, key):
                # Stamped under the lock, so the later write of a key has the later sequencer.
                info = ObjectInfo(
                    bucket,
                    key,
                    len(data),
                    etag,
                    content_type or DEFAULT_CONTENT_TYPE,
                    _now(),
                    user,
                    self.sequencer(bucket),
                )
                self._write(meta_tmp, json.dumps(_record(info, inode)).encode())
                self._move(data_tmp, data_path(folder, leaf))
                os.replace(meta_tmp, meta_path(folder, leaf))
            return info
        finally:
            _unlink(data_tmp)
            _unlink(meta_tmp)

    def _write(self, path: Path, data: bytes) -> int:
        with open(path, "xb") as file:
            file.write(data)
            if self.fsync:
                file.flush()
                os.fsync(file.fileno())
            return os.fstat(file.fileno()).st_ino

    def _move(self, source: Path, target: Path) -> None:
        # A delete of the folder's last object may remove the folder between our mkdir
        # and the rename; then we simply make it again.
        folder = target.parent
        for _ in range(10):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise CorruptStore(
                    f"Cannot store under {folder}: part of that path is a file, not a folder. "
                    "Move that file out of the bucket's folder."
                ) from None
            try:
                os.replace(source, target)
                return
            except FileNotFoundError:
                continue
        raise CorruptStore(f"Could not keep the folder {folder} in place to write into it.")

    def _delete(self, bucket: str, key: str) -> bool:
        base, folder, leaf = self._locate(bucket, key)
        with self._lock(bucket, key):
            existed = _unlink(data_path(folder, leaf))
            if _unlink(meta_path(folder, leaf)) or existed:
                while folder != base:  # drop folders the delete left empty
                    try:
                        folder.rmdir()
                    except OSError:
                        break
                    folder = folder.parent
        return existed

    def _recorded(
        self, bucket: str, key: str, meta: Path, stat: os.stat_result
    ) -> ObjectInfo | None:
        """The metadata on file, if it describes the data file with this ``stat``."""
        try:
            record = json.loads(meta.read_bytes())
            if record["inode"] != stat.st_ino or record["size"] != stat.st_size:
                return None
            return ObjectInfo(
                bucket,
                key,
                record["size"],
                record["etag"],
                record["content_type"],
                datetime.fromtimestamp(record["last_modified"], UTC),
                record["metadata"],
                record["sequencer"],
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _derived(self, bucket: str, key: str, file: BinaryIO) -> ObjectInfo:
        """What the data file alone says: its metadata was lost, or written by hand."""
        stat = os.fstat(file.fileno())
        digest = hashlib.md5(usedforsecurity=False)
        while chunk := file.read(1 << 20):
            digest.update(chunk)
        file.seek(0)
        modified = datetime.fromtimestamp(int(stat.st_mtime), UTC)
        sequencer = f"{stat.st_mtime_ns:018X}"
        etag = f'"{digest.hexdigest()}"'
        return ObjectInfo(
            bucket, key, stat.st_size, etag, DEFAULT_CONTENT_TYPE, modified, {}, sequencer
        )

    def _info(self, bucket: str, key: str, folder: Path, leaf: str) -> ObjectInfo:
        for wait in _RETRIES:
            if wait:
                time.sleep(wait)
            try:
                stat = os.stat(data_path(folder, leaf))
            except (FileNotFoundError, NotADirectoryError):
                raise NoSuchKey(bucket, key) from None
            info = self._recorded(bucket, key, meta_path(folder, leaf), stat)
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
                info = self._recorded(bucket, key, meta_path(folder, leaf), stat)
                if info is not None:
                    return info, file
            assert file is not None
            return self._derived(bucket, key, file), file
        except BaseException:
            if file is not None:
                file.close()
            raise


def _clear_writes_in_flight(root: Path) -> None:
    """Remove what writes cut off by a kill left in the buckets' ``.skylift/tmp``.

    One process owns a store, so at its start nothing there belongs to a live write; an
    upload killed mid-write would otherwise keep its bytes on disk for good.
    """
    with os.scandir(root) as buckets:
        folders = [Path(entry.path) for entry in buckets if entry.is_dir()]
    for folder in folders:
        tmp = folder / INTERNAL / "tmp"
        try:
            with os.scandir(tmp) as leftovers:
                for entry in leftovers:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        _unlink(Path(entry.path))
        except (FileNotFoundError, NotADirectoryError):
            continue


def _record(info: ObjectInfo, inode: int) -> dict[str, Any]:
    return {
        "key": info.key,
        "inode": inode,
        "size": info.size,
        "etag": info.etag,
        "content_type": info.content_type,
        "last_modified": int(info.last_modified.timestamp()),
        "metadata": dict(info.metadata),
        "sequencer": info.sequencer,
    }

"""Buckets in an external S3-compatible store: ``--objects s3+http://HOST:PORT/PREFIX``.

Each skylift bucket is the external bucket ``PREFIX + name``; each object is the external
object of the same key, with skylift's record in its user metadata (``s3_records``).
Several skylift nodes may share one endpoint: what one stores, the others read.

Writes to one key are serialised inside this process (so the later write of a key has
the later sequencer, as ``DirectoryStore`` guarantees); across nodes, conditional writes
are passed on to the endpoint (If-Match / If-None-Match), which decides them atomically.
Every call runs the blocking boto3 client on one of the store's own threads, off the
event loop and out of asyncio's default pool (which the S3 API's body writes and the
folder store share): an endpoint that hangs holds up only the store's calls, each until
its read timeout answers ``ServiceUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from skylift.storage import s3_listing, s3_staging
from skylift.storage.errors import (
    BucketAlreadyOwnedByYou,
    InvalidBucketName,
    NoSuchBucket,
    NoSuchKey,
    NotImplementedHere,
)
from skylift.storage.files import now
from skylift.storage.protocol import (
    DEFAULT_CONTENT_TYPE,
    MAX_LIST_KEYS,
    Attributes,
    BucketInfo,
    Condition,
    ListResult,
    ObjectInfo,
    check_bucket_name,
    check_condition,
    is_bucket_name,
    user_metadata,
)
from skylift.storage.s3_endpoint import Endpoint
from skylift.storage.s3_files import RemoteObject, RemoteReader
from skylift.storage.s3_multipart import S3MultipartMethods
from skylift.storage.s3_records import put_params, read_info
from skylift.storage.s3_staging import check_client_key
from skylift.storage.s3_url import S3Target

_STRIPES = 64
_READ_BUFFER = 1 << 20
_CALLS = 32  # the store's calls at once (boto3's connection pool holds 32); more wait

T = TypeVar("T")


class S3Store(S3MultipartMethods):
    """An ``ObjectStore`` keeping buckets in an external S3-compatible endpoint.

    Example: ``S3Store(s3_url.parse("s3+http://127.0.0.1:9000/sky-"))``.
    """

    def __init__(
        self,
        target: S3Target,
        *,
        spool: Path | None = None,
        spools: Path | None = None,
        read_timeout: float = 60.0,
    ) -> None:
        self.target = target
        self.endpoint = Endpoint(target, read_timeout=read_timeout)
        # Where request bodies wait (temp_path) before they go to the endpoint: `spool`,
        # or this process's folder in `spools` (the state folder's, which nodes may
        # share: what a killed node of this host left there is removed now).
        self._remove_spool = spool is None  # ours to remove at close
        if spool is None and spools is not None:
            spool = _own_spool(spools)
        self.spool = spool or Path(tempfile.mkdtemp(prefix="skylift-s3-"))
        self.spool.mkdir(parents=True, exist_ok=True)
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        self._sequence_lock = threading.Lock()
        self._last_sequence = 0
        # A listing page heads its keys this many at a time (boto3's pool holds 32).
        self._pool = ThreadPoolExecutor(16, thread_name_prefix="skylift-s3-head")
        self._calls = ThreadPoolExecutor(_CALLS, thread_name_prefix="skylift-s3")

    def close(self) -> None:
        """Stop the store's threads; remove the spool unless the caller gave it."""
        self._calls.shutdown(wait=False, cancel_futures=True)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._remove_spool:
            shutil.rmtree(self.spool, ignore_errors=True)

    # -- buckets --

    async def create_bucket(self, name: str) -> BucketInfo:
        check_bucket_name(name)
        external = self.target.prefix + name
        if len(external) > 63:
            raise InvalidBucketName(
                name, f"makes {external!r}, over 63 characters with the prefix of --objects"
            )
        # In us-east-1, S3 answers 200 to creating a bucket one already owns: ask first.
        try:
            await self._call("head_bucket", bucket=name, Bucket=external)
        except NoSuchBucket:
            pass
        else:
            raise BucketAlreadyOwnedByYou(name)
        params: dict[str, Any] = {"Bucket": external}
        if self.target.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.target.region}
        await self._call("create_bucket", bucket=name, **params)
        return await self.head_bucket(name)

    async def delete_bucket(self, name: str) -> None:
        await self._run(s3_staging.delete_bucket, self.endpoint, name, self._external(name))

    async def list_buckets(self) -> list[BucketInfo]:
        answer = await self._call("list_buckets")
        found = []
        for bucket in answer.get("Buckets", []):
            name = str(bucket["Name"])
            if name.startswith(self.target.prefix):
                name = name[len(self.target.prefix) :]
                if is_bucket_name(name):
                    created = bucket["CreationDate"].replace(microsecond=0)
                    found.append(BucketInfo(name, created))
        return sorted(found, key=lambda b: b.name)

    async def head_bucket(self, name: str) -> BucketInfo:
        self._external(name)
        # HeadBucket has no creation date; ListBuckets does.
        for bucket in await self.list_buckets():
            if bucket.name == name:
                return bucket
        raise NoSuchBucket(name)

    async def get_bucket_policy(self, bucket: str) -> str | None:
        await self.head_bucket(bucket)  # NoSuchBucket as S3 answers it
        return None  # never stored: see set_bucket_policy

    async def set_bucket_policy(self, bucket: str, policy: str | None) -> None:
        """Refused: a policy put on the endpoint's bucket would be enforced there, set with
        the server's own credentials by any client of skylift's S3 API (a handler
        included), e.g. making a real bucket public."""
        await self.head_bucket(bucket)
        if policy is not None:
            raise NotImplementedHere(
                "with --objects s3://, skylift keeps no bucket policies: one put on the "
                "endpoint's bucket would be enforced there with the server's credentials; "
                "set it on the endpoint yourself",
                bucket=bucket,
            )

    # -- objects --

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
        return await self._run(self._put, bucket, key, data, attributes, condition, etag)

    async def temp_path(self, bucket: str) -> Path:
        await self._call("head_bucket", bucket=bucket, Bucket=self._external(bucket))
        return self.spool / f"{uuid.uuid4().hex}.upload"

    async def set_tags(self, bucket: str, key: str, tags: Mapping[str, str]) -> ObjectInfo:
        def tag() -> ObjectInfo:
            with self._lock(bucket, key):
                info, answer = self._head(bucket, key)
                info = replace(info, tags=dict(tags))
                self._rewrite_record(info, str(answer["ETag"]))
                return info

        return await self._run(tag)

    async def get_object(self, bucket: str, key: str) -> tuple[ObjectInfo, bytes]:
        def get() -> tuple[ObjectInfo, bytes]:
            answer = self._get(bucket, key)
            with answer["Body"] as body:
                return read_info(bucket, key, answer), body.read()

        return await self._run(get)

    async def open_object(self, bucket: str, key: str) -> tuple[ObjectInfo, BinaryIO]:
        def fetch() -> tuple[ObjectInfo, BinaryIO]:
            answer = self._get(bucket, key)
            where = {"bucket": bucket, "key": key, "Bucket": self._external(bucket), "Key": key}
            raw = RemoteObject(
                self.endpoint, where, answer["ETag"], int(answer["ContentLength"]), answer["Body"]
            )
            return read_info(bucket, key, answer), RemoteReader(raw, _READ_BUFFER, self._calls)

        return await self._run(fetch)

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        return (await self._run(self._head, bucket, key))[0]

    async def delete_object(self, bucket: str, key: str) -> bool:
        def delete() -> bool:
            with self._lock(bucket, key):
                try:
                    self._head(bucket, key)
                except NoSuchKey:
                    return False
                self.endpoint.call(
                    "delete_object", bucket=bucket, key=key, Bucket=self._external(bucket), Key=key
                )
                return True

        return await self._run(delete)

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
        external = self._external(bucket)
        return await self._run(
            s3_listing.list_objects,
            self.endpoint,
            self._pool,
            bucket,
            external,
            lambda key: self._head(bucket, key)[0],
            prefix=prefix,
            delimiter=delimiter,
            max_keys=max_keys,
            continuation_token=continuation_token,
            start_after=start_after,
        )

    def sequencer(self, bucket: str) -> str:
        # As DirectoryStore's: nanoseconds since the epoch, kept apart by a counter. Nodes
        # sharing the endpoint order one key's events as far as their clocks agree.
        with self._sequence_lock:
            self._last_sequence = max(self._last_sequence + 1, time.time_ns())
            return f"{self._last_sequence:018X}"

    # -- on worker threads --

    async def _run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` on one of the store's threads."""
        call = functools.partial(function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._calls, call)

    async def _call(self, operation: str, **params: Any) -> Any:
        return await self._run(self.endpoint.call, operation, **params)

    def _external(self, name: str) -> str:
        # A name S3 would refuse cannot exist, and never reaches the endpoint.
        if not is_bucket_name(name):
            raise NoSuchBucket(name)
        return self.target.prefix + name

    def _lock(self, bucket: str, key: str) -> threading.Lock:
        return self._stripes[hash((bucket, key)) % _STRIPES]

    def _put(
        self,
        bucket: str,
        key: str,
        data: bytes | Path,
        attributes: Attributes,
        condition: Condition | None,
        etag: str | None,
    ) -> ObjectInfo:
        external = self._external(bucket)
        check_client_key(bucket, key)
        user = user_metadata(bucket, key, attributes.metadata)
        try:
            if isinstance(data, Path):
                size = data.stat().st_size
                if etag is None:
                    with open(data, "rb") as file:
                        etag = f'"{hashlib.file_digest(file, "md5").hexdigest()}"'
            else:
                size = len(data)
                etag = etag or f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
            with self._lock(bucket, key):
                native: dict[str, Any] = {}
                if condition is not None:
                    native = self._condition(bucket, key, condition)
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
                )
                params = {"Bucket": external, "Key": key, **native, **put_params(info)}
                if isinstance(data, Path):
                    with open(data, "rb") as body:
                        self.endpoint.call(
                            "put_object", bucket=bucket, key=key, Body=body, **params
                        )
                else:
                    self.endpoint.call("put_object", bucket=bucket, key=key, Body=data, **params)
            return info
        finally:
            if isinstance(data, Path):
                data.unlink(missing_ok=True)  # taken over, as DirectoryStore moves it

    def _condition(self, bucket: str, key: str, condition: Condition) -> dict[str, Any]:
        """Check ``condition`` here, and the parameters that make the endpoint check it too."""
        try:
            current, answer = self._head(bucket, key)
        except NoSuchKey:
            current, answer = None, {}
        check_condition(bucket, key, condition, current)
        if condition.if_none_match:
            return {"IfNoneMatch": "*"}
        if condition.if_match is not None and answer:
            return {"IfMatch": answer["ETag"]}  # the endpoint's own ETag of that version
        return {}

    def _head(self, bucket: str, key: str) -> tuple[ObjectInfo, dict[str, Any]]:
        external = self._external(bucket)
        check_client_key(bucket, key)
        try:
            answer = self.endpoint.call(
                "head_object", bucket=bucket, key=key, Bucket=external, Key=key
            )
        except NoSuchKey:
            # A HEAD's 404 says nothing of why: the bucket may be the missing one.
            self.endpoint.call("head_bucket", bucket=bucket, Bucket=external)
            raise
        return read_info(bucket, key, answer), answer

    def _get(self, bucket: str, key: str) -> dict[str, Any]:
        external = self._external(bucket)
        check_client_key(bucket, key)
        answer: dict[str, Any] = self.endpoint.call(
            "get_object", bucket=bucket, key=key, Bucket=external, Key=key
        )
        return answer


SPOOLS = "s3-spool"  # the folder of spools in a state folder (opening.open_store)


def _own_spool(spools: Path) -> Path:
    """This process's spool in `spools`, after removing those of this host's processes
    that are gone (a node killed mid-upload leaves its bodies there)."""
    host = socket.gethostname()
    with contextlib.suppress(OSError):
        for entry in spools.iterdir():
            name, _, pid = entry.name.rpartition("-")
            if name == host and pid.isdigit() and not _running(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)
    return spools / f"{host}-{os.getpid()}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

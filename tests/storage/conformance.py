"""The conformance suite every ``ObjectStore`` passes: S3's bucket and object semantics.

A backend's test module subclasses ``ObjectStoreConformance`` and provides a ``store``
fixture yielding ``Blocking(backend)`` (see ``tests/storage/test_directory.py``).
Expected values come from the S3 API reference and user guide, cited where they matter.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from skylift.storage.errors import (
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    InvalidArgument,
    InvalidBucketName,
    KeyTooLongError,
    MetadataTooLarge,
    NoSuchBucket,
    NoSuchKey,
    StorageError,
)
from skylift.storage.protocol import ObjectStore

T = TypeVar("T")


class Blocking:
    """Drives an async ``ObjectStore`` from synchronous tests, on one event loop.

    ``blocking.put_object(...)`` runs ``await store.put_object(...)``; ``run`` awaits any
    coroutine, e.g. several calls gathered at once.
    """

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        return lambda *args, **kwargs: self.run(attr(*args, **kwargs))

    def close(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()


def md5_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def all_pages(store: Blocking, bucket: str, **options: Any) -> list[tuple[list[str], list[str]]]:
    """(keys, common prefixes) of each page, following continuation tokens to the end."""
    pages = []
    token = None
    while True:
        page = store.list_objects(bucket, continuation_token=token, **options)
        pages.append(([o.key for o in page.objects], page.common_prefixes))
        if not page.is_truncated:
            assert page.next_continuation_token is None
            return pages
        token = page.next_continuation_token
        assert token


class ObjectStoreConformance:
    """S3 behaviour a user of any backend relies on."""

    # -- buckets --

    def test_created_bucket_is_listed_headed_and_dated(self, store: Blocking) -> None:
        before = datetime.now(UTC).replace(microsecond=0)
        info = store.create_bucket("photos")
        store.create_bucket("a-logs")
        assert info.name == "photos"
        assert before <= info.created <= datetime.now(UTC)
        assert info.created.microsecond == 0
        assert store.head_bucket("photos") == info
        assert [b.name for b in store.list_buckets()] == ["a-logs", "photos"]

    def test_creating_an_existing_bucket_is_bucket_already_owned_by_you(
        self, store: Blocking
    ) -> None:
        store.create_bucket("photos")
        store.put_object("photos", "keep.txt", b"x")
        with pytest.raises(BucketAlreadyOwnedByYou) as caught:
            store.create_bucket("photos")
        assert (caught.value.code, caught.value.status) == ("BucketAlreadyOwnedByYou", 409)
        assert caught.value.details() == {"BucketName": "photos"}
        assert store.get_object("photos", "keep.txt")[1] == b"x"  # untouched

    @pytest.mark.parametrize(
        "name",
        [
            "ab",
            "a" * 64,
            "My-Bucket",
            "my_bucket",
            "-abc",
            "abc-",
            ".abc",
            "a..b",
            "192.168.5.4",
            "xn--abc",
            "sthree-abc",
            "amzn-s3-demo-abc",
            "abc-s3alias",
            "abc--ol-s3",
            "abc.mrap",
            "abc--x-s3",
            "abc--table-s3",
            "../etc",
            "ab/c",
        ],
    )
    def test_bucket_names_breaking_s3_rules_are_refused(self, store: Blocking, name: str) -> None:
        with pytest.raises(InvalidBucketName) as caught:
            store.create_bucket(name)
        assert caught.value.status == 400
        assert caught.value.hint is not None and name in caught.value.hint
        assert store.list_buckets() == []

    @pytest.mark.parametrize("name", ["abc", "a" * 63, "my.bucket-1", "1.2.3", "0-0"])
    def test_bucket_names_within_s3_rules_are_accepted(self, store: Blocking, name: str) -> None:
        assert store.create_bucket(name).name == name

    @pytest.mark.parametrize(
        "call",
        [
            lambda s: s.head_bucket("nope"),
            lambda s: s.delete_bucket("nope"),
            lambda s: s.put_object("nope", "k", b""),
            lambda s: s.get_object("nope", "k"),
            lambda s: s.head_object("nope", "k"),
            lambda s: s.delete_object("nope", "k"),
            lambda s: s.list_objects("nope"),
            lambda s: s.head_bucket("../etc"),
        ],
    )
    def test_missing_bucket_is_no_such_bucket(self, store: Blocking, call: Any) -> None:
        with pytest.raises(NoSuchBucket) as caught:
            call(store)
        assert caught.value.status == 404

    def test_only_an_empty_bucket_can_be_deleted(self, store: Blocking) -> None:
        store.create_bucket("photos")
        store.put_object("photos", "a/b/c.jpg", b"x")
        with pytest.raises(BucketNotEmpty) as caught:
            store.delete_bucket("photos")
        assert caught.value.status == 409
        store.delete_object("photos", "a/b/c.jpg")
        store.delete_bucket("photos")
        assert store.list_buckets() == []
        with pytest.raises(NoSuchBucket):
            store.head_bucket("photos")
        store.create_bucket("photos")  # the name is free again
        assert store.list_objects("photos").objects == []

    # -- objects --

    def test_put_then_get_returns_bytes_and_s3_metadata(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        data = b"The quick brown fox jumps over the lazy dog"
        put = store.put_object(
            "bkt", "fox.txt", data, content_type="text/plain", metadata={"Owner": "Ann", "x": "1"}
        )
        # The MD5 of this sentence is the well-known 9e107d9d...; S3 sends ETags quoted.
        assert put.etag == '"9e107d9d372bb6826bd81d3542a419d6"'
        assert (put.bucket, put.key, put.size) == ("bkt", "fox.txt", len(data))
        assert put.content_type == "text/plain"
        assert put.metadata == {"owner": "Ann", "x": "1"}  # S3 lower-cases metadata names
        assert put.last_modified.tzinfo is not None
        assert put.last_modified.utcoffset() == timedelta(0)
        assert put.last_modified.microsecond == 0
        assert abs(datetime.now(UTC) - put.last_modified) < timedelta(seconds=5)
        info, body = store.get_object("bkt", "fox.txt")
        assert body == data
        assert info == put
        assert store.head_object("bkt", "fox.txt") == put

    def test_content_type_defaults_to_binary_octet_stream(self, store: Blocking) -> None:
        # S3 PutObject: "Content-Type ... Default: binary/octet-stream".
        store.create_bucket("bkt")
        assert store.put_object("bkt", "k", b"\x00\x01").content_type == "binary/octet-stream"
        assert store.head_object("bkt", "k").content_type == "binary/octet-stream"

    def test_empty_object(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        info = store.put_object("bkt", "empty", b"")
        assert (info.size, info.etag) == (0, '"d41d8cd98f00b204e9800998ecf8427e"')
        assert store.get_object("bkt", "empty")[1] == b""

    def test_overwrite_replaces_and_gets_a_later_sequencer(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        first = store.put_object("bkt", "k", b"one", metadata={"v": "1"})
        second = store.put_object("bkt", "k", b"two!")
        assert second.sequencer > first.sequencer
        assert len(second.sequencer) == len(first.sequencer)
        int(second.sequencer, 16)  # hex
        info, body = store.get_object("bkt", "k")
        assert (body, info.size, info.metadata) == (b"two!", 4, {})
        assert store.sequencer("bkt") > second.sequencer

    def test_missing_key_is_no_such_key(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        store.put_object("bkt", "dir/file", b"x")
        for key in ("nope", "dir", "dir/", "dir/file/", "DIR/file"):
            with pytest.raises(NoSuchKey) as caught:
                store.get_object("bkt", key)
            assert caught.value.status == 404
            # S3's NoSuchKey names the key, not the bucket.
            assert caught.value.details() == {"Key": key}
            with pytest.raises(NoSuchKey):
                store.head_object("bkt", key)

    def test_delete_reports_whether_there_was_an_object(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        store.put_object("bkt", "k", b"x")
        assert store.delete_object("bkt", "k") is True
        assert store.delete_object("bkt", "k") is False  # S3: deleting nothing succeeds
        with pytest.raises(NoSuchKey):
            store.get_object("bkt", "k")

    def test_a_key_and_keys_below_it_coexist(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        keys = {"a": b"1", "a/b": b"2", "a/": b"3", "a//c": b"4", "a/b/c": b"5"}
        for key, data in keys.items():
            store.put_object("bkt", key, data)
        assert {k: store.get_object("bkt", k)[1] for k in keys} == keys
        store.delete_object("bkt", "a/b")
        assert store.get_object("bkt", "a/b/c")[1] == b"5"
        assert store.get_object("bkt", "a")[1] == b"1"
        assert [o.key for o in store.list_objects("bkt").objects] == ["a", "a/", "a//c", "a/b/c"]

    @pytest.mark.parametrize(
        "key",
        [
            "my photo (1).jpg",
            "日本/ファイル.txt",
            "a+b=c&d;e,f?g#h",
            "tab\there",
            "%2e%2e/x",
            "~user/.profile",
            "emoji/😀",
        ],
    )
    def test_any_utf8_key_round_trips(self, store: Blocking, key: str) -> None:
        store.create_bucket("bkt")
        store.put_object("bkt", key, key.encode())
        assert store.get_object("bkt", key)[1] == key.encode()
        assert [o.key for o in store.list_objects("bkt").objects] == [key]

    def test_key_rules(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        with pytest.raises(InvalidArgument) as caught:
            store.put_object("bkt", "", b"x")
        assert caught.value.status == 400
        with pytest.raises(KeyTooLongError) as too_long:
            store.put_object("bkt", "é" * 513, b"x")  # 1026 bytes
        assert too_long.value.status == 400
        longest = "/".join(["x" * 200] * 5) + "/" + "y" * 19  # exactly 1024 bytes
        assert len(longest.encode()) == 1024
        store.put_object("bkt", longest, b"ok")
        assert store.get_object("bkt", longest)[1] == b"ok"

    def test_user_metadata_is_limited_to_2_kb(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        store.put_object("bkt", "k", b"", metadata={"n": "v" * 2047})
        with pytest.raises(MetadataTooLarge) as caught:
            store.put_object("bkt", "k", b"", metadata={"n": "v" * 2048})
        assert caught.value.status == 400

    def test_open_object_streams_the_bytes(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        data = bytes(range(256)) * 4096  # 1 MiB
        put = store.put_object("bkt", "big.bin", data)
        info, file = store.open_object("bkt", "big.bin")
        with file:
            chunks = iter(lambda: file.read(65536), b"")
            assert b"".join(chunks) == data
        assert info == put

    def test_concurrent_writes_to_one_key_leave_the_latest_sequencer(self, store: Blocking) -> None:
        store.create_bucket("bkt")

        async def many() -> list[Any]:
            puts = [store.store.put_object("bkt", "k", bytes([i]) * (i + 1)) for i in range(12)]
            return list(await asyncio.gather(*puts))

        infos = store.run(many())
        latest = max(infos, key=lambda info: info.sequencer)
        info, body = store.get_object("bkt", "k")
        assert info == latest
        assert md5_etag(body) == info.etag

    # -- listing (ListObjectsV2) --

    def test_listing_is_in_utf8_byte_order(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        # UTF-8 byte order, not UTF-16: U+FB01 sorts before U+1F600, "-" before "/".
        keys = ["😀", "\ufb01", "é", "z", "a/b", "a-b", "a", "B", "a/", "a0"]
        for key in keys:
            store.put_object("bkt", key, b"")
        listed = [o.key for o in store.list_objects("bkt").objects]
        assert listed == sorted(keys, key=lambda k: k.encode())
        assert listed[:6] == ["B", "a", "a-b", "a/", "a/b", "a0"]

    def test_listed_objects_carry_their_metadata(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        put = store.put_object("bkt", "x/y", b"data", content_type="text/plain")
        assert store.list_objects("bkt").objects == [put]

    def test_delimiter_rolls_keys_up_into_common_prefixes(self, store: Blocking) -> None:
        # The example of "ListObjectsV2" in the S3 API reference.
        store.create_bucket("example-bucket")
        for key in (
            "photos/2006/",
            "photos/2006/January/sample.jpg",
            "photos/2006/February/sample2.jpg",
            "photos/2006/February/sample3.jpg",
            "photos/2006/February/sample4.jpg",
            "photos/2007/x.jpg",
            "photo.jpg",
        ):
            store.put_object("example-bucket", key, b"")
        page = store.list_objects("example-bucket", prefix="photos/2006/", delimiter="/")
        assert [o.key for o in page.objects] == ["photos/2006/"]
        assert page.common_prefixes == ["photos/2006/February/", "photos/2006/January/"]
        assert not page.is_truncated
        top = store.list_objects("example-bucket", delimiter="/")
        assert ([o.key for o in top.objects], top.common_prefixes) == (["photo.jpg"], ["photos/"])
        dash = store.list_objects("example-bucket", prefix="photos/", delimiter="0")
        assert dash.common_prefixes == ["photos/20"]

    def test_prefix_filters_keys(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        for key in ("cats/tom", "cats/tabby/x", "catsup", "cat", "dogs/rex"):
            store.put_object("bkt", key, b"")
        assert [o.key for o in store.list_objects("bkt", prefix="cat").objects] == [
            "cat",
            "cats/tabby/x",
            "cats/tom",
            "catsup",
        ]
        assert [o.key for o in store.list_objects("bkt", prefix="cats/t").objects] == [
            "cats/tabby/x",
            "cats/tom",
        ]
        assert store.list_objects("bkt", prefix="cats/tom/").objects == []
        assert store.list_objects("bkt", prefix="zebra/").objects == []
        assert store.list_objects("bkt", prefix="../").objects == []

    def test_pages_cover_every_key_once_in_order(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        keys = sorted(f"k{i:02d}" for i in range(7))
        for key in keys:
            store.put_object("bkt", key, b"")
        pages = all_pages(store, "bkt", max_keys=3)
        assert [len(keys_) for keys_, _ in pages] == [3, 3, 1]
        assert [k for keys_, _ in pages for k in keys_] == keys

    def test_common_prefixes_count_against_max_keys_and_never_repeat(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        for key in ("a/1", "a/2", "b", "c/1", "c/2/3", "d", "e/1"):
            store.put_object("bkt", key, b"")
        pages = all_pages(store, "bkt", delimiter="/", max_keys=2)
        assert pages == [(["b"], ["a/"]), (["d"], ["c/"]), ([], ["e/"])]
        # Exactly max-keys items: one page, not truncated.
        assert all_pages(store, "bkt", delimiter="/", max_keys=5) == [
            (["b", "d"], ["a/", "c/", "e/"])
        ]

    def test_start_after(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        for key in ("asdf", "boo/bar", "boo/baz/xyzzy", "cquux/thud", "cquux/bla"):
            store.put_object("bkt", key, b"")
        page = store.list_objects("bkt", start_after="boo/bar")
        assert [o.key for o in page.objects] == ["boo/baz/xyzzy", "cquux/bla", "cquux/thud"]
        # A common prefix at or before start-after is not listed again, as when it ended
        # the previous page.
        page = store.list_objects("bkt", start_after="boo/", delimiter="/", max_keys=1)
        assert (page.common_prefixes, page.is_truncated) == (["cquux/"], False)

    def test_max_keys_zero_and_negative(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        store.put_object("bkt", "k", b"")
        page = store.list_objects("bkt", max_keys=0)
        assert (page.objects, page.common_prefixes, page.is_truncated) == ([], [], False)
        with pytest.raises(InvalidArgument) as caught:
            store.list_objects("bkt", max_keys=-1)
        assert caught.value.details()["ArgumentName"] == "max-keys"

    @pytest.mark.parametrize("token", ["", "garbage", "1!!!!", "1" + "_" * 5])
    def test_a_forged_continuation_token_is_invalid_argument(
        self, store: Blocking, token: str
    ) -> None:
        store.create_bucket("bkt")
        with pytest.raises(InvalidArgument) as caught:
            store.list_objects("bkt", continuation_token=token)
        assert caught.value.status == 400
        assert "continuation token" in caught.value.message

    def test_errors_are_storage_errors_with_code_and_status(self, store: Blocking) -> None:
        with pytest.raises(StorageError) as caught:
            store.get_object("nope", "k")
        assert str(caught.value).startswith("NoSuchBucket: ")
        assert caught.value.message == "The specified bucket does not exist"
        assert caught.value.hint is not None and "create it first" in caught.value.hint

"""DirectoryStore: what only a folder layout can get wrong (the conformance suite runs in
test_conformance.py)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skylift.storage.directory import DirectoryStore
from skylift.storage.errors import InvalidArgument, KeyTooLongError, NoSuchBucket
from skylift.storage.protocol import Attributes
from storage.conformance import Blocking, md5_etag


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "objects"


@pytest.fixture
def store(root: Path) -> Iterator[Blocking]:
    blocking = Blocking(DirectoryStore(root))
    blocking.create_bucket("photos")
    yield blocking
    blocking.close()


def tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        "../../etc/passwd",
        "/../etc/passwd",
        "a/../../x",
        "a/../b",
        "a/./b",
        "./a",
        ".",
        "..",
        "a/..",
        "a\x00b",
    ],
)
def test_keys_that_could_leave_the_bucket_are_refused_touching_nothing(
    store: Blocking, tmp_path: Path, key: str
) -> None:
    before = tree(tmp_path)
    for method, args in (
        ("put_object", (key, b"pwned")),
        ("get_object", (key,)),
        ("head_object", (key,)),
        ("delete_object", (key,)),
    ):
        with pytest.raises(InvalidArgument) as caught:
            getattr(store, method)("photos", *args)
        assert caught.value.status == 400
        assert caught.value.details()["ArgumentName"] == "key"
        assert "Rename the object" in caught.value.message
    assert tree(tmp_path) == before


def test_a_leading_slash_is_an_empty_first_segment_inside_the_bucket(
    store: Blocking, root: Path
) -> None:
    store.put_object("photos", "/etc/passwd", b"mine")
    assert (root / "photos" / "%" / "etc" / "@passwd").read_bytes() == b"mine"
    assert [o.key for o in store.list_objects("photos").objects] == ["/etc/passwd"]


def test_percent_encoded_dots_are_only_a_name(store: Blocking, root: Path) -> None:
    # S3 keys are opaque: "%2e%2e" is six characters, never decoded into "..".
    store.put_object("photos", "%2e%2e/x", b"inside")
    assert (root / "photos" / "%%2e%2e" / "@x").read_bytes() == b"inside"
    assert store.get_object("photos", "%2e%2e/x")[1] == b"inside"
    assert not (root / "x").exists()


def test_keys_shaped_like_the_layout_never_collide_with_it(store: Blocking, root: Path) -> None:
    created = store.head_bucket("photos")
    keys = [
        "x",
        "@x",
        ".@x",
        "@",
        ".@",
        "%",
        "%/x",
        "%25",
        "a/@",
        "a/.@",
        ".skylift/tmp/t",
        ".skylift/bucket.json",
        ".deleting-1/x",
    ]
    for key in keys:
        store.put_object("photos", key, key.encode())
    assert {k: store.get_object("photos", k)[1] for k in keys} == {k: k.encode() for k in keys}
    assert [o.key for o in store.list_objects("photos").objects] == sorted(
        keys, key=lambda k: k.encode()
    )
    assert store.head_bucket("photos") == created  # bucket.json untouched
    for key in keys:
        assert store.delete_object("photos", key)
    store.delete_bucket("photos")
    assert store.list_buckets() == []


def test_a_key_of_1024_bytes_in_one_segment_is_stored_listed_and_deleted(
    store: Blocking, root: Path
) -> None:
    long_leaf = "x" * 1024  # S3's longest key, with no "/" at all
    nested = "d/" + "é" * 511  # 1,024 bytes, the last segment 1,022 of them
    short = "d/" + "x" * 253  # the longest segment kept under its own name, as before
    keys = [long_leaf, nested, short, "x" * 300, "d/y"]
    for key in keys:
        store.put_object("photos", key, key.encode()[:40])
    assert {k: store.get_object("photos", k)[1] for k in keys} == {k: k.encode()[:40] for k in keys}
    assert store.head_object("photos", nested).size == 40
    listed = [o.key for o in store.list_objects("photos").objects]
    assert listed == sorted(set(keys), key=lambda k: k.encode())
    assert [o.key for o in store.list_objects("photos", prefix="d/").objects] == sorted(
        [nested, short, "d/y"], key=lambda k: k.encode()
    )
    assert (root / "photos" / "d" / ("@" + "x" * 253)).exists()  # readable names kept
    for key in keys:
        store.delete_object("photos", key)
    assert store.list_objects("photos").objects == []
    assert tree(root / "photos") <= {".skylift", ".skylift/tmp", ".skylift/bucket.json"}


def test_a_folder_segment_is_at_most_253_bytes(store: Blocking) -> None:
    store.put_object("photos", "x" * 253 + "/d", b"ok")
    with pytest.raises(KeyTooLongError) as caught:
        store.put_object("photos", "x" * 254 + "/d", b"no")
    assert caught.value.hint is not None and "253" in caught.value.hint


def test_objects_are_browsable_files_with_metadata_alongside(store: Blocking, root: Path) -> None:
    info = store.put_object(
        "photos", "cats/tom.jpg", b"\xff\xd8jpeg", content_type="image/jpeg", metadata={"A": "b"}
    )
    folder = root / "photos" / "cats"
    assert (folder / "@tom.jpg").read_bytes() == b"\xff\xd8jpeg"
    record = json.loads((folder / ".@tom.jpg").read_text())
    assert record["etag"] == info.etag
    assert (record["content_type"], record["metadata"]) == ("image/jpeg", {"a": "b"})


def test_deletes_remove_folders_left_empty(store: Blocking, root: Path) -> None:
    store.put_object("photos", "a/b/c/d", b"")
    store.put_object("photos", "a/x", b"")
    store.delete_object("photos", "a/b/c/d")
    assert not (root / "photos" / "a" / "b").exists()
    assert (root / "photos" / "a").is_dir()
    store.delete_object("photos", "a/x")
    assert not (root / "photos" / "a").exists()
    assert (root / "photos").is_dir()


def test_a_failed_write_leaves_the_previous_object(
    store: Blocking, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = store.put_object("photos", "k", b"version 1", content_type="text/plain")

    def disk_full(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space"):
        store.put_object("photos", "k", b"version 2")
    monkeypatch.undo()
    assert store.get_object("photos", "k") == (before, b"version 1")
    assert list((root / "photos" / ".skylift" / "tmp").iterdir()) == []  # no leftovers


def test_a_crash_between_data_and_metadata_never_mixes_versions(
    store: Blocking, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put_object("photos", "k", b"old", content_type="text/plain", metadata={"v": "1"})
    real_replace = os.replace

    def crash_before_metadata(src: Any, dst: Any) -> None:
        if Path(dst).name.startswith(".@"):
            raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_before_metadata)
    with pytest.raises(OSError):
        store.put_object("photos", "k", b"newer bytes")
    monkeypatch.undo()
    # The bytes on disk are the new ones; the metadata on file describes the old ones,
    # so it is not trusted: size and ETag are those of what is actually served.
    info, body = store.get_object("photos", "k")
    assert body == b"newer bytes"
    assert (info.size, info.etag) == (11, md5_etag(b"newer bytes"))
    assert (info.content_type, info.metadata) == ("binary/octet-stream", {})
    assert store.head_object("photos", "k") == info
    assert store.list_objects("photos").objects == [info]


def test_readers_never_see_a_torn_or_mislabelled_object(root: Path) -> None:
    store = DirectoryStore(root)
    asyncio.run(store.create_bucket("photos"))
    # Same size on purpose: only the ETag tells the versions apart.
    versions = [b"a" * (1 << 20), b"b" * (1 << 20)]
    etags = {md5_etag(v) for v in versions}
    done = threading.Event()
    seen: list[str] = []

    async def write() -> None:
        for i in range(40):
            await store.put_object("photos", "k", versions[i % 2])
        done.set()

    async def read() -> None:
        while not done.is_set():
            info, body = await store.get_object("photos", "k")
            assert body in versions
            assert info.etag == md5_etag(body)
            seen.append(info.etag)

    asyncio.run(store.put_object("photos", "k", versions[0]))
    writer = threading.Thread(target=asyncio.run, args=(write(),))
    writer.start()
    try:
        asyncio.run(read())
    finally:
        writer.join()
    assert set(seen) <= etags
    assert seen


def test_files_put_there_by_hand_are_objects(store: Blocking, root: Path) -> None:
    (root / "photos" / "@hand.txt").write_bytes(b"by hand")
    (root / "made-by-hand").mkdir()
    (root / "Not_A_Bucket").mkdir()
    info = store.head_object("photos", "hand.txt")
    assert (info.size, info.etag) == (7, f'"{hashlib.md5(b"by hand").hexdigest()}"')
    assert info.content_type == "binary/octet-stream"
    assert [o.key for o in store.list_objects("photos").objects] == ["hand.txt"]
    assert [b.name for b in store.list_buckets()] == ["made-by-hand", "photos"]


def test_objects_and_ordering_survive_a_restart(store: Blocking, root: Path) -> None:
    first = store.put_object("photos", "k", b"1")
    again = Blocking(DirectoryStore(root))
    try:
        assert again.get_object("photos", "k") == (first, b"1")
        assert again.put_object("photos", "k", b"2").sequencer > first.sequencer
    finally:
        again.close()


def test_deleted_bucket_folder_is_gone(store: Blocking, root: Path) -> None:
    store.delete_bucket("photos")
    assert list(root.iterdir()) == []
    with pytest.raises(NoSuchBucket):
        store.get_object("photos", "k")


def test_uploads_left_by_an_earlier_run_are_swept_at_start(store: Blocking, root: Path) -> None:
    upload = store.create_upload("photos", "big", Attributes())
    store.upload_part(upload, 1, b"part")
    store.put_object("photos", "kept", b"object")
    assert any((root / "photos" / ".skylift" / "uploads").rglob("*.part"))
    reopened = Blocking(DirectoryStore(root))
    try:
        assert reopened.list_uploads("photos") == []
        assert not (root / "photos" / ".skylift" / "uploads").exists()
        assert reopened.get_object("photos", "kept")[1] == b"object"
    finally:
        reopened.close()

"""The second half of the ``ObjectStore`` conformance suite: writes from files, stored
attributes, conditional writes, tags, bucket policies and multipart uploads.

A backend's test module subclasses ``ObjectStoreWritesConformance`` with the same
``store`` fixture as ``ObjectStoreConformance``.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from skylift.storage.errors import (
    BadDigest,
    EntityTooSmall,
    InvalidPart,
    InvalidPartOrder,
    NoSuchKey,
    NoSuchUpload,
    NotImplementedHere,
    PreconditionFailed,
)
from skylift.storage.protocol import Attributes, Checksum, Condition
from storage.conformance import Blocking, md5_etag

MiB = 1024 * 1024


class ObjectStoreWritesConformance:
    def test_a_file_from_temp_path_is_taken_over(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        path = store.temp_path("bkt")
        path.write_bytes(b"from a file")
        info = store.put_object("bkt", "k", path)
        assert not path.exists()
        assert (info.size, info.etag) == (11, md5_etag(b"from a file"))
        assert store.get_object("bkt", "k")[1] == b"from a file"

    def test_attributes_are_kept(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        attributes = Attributes(
            content_type="text/css",
            metadata={"Owner": "ann"},
            headers={"Cache-Control": "no-store", "Content-Language": "fr"},
            checksum=Checksum("CRC32", "AAAAAA=="),
            tags={"team": "blue"},
        )
        store.put_object("bkt", "k", b"x", attributes=attributes)
        info = store.head_object("bkt", "k")
        assert info.content_type == "text/css"
        assert info.metadata == {"owner": "ann"}
        assert info.headers == {"Cache-Control": "no-store", "Content-Language": "fr"}
        assert info.checksum == Checksum("CRC32", "AAAAAA==", "FULL_OBJECT")
        assert info.tags == {"team": "blue"}
        assert store.list_objects("bkt").objects[0].checksum == info.checksum

    def test_conditional_writes_change_nothing_when_they_fail(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        first = store.put_object("bkt", "k", b"1", condition=Condition(if_none_match=True))
        with pytest.raises(PreconditionFailed):
            store.put_object("bkt", "k", b"2", condition=Condition(if_none_match=True))
        with pytest.raises(PreconditionFailed):
            store.put_object("bkt", "k", b"2", condition=Condition(if_match='"abc"'))
        with pytest.raises(NoSuchKey):
            store.put_object("bkt", "new", b"2", condition=Condition(if_match=first.etag))
        assert store.get_object("bkt", "k")[1] == b"1"
        store.put_object("bkt", "k", b"3", condition=Condition(if_match=first.etag))
        assert store.get_object("bkt", "k")[1] == b"3"
        assert [o.key for o in store.list_objects("bkt").objects] == ["k"]

    def test_tags_replace_and_keep_the_bytes(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        put = store.put_object("bkt", "k", b"data", attributes=Attributes(tags={"a": "1"}))
        tagged = store.set_tags("bkt", "k", {"b": "2"})
        assert tagged.tags == {"b": "2"}
        info, data = store.get_object("bkt", "k")
        assert (info.tags, info.etag, data) == ({"b": "2"}, put.etag, b"data")
        with pytest.raises(NoSuchKey):
            store.set_tags("bkt", "missing", {})

    def test_bucket_policy(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        assert store.get_bucket_policy("bkt") is None
        try:
            store.set_bucket_policy("bkt", '{"Statement": []}')
        except NotImplementedHere:
            pytest.skip("this store refuses bucket policies (the external S3 store: see its tests)")
        assert store.get_bucket_policy("bkt") == '{"Statement": []}'
        store.set_bucket_policy("bkt", None)
        assert store.get_bucket_policy("bkt") is None

    def test_multipart_upload_joins_parts_with_s3s_etag(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        upload = store.create_upload("bkt", "big", Attributes(content_type="a/b"))
        first, last = os.urandom(5 * MiB), b"end"
        one = store.upload_part(upload, 1, first)
        store.upload_part(upload, 2, b"replaced below")
        two = store.upload_part(upload, 2, last)
        assert [
            (p.number, p.size) for p in store.get_upload("bkt", "big", upload.upload_id)[1]
        ] == [
            (1, 5 * MiB),
            (2, 3),
        ]
        assert [u.upload_id for u in store.list_uploads("bkt")] == [upload.upload_id]
        info = store.complete_upload(upload, [(1, one.etag), (2, two.etag)])
        digests = hashlib.md5(first).digest() + hashlib.md5(last).digest()
        assert info.etag == f'"{hashlib.md5(digests).hexdigest()}-2"'
        assert (info.parts, info.content_type) == (2, "a/b")
        assert store.get_object("bkt", "big")[1] == first + last
        assert store.list_uploads("bkt") == []
        with pytest.raises(NoSuchUpload):
            store.get_upload("bkt", "big", upload.upload_id)

    def test_multipart_refusals_store_nothing(self, store: Blocking) -> None:
        store.create_bucket("bkt")
        upload = store.create_upload("bkt", "k", Attributes())
        one = store.upload_part(upload, 1, b"small")
        two = store.upload_part(upload, 2, b"small")
        for listed, error in (
            ([(1, one.etag), (2, two.etag)], EntityTooSmall),
            ([(2, two.etag), (1, one.etag)], InvalidPartOrder),
            ([(1, '"ffff"')], InvalidPart),
            ([(3, two.etag)], InvalidPart),
        ):
            with pytest.raises(error):
                store.complete_upload(upload, listed)
        with pytest.raises(NoSuchKey):
            store.head_object("bkt", "k")
        store.abort_upload("bkt", "k", upload.upload_id)
        with pytest.raises(NoSuchUpload):
            store.upload_part(upload, 3, b"late")
        with pytest.raises(NoSuchUpload):
            store.abort_upload("bkt", "k", upload.upload_id)
        with pytest.raises(NoSuchUpload):
            store.get_upload("bkt", "k", "../../etc")

    def test_a_full_object_checksum_mismatch_keeps_the_earlier_object(
        self, store: Blocking
    ) -> None:
        store.create_bucket("bkt")
        before = store.put_object("bkt", "k", b"earlier version")
        upload = store.create_upload(
            "bkt", "k", Attributes(), checksum_algorithm="CRC32", checksum_type="FULL_OBJECT"
        )
        parts = [store.upload_part(upload, n, data) for n, data in ((1, b"a" * 5 * MiB), (2, b"z"))]
        listed = [(p.number, p.etag) for p in parts]
        with pytest.raises(BadDigest):
            store.complete_upload(
                upload, listed, checksum=Checksum("CRC32", "AAAAAA==", "FULL_OBJECT")
            )
        info, data = store.get_object("bkt", "k")
        assert (data, info.etag, info.sequencer) == (
            b"earlier version",
            before.etag,
            before.sequencer,
        )
        assert [o.key for o in store.list_objects("bkt").objects] == ["k"]

"""The ``ObjectStore`` conformance suite, unchanged, against every backend: the folder
store (with and without fsync) and the external S3 store on a real S3-compatible server
(``moto_server`` on loopback, see ``s3_server.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from skylift.storage.directory import DirectoryStore
from skylift.storage.protocol import ObjectStore
from skylift.storage.s3_store import S3Store
from skylift.storage.s3_url import parse
from storage.conformance import Blocking, ObjectStoreConformance
from storage.conformance_writes import ObjectStoreWritesConformance
from storage.s3_server import moto_server, s3_endpoint

__all__ = ["moto_server", "s3_endpoint"]  # fixtures, used by name

BACKENDS = ["directory", "directory-fsync", "s3"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Blocking]:
    backend: ObjectStore
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        target = parse(endpoint.replace("http://", "s3+http://", 1))
        backend = S3Store(target, spool=tmp_path / "spool")
    else:
        backend = DirectoryStore(tmp_path / "objects", fsync=request.param == "directory-fsync")
    blocking = Blocking(backend)
    yield blocking
    blocking.close()


class TestObjectStore(ObjectStoreConformance):
    pass


class TestObjectStoreWrites(ObjectStoreWritesConformance):
    pass

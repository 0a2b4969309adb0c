"""The object store: S3 buckets and objects behind one protocol, kept as local folders
(``DirectoryStore``) or in an external S3-compatible endpoint (``S3Store``)."""

from skylift.storage.directory import DirectoryStore
from skylift.storage.errors import StorageError
from skylift.storage.protocol import BucketInfo, ListResult, ObjectInfo, ObjectStore

__all__ = [
    "BucketInfo",
    "DirectoryStore",
    "ListResult",
    "ObjectInfo",
    "ObjectStore",
    "StorageError",
]

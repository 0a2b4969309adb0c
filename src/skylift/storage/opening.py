"""Which object store ``--objects`` names: a folder (``DirectoryStore``) or an external
S3-compatible endpoint (``S3Store``, for ``s3://`` and ``s3+http://`` URLs)."""

from __future__ import annotations

from pathlib import Path

from skylift.storage.directory import DirectoryStore
from skylift.storage.protocol import ObjectStore
from skylift.storage.s3_url import is_s3_url


def open_store(
    objects: Path | str, *, shared: bool = True, state: Path | None = None
) -> ObjectStore:
    """The store at ``objects``: an ``s3://`` URL (its upload bodies wait in the state
    folder ``state``, else in a temporary folder), or a folder (``shared``: other nodes
    may write to it too).

    Example: ``open_store("s3+http://127.0.0.1:9000/sky-")``.
    """
    if isinstance(objects, str) and is_s3_url(objects):
        from skylift.storage import s3_url
        from skylift.storage.s3_store import SPOOLS, S3Store

        spools = None if state is None else state / SPOOLS
        return S3Store(s3_url.parse(objects), spools=spools)
    return DirectoryStore(Path(objects), shared=shared)


def check(objects: str) -> None:
    """For ``skylift up``: raise ``SkyliftError`` saying what to do unless the URL parses
    and its endpoint answers. A folder needs no check."""
    if is_s3_url(objects):
        from skylift.storage import s3_url
        from skylift.storage.s3_endpoint import Endpoint

        Endpoint(s3_url.parse(objects)).check()


def resolve(value: str) -> Path | str:
    """What ``skylift up --objects VALUE`` opens: the URL, checked now (not after the init
    phase), or the folder. ``SkyliftError`` saying what to do if the endpoint is down."""
    if not is_s3_url(value):
        return Path(value)
    check(value)
    return value


def shown(objects: Path | str) -> str:
    """Where the buckets are, for the startup banner."""
    if isinstance(objects, str) and is_s3_url(objects):
        from skylift.storage import s3_url

        return s3_url.parse(objects).shown
    return str(objects)

"""``DirectoryStore``'s buckets: one folder each under the store's root, with the
bucket's creation time in ``.skylift/bucket.json``; and the sweep of writes a kill cut
off, run when the store opens."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from skylift.storage import layout
from skylift.storage.errors import BucketAlreadyOwnedByYou, BucketNotEmpty
from skylift.storage.files import now, unlink
from skylift.storage.layout import INTERNAL
from skylift.storage.listing import Cursor
from skylift.storage.protocol import BucketInfo, check_bucket_name, is_bucket_name


def bucket_names(root: Path) -> list[str]:
    """The buckets under ``root``, by name."""
    with os.scandir(root) as entries:
        return sorted(e.name for e in entries if e.is_dir() and is_bucket_name(e.name))


def bucket_info(name: str, path: Path) -> BucketInfo:
    """The bucket whose folder is ``path``."""
    try:
        created = json.loads((path / INTERNAL / "bucket.json").read_bytes())["created"]
    except (OSError, ValueError, KeyError, TypeError):
        created = int(path.stat().st_mtime)  # a folder made by hand is a bucket too
    return BucketInfo(name, datetime.fromtimestamp(created, UTC))


def create_bucket(root: Path, name: str) -> BucketInfo:
    check_bucket_name(name)
    path = root / name
    try:
        path.mkdir()
    except FileExistsError:
        raise BucketAlreadyOwnedByYou(name) from None
    created = now()
    (path / INTERNAL / "tmp").mkdir(parents=True)
    (path / INTERNAL / "bucket.json").write_text(json.dumps({"created": int(created.timestamp())}))
    return BucketInfo(name, created)


def delete_bucket(root: Path, path: Path, name: str) -> None:
    """Remove the empty bucket folder ``path``; ``BucketNotEmpty`` if it holds objects."""
    if next(layout.walk(path, "", Cursor(b""), b""), None) is not None:
        raise BucketNotEmpty(name)
    # Renamed first, so the bucket vanishes at once rather than file by file.
    doomed = root / f".deleting-{uuid.uuid4().hex}"
    path.rename(doomed)
    shutil.rmtree(doomed)


def clear_writes_in_flight(root: Path) -> None:
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
                        unlink(Path(entry.path))
        except (FileNotFoundError, NotADirectoryError):
            continue

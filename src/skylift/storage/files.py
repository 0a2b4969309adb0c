"""The file operations ``DirectoryStore`` builds its atomic writes from."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

from skylift.storage.errors import CorruptStore


def now() -> datetime:
    """UTC now, whole seconds, as S3's Last-Modified."""
    return datetime.now(UTC).replace(microsecond=0)


def unlink(path: Path) -> bool:
    """Remove ``path``; whether it was there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def write_file(path: Path, data: bytes, *, fsync: bool) -> int:
    """Write a new file; its inode."""
    with open(path, "xb") as file:
        file.write(data)
        if fsync:
            file.flush()
            os.fsync(file.fileno())
        return os.fstat(file.fileno()).st_ino


def settle(path: Path, *, fsync: bool) -> tuple[int, int]:
    """(size, inode) of a file written elsewhere, flushed to disk if asked."""
    with open(path, "rb") as file:
        if fsync:
            os.fsync(file.fileno())
        stat = os.fstat(file.fileno())
    return stat.st_size, stat.st_ino


def file_etag(path: Path) -> str:
    """The quoted MD5 of a file's bytes: its ETag."""
    with open(path, "rb") as file:
        return f'"{hashlib.file_digest(file, "md5").hexdigest()}"'


def move_into(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``, making ``target``'s folder if it is missing."""
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

"""Where ``DirectoryStore`` keeps each key: the mapping between object keys and file paths.

Layout under a bucket's folder::

    photos/                        bucket "photos"
    photos/.skylift/bucket.json    when it was created
    photos/.skylift/tmp/           writes in flight
    photos/@index.html             the bytes of key "index.html"
    photos/.@index.html            its metadata (JSON): size, ETag, type, time, user metadata
    photos/cats/@tom.jpg           the bytes of key "cats/tom.jpg"
    photos/cats/@                  key "cats/" (a console "folder")
    photos/%.git/@config           key ".git/config"

Each "/" in a key is a folder; the last segment names the data file behind an ``@``, so
key "a" (file ``@a``) and key "a/b" (folder ``a``) coexist, as S3 allows. A folder is
named by its segment, with a ``%`` in front when the segment is empty or starts with
``@``, ``.`` or ``%``; so no folder can pass for a data file, a metadata file (``.@``) or
the store's ``.skylift``, whatever the key: no key can collide with the store's own files.
Data files keep their extension, so ``cats/@tom.jpg`` opens in an image viewer.

A last segment longer than a file name can be (253 bytes; S3 allows the whole 1,024-byte
key in one segment) is stored under ``%#`` and the SHA-256 of the segment, its metadata
under ``.%#`` and the same digest; the metadata's ``key`` names it for listings. No other
key maps to such a name: a folder named ``%`` + something is always ``%%``, ``%@``, ``%.``
or just ``%``, and data files start with ``@``. Shorter segments keep their readable
names, so stores written before this change read the same.

Keys are opaque to S3 but become paths here, so before touching anything ``locate``
refuses (``InvalidArgument``) keys that hold NUL or have a "." or ".." segment, and
(``KeyTooLongError``) folder segments (those before the last "/") over 253 bytes, the
file name limit less our marks. A key may start with "/", as in S3: its first segment is
empty, a folder named ``%``. A literal "%2e%2e/x" is only a name: it is stored in a
folder called "%%2e%2e".
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from skylift.storage.errors import InvalidArgument, KeyTooLongError
from skylift.storage.listing import Cursor
from skylift.storage.protocol import check_key

DATA = "@"
META = ".@"
INTERNAL = ".skylift"
LONG = "%#"  # data file of a last segment too long for a file name; "." + it: metadata
MAX_SEGMENT = 253  # NAME_MAX (255) less the ".@" of the metadata file


def data_path(folder: Path, leaf: str) -> Path:
    """The file holding the bytes of the key whose last segment is ``leaf``."""
    if len(leaf.encode()) > MAX_SEGMENT:
        return folder / (LONG + _digest(leaf))
    return folder / (DATA + leaf)


def meta_path(folder: Path, leaf: str) -> Path:
    """The file holding that key's metadata."""
    if len(leaf.encode()) > MAX_SEGMENT:
        return folder / ("." + LONG + _digest(leaf))
    return folder / (META + leaf)


def _digest(leaf: str) -> str:
    return hashlib.sha256(leaf.encode()).hexdigest()


def _long_leaf(folder: Path, name: str) -> str | None:
    """The last segment a ``%#`` data file stands for, from its metadata (None if lost)."""
    try:
        key = json.loads((folder / ("." + name)).read_bytes())["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    leaf = str(key).rsplit("/", 1)[-1]
    return leaf if folder / name == data_path(folder, leaf) else None


def locate(base: Path, bucket: str, key: str) -> tuple[Path, str]:
    """(folder holding the key's files, last segment) inside the bucket folder ``base``.

    Raises ``InvalidArgument``/``KeyTooLongError`` for a key that cannot be a path here,
    before anything is touched. Example: ``locate(base, "b", "cats/tom.jpg")`` is
    ``(base / "cats", "tom.jpg")``.
    """
    check_key(bucket, key)
    *folders, leaf = segments = key.split("/")
    problem = None
    if "\x00" in key:
        problem = "contains a NUL character"
    elif "." in segments or ".." in segments:
        problem = "has a '.' or '..' path segment"
    if problem is not None:
        raise InvalidArgument(
            f"Object key {key!r} {problem}; this store keeps keys as file paths and "
            "refuses such keys. Rename the object, e.g. without the '.'/'..' segments.",
            argument="key",
            value=key,
            bucket=bucket,
        )
    if any(len(segment.encode()) > MAX_SEGMENT for segment in folders):
        limit = (
            f"each '/'-separated part before the last is at most {MAX_SEGMENT} bytes in this store"
        )
        raise KeyTooLongError(bucket, key, limit)
    folder = base.joinpath(*map(_folder_name, folders))
    # Defence in depth: whatever the checks above missed must still land in the bucket.
    inside = os.path.normpath(base)
    if not os.path.normpath(data_path(folder, leaf)).startswith(inside + os.sep):
        raise InvalidArgument(
            f"Object key {key!r} would be stored outside its bucket. Rename the object.",
            argument="key",
            value=key,
            bucket=bucket,
        )
    return folder, leaf


def keys(base: Path, prefix: str, cursor: Cursor) -> Iterator[tuple[str, tuple[Path, str]]]:
    """(key, (folder, last segment)) of each key starting with ``prefix``, after the cursor.

    Keys come in UTF-8 byte order, as ``listing.list_page`` expects.
    """
    # Start in the deepest folder the prefix names: "cats/t" only looks in cats/.
    *folders, _ = prefix.split("/")
    folder, walked = base, ""
    for segment in folders:
        if segment in (".", "..") or "\x00" in segment or len(segment.encode()) > MAX_SEGMENT:
            return  # no stored key can start with this prefix
        folder, walked = folder / _folder_name(segment), f"{walked}{segment}/"
    yield from walk(folder, walked, cursor, prefix.encode())


def walk(
    folder: Path, base: str, cursor: Cursor, prefix: bytes
) -> Iterator[tuple[str, tuple[Path, str]]]:
    """(key, (folder, last segment)) of every key under ``folder``, in UTF-8 byte order.

    ``base`` is the key prefix ``folder`` stands for ("cats/"). A data file sorts as its
    key, a folder as its prefix; all keys in the folder share that prefix, so visiting both
    in one sorted pass keeps global order.
    """
    entries: list[tuple[bytes, bool, str]] = []
    try:
        with os.scandir(folder) as scan:
            for entry in scan:
                name = entry.name
                try:
                    if name.startswith(DATA):
                        entries.append(((base + name[1:]).encode(), False, name[1:]))
                    elif name.startswith(LONG):
                        leaf = _long_leaf(folder, name)
                        if leaf is not None:  # its metadata was lost: it cannot be named
                            entries.append(((base + leaf).encode(), False, leaf))
                    elif not name.startswith(".") and entry.is_dir(follow_symlinks=False):
                        entries.append(((base + _segment(name) + "/").encode(), True, name))
                except UnicodeEncodeError:
                    continue  # a file name that is not UTF-8 was not written by us
    except (FileNotFoundError, NotADirectoryError):
        return
    entries.sort()
    for sort_key, is_folder, name in entries:
        if not (sort_key.startswith(prefix) or (is_folder and prefix.startswith(sort_key))):
            if sort_key > prefix:
                return  # sorted: nothing after this can start with the prefix
            continue
        if is_folder:
            after = cursor.after
            if after.startswith(sort_key) or after < sort_key:
                yield from walk(folder / name, sort_key.decode(), cursor, prefix)
        elif sort_key > cursor.after:
            yield sort_key.decode(), (folder, name)


def _folder_name(segment: str) -> str:
    if not segment or segment[0] in "@.%":
        return "%" + segment
    return segment


def _segment(folder_name: str) -> str:
    return folder_name[1:] if folder_name.startswith("%") else folder_name

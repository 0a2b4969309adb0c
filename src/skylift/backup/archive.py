"""The backup archive: a tar file whose last two members are its manifest and the
manifest's own SHA-256.

Layout::

    sqlite/queues.db          SQLite's online backup of each database
    sqlite/async.db
    objects/00000001          the bytes of each object (the manifest names its key)
    buckets/NAME/bucket.json  a bucket's own files (creation time, policy)
    config/app.py             the app's definition file
    redis/keys.json           with --state redis://: the prefix's keys (DUMP format)
    manifest.json             what is where, with each member's size and SHA-256
    manifest.sha256           the SHA-256 of manifest.json

The manifest comes last because it is only known once everything else is written; a
reader therefore hashes every member in one pass and compares at the end. A truncated
archive lacks its manifest (or the tail of a member), a damaged one fails a digest or
tar's own header checksum: either way `verify` refuses it before anything is restored.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from skylift.errors import SkyliftError

FORMAT = "skylift-backup"
VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"
_CHUNK = 1 << 20


class BackupError(SkyliftError):
    """Raised when a backup cannot be taken, or an archive is damaged, truncated or not one.

    The message names the file and what is wrong; nothing was changed.
    """


@dataclass
class Manifest:
    """What an archive holds. `files` maps every member (but the manifest) to its
    ``{"size", "sha256"}``; `objects` lists ``{"bucket", "key", "member", "record"}``."""

    created: str
    source: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    config: list[str] = field(default_factory=list)
    redis: dict[str, Any] | None = None
    summary: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> bytes:
        document = {"format": FORMAT, "version": VERSION, **self.__dict__}
        return json.dumps(document, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        try:
            document = json.loads(data)
            if document.get("format") != FORMAT:
                raise BackupError(f"{where} is not a skylift backup (its manifest says otherwise)")
            if document.get("version") != VERSION:
                raise BackupError(
                    f"{where} is a skylift backup of format version {document.get('version')}; "
                    f"this skylift reads version {VERSION}: use the skylift that wrote it"
                )
            del document["format"], document["version"]
            return cls(**document)
        except (ValueError, TypeError, AttributeError) as exc:
            raise BackupError(f"{where}: its manifest cannot be read ({exc})") from None


class _Hashing(io.RawIOBase):
    """A reader that hashes what passes through it (tar reads each member once)."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        return data


class Writer:
    """Adds members to a new archive and records their digests in the manifest."""

    def __init__(self, tar: tarfile.TarFile, manifest: Manifest) -> None:
        self.tar = tar
        self.manifest = manifest

    def add_stream(self, name: str, source: IO[bytes], size: int) -> str:
        """Add `size` bytes read from `source` as member `name`; their SHA-256."""
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = int(time.time())
        info.mode = 0o600
        hashing = _Hashing(source)
        self.tar.addfile(info, hashing)  # raises if `source` ends before `size` bytes
        digest = hashing.digest.hexdigest()
        self.manifest.files[name] = {"size": size, "sha256": digest}
        return digest

    def add_bytes(self, name: str, data: bytes) -> str:
        return self.add_stream(name, io.BytesIO(data), len(data))

    def add_file(self, name: str, path: Path) -> str:
        with open(path, "rb") as source:
            return self.add_stream(name, source, os.fstat(source.fileno()).st_size)


@contextmanager
def create(path: Path, manifest: Manifest) -> Iterator[Writer]:
    """Write an archive at `path`: members inside the block, the manifest after it.

    The archive is written beside `path` and renamed into place once complete, so `path`
    never names half an archive; it is readable by its owner only (it holds the queues'
    receipt-signing key and every object).
    """
    partial = path.with_name(f".{path.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                writer = Writer(tar, manifest)
                yield writer
                document = manifest.to_json()
                _add_plain(tar, MANIFEST, document)
                _add_plain(tar, MANIFEST_DIGEST, hashlib.sha256(document).hexdigest().encode())
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _add_plain(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def members(path: Path) -> Iterator[tuple[str, IO[bytes]]]:
    """(name, reader) of each regular member of the archive, in order.

    Raises BackupError when the file cannot be read as a tar archive to its end.
    """
    where = str(path)
    try:
        with tarfile.open(path, mode="r:") as tar:
            for info in tar:
                if not info.isfile():
                    raise BackupError(f"{where} holds {info.name!r}, which is not a file")
                reader = tar.extractfile(info)
                assert reader is not None  # a regular file always has one
                yield info.name, reader
    except FileNotFoundError:
        raise BackupError(f"{where} does not exist: check the path") from None
    except IsADirectoryError:
        raise BackupError(f"{where} is a folder, not a backup archive") from None
    except PermissionError as exc:
        raise BackupError(f"{where} cannot be read ({exc.strerror}): check its owner") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(
            f"{where} is truncated or damaged: it cannot be read to its end ({exc})"
        ) from None


def _check_end(path: Path) -> None:
    """Refuse an archive cut inside its end-of-archive marker (two zero blocks after the
    last member) or its padding to a whole tar record, which tar readers forgive: a cut
    file is not a complete backup. `create` always writes both."""
    with tarfile.open(path, mode="r:") as tar:
        last = tar.getmembers()[-1]
    end = last.offset_data + -(-last.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    with open(path, "rb") as file:
        file.seek(end)
        marker = file.read(2 * tarfile.BLOCKSIZE)
        size = os.fstat(file.fileno()).st_size
    padded = -(-(end + 2 * tarfile.BLOCKSIZE) // tarfile.RECORDSIZE) * tarfile.RECORDSIZE
    if last.name != MANIFEST_DIGEST or marker != bytes(2 * tarfile.BLOCKSIZE) or size < padded:
        raise BackupError(f"{path} is truncated: it ends before tar's end-of-archive marker")
    if size > padded:
        raise BackupError(f"{path} is damaged: {size - padded} bytes follow the archive's end")


def digest(reader: IO[bytes], sink: IO[bytes] | None = None) -> tuple[str, int]:
    """(SHA-256, size) of what `reader` yields, copied into `sink` when given."""
    hashing = hashlib.sha256()
    size = 0
    while chunk := reader.read(_CHUNK):
        hashing.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return hashing.hexdigest(), size


def verify(path: Path) -> Manifest:
    """Read the whole archive and check every member against the manifest; the manifest.

    Writes nothing. Raises BackupError naming the first problem: not a tar archive,
    truncated, a member whose bytes differ from the manifest's digest, one missing, one
    the manifest does not list, or a manifest that is itself damaged.
    """
    where = str(path)
    found: dict[str, tuple[str, int]] = {}
    manifest_bytes: bytes | None = None
    manifest_digest: bytes | None = None
    for name, reader in members(path):
        if name == MANIFEST:
            manifest_bytes = reader.read()
        elif name == MANIFEST_DIGEST:
            manifest_digest = reader.read().strip()
        else:
            try:
                found[name] = digest(reader)
            except (tarfile.TarError, EOFError, OSError) as exc:
                raise BackupError(
                    f"{where} is truncated or damaged: member {name!r} cannot be read ({exc})"
                ) from None
    if manifest_bytes is None or manifest_digest is None:
        raise BackupError(
            f"{where} is truncated or not a skylift backup: it ends without its manifest"
        )
    _check_end(path)
    if hashlib.sha256(manifest_bytes).hexdigest().encode() != manifest_digest:
        raise BackupError(f"{where} is damaged: its manifest does not match its checksum")
    manifest = Manifest.from_json(manifest_bytes, where)
    for name, expected in manifest.files.items():
        if name not in found:
            raise BackupError(f"{where} is truncated or damaged: {name!r} is missing")
        sha, size = found[name]
        if size != expected["size"] or sha != expected["sha256"]:
            raise BackupError(
                f"{where} is damaged: {name!r} does not match its checksum "
                f"(SHA-256 {sha}, {size} bytes; the manifest says {expected['sha256']}, "
                f"{expected['size']} bytes)"
            )
    extra = sorted(set(found) - set(manifest.files))
    if extra:
        raise BackupError(f"{where} is damaged: it holds {extra[0]!r}, which its manifest lacks")
    return manifest

"""Multipart uploads on disk: each upload is a folder of parts until it is completed or
aborted.

Layout, under a bucket's folder::

    .skylift/uploads/<upload id>/upload.json     key, initiation time, the object's attributes
    .skylift/uploads/<upload id>/00001.part      the bytes of part 1
    .skylift/uploads/<upload id>/00001.json      its size, ETag, checksum and the data's inode

A part's record names its data file's inode, as an object's does, so a part being
replaced is never reported with the other version's ETag. Completing joins the listed
parts into one temporary file that ``DirectoryStore`` moves into place like any PUT.
Uploads are swept away when the store opens (a restarted server's clients cannot resume
them) and removed by Abort.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from skylift.storage import checksums
from skylift.storage.errors import (
    BadDigest,
    EntityTooSmall,
    InvalidPart,
    InvalidPartOrder,
    NoSuchUpload,
)
from skylift.storage.layout import INTERNAL
from skylift.storage.protocol import Attributes, Checksum, Part, Upload
from skylift.storage.records import (
    attributes_record,
    checksum_record,
    read_attributes,
    read_checksum,
)

MIN_PART_SIZE = 5 * 1024 * 1024  # every part but the last, as in S3
_COPY_CHUNK = 1 << 20


class Uploads:
    """The multipart uploads of every bucket of one ``DirectoryStore``."""

    def __init__(self, *, fsync: bool = False, min_part_size: int = MIN_PART_SIZE) -> None:
        self.fsync = fsync
        self.min_part_size = min_part_size
        self._lock = threading.Lock()  # part writes and removals: short, rare

    def sweep(self, base: Path) -> None:
        """Remove every upload of the bucket folder ``base`` (run when the store opens)."""
        folder = base / INTERNAL / "uploads"
        if folder.is_dir():
            doomed = base / INTERNAL / f"uploads.deleting-{uuid.uuid4().hex}"
            folder.rename(doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def create(
        self,
        base: Path,
        bucket: str,
        key: str,
        attributes: Attributes,
        checksum_algorithm: str | None,
        checksum_type: str | None,
    ) -> Upload:
        upload_id = secrets.token_urlsafe(48)
        folder = base / INTERNAL / "uploads" / upload_id
        folder.mkdir(parents=True)
        initiated = datetime.now(UTC).replace(microsecond=0)
        record = {
            "key": key,
            "initiated": int(initiated.timestamp()),
            "attributes": attributes_record(attributes),
            "checksum_algorithm": checksum_algorithm,
            "checksum_type": checksum_type,
        }
        (folder / "upload.json").write_text(json.dumps(record))
        return Upload(
            bucket, key, upload_id, initiated, attributes, checksum_algorithm, checksum_type
        )

    def get(self, base: Path, bucket: str, key: str, upload_id: str) -> tuple[Upload, list[Part]]:
        upload = self._read(base, bucket, upload_id)
        if upload is None or upload.key != key:
            raise NoSuchUpload(upload_id)
        return upload, self._parts(self._folder(base, upload_id))

    def in_bucket(self, base: Path, bucket: str) -> list[Upload]:
        try:
            ids = os.listdir(base / INTERNAL / "uploads")
        except FileNotFoundError:
            return []
        found = [u for u in (self._read(base, bucket, i) for i in ids) if u is not None]
        return sorted(found, key=lambda u: (u.key.encode(), u.initiated, u.upload_id))

    def put_part(
        self,
        base: Path,
        upload: Upload,
        number: int,
        data: bytes | Path,
        etag: str | None,
        checksum: Checksum | None,
    ) -> Part:
        folder = self._folder(base, upload.upload_id)
        if not (folder / "upload.json").exists():
            raise NoSuchUpload(upload.upload_id)
        stem = uuid.uuid4().hex
        staged, meta = folder / f"{stem}.staged", folder / f"{stem}.meta"
        try:
            if isinstance(data, Path):
                os.replace(data, staged)
            else:
                staged.write_bytes(data)
            with open(staged, "rb") as file:
                if etag is None:
                    etag = f'"{hashlib.file_digest(file, "md5").hexdigest()}"'
                if self.fsync:
                    os.fsync(file.fileno())
                stat = os.fstat(file.fileno())
            modified = datetime.now(UTC).replace(microsecond=0)
            part = Part(number, stat.st_size, etag, modified, checksum)
            record = {
                "size": part.size,
                "etag": etag,
                "last_modified": int(modified.timestamp()),
                "checksum": checksum_record(checksum),
                "inode": stat.st_ino,
            }
            meta.write_text(json.dumps(record))
            with self._lock:
                if not (folder / "upload.json").exists():  # aborted or completed meanwhile
                    raise NoSuchUpload(upload.upload_id)
                os.replace(staged, folder / f"{number:05d}.part")
                os.replace(meta, folder / f"{number:05d}.json")
            return part
        except FileNotFoundError:
            raise NoSuchUpload(upload.upload_id) from None  # aborted while the part came in
        finally:
            staged.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)

    def join(
        self,
        base: Path,
        upload: Upload,
        listed: Sequence[tuple[int, str]],
        sent: Checksum | None,
    ) -> tuple[Path, str, int, Checksum | None]:
        """(joined temporary file, ETag, part count, object checksum) of a completion."""
        folder = self._folder(base, upload.upload_id)
        stored = {part.number: part for part in self._parts(folder)}
        if not (folder / "upload.json").exists():
            raise NoSuchUpload(upload.upload_id)
        chosen = choose_parts(upload.upload_id, listed, stored, self.min_part_size)
        algorithm = upload.checksum_algorithm
        whole = checksums.hasher(algorithm) if algorithm else None
        md5s = hashlib.md5(usedforsecurity=False)
        joined = base / INTERNAL / "tmp" / f"{uuid.uuid4().hex}.joined"
        joined.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(joined, "xb") as out:
                for part in chosen:
                    md5s.update(bytes.fromhex(part.etag.strip('"')))
                    with open(folder / f"{part.number:05d}.part", "rb") as source:
                        while chunk := source.read(_COPY_CHUNK):
                            out.write(chunk)
                            if whole is not None:
                                whole.update(chunk)
            checksum = object_checksum(upload, chosen, whole, sent)
        except BaseException:
            joined.unlink(missing_ok=True)
            raise
        etag = f'"{md5s.hexdigest()}-{len(chosen)}"'
        return joined, etag, len(chosen), checksum

    def remove(self, base: Path, upload_id: str) -> None:
        folder = self._folder(base, upload_id)
        with self._lock:
            try:
                (folder / "upload.json").unlink()
            except FileNotFoundError:
                raise NoSuchUpload(upload_id) from None
        shutil.rmtree(folder, ignore_errors=True)

    def _folder(self, base: Path, upload_id: str) -> Path:
        # An id is ours only if it is a plain name: never a path out of the folder.
        if not upload_id or not all(c.isalnum() or c in "-_" for c in upload_id):
            raise NoSuchUpload(upload_id)
        return base / INTERNAL / "uploads" / upload_id

    def _read(self, base: Path, bucket: str, upload_id: str) -> Upload | None:
        try:
            record = json.loads((self._folder(base, upload_id) / "upload.json").read_bytes())
            return Upload(
                bucket,
                record["key"],
                upload_id,
                datetime.fromtimestamp(record["initiated"], UTC),
                read_attributes(record["attributes"]),
                record["checksum_algorithm"],
                record["checksum_type"],
            )
        except (OSError, ValueError, KeyError, TypeError, NoSuchUpload):
            return None

    def _parts(self, folder: Path) -> list[Part]:
        parts = []
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".json") and n[0].isdigit())
        except FileNotFoundError:
            return []
        for name in names:
            try:
                record = json.loads((folder / name).read_bytes())
                stat = os.stat(folder / name.replace(".json", ".part"))
                if stat.st_ino != record["inode"]:
                    continue  # being replaced: the new record follows at once
                parts.append(
                    Part(
                        int(name.removesuffix(".json")),
                        record["size"],
                        record["etag"],
                        datetime.fromtimestamp(record["last_modified"], UTC),
                        read_checksum(record["checksum"]),
                    )
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return parts


def object_checksum(
    upload: Upload, parts: list[Part], whole: checksums.Hasher | None, sent: Checksum | None
) -> Checksum | None:
    algorithm = upload.checksum_algorithm
    if algorithm is None:
        return None
    if upload.checksum_type == "FULL_OBJECT":
        if whole is None:
            return sent  # CRC64NVME, CRC32C: as the client computed it
        computed = Checksum(algorithm, checksums.encode(whole.digest()), "FULL_OBJECT")
        if sent is not None and sent.algorithm == algorithm and sent.value != computed.value:
            raise BadDigest(algorithm)
        return computed
    values = [p.checksum.value for p in parts if p.checksum and p.checksum.algorithm == algorithm]
    if len(values) != len(parts):
        return sent
    value = checksums.composite(algorithm, values)
    if value is None:
        return sent if sent is not None else None
    return Checksum(algorithm, value, "COMPOSITE")


def choose_parts(
    upload_id: str,
    listed: Sequence[tuple[int, str]],
    stored: dict[int, Part],
    min_part_size: int,
) -> list[Part]:
    """The parts a CompleteMultipartUpload lists (number, ETag), in order, as S3 checks
    them: ascending numbers, each stored with that ETag, all but the last big enough."""
    chosen: list[Part] = []
    for index, (number, etag) in enumerate(listed):
        if index and number <= listed[index - 1][0]:
            raise InvalidPartOrder(upload_id)
        part = stored.get(number)
        if part is None or part.etag.strip('"') != etag.strip().strip('"'):
            raise InvalidPart(upload_id, number, etag)
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < min_part_size:
            raise EntityTooSmall(part.number, part.size, min_part_size)
    return chosen

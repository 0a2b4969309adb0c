"""Restoring a backup into an app folder: verify everything first, then build the state
aside and move it into place whole.

`restore` reads the archive twice. The first pass (`archive.verify`) checks every digest
and writes nothing, so a corrupt or truncated archive changes nothing. The second builds
`DIR/.skylift` in a staging folder beside it, checking each digest again as it goes (the
file could change between the passes), lists the databases in `.skylift/databases` and
runs `skylift up`'s own start-up check (`state_guard.check`) on each; only then is the
staging folder renamed to `.skylift`. Objects are written through the store's layout
with their metadata pointing at the new files, so they read back exactly as backed up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from skylift.backup.archive import MANIFEST, MANIFEST_DIGEST, BackupError, Manifest, digest
from skylift.backup.archive import members as archive_members
from skylift.backup.archive import verify as verify_archive
from skylift.engine import state_guard
from skylift.storage import layout
from skylift.storage.layout import INTERNAL, data_path, meta_path
from skylift.storage.protocol import is_bucket_name

STATE = ".skylift"


@dataclass(frozen=True)
class Restored:
    """What a restore wrote: the state folder and the app files it placed."""

    state_dir: Path
    config: list[Path]
    manifest: Manifest


def restore(
    archive: Path, to: Path, *, redis_url: str | None = None, skip_redis: bool = False
) -> Restored:
    """Restore `archive` into the app folder `to`; raises BackupError and changes nothing
    when the archive is damaged or `to` already holds state or different app files.
    `skip_redis` restores all but the queues dumped from Redis (verified all the same).

    Example: ``restore(Path("backup.tar"), Path("/srv/app"))`` then ``skylift up /srv/app``.
    """
    manifest = verify_archive(archive)
    _check_names(manifest, archive)
    state_dir = to / STATE
    if state_dir.exists() and (not state_dir.is_dir() or any(state_dir.iterdir())):
        raise BackupError(
            f"{state_dir} already holds state: restore into a fresh folder, or move it "
            "aside first (a restore never mixes two states)"
        )
    if skip_redis:
        redis_url = None
    elif manifest.redis is not None and redis_url is None:
        raise BackupError(
            f"{archive} holds queues from Redis: pass --state redis://HOST:PORT/DB to restore "
            "them into (its prefix must hold no keys yet)"
        )
    placed = _config_to_place(archive, manifest, to)
    if manifest.redis is not None and redis_url is not None:
        from skylift.backup.redis_dump import check_empty

        check_empty(redis_url, manifest.redis["prefix"])
    created_to = not to.exists()
    to.mkdir(parents=True, exist_ok=True)
    staging = to / f".skylift-restoring-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir()
        _extract(archive, manifest, staging, to, placed)
        for name in manifest.databases:
            state_guard.record(staging, name)
            state_guard.check(staging, name)  # what `skylift up` checks at start
        if manifest.redis is not None and redis_url is not None:
            from skylift.backup.redis_dump import restore_redis

            restore_redis(archive, manifest, redis_url)
        if state_dir.exists():
            state_dir.rmdir()  # checked empty above
        staging.rename(state_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for name in placed:
            with contextlib.suppress(FileNotFoundError):
                (to / name).unlink()
        if created_to:
            shutil.rmtree(to, ignore_errors=True)
        raise
    return Restored(state_dir, [to / name for name in placed], manifest)


def _check_names(manifest: Manifest, archive: Path) -> None:
    """Refuse names that could land outside the target, before anything is written."""
    for name in manifest.config + manifest.databases:
        if "/" in name or name in ("", ".", "..") or name.startswith("."):
            raise BackupError(f"{archive} is damaged: it names a file {name!r}")
    for name in manifest.databases:
        if name not in state_guard.DATABASES:
            raise BackupError(f"{archive} holds an unknown database {name!r}")
    for bucket in manifest.buckets:
        if not is_bucket_name(bucket):
            raise BackupError(f"{archive} is damaged: it names a bucket {bucket!r}")


def _config_to_place(archive: Path, manifest: Manifest, to: Path) -> list[str]:
    """The app files to write into `to`: those absent there. One that is present and
    differs stops the restore (the user decides which to keep)."""
    wanted = {f"config/{name}": name for name in manifest.config}
    placed = []
    for member, reader in archive_members(archive):
        name = wanted.get(member)
        if name is None:
            continue
        present = to / name
        if not present.exists():
            placed.append(name)
        elif present.read_bytes() != reader.read():
            raise BackupError(
                f"{present} differs from the backup's {name}: restore into a fresh folder, or "
                f"move {present} aside first"
            )
    return placed


def _extract(archive: Path, manifest: Manifest, staging: Path, to: Path, placed: list[str]) -> None:
    objects = {entry["member"]: entry for entry in manifest.objects}
    store = staging / "objects"
    store.mkdir()
    for bucket in manifest.buckets:
        (store / bucket / INTERNAL / "tmp").mkdir(parents=True)
    for member, reader in archive_members(archive):
        if member in (MANIFEST, MANIFEST_DIGEST):
            continue
        expected = manifest.files[member]["sha256"]
        kind, _, rest = member.partition("/")
        if kind == "sqlite":
            _write(reader, staging / rest, expected, member)
        elif kind == "config":
            if rest in placed:
                _write(reader, to / rest, expected, member)
        elif kind == "buckets":
            bucket, _, name = rest.partition("/")
            if bucket not in manifest.buckets or "/" in name or name in _UNSAFE:
                raise BackupError(f"{archive} is damaged: it holds {member!r}")
            _write(reader, store / bucket / INTERNAL / name, expected, member)
        elif kind == "objects":
            _write_object(reader, store, objects[member], expected)
        elif kind != "redis":
            raise BackupError(f"{archive} holds {member!r}, which this skylift cannot restore")


_UNSAFE = frozenset({"", ".", "..", "tmp", "uploads"})


def _write_object(reader: IO[bytes], store: Path, entry: dict[str, Any], expected: str) -> None:
    bucket, key = entry["bucket"], entry["key"]
    base = store / bucket
    folder, leaf = layout.locate(base, bucket, key)  # refuses keys that are no path
    folder.mkdir(parents=True, exist_ok=True)
    target = data_path(folder, leaf)
    _write(reader, target, expected, entry["member"])
    record = dict(entry["record"], inode=os.stat(target).st_ino)
    meta_path(folder, leaf).write_text(json.dumps(record))


def _write(reader: IO[bytes], target: Path, expected: str, member: str) -> None:
    with open(target, "xb") as sink:
        try:
            sha, _ = digest(reader, sink)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BackupError(f"the archive changed while restoring {member!r} ({exc})") from None
    if sha != expected:
        raise BackupError(f"the archive changed while restoring: {member!r} no longer matches")

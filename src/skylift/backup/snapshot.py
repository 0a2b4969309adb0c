"""Taking a backup of an app's state while its server runs and takes traffic.

The backup runs in its own process against the files, not through the server: SQLite's
online backup API copies each database as of one read transaction (WAL lets the server
keep writing meanwhile), and objects are never changed in place (`storage/directory.py`
writes a new file and renames it over the old), so a data file opened here keeps the
bytes of one version whatever the server does next. Its metadata is taken only if it
records that file's inode, as the store's own readers check. An object written during
the backup is therefore either fully in it (data and the metadata of that version) or
absent; one deleted meanwhile may be either.

The snapshot is consistent per database and per object, not across them: a message sent
while the objects are copied is not in the archive, as it would not be if the backup had
started a moment earlier.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from skylift.backup.archive import BackupError, Manifest, Writer, create
from skylift.engine import state_guard
from skylift.storage import layout
from skylift.storage.layout import INTERNAL, data_path, meta_path
from skylift.storage.listing import Cursor
from skylift.storage.protocol import is_bucket_name
from skylift.storage.records import derived, object_record, recorded

_RETRIES = (0.0, 0.001, 0.005, 0.02)  # as the store's readers: a writer between its renames
_SKIPPED = frozenset({"tmp", "uploads"})  # writes and multipart uploads in flight


def take(
    state_dir: Path,
    path: Path,
    *,
    config: Sequence[Path] = (),
    redis_url: str | None = None,
) -> Manifest:
    """Back up the state in `state_dir` (and the app files `config`) to the archive `path`.

    Example: ``take(Path("app/.skylift"), Path("backup.tar"), config=[Path("app/app.py")])``.
    Raises BackupError when there is no state there or a database is damaged.
    """
    databases = [n for n in state_guard.DATABASES if redis_url is None or n != "queues.db"]
    present = []
    for name in databases:
        try:
            if state_guard.check(state_dir, name):  # False: never created here
                present.append(name)
        except state_guard.DamagedState as exc:
            raise BackupError(f"cannot back up a damaged state: {exc}") from None
    if not present and not (state_dir / "objects").is_dir():
        raise BackupError(
            f"no skylift state at {state_dir}: run `skylift up` for the app first, "
            "or name the app whose state to back up"
        )
    manifest = Manifest(
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), source=str(state_dir)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with create(path, manifest) as writer:
        for file in config:
            writer.add_file(f"config/{file.name}", file)
            manifest.config.append(file.name)
        for name in present:
            _add_database(writer, state_dir / name, name, path.parent)
            manifest.databases.append(name)
        objects = state_dir / "objects"
        if objects.is_dir():
            _add_objects(writer, objects)
        if redis_url is not None:
            from skylift.backup.redis_dump import add_redis

            add_redis(writer, redis_url)
        manifest.summary = _summary(manifest, writer)
    return manifest


def _add_database(writer: Writer, path: Path, name: str, scratch: Path) -> None:
    # The copy goes to a scratch file first: tar needs its size before its bytes.
    with tempfile.NamedTemporaryFile(dir=scratch, prefix=".skylift-backup-", suffix=".db") as f:
        copy = Path(f.name)
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=rw", uri=True)) as source:
            source.execute("PRAGMA busy_timeout=5000")
            with contextlib.closing(sqlite3.connect(copy)) as target:
                # pages=-1: one step, so the copy is one read transaction's view.
                source.backup(target, pages=-1)
                # The copy stands alone: no WAL beside it to carry.
                target.execute("PRAGMA journal_mode=DELETE")
                writer.manifest.summary.update(_counts(target, name))
        writer.add_file(f"sqlite/{name}", copy)


def _counts(db: sqlite3.Connection, name: str) -> dict[str, int]:
    if name != "queues.db":
        (pending,) = db.execute("SELECT count(*) FROM messages").fetchone()
        return {"async_events": pending}
    (queues,) = db.execute("SELECT count(*) FROM queues").fetchone()
    (messages,) = db.execute("SELECT count(*) FROM messages").fetchone()
    return {"queues": queues, "messages": messages}


def _add_objects(writer: Writer, root: Path) -> None:
    with os.scandir(root) as entries:
        buckets = sorted(e.name for e in entries if e.is_dir() and is_bucket_name(e.name))
    for bucket in buckets:
        base = root / bucket
        writer.manifest.buckets.append(bucket)
        _add_bucket_files(writer, base, bucket)
        for key, (folder, leaf) in layout.walk(base, "", Cursor(b""), b""):
            _add_object(writer, bucket, key, folder, leaf)


def _add_bucket_files(writer: Writer, base: Path, bucket: str) -> None:
    """The bucket's own files under its `.skylift/` (creation time, policy)."""
    internal = base / INTERNAL
    with contextlib.suppress(FileNotFoundError), os.scandir(internal) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name in _SKIPPED or not entry.is_file(follow_symlinks=False):
                continue
            with contextlib.suppress(FileNotFoundError):  # a policy deleted meanwhile
                writer.add_file(f"buckets/{bucket}/{entry.name}", Path(entry.path))


def _add_object(writer: Writer, bucket: str, key: str, folder: Path, leaf: str) -> None:
    for wait in _RETRIES:
        if wait:
            time.sleep(wait)
        try:
            file = open(data_path(folder, leaf), "rb")  # noqa: SIM115 - closed below
        except (FileNotFoundError, NotADirectoryError):
            return  # deleted since the listing: absent from the backup
        with file:
            stat = os.fstat(file.fileno())
            info = recorded(bucket, key, meta_path(folder, leaf), stat)
            if info is None and wait != _RETRIES[-1]:
                continue  # the metadata of another version: a writer is between renames
            if info is None:
                info = derived(bucket, key, file)  # as the store serves it
            record: dict[str, Any] = object_record(info, stat.st_ino)
            del record["inode"]  # a restore writes new files
            member = f"objects/{len(writer.manifest.objects) + 1:08d}"
            # The open file keeps this version's bytes even if the key is written again.
            sha256 = writer.add_stream(member, file, stat.st_size)
            writer.manifest.objects.append(
                {"bucket": bucket, "key": key, "member": member, "sha256": sha256, "record": record}
            )
            return


def _summary(manifest: Manifest, writer: Writer) -> dict[str, int]:
    summary = dict(manifest.summary)
    summary.setdefault("queues", 0)
    summary.setdefault("messages", 0)
    summary["buckets"] = len(manifest.buckets)
    summary["objects"] = len(manifest.objects)
    summary["object_bytes"] = sum(o["record"]["size"] for o in manifest.objects)
    summary["bytes"] = sum(f["size"] for f in writer.manifest.files.values())
    return summary

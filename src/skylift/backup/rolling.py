"""Rolling backups (`skylift backup --schedule ... --keep N`): a process beside
`skylift up` that takes a backup on each fire of an EventBridge expression, test-restores
it into a temporary folder at once (a backup not restored is not a backup), and keeps the
newest N that passed.

A backup that fails its test-restore is renamed `NAME.failed` (kept for inspection, not
counted among the N) and reported on stderr; a backup that cannot be written or fails
its test-restore raises an alert (`observe/alerts_backup.py`); the schedule goes on.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from skylift.backup.archive import BackupError, Manifest
from skylift.backup.restore import restore
from skylift.schedules.expressions import parse_schedule
from skylift.storage import layout
from skylift.storage.listing import Cursor

PREFIX = "skylift-backup-"
SUFFIX = ".tar"


@dataclass(frozen=True)
class Outcome:
    """One scheduled backup: where it is, what it holds, and the error if it failed."""

    path: Path
    manifest: Manifest | None
    error: str | None
    removed: list[Path]


def test_restore(path: Path) -> Manifest:
    """Restore `path` into a temporary folder and check it holds what the manifest says.

    Queues dumped from Redis are verified, not written back (that would need a second,
    empty Redis); everything in `.skylift/` is restored and passes `skylift up`'s checks.
    """
    with tempfile.TemporaryDirectory(prefix="skylift-restore-test-") as scratch:
        restored = restore(path, Path(scratch) / "app", skip_redis=True)
        manifest = restored.manifest
        # Counted as the store lists them: each restored object is found under its key.
        found = sum(
            1
            for bucket in manifest.buckets
            for _ in layout.walk(restored.state_dir / "objects" / bucket, "", Cursor(b""), b"")
        )
        if found != len(manifest.objects):
            raise BackupError(
                f"test-restore of {path} found {found} objects, the manifest lists "
                f"{len(manifest.objects)}"
            )
        return manifest


def tick(folder: Path, keep: int, take: Callable[[Path], Manifest]) -> Outcome:
    """Take one backup into `folder`, test-restore it, and keep the newest `keep`."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = folder / f"{PREFIX}{stamp}{SUFFIX}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        take(path)
        manifest = test_restore(path)
    except (BackupError, OSError) as exc:
        if path.exists():
            path.rename(path.with_name(path.name + ".failed"))
        return Outcome(path, None, str(exc), [])
    return Outcome(path, manifest, None, prune(folder, keep))


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` backups (names sort by time); the removed."""
    backups = sorted(folder.glob(f"{PREFIX}*{SUFFIX}"))
    doomed = backups[: max(len(backups) - keep, 0)]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def run(
    folder: Path,
    expression: str,
    keep: int,
    take: Callable[[Path], Manifest],
    report: Callable[[Outcome], None],
) -> None:
    """Back up at once, then on each fire of `expression`, until interrupted."""
    schedule = parse_schedule(expression)
    anchor = datetime.now(UTC)
    with _wakeable_nap() as nap:
        report(tick(folder, keep, take))
        moment = anchor
        while True:
            fire = schedule.next_after(moment, anchor=anchor)
            if fire is None:
                return
            while (wait := (fire - datetime.now(UTC)).total_seconds()) > 0:
                nap(min(wait, 60.0))  # short naps: a suspended laptop wakes on time
            moment = fire
            report(tick(folder, keep, take))


@contextlib.contextmanager
def _wakeable_nap() -> Iterator[Callable[[float], None]]:
    """A sleep that any signal cuts short, so SIGTERM or Ctrl-C stops the loop at once.

    `time.sleep` misses a signal that lands after Python last checked for one and before
    the sleep itself begins: it then sleeps on, up to a minute. The signal module's wakeup
    fd is written by the C handler whenever the signal lands, so `select` on it returns
    at once, and the Python handler runs right after."""
    readable, writable = os.pipe()
    os.set_blocking(readable, False)
    os.set_blocking(writable, False)
    try:
        previous = signal.set_wakeup_fd(writable)
    except ValueError:  # not the main thread, which alone receives signals
        previous = None

    def nap(seconds: float) -> None:
        select.select([readable], [], [], seconds)
        with contextlib.suppress(BlockingIOError):
            os.read(readable, 4096)

    try:
        yield nap
    finally:
        if previous is not None:
            signal.set_wakeup_fd(previous)
        os.close(readable)
        os.close(writable)

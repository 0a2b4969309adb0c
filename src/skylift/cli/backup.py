"""CLI commands for backups: `skylift backup` and `skylift restore`.

`skylift backup` works on the app's files in its own process, whether or not `skylift up`
runs (see `backup/snapshot.py` for why that is consistent), or asks a running server
for one with `--url` (`backup/fetch.py`); `--schedule` keeps it running beside the server
as a rolling backup.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from skylift.backup.archive import BackupError, Manifest
from skylift.cli.common import fail
from skylift.errors import SkyliftError
from skylift.loader import AppTarget, TemplateTarget, resolve_target

if TYPE_CHECKING:
    from skylift.observe.alerts_backup import BackupAlarm


def _app(app: str | None, template: str | None) -> tuple[Path, list[Path]]:
    """(the app's state folder, the app's definition file)."""
    try:
        target = resolve_target(app, template)
    except SkyliftError as exc:
        fail(str(exc))
    if isinstance(target, AppTarget):
        home = Path(target.code_dir)
        module = home / (target.module.replace(".", "/") + ".py")
        config = [module] if module.is_file() else []
    else:
        home = Path(target.path).parent
        config = [Path(target.path)]
    return home / ".skylift", config


def summary(manifest: Manifest) -> str:
    """One line: what the archive holds."""
    s = manifest.summary
    line = (
        f"{_count(s.get('queues', 0), 'queue')}, {_count(s.get('messages', 0), 'message')}, "
        f"{_count(s.get('async_events', 0), 'pending async event')}, "
        f"{_count(s.get('objects', 0), 'object')} ({s.get('object_bytes', 0)} bytes) in "
        f"{_count(s.get('buckets', 0), 'bucket')}"
    )
    if manifest.redis is not None:
        line += f", {manifest.redis['keys']} Redis keys"
    return line + f"; {s.get('bytes', 0)} bytes in all"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.argument("app", required=False)
@click.option("--template", "-t", type=click.Path(dir_okay=False), help="An AWS SAM template.")
@click.option(
    "--state",
    "state",
    default=None,
    metavar="URL",
    help="The app's queues are in this Redis (redis://HOST:PORT/DB), as `skylift up --state`.",
)
@click.option(
    "--schedule",
    default=None,
    metavar="EXPRESSION",
    help="Keep running: back up now and on each fire of rate(...) or cron(...), e.g. "
    '"rate(1 hour)", into the folder FILE.',
)
@click.option(
    "--keep",
    type=click.IntRange(1, 10_000),
    default=None,
    help="With --schedule: how many backups to keep (default 24); older ones are removed.",
)
@click.option(
    "--url",
    default=None,
    metavar="URL",
    help="Ask the skylift server at URL for the backup (its token in SKYLIFT_TOKEN), "
    "instead of reading APP's files.",
)
def backup(
    file: Path,
    app: str | None,
    template: str | None,
    state: str | None,
    schedule: str | None,
    keep: int | None,
    url: str | None,
) -> None:
    """Back up APP's queues, objects and definition to the archive FILE (a tar file).

    Safe while `skylift up` runs. Each member's SHA-256 is in the archive's manifest;
    `skylift restore FILE --verify-only` checks it.
    """
    from skylift.backup import snapshot

    if url is not None:
        if app is not None or template is not None or state is not None:
            fail(
                "--url backs up the server there, which knows its app and state: "
                "leave out APP, --template and --state"
            )
        from skylift.backup.fetch import fetch

        token = os.environ.get("SKYLIFT_TOKEN") or None

        def take_remote(path: Path) -> Manifest:
            return fetch(url, path, token)

        # The server's app is not here to say whom to page: failures are printed only.
        _take(file, schedule, keep, take_remote, None)
        return
    state_dir, config = _app(app, template)
    alarm = _alarm(app, template, state_dir, file) if schedule is not None else None
    if state is not None:
        from skylift.queues import redis_url

        try:
            redis_url.check(state)
        except SkyliftError as exc:
            fail(str(exc))

    def take(path: Path) -> Manifest:
        return snapshot.take(state_dir, path, config=config, redis_url=state)

    _take(file, schedule, keep, take, alarm)


def _take(
    file: Path,
    schedule: str | None,
    keep: int | None,
    take: Callable[[Path], Manifest],
    alarm: BackupAlarm | None,
) -> None:
    """One backup into `file`, or with `schedule` rolling ones in the folder `file`."""
    if schedule is None:
        if keep is not None:
            fail("--keep goes with --schedule (rolling backups in a folder)")
        if file.is_dir():
            fail(f"{file} is a folder: name the archive to write, e.g. {file}/backup.tar")
        try:
            manifest = take(file)
        except (BackupError, OSError) as exc:
            fail(str(exc))
        click.echo(f"backed up to {file}: {summary(manifest)}")
        return
    _rolling(file, schedule, keep or 24, take, alarm)


def _alarm(app: str | None, template: str | None, state_dir: Path, folder: Path) -> BackupAlarm:
    """What raises an alert when a scheduled backup fails: the app's alerting policy
    (skylift.toml or the template's Metadata) says whom it pages."""
    from skylift.observe import policy_sam
    from skylift.observe.alerts_backup import BackupAlarm

    template_path = None
    target = resolve_target(app, template)
    if isinstance(target, TemplateTarget):
        template_path = Path(target.path)
    try:
        policy = policy_sam.for_app(state_dir.parent, template_path)
    except SkyliftError as exc:
        fail(str(exc))
    return BackupAlarm(state_dir, folder.resolve(), policy)


def _rolling(
    folder: Path,
    expression: str,
    keep: int,
    take: Callable[[Path], Manifest],
    alarm: BackupAlarm | None,
) -> None:
    from skylift.backup import rolling
    from skylift.schedules.expressions import ScheduleError, parse_schedule

    try:
        parse_schedule(expression)
    except ScheduleError as exc:
        fail(str(exc))
    if folder.exists() and not folder.is_dir():
        fail(f"{folder} is a file: with --schedule, FILE is the folder to keep backups in")

    def report(outcome: rolling.Outcome) -> None:
        if outcome.error is not None:
            click.echo(f"skylift: backup FAILED ({outcome.path.name}): {outcome.error}", err=True)
            if alarm is None:
                return
            try:
                alert = alarm.failed(outcome.error)
            except (sqlite3.Error, OSError) as exc:  # e.g. the disk the app is on is full
                click.echo(f"skylift: could not raise an alert for it: {exc}", err=True)
                return
            click.echo(f"skylift: alert {alert.id} raised (`skylift alerts` lists it)", err=True)
            return
        assert outcome.manifest is not None
        click.echo(
            f"backed up to {outcome.path} and test-restored: {summary(outcome.manifest)}",
            err=True,
        )
        resolved = None
        try:
            resolved = alarm.passed() if alarm is not None else None
        except (sqlite3.Error, OSError) as exc:
            click.echo(f"skylift: could not resolve the backup's alert: {exc}", err=True)
        if resolved is not None:
            click.echo(f"skylift: alert {resolved.id} resolved: this backup passed", err=True)
        for path in outcome.removed:
            click.echo(f"removed {path.name} (keeping {keep})", err=True)

    click.echo(f"skylift: backing up now and on {expression} into {folder}/", err=True)
    # SIGTERM (how process managers and Kubernetes stop it) ends it as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        rolling.run(folder, expression, keep, take, report)
    except KeyboardInterrupt:
        pass


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--to",
    "to",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The app folder to restore into (its .skylift/ must not hold state yet).",
)
@click.option("--verify-only", is_flag=True, help="Check every checksum; restore nothing.")
@click.option(
    "--state",
    "state",
    default=None,
    metavar="URL",
    help="Restore queues backed up from Redis into this Redis (redis://HOST:PORT/DB).",
)
def restore(file: Path, to: Path | None, verify_only: bool, state: str | None) -> None:
    """Restore the backup FILE into the app folder --to (checked in full first)."""
    from skylift.backup import archive
    from skylift.backup.restore import restore as restore_archive

    if verify_only:
        try:
            manifest = archive.verify(file)
        except BackupError as exc:
            fail(str(exc))
        count = len(manifest.files)
        click.echo(
            f"{file}: all {count} checksums match (taken {manifest.created} from "
            f"{manifest.source}): {summary(manifest)}"
        )
        return
    if to is None:
        fail("name the folder to restore into with --to DIR (or check with --verify-only)")
    try:
        done = restore_archive(file, to, redis_url=state)
    except (BackupError, OSError) as exc:
        fail(f"{exc}\nnothing was restored")
    click.echo(f"restored {file} into {done.state_dir}: {summary(done.manifest)}")
    for path in done.config:
        click.echo(f"  wrote {path}")
    click.echo(f"start it with: skylift up {to}")


COMMANDS = [backup, restore]

"""CLI commands for an app's queues and buckets.

Queue commands work on the app's state (`.skylift/queues.db`, or the Redis that
`--state redis://...` names) directly, so they work whether or not `skylift up` runs (a
running server picks new messages up within a second). Object commands go through the
running server's S3 API, so that uploads fire their functions.
"""

from __future__ import annotations

import asyncio
import mimetypes
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from skylift import server_file
from skylift.cli.common import fail, running_server, state_dir
from skylift.client import Client
from skylift.engine import state_guard
from skylift.engine.state_guard import DamagedState
from skylift.errors import SkyliftError
from skylift.queues.errors import QueueError
from skylift.queues.protocol import MessageAttributeValue, OutgoingMessage, QueueBackend
from skylift.queues.sqlite import SqliteQueues
from skylift.runtime.environ import ACCOUNT_ID, region

T = TypeVar("T")
APP_ARGUMENT = click.argument("app", required=False)
TEMPLATE_OPTION = click.option(
    "--template", "-t", type=click.Path(dir_okay=False), help="An AWS SAM template."
)
STATE_HELP = "Queues in this Redis (redis://HOST:PORT/DB) instead of .skylift/queues.db."
STATE_OPTION = click.option("--state", "state", default=None, metavar="URL", help=STATE_HELP)
URL_OPTION = click.option(
    "--url",
    default=None,
    help="The running skylift server. Default: the one `skylift up` runs for --app.",
)
APP_OPTION = click.option(
    "--app", "app", default=None, help="The app whose running server to use. Default: here."
)


def _client(app: str | None, url: str | None) -> Client:
    found, token = running_server(app, None, url)
    return Client(found, token=token)


def _with_queues(
    app: str | None,
    template: str | None,
    state: str | None,
    use: Callable[[QueueBackend], Awaitable[T]],
) -> T:
    directory = state_dir(app, template)
    path = directory / "queues.db"
    exists = True
    if state is not None:
        from skylift.queues import redis_url

        try:
            redis_url.check(state)
        except SkyliftError as exc:
            fail(str(exc))
    else:
        try:
            exists = state_guard.check(directory, path.name)
        except DamagedState as exc:
            fail(str(exc))
    if state is None and not exists:
        fail(f"no queues yet at {path}: run `skylift up` once to create the app's queues")

    async def run() -> T:
        queues: QueueBackend
        if state is not None:
            from skylift.queues.redis import RedisQueues

            queues = RedisQueues(state, region=region(), account_id=ACCOUNT_ID)
        else:
            queues = SqliteQueues(path, region=region(), account_id=ACCOUNT_ID)
        try:
            return await use(queues)
        finally:
            await queues.close()

    try:
        return asyncio.run(run())
    except QueueError as exc:
        fail(f"{exc.code}: {exc.message}")


@click.command()
@click.argument("queue")
@click.argument("body")
@APP_ARGUMENT
@TEMPLATE_OPTION
@STATE_OPTION
@click.option("--delay", type=int, default=None, help="DelaySeconds for this message (0-900).")
@click.option("--group", default=None, help="MessageGroupId (FIFO queues).")
@click.option("--dedup", default=None, help="MessageDeduplicationId (FIFO queues).")
@click.option(
    "--attribute", "-a", multiple=True, metavar="NAME=VALUE", help="A String message attribute."
)
def send(
    queue: str,
    body: str,
    app: str | None,
    template: str | None,
    state: str | None,
    delay: int | None,
    group: str | None,
    dedup: str | None,
    attribute: tuple[str, ...],
) -> None:
    """Send BODY to QUEUE (- reads BODY from stdin); prints the message id."""
    if body == "-":
        body = sys.stdin.read()
    attributes: dict[str, MessageAttributeValue] = {}
    for item in attribute:
        name, sep, value = item.partition("=")
        if not sep:
            fail(f"attribute {item!r} must be NAME=VALUE")
        attributes[name] = {"DataType": "String", "StringValue": value}
    message = OutgoingMessage(body, delay, attributes, group, dedup)
    (result,) = _with_queues(app, template, state, lambda q: q.send(queue, [message]))
    click.echo(result.message_id)


@click.command()
@APP_ARGUMENT
@TEMPLATE_OPTION
@STATE_OPTION
def queues(app: str | None, template: str | None, state: str | None) -> None:
    """List the app's queues: visible, in flight, delayed, oldest age, dead-letter depth."""

    async def table(q: QueueBackend) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for name in await q.list_queues():
            s = await q.stats(name)
            age = "-" if s.oldest_age_seconds is None else f"{s.oldest_age_seconds:.0f}s"
            dlq = f"{s.dead_letter_queue} ({s.dead_letter_depth})" if s.dead_letter_queue else "-"
            rows.append((name, str(s.visible), str(s.in_flight), str(s.delayed), age, dlq))
        return rows

    rows = _with_queues(app, template, state, table)
    header = ("QUEUE", "VISIBLE", "IN FLIGHT", "DELAYED", "OLDEST", "DEAD-LETTER QUEUE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@click.command()
@click.argument("queue")
@APP_ARGUMENT
@TEMPLATE_OPTION
@STATE_OPTION
@click.option("--to", "destination", default=None, help="Move here instead of the source queue.")
def redrive(
    queue: str, app: str | None, template: str | None, state: str | None, destination: str | None
) -> None:
    """Move the messages of dead-letter QUEUE back to the queues they came from."""
    moved = _with_queues(app, template, state, lambda q: q.redrive(queue, destination))
    click.echo(f"moved {moved} message{'s' * (moved != 1)} out of {queue}")


@click.command("reset-db")
@click.argument("database", type=click.Choice(state_guard.DATABASES))
@APP_ARGUMENT
@TEMPLATE_OPTION
def reset_db(database: str, app: str | None, template: str | None) -> None:
    """Set DATABASE aside (renamed, not deleted), so the next `skylift up` starts it empty."""
    directory = state_dir(app, template)
    if server_file.find(directory) is not None:
        fail(f"a server is running on {directory}: stop it first")
    moved = state_guard.reset(directory, database)
    for path in moved:
        click.echo(f"moved aside: {path}")
    click.echo(f"the next `skylift up` starts with an empty {database}")


def _split(location: str) -> tuple[str, str]:
    bucket, _, key = location.partition("/")
    if not bucket or not key:
        fail(f"{location!r} must be BUCKET/KEY, e.g. uploads/in/report.csv")
    return bucket, key


@click.command()
@click.argument("location", metavar="BUCKET/KEY")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@URL_OPTION
@APP_OPTION
@click.option("--content-type", default=None, help="Default: guessed from the file name.")
def put(
    location: str, file: str, url: str | None, app: str | None, content_type: str | None
) -> None:
    """Upload FILE (- for stdin) to BUCKET/KEY on the running server (fires uploads)."""
    bucket, key = _split(location)
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    content_type = content_type or mimetypes.guess_type(key)[0]
    try:
        etag = _client(app, url).put_object(bucket, key, data, content_type)
    except SkyliftError as exc:
        fail(str(exc))
    click.echo(f"uploaded {len(data)} bytes to {bucket}/{key} (ETag {etag})")


@click.command()
@click.argument("location", metavar="BUCKET/KEY")
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@URL_OPTION
@APP_OPTION
def get(location: str, file: str | None, url: str | None, app: str | None) -> None:
    """Download BUCKET/KEY from the running server to FILE (default: stdout)."""
    bucket, key = _split(location)
    try:
        data = _client(app, url).get_object(bucket, key)
    except SkyliftError as exc:
        fail(str(exc))
    if file is None or file == "-":
        sys.stdout.buffer.write(data)
    else:
        Path(file).write_bytes(data)


COMMANDS = [send, queues, redrive, reset_db, put, get]

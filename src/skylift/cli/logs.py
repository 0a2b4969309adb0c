"""`skylift logs`: the stored invocation logs of an app's functions, like `aws logs tail`.

It reads `.skylift/logs/` directly, so it works whether or not `skylift up` runs; with
`--url` it asks a server's logs API instead (`observe/logs_api.py`: a server in a
container, a pod through `kubectl port-forward`, another node), and prints the same.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson

from skylift.cli.common import fail
from skylift.client import Client, ClientError
from skylift.errors import SkyliftError
from skylift.loader import AppTarget, resolve_target
from skylift.observe import logs_layout as layout
from skylift.observe.logs_query import query, since_ms
from skylift.observe.logs_read import LogEvent, Reader

__all__ = ["logs", "since_ms"]

POLL = 0.25  # seconds between looks with --follow: a new line shows within 1 s
PAGE = 10_000  # events asked of a server at once (its most)
RETRY_MOST = 5.0  # seconds between a follower's retries of a server that does not answer


def _looks_like_app(text: str) -> bool:
    # Function names are letters, digits, - and _ only: anything else names the app.
    return Path(text).exists() or not re.fullmatch(r"[A-Za-z0-9_-]+", text)


def _logs_dir(app: str | None, template: str | None) -> Path:
    try:
        target = resolve_target(app, template)
    except SkyliftError as exc:
        fail(str(exc))
    home = Path(target.code_dir) if isinstance(target, AppTarget) else Path(target.path).parent
    return layout.root(home / ".skylift")


def _show(event: LogEvent, as_json: bool, all_functions: bool) -> str:
    if as_json:
        return orjson.dumps(event.to_dict()).decode()
    moment = datetime.fromtimestamp(event.timestamp / 1000, UTC).isoformat(timespec="milliseconds")
    where = f"{event.function} {event.stream}" if all_functions else event.stream
    return f"{moment} {where} {event.message}"


@click.command()
@click.argument("function", required=False)
@click.argument("app", required=False)
@click.option("--template", "-t", type=click.Path(dir_okay=False), help="An AWS SAM template.")
@click.option(
    "--url",
    default=None,
    help="Ask the server at URL (its token in SKYLIFT_TOKEN) instead of reading APP's folder.",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they arrive.")
@click.option("--since", default=None, help="Only events since then: 10m, 2h, 1d, or an ISO time.")
@click.option(
    "--filter",
    "pattern",
    default="",
    help='CloudWatch filter pattern: terms, -term (not), "a phrase", ?term (any of).',
)
@click.option("--request-id", default=None, help="Only the events of this invocation.")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON event per line, as FilterLogEvents."
)
def logs(
    function: str | None,
    app: str | None,
    template: str | None,
    url: str | None,
    follow: bool,
    since: str | None,
    pattern: str,
    request_id: str | None,
    as_json: bool,
) -> None:
    """Print the stored logs of FUNCTION (default: every function) of APP, or of the
    server at --url.

    Each function is a log group and each of its instances a stream, as in CloudWatch.
    """
    if url is None and function is not None and app is None and _looks_like_app(function):
        function, app = None, function  # (with --url there is no APP: it is FUNCTION)
    show: Callable[[LogEvent], str] = lambda e: _show(e, as_json, function is None)  # noqa: E731
    try:
        if url is not None:
            if app is not None or template is not None:
                fail(
                    f"--url reads the logs of the server at {url}, which knows its app: "
                    "drop APP and --template (or drop --url to read APP's folder)"
                )
            _remote(Client(url), url, show, follow, function, since, pattern, request_id)
        else:
            _local(_logs_dir(app, template), show, follow, function, since, pattern, request_id)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `skylift logs | head`
        sys.stderr.close()


def _print(events: Iterable[LogEvent], show: Callable[[LogEvent], str]) -> None:
    for event in events:
        click.echo(show(event))


def _local(
    directory: Path,
    show: Callable[[LogEvent], str],
    follow: bool,
    function: str | None,
    since: str | None,
    pattern: str,
    request_id: str | None,
) -> None:
    try:
        wanted = query(function, since, pattern, request_id)
    except SkyliftError as exc:
        fail(str(exc))
    if function is not None and not (directory / function).is_dir() and not follow:
        known = ", ".join(layout.functions(directory)) or "none yet"
        fail(
            f"no logs for function {function!r} in {directory} (functions with logs: {known}); "
            "run `skylift up` and invoke it first"
        )
    reader = Reader(directory, wanted)
    while True:
        _print(reader.poll(), show)
        if not follow:
            return
        sys.stdout.flush()
        time.sleep(POLL)


def _remote(
    client: Client,
    url: str,
    show: Callable[[LogEvent], str],
    follow: bool,
    function: str | None,
    since: str | None,
    pattern: str,
    request_id: str | None,
) -> None:
    """Page through the server's events with its token (until an answer has no
    `nextToken`: a page may hold none and still have one), then, with --follow, ask
    again with it every POLL seconds for what was written since. A follower that lost
    the server (a connection refused or reset, a 5xx while it restarts) asks again,
    waiting longer each time up to RETRY_MOST seconds; any other failure ends it."""
    token: str | None = None
    retrying = 0
    while True:
        try:
            answer = client.logs(
                function=function,
                since=since,
                filter=pattern or None,
                request_id=request_id,
                limit=PAGE,
                next_token=token,
            )
        except ClientError as exc:
            if not (follow and token is not None and _transient(exc)):
                fail(_refused(exc, url))
            if not retrying:
                click.echo(f"skylift logs: {exc}; retrying until it answers", err=True)
            time.sleep(min(POLL * 2 ** min(retrying, 8), RETRY_MOST))
            retrying += 1
            continue
        if retrying:
            click.echo(f"skylift logs: the server at {url} answers again", err=True)
            retrying = 0
        _print((_event(raw) for raw in answer["events"]), show)
        token = answer["nextForwardToken"]
        if "startTime" in answer:  # what `10m` meant: the next pages keep that start
            since = str(answer["startTime"])
        if answer.get("nextToken"):
            continue  # more stored now
        if not follow:
            return
        sys.stdout.flush()
        time.sleep(POLL)


def _event(raw: dict[str, Any]) -> LogEvent:
    group = str(raw["logGroupName"])
    return LogEvent(
        function=group.removeprefix(layout.group_name("")),
        stream=str(raw["logStreamName"]),
        timestamp=int(raw["timestamp"]),
        message=str(raw["message"]),
        request_id="",
        ingestion_time=int(raw["ingestionTime"]),
        event_id=str(raw.get("eventId", "")),
    )


def _transient(exc: ClientError) -> bool:
    """A failure asking again may mend: no answer at all, or a server error."""
    return exc.status is None or exc.status >= 500


def _refused(exc: ClientError, url: str) -> str:
    """What went wrong asking the server, and what to do."""
    if exc.status in (401, 403):
        return (
            f"the server at {url} refused the request ({exc}): set SKYLIFT_TOKEN to its "
            "token (`skylift up` prints it, or chose it from SKYLIFT_TOKEN)"
        )
    if exc.status == 404:
        return (
            f"the server at {url} has no logs API ({exc}): it runs an older skylift, or "
            "`skylift up --no-observe`; read its state folder with `skylift logs APP` instead"
        )
    return str(exc)


COMMANDS = [logs]

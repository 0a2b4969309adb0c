"""`skylift logs`: the stored invocation logs of an app's functions, like `aws logs tail`.

It reads `.skylift/logs/` directly, so it works whether or not `skylift up` runs.
"""

from __future__ import annotations

import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson

from skylift.cli.common import fail
from skylift.errors import SkyliftError
from skylift.loader import AppTarget, resolve_target
from skylift.observe import logs_layout as layout
from skylift.observe.log_filter import parse
from skylift.observe.logs_read import LogEvent, Query, Reader

POLL = 0.25  # seconds between looks at the files with --follow: a new line shows within 1 s
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since_ms(text: str, now: float | None = None) -> int:
    """`10m`, `2h`, `30s`, `1d`, `1w` ago, or an ISO 8601 time, as epoch milliseconds."""
    now = time.time() if now is None else now
    match = _DURATION.match(text.strip())
    if match:
        return int((now - float(match.group(1)) * _UNITS[match.group(2)]) * 1000)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a duration (10m, 2h, 30s, 1d, 1w) nor an ISO 8601 time "
            "(2024-01-31T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


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
    follow: bool,
    since: str | None,
    pattern: str,
    request_id: str | None,
    as_json: bool,
) -> None:
    """Print the stored logs of FUNCTION (default: every function) of APP.

    Each function is a log group and each of its instances a stream, as in CloudWatch.
    """
    if function is not None and app is None and _looks_like_app(function):
        function, app = None, function
    directory = _logs_dir(app, template)
    try:
        query = Query(
            function=function,
            since=since_ms(since) if since else None,
            filter=parse(pattern),
            request_id=request_id,
        )
    except SkyliftError as exc:
        fail(str(exc))
    if function is not None and not (directory / function).is_dir() and not follow:
        known = ", ".join(layout.functions(directory)) or "none yet"
        fail(
            f"no logs for function {function!r} in {directory} (functions with logs: {known}); "
            "run `skylift up` and invoke it first"
        )
    reader = Reader(directory, query)
    all_functions = function is None
    try:
        while True:
            for event in reader.poll():
                click.echo(_show(event, as_json, all_functions))
            if not follow:
                return
            sys.stdout.flush()
            time.sleep(POLL)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `skylift logs | head`
        sys.stderr.close()


COMMANDS = [logs]

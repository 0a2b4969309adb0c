"""`skylift describe FUNCTION` (like `kubectl describe`) and `skylift replay REQUEST_ID`.

`describe` asks the running server (its control API) for the function's configuration,
status and recent events; with no server it loads the app for the configuration and
reads the events the last server left in `.skylift/events/`. `replay` takes a past
invocation's event from the server's stored logs and invokes the function again with it
through the Invoke API, so it runs the code the server serves now.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import time
from typing import Any

import click
import orjson

from skylift import server_file
from skylift.cli.common import fail, state_dir
from skylift.cli.scaling import APP_ARGUMENT, TEMPLATE_OPTION, URL_OPTION, _client
from skylift.client import Client, ClientError
from skylift.errors import SkyliftError
from skylift.loader import resolve_target
from skylift.observe import events as event_store
from skylift.observe.history import Invocation, side


def _server(app: str | None, template: str | None, url: str | None) -> Client | None:
    """The running server for APP (or --url); None when none runs."""
    if url is not None:
        return Client(url)
    state = state_dir(app, template, "; or pass --url of a running server")
    found = server_file.find(state)
    if found is None:
        return None
    return Client(found, token=server_file.token(state) or os.environ.get("SKYLIFT_TOKEN"))


@click.command()
@click.argument("function")
@APP_ARGUMENT
@TEMPLATE_OPTION
@URL_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the control API's JSON.")
def describe(
    function: str, app: str | None, template: str | None, url: str | None, as_json: bool
) -> None:
    """Show FUNCTION's configuration, then its recent events with reasons, newest last."""
    client = _server(app, template, url)
    try:
        answer = client.describe(function) if client else _offline(function, app, template)
    except SkyliftError as exc:
        fail(str(exc))
    if as_json:
        click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(render(answer))


def _offline(function: str, app: str | None, template: str | None) -> dict[str, Any]:
    """No server: the configuration from the app's code, the events from the state folder."""
    from skylift.aio import run
    from skylift.engine.platform import Platform
    from skylift.observe.events_api import configuration

    state = state_dir(app, template, "; or pass --url of a running server")
    target = resolve_target(app, template)
    found: dict[str, Any] = {}

    async def load() -> None:
        async with await Platform.start(target) as platform:
            spec = platform.specs.get(function)
            if spec is None:
                known = ", ".join(sorted(platform.specs)) or "none"
                raise SkyliftError(f"the app has no function {function!r} (functions: {known})")
            found["configuration"] = configuration(spec)

    run(load)
    events = [e.to_dict() for e in event_store.read(state, function)]
    return {"function": function, "configuration": found["configuration"], "events": events}


def render(answer: dict[str, Any], now: float | None = None) -> str:
    """The description as kubectl prints one: `Field:  value` lines, then Events."""
    config = answer["configuration"]
    reserved = config["reserved_concurrency"]
    fields = [
        ("Name", answer["function"]),
        ("Handler", config["handler"]),
        ("Runtime", config["runtime"]),
        ("Code", config["code"]),
        ("Timeout", f"{config['timeout']:g} s"),
        ("Memory", f"{config['memory']} MB"),
        (
            "Concurrency",
            f"reserved {reserved}" if reserved is not None else "not reserved (the server's)",
        ),
        ("Min Instances", str(config["min_instances"])),
        ("Spawn", "yes" if config["spawn"] else "no (forked from the zygote)"),
        ("Log Format", config["log_format"]),
        ("Environment", ", ".join(config["environment"]) or "<none>"),
        ("Triggers", ", ".join(config["triggers"]) or "<none> (invoke only)"),
    ]
    status = answer.get("status")
    if status is None:
        fields.append(("Status", "no server running: events as the last one left them"))
    else:
        fields.append(
            (
                "Instances",
                f"{status['instances']} ({status['busy']} busy, {status['idle']} idle), "
                f"target {status['target']}, limit {status['max']}",
            )
        )
        fields.append(
            (
                "Invocations",
                f"{status['invocations']}, {status['throttles']} throttled, "
                f"{status['cold_starts']} cold starts",
            )
        )
        fields.append(("Errors (5m)", error_rate(status)))
        fields.append(("Last Error", last_error(status, now)))
    width = max(len(name) for name, _ in fields) + 2
    lines = [f"{name + ':':<{width}}{value}" for name, value in fields]
    events = [event_store.Event.from_dict(e) for e in answer["events"]]
    if not events:
        lines.append("Events:  <none>")
    else:
        lines.append("Events:")
        lines.extend("  " + row for row in event_store.table(events, now))
    return "\n".join(lines)


def error_rate(status: dict[str, Any]) -> str:
    rate = status.get("error_rate")
    if rate is None:
        return "-"
    return f"{rate * 100:.3g}% ({status['recent_errors']} of {status['recent_invocations']})"


def last_error(status: dict[str, Any], now: float | None = None, limit: int = 0) -> str:
    error = status.get("last_error")
    if not error:
        return "-"
    now = time.time() if now is None else now
    message = error["message"].splitlines()[0] if error["message"] else ""
    if limit and len(message) > limit:
        message = message[: limit - 1] + "…"
    ago = event_store.age(now - error["at"])
    return f"{ago} ago {error['type']}: {message} (request {error['request_id']})"


@click.command()
@click.argument("request_id")
@APP_ARGUMENT
@TEMPLATE_OPTION
@URL_OPTION
@click.option("--fn", "other", default=None, help="Run the event on this function instead.")
@click.option("--json", "as_json", is_flag=True, help='Print {"before": ..., "after": ...}.')
def replay(
    request_id: str,
    app: str | None,
    template: str | None,
    url: str | None,
    other: str | None,
    as_json: bool,
) -> None:
    """Run a past invocation's event again on the running server's current code, and
    show the old and new results side by side. Exit 1 when the new run failed."""
    client = _client(app, template, url)
    try:
        kept = Invocation.from_dict(client.invocation(request_id))
    except ClientError as exc:
        fail(str(exc))
    reason = kept.unreplayable()
    if reason is not None:
        fail(f"cannot replay {request_id}: {reason}")
    assert kept.event is not None
    function = other or kept.function
    try:
        payload, error, _ = client.invoke(function, kept.event.encode())
    except SkyliftError as exc:
        fail(f"cannot replay {request_id} on {function}: {exc}")
    before = side(kept.result, kept.error, kept.result_digest)
    after = side(payload.decode("utf-8", "replace"), error is not None, None)
    if as_json:
        click.echo(orjson.dumps({"before": before, "after": after}).decode())
    else:
        ran = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(kept.end_ms / 1000))
        click.echo(f"replayed {request_id} ({kept.function}, ended {ran}) on {function}")
        click.echo("")
        click.echo(side_byside(before, after))
    sys.exit(1 if error is not None else 0)


def _lines(side: dict[str, Any], title: str) -> list[str]:
    lines = [title, "-" * len(title), f"status: {side['status']}"]
    if "error" in side:
        lines.append(f"error: {side['error']}")
    lines.append("payload:")
    if "payload_digest" in side:
        digest = side["payload_digest"]
        lines.append(f"  (not kept: {digest['size']} bytes, sha256 {digest['sha256']})")
    else:
        dumped = orjson.dumps(side["payload"], option=orjson.OPT_INDENT_2).decode()
        lines.extend("  " + line for line in dumped.splitlines())
    return lines


def side_byside(before: dict[str, Any], after: dict[str, Any], width: int = 0) -> str:
    """Two columns, the old result on the left, the new on the right; long lines wrap."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    column = max(30, (width - 3) // 2)
    left = _wrapped(_lines(before, "BEFORE"), column)
    right = _wrapped(_lines(after, "NOW"), column)
    rows = itertools.zip_longest(left, right, fillvalue="")
    return "\n".join(f"{a:<{column}} | {b}".rstrip() for a, b in rows)


def _wrapped(lines: list[str], column: int) -> list[str]:
    out: list[str] = []
    for line in lines:
        while len(line) > column:
            out.append(line[:column])
            line = "    " + line[column:]
        out.append(line)
    return out


COMMANDS = (describe, replay)

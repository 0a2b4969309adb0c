"""CLI commands for a running server's instances: `skylift status` and `skylift scale`.

Both talk to the server's control API. They find it from `--url`, or from the
`.skylift/server.json` a running `skylift up APP` leaves beside the app.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click
import orjson

from skylift import server_file
from skylift.cli.common import fail
from skylift.client import Client
from skylift.errors import SkyliftError
from skylift.loader import AppTarget, resolve_target
from skylift.observe.events import age

COLUMNS = (
    ("FUNCTION", None),
    ("INSTANCES", "instances"),
    ("BUSY", "busy"),
    ("IDLE", "idle"),
    ("TARGET", "target"),
    ("MIN", "min"),
    ("MAX", "max"),
    ("INVOCATIONS", "invocations"),
    ("THROTTLES", "throttles"),
    ("COLD STARTS", "cold_starts"),
    ("ERRORS (5m)", "error_rate"),
    ("TRIGGERS", "triggers"),
    ("LAST ERROR", "last_error"),
)


def _client(app: str | None, template: str | None, url: str | None) -> Client:
    if url is not None:
        return Client(url)
    try:
        target = resolve_target(app, template)
    except SkyliftError as exc:
        fail(f"{exc}; or pass --url of a running server")
    home = Path(target.code_dir) if isinstance(target, AppTarget) else Path(target.path).parent
    state = home / ".skylift"
    found = server_file.find(state)
    if found is None:
        fail(
            f"no skylift server is running for {home} (no live {state / server_file.NAME}): "
            "start one with `skylift up`, or pass --url"
        )
    return Client(found, token=server_file.token(state) or os.environ.get("SKYLIFT_TOKEN"))


def render(status: dict[str, Any]) -> str:
    """The status as a table, one function per row, then recent scaling decisions."""
    rows = [[title for title, _ in COLUMNS]]
    for name, entry in sorted(status["functions"].items()):
        cells = [name]
        for _, key in COLUMNS[1:]:
            cells.append(_cell(entry, key))
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    budget = status["concurrency"]
    lines.append("")
    lines.append(
        f"server: {budget['running']} of {budget['limit']} concurrent invocations running, "
        f"{budget['throttles']} throttled; autoscaling "
        + ("on" if status["autoscaling"] else "off")
        + "; * = no reserved concurrency (the server's limit applies)"
    )
    if status.get("sandbox"):
        lines.append(status["sandbox"])
    decisions = [
        (d["at"], name, d)
        for name, entry in status["functions"].items()
        for d in entry["decisions"]
    ]
    if decisions:
        lines.append("")
        lines.append("recent scaling decisions:")
        for at, name, d in sorted(decisions, key=lambda x: x[0])[-10:]:
            stamp = time.strftime("%H:%M:%S", time.localtime(at))
            lines.append(
                f"  {stamp}  {name}: {d['current']} -> {d['desired']} ({d['mode']}: {d['reason']})"
            )
    return "\n".join(lines)


def _cell(entry: dict[str, Any], key: str) -> str:
    # Servers before `describe` did not report errors or triggers: "-" then.
    if key == "max":
        return f"{entry[key]}{'' if entry['reserved'] else '*'}"
    if key == "error_rate":
        rate = entry.get("error_rate")
        return "-" if rate is None else f"{rate * 100:.3g}%"
    if key == "triggers":
        return ",".join(entry.get("triggers") or []) or "-"
    if key == "last_error":
        error = entry.get("last_error")
        if not error:
            return "-"
        message = (error["message"].splitlines() or [""])[0]
        message = message if len(message) <= 50 else message[:49] + "…"
        ago = time.time() - error["at"]
        return f"{age(ago)} ago {error['type']}: {message}"
    return str(entry[key])


APP_ARGUMENT = click.argument("app", required=False)
TEMPLATE_OPTION = click.option(
    "--template", "-t", type=click.Path(dir_okay=False), help="An AWS SAM template."
)
URL_OPTION = click.option(
    "--url", default=None, help="The running server (default: the one serving APP)."
)


@click.command()
@APP_ARGUMENT
@TEMPLATE_OPTION
@URL_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the control API's JSON.")
@click.option("--cluster", is_flag=True, help="List the nodes sharing --state's Redis.")
@click.option("--state", "state_url", metavar="URL", help="The nodes' Redis (with --cluster).")
def status(
    app: str | None,
    template: str | None,
    url: str | None,
    as_json: bool,
    cluster: bool,
    state_url: str | None,
) -> None:
    """Show a running server's functions: instances, limits, throttles, cold starts,
    error rate over 5 minutes, triggers and last error."""
    if cluster:
        _cluster(state_url, as_json)
        return
    try:
        answer = _client(app, template, url).status()
    except SkyliftError as exc:
        fail(str(exc))
    if as_json:
        click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render(answer))


def _cluster(state_url: str | None, as_json: bool) -> None:
    from skylift.cli import cluster as cli_cluster

    if state_url is None:
        fail("--cluster reads the nodes' Redis: pass --state URL, as given to skylift up")
    try:
        answer = cli_cluster.read(state_url)
    except SkyliftError as exc:
        fail(str(exc))
    if as_json:
        click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(cli_cluster.render(answer))


@click.command()
@click.argument("function")
@APP_ARGUMENT
@TEMPLATE_OPTION
@URL_OPTION
@click.option("--min", "minimum", type=click.IntRange(0), help="Instances kept warm.")
@click.option(
    "--max", "maximum", type=click.IntRange(0), help="Reserved concurrency (0 turns it off)."
)
def scale(
    function: str,
    app: str | None,
    template: str | None,
    url: str | None,
    minimum: int | None,
    maximum: int | None,
) -> None:
    """Change FUNCTION's minimum instances and reserved concurrency on a running server."""
    if minimum is None and maximum is None:
        fail("nothing to change: pass --min N, --max M or both")
    try:
        entry = _client(app, template, url).scale(function, minimum, maximum)
    except SkyliftError as exc:
        fail(str(exc))
    click.echo(
        f"{function}: min {entry['min']}, max {entry['max']} "
        f"({entry['instances']} instances, {entry['busy']} busy)"
    )


COMMANDS = (status, scale)

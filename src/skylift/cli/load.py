"""`skylift load`: raise users step by step against a running server, find the knee.

    skylift load POST /predict --body-file payload.json --save before.json --chart before.png
    skylift load POST /predict --body-file payload.json --baseline before.json
    skylift load predict --body-file payload.json

TARGET is a URL on the loopback interface, or `[METHOD] PATH` or `FUNCTION` of the server
that `skylift up` runs for `--app` (found through its `.skylift/server.json`) or at
`--url` (a function through its route, or the Lambda Invoke API: `load/target.py`).
Locust runs in this process (it patches it for gevent), so it is imported last.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from skylift import server_file
from skylift.cli.common import fail

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")


def user_steps(users: str, step: int) -> list[int]:
    """`1..50` with step 5 -> [1, 5, 10, ..., 50]; `20` means `1..20`."""
    found = re.fullmatch(r"(?:(\d+)\.\.)?(\d+)", users.strip())
    if not found:
        raise click.BadParameter(f"{users!r}: give a range like 1..50 (or a maximum like 50)")
    low, high = int(found.group(1) or 1), int(found.group(2))
    if not 1 <= low <= high:
        raise click.BadParameter(f"{users!r}: give 1 <= first <= last, like 1..50")
    counts = [low, *range(step * (low // step + 1), high + 1, step)]
    if counts[-1] != high:
        counts.append(high)
    return counts


def seconds(text: str) -> float:
    """`10s`, `500ms`, `1m` or `10` as seconds."""
    found = _DURATION.match(text.strip())
    if not found or float(found.group(1)) <= 0:
        raise click.BadParameter(f"{text!r}: give a duration like 10s, 500ms or 1m")
    value = float(found.group(1))
    return {"ms": value / 1000, "m": value * 60}.get(found.group(2) or "s", value)


_FUNCTION = re.compile(r"^[A-Za-z0-9_.:-]+$")


@dataclass(frozen=True)
class Target:
    url: str  # absolute
    method: str | None  # named by TARGET (or chosen for a function), if any
    headers: dict[str, str] = field(default_factory=dict)
    how: str = ""
    invoke: bool = False  # through the Lambda Invoke API


def resolve(
    target: tuple[str, ...], url: str | None, app: str, method: str | None, has_body: bool
) -> Target:
    """What TARGET names: a URL, a path of the server, or one of its functions."""
    parts = target[0].split() if len(target) == 1 else list(target)
    if len(parts) != 1 or parts[0].startswith(("/", "http://", "https://")):
        full, named = resolve_url(target, url, app)
        return Target(full, named)
    name = parts[0]
    if not _FUNCTION.match(name):
        fail(f"TARGET {name!r}: give a FUNCTION, a PATH, METHOD PATH (POST /predict) or a URL")
    from skylift.load.target import TargetError, resolve_function

    state = Path(app) / ".skylift"
    base = url or _server(state)
    check_loopback(base)  # before anything, the token included, is sent there
    token = (server_file.token(state) if url is None else None) or os.environ.get("SKYLIFT_TOKEN")
    try:
        found = resolve_function(base, name, token, method, has_body)
    except TargetError as exc:
        fail(str(exc))
    return Target(found.url, found.method, found.headers, found.how, found.invoke)


def _server(state: Path) -> str:
    url = server_file.find(state)
    if url is None:
        fail(
            f"no skylift server is running for {state.parent.resolve()} (no live "
            f"{state / server_file.NAME}): start one with `skylift up`, or pass --url"
        )
    return url


def resolve_url(target: tuple[str, ...], url: str | None, app: str) -> tuple[str, str | None]:
    """(the absolute URL, the method TARGET names, if any)."""
    method = None
    parts = list(target)
    if len(parts) == 1 and " " in parts[0].strip():
        parts = parts[0].split()
    if len(parts) == 2 and parts[0].upper() in METHODS:
        method, parts = parts[0].upper(), parts[1:]
    if len(parts) != 1:
        fail(f"TARGET {' '.join(target)!r}: give a URL, a PATH, or METHOD PATH (POST /predict)")
    where = parts[0]
    if where.startswith(("http://", "https://")):
        return where, method
    if not where.startswith("/"):
        fail(
            f"TARGET {where!r} is not a URL or a path: give the route, e.g. POST /predict "
            "(a function is reached through its route)"
        )
    if url is None:
        url = _server(Path(app) / ".skylift")
    return url.rstrip("/") + where, method


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    fail(f"{url}: skylift load only loads servers on this machine (127.0.0.1, ::1, localhost)")


def preflight(
    url: str, method: str, body: bytes | None, extra: dict[str, str] | None = None
) -> None:
    """One request first, so a wrong URL fails with a message, not 100% errors."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    headers.update(extra or {})
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        if exc.code >= 400:
            click.echo(
                f"skylift: warning: {method} {url} answers {exc.code}; "
                "every such answer counts as an error",
                err=True,
            )
    except (urllib.error.URLError, OSError) as exc:
        fail(f"no server answers at {url} ({exc}): start it with `skylift up`")


@click.command(epilog="TARGET: a URL, PATH, METHOD PATH (POST /predict), or FUNCTION.")
@click.argument("target", nargs=-1, required=True)
@click.option("--users", default="1..50", show_default=True, help="Users to ramp through.")
@click.option(
    "--step", default=5, show_default=True, type=click.IntRange(1), help="Users added per step."
)
@click.option("--step-time", default="10s", show_default=True, help="How long each step measures.")
@click.option(
    "--method",
    type=click.Choice(METHODS, case_sensitive=False),
    help="Default: GET, POST with a body.",
)
@click.option("--body", help="The JSON body every request sends.")
@click.option(
    "--body-file", type=click.Path(exists=True, dir_okay=False), help="Read the body from a file."
)
@click.option("--save", type=click.Path(dir_okay=False), help="Write the run as JSON.")
@click.option(
    "--baseline",
    type=click.Path(exists=True, dir_okay=False),
    help="An earlier --save to compare the knee with.",
)
@click.option(
    "--chart", type=click.Path(dir_okay=False), help="Write a PNG of rps and latency against users."
)
@click.option("--url", help="The running server's base URL (default: the one running for --app).")
@click.option(
    "--app", default=".", show_default=True, help="The app directory whose server to find."
)
def load(
    target: tuple[str, ...],
    users: str,
    step: int,
    step_time: str,
    method: str | None,
    body: str | None,
    body_file: str | None,
    save: str | None,
    baseline: str | None,
    chart: str | None,
    url: str | None,
    app: str,
) -> None:
    """Load TARGET step by step and find its knee: the highest step before p95 passes
    twice its unloaded value or more than 1% of requests fail."""
    counts = user_steps(users, step)
    duration = seconds(step_time)
    payload = _body(body, body_file)
    resolved = resolve(target, url, app, method.upper() if method else None, payload is not None)
    full_url, named = resolved.url, resolved.method
    verb = (method or named or ("POST" if payload is not None else "GET")).upper()
    if resolved.invoke and payload is None:
        payload = b"{}"  # the event of each Invoke
    check_loopback(full_url)
    earlier = _baseline(baseline) if baseline else None
    if resolved.how:
        click.echo(f"loading {resolved.how}", err=True)
    preflight(full_url, verb, payload, resolved.headers)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gevent's notes on modules imported before it
        from skylift.load import live, locust_run

    request = locust_run.Request(full_url, verb, payload, resolved.headers, resolved.invoke)
    steps = live.show(locust_run.run(request, counts, duration))
    from skylift.load import steps as results

    complete = len(steps) == len(counts) and (not steps or results.holds(steps[-1], steps[0].p95))
    found = results.knee(steps)
    if found is None:
        click.echo(f"no knee: the first step already gave way ({_why(steps)})")
    else:
        plural = "s" if found.users > 1 else ""
        click.echo(
            f"knee: {found.users} user{plural}, {found.rps:.1f} rps, p95 {found.p95:.1f} ms"
            + (f"; at {steps[-1].users} users {_why(steps)}" if not complete else "")
        )
        if complete:
            click.echo(f"no step gave way up to {counts[-1]} users: raise --users to find more")
    if earlier is not None and found is not None:
        gain = results.change(found.rps, earlier)
        click.echo(f"knee rps: {earlier:.1f} -> {found.rps:.1f} ({gain:+.1%} against {baseline})")
    if save:
        Path(save).write_text(
            json.dumps(results.to_json(full_url, steps, complete), indent=2) + "\n"
        )
        click.echo(f"saved {save}")
    if chart:
        from skylift.load.chart import draw

        draw(steps, Path(chart), f"{verb} {full_url}")
        click.echo(f"chart {chart}")


def _why(steps: list[Any]) -> str:
    from skylift.load.steps import why

    return why(steps[-1], steps[0].p95) if steps else "no step ran"


def _body(body: str | None, body_file: str | None) -> bytes | None:
    if body is not None and body_file is not None:
        fail("give --body or --body-file, not both")
    if body_file is not None:
        data = Path(body_file).read_bytes()
        source = body_file
    elif body is not None:
        data, source = body.encode(), "--body"
    else:
        return None
    try:
        json.loads(data)
    except ValueError as exc:
        fail(f"{source} is not JSON ({exc})")
    return data


def _baseline(path: str) -> float:
    from skylift.load.steps import knee_rps

    try:
        return knee_rps(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fail(f"--baseline {path}: {exc}")


COMMANDS = (load,)

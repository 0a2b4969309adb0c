"""What the command modules share: failing with a message, resolving APP and its state
folder, --env-vars."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from skylift.errors import SkyliftError
from skylift.loader import Target, home, resolve_target


def fail(message: str) -> NoReturn:
    """Say what went wrong and what to do (`skylift: ...` on stderr), and exit 2."""
    click.echo(f"skylift: {message}", err=True)
    sys.exit(2)


def state_dir(app: str | None, template: str | None, hint: str = "") -> Path:
    """APP's (or the template's) `.skylift/` state folder; fail (adding `hint`) when
    neither names an app."""
    try:
        target = resolve_target(app, template)
    except SkyliftError as exc:
        fail(f"{exc}{hint}")
    return Path(home(target)) / ".skylift"


def _target(app: str | None, template: str | None, overrides: tuple[str, ...] = ()) -> Target:
    from skylift.sam.parameters import parse_overrides

    try:
        return resolve_target(app, template, parse_overrides(overrides))
    except SkyliftError as exc:
        fail(str(exc))


def parameter_overrides_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--parameter-overrides Key=Value ...`, SAM CLI's option, on a command."""
    return click.option(
        "--parameter-overrides",
        "parameter_overrides",
        multiple=True,
        metavar="KEY=VALUE ...",
        help="Values for the SAM template's Parameters, over their Defaults (SAM CLI's syntax).",
    )(command)


def _overrides(path: str | None) -> dict[str, dict[str, str]]:
    if path is None:
        return {}
    from skylift import env_vars

    try:
        return env_vars.load(path)
    except SkyliftError as exc:
        fail(str(exc))


NO_SERVER = (
    "`skylift invoke` without --url runs the function with no server to serve AWS APIs. "
    "Start `skylift up` and run `skylift invoke FUNCTION --url URL` to use its queues, "
    "buckets and functions."
)
ENV_VARS_HELP = (
    'SAM CLI\'s env-vars JSON: {"Parameters": {"VAR": "v"}, "Function": {"VAR": "v"}} '
    "overrides variables the functions declare."
)


def debug_mode(function: str, pdb: bool, port: int | None) -> dict[str, str]:
    """{function: mode} for `--debug` / `--debug-port`, after saying what changes."""
    import importlib.util

    from skylift.engine import debugging

    try:
        chosen = debugging.mode(pdb, port)
    except SkyliftError as exc:
        fail(str(exc))
    assert chosen is not None
    if port is not None:
        if importlib.util.find_spec("debugpy") is None:
            fail("--debug-port needs debugpy: pip install debugpy (or skylift[debug])")
        click.echo(
            f"skylift: debugging {function}: its instance waits for a debugger on "
            f"127.0.0.1:{port} (VS Code: a 'Python Debugger: Remote Attach' launch "
            "configuration); its timeout is suspended while you debug.",
            err=True,
        )
    else:
        click.echo(
            f"skylift: debugging {function}: its instance uses this terminal, so "
            "breakpoint() and pdb work here; its timeout is suspended while you debug.",
            err=True,
        )
    return {function: chosen}


def running_server(
    app: str | None, template: str | None, url: str | None
) -> tuple[str, str | None]:
    """(URL, token) of the server to talk to: `url` when given, else the one `skylift up`
    runs for APP (its `.skylift/server.json`), as every command finds it."""
    import os

    from skylift import server_file

    token = os.environ.get("SKYLIFT_TOKEN") or None
    if url is not None:
        return url, token
    target = _target(app, template)
    state = Path(home(target)) / ".skylift"
    found = server_file.find(state)
    if found is None:
        fail(
            f"no skylift server is running for {home(target)} (no live "
            f"{state / server_file.NAME}): start one with `skylift up`, or pass --url"
        )
    return found, server_file.token(state) or token

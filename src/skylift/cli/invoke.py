"""`skylift invoke`: one invocation, on a running server or with none."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click
import orjson

from skylift.cli.common import (
    ENV_VARS_HELP,
    NO_SERVER,
    _overrides,
    _target,
    fail,
    parameter_overrides_option,
)
from skylift.errors import SkyliftError


@click.command()
@click.argument("function", required=False)
@click.argument("app", required=False)
@click.option("--template", "-t", type=click.Path(dir_okay=False), help="An AWS SAM template.")
@click.option(
    "--event",
    "-e",
    "event_path",
    default=None,
    help="JSON event file, or - for stdin. Default: the sample event of the function's queue, "
    "schedule or bucket trigger (`skylift events generate`), else {}.",
)
@click.option(
    "--url", default=None, help="Invoke on this running server (Invoke API) instead of loading APP."
)
@click.option(
    "--async",
    "asynchronous",
    is_flag=True,
    help="InvocationType Event: store it on the running server (--url, or the one `skylift "
    "up` runs for APP), print its request id.",
)
@click.option("--env-vars", "env_vars", default=None, metavar="FILE", help=ENV_VARS_HELP)
@click.option(
    "--debug",
    is_flag=True,
    help="Connect the terminal to the instance: breakpoint() and pdb work; no timeout.",
)
@click.option(
    "--debug-port",
    type=int,
    default=None,
    metavar="PORT",
    help="Start the instance under debugpy on 127.0.0.1:PORT and wait for the editor.",
)
@click.option(
    "--tenant-id",
    default=None,
    metavar="ID",
    help="The tenant to invoke a function with TenancyConfig for (its context.tenant_id).",
)
@parameter_overrides_option
def invoke(
    function: str | None,
    app: str | None,
    template: str | None,
    event_path: str | None,
    url: str | None,
    asynchronous: bool,
    env_vars: str | None,
    debug: bool,
    debug_port: int | None,
    parameter_overrides: tuple[str, ...],
    tenant_id: str | None,
) -> None:
    """Invoke FUNCTION once: result JSON on stdout, its log on stderr, exit 1 on error.

    FUNCTION may be left out when APP declares just one function.
    """
    function, app = _function_and_app(function, app)
    event = _read_event(event_path)
    debugging = _debug_mode(
        function, debug, debug_port, url is not None or asynchronous, event_path
    )
    if asynchronous or url is not None:
        if tenant_id is not None:
            fail("--tenant-id works when skylift invoke loads the app: drop --url / --async")
        if function is None:
            fail("name the function to invoke on the server: skylift invoke FUNCTION --url URL")
        from skylift.cli.common import running_server

        found, token = running_server(app, template, url)
        if asynchronous:
            _invoke_async(found, token, function, event or b"{}")
        _invoke_remote(found, token, function, event or b"{}")
    target = _target(app, template, parameter_overrides)
    overrides = _overrides(env_vars)
    from skylift.engine import zygote_process
    from skylift.loader import AppTarget

    jail = None
    if isinstance(target, AppTarget):
        from pathlib import Path

        from skylift.engine.sandboxing import Sandbox
        from skylift.loader import home

        # The sandbox's cgroups before any zygote: on a cgroup-v2 host the server may move
        # itself into a leaf group to enable the memory and pids controllers for its
        # instances, which a process of its own left in the old group would forbid.
        jail = Sandbox(True, Path(home(target)) / ".skylift", [target.code_dir])
        # Its interpreter starts while this one imports the engine (`zygote_process`).
        zygote_process.start_spare(target.code_dir)
    from skylift.aio import run

    failed = False

    async def once() -> None:
        nonlocal failed, jail
        from skylift.engine.oneshot import OneShot
        from skylift.gateway.refuser import refusing
        from skylift.observe.report import invocation_log

        # No server here: the function's AWS calls are refused at once, never sent to AWS.
        async with refusing(NO_SERVER) as environment:
            made, jail = jail, None  # taken over
            shot = await OneShot.start(
                target,
                environment=environment,
                overrides=overrides,
                debug=debugging,
                sandbox=made,
            )
            async with shot:
                name = function or _only_function(list(shot.specs))
                payload = event
                if payload is None and name in shot.specs:
                    from skylift.events import samples  # ~40 ms of imports: only if needed

                    sample = samples.for_function(shot.specs[name], shot.region)
                    payload = b"{}" if sample is None else orjson.dumps(sample)
                result = await shot.invoke(name, payload or b"{}", tenant_id=tenant_id)
                sys.stderr.write(invocation_log(shot.specs[name], result))
                sys.stdout.write(result.payload.decode("utf-8", "replace") + "\n")
                failed = result.error is not None

    try:
        # asyncio's own loop: uvloop's import would cost more than it saves here.
        run(once, fast_loop=False)
    except SkyliftError as exc:
        fail(str(exc))
    finally:
        zygote_process.drop_spares()
        if jail is not None:  # never taken over
            jail.close()
    # Done, and everything it started is stopped and reaped: skip the interpreter's
    # teardown of its ~300 modules (~10 ms), as the zygote does at its end.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1 if failed else 0)


def _function_and_app(function: str | None, app: str | None) -> tuple[str | None, str | None]:
    """Read `invoke`'s positionals: a lone APP (a path or module:attr) names no function."""
    if app is not None and app.endswith(".json") and os.path.isfile(app):
        fail(f"{app!r} is a JSON file, not an app: to send it as the event, use -e {app}")
    # Lambda function names hold only letters, digits, '-' and '_'.
    if (
        function is not None
        and app is None
        and (any(c in function for c in "/.:") or os.path.isdir(function))
    ):
        return None, function
    return function, app


def _debug_mode(
    function: str | None, pdb: bool, port: int | None, remote: bool, event_path: str | None
) -> dict[str, str] | None:
    """`--debug` / `--debug-port` as Platform.start takes them; says what it does."""
    from skylift.cli.common import debug_mode

    if not (pdb or port is not None):
        return None
    if remote:
        fail("--debug runs the function here: leave out --url and --async")
    if function is None:
        fail("name the function to debug: skylift invoke FUNCTION APP --debug")
    if pdb and event_path == "-":
        fail("--debug keeps stdin for pdb: pass the event as a file, -e event.json")
    return debug_mode(function, pdb, port)


def _only_function(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    raise SkyliftError(
        f"the app declares {len(names)} functions ({', '.join(sorted(names)) or 'none'}): "
        "name the one to invoke, e.g. skylift invoke FUNCTION APP"
    )


def _invoke_async(url: str, token: str | None, function: str, event: bytes) -> NoReturn:
    from skylift.client import Client

    try:
        request_id = Client(url, token=token).invoke_async(function, event)
    except SkyliftError as exc:
        fail(str(exc))
    click.echo(request_id)
    sys.exit(0)


def _invoke_remote(url: str, token: str | None, function: str, event: bytes) -> NoReturn:
    from skylift.client import Client

    try:
        result, error, log = Client(url, token=token).invoke(function, event)
    except SkyliftError as exc:
        fail(str(exc))
    sys.stderr.write(log if log.endswith("\n") or not log else log + "\n")
    sys.stdout.write(result.decode("utf-8", "replace") + "\n")
    sys.exit(1 if error else 0)


def _read_event(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()  # noqa: SIM115
    except OSError as exc:
        fail(f"cannot read the event file: {exc}")
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        source = "stdin" if path == "-" else repr(path)
        fail(f"the event from {source} is not valid JSON ({exc}); pass a JSON document")
    return data

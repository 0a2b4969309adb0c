"""The `skylift` command line."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click
import orjson

from skylift.cli_common import (
    ENV_VARS_HELP,
    NO_SERVER,
    _fail,
    _overrides,
    _target,
    parameter_overrides_option,
)
from skylift.client import DEFAULT_URL
from skylift.errors import SkyliftError

APP_HELP = "a directory holding app.py or template.yaml, a .py file, or module:attribute"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="skylift")
def main() -> None:
    """skylift: run AWS Lambda functions locally, with every trigger."""


@main.command()
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
    help="InvocationType Event: store it on the running server (--url), print its request id.",
)
@click.option("--env-vars", "env_vars", default=None, metavar="FILE", help=ENV_VARS_HELP)
@parameter_overrides_option
def invoke(
    function: str | None,
    app: str | None,
    template: str | None,
    event_path: str | None,
    url: str | None,
    asynchronous: bool,
    env_vars: str | None,
    parameter_overrides: tuple[str, ...],
) -> None:
    """Invoke FUNCTION once: result JSON on stdout, its log on stderr, exit 1 on error.

    FUNCTION may be left out when APP declares just one function.
    """
    function, app = _function_and_app(function, app)
    event = _read_event(event_path)
    if asynchronous or url is not None:
        if function is None:
            _fail("name the function to invoke on the server: skylift invoke FUNCTION --url URL")
        if asynchronous:
            _invoke_async(url or DEFAULT_URL, function, event or b"{}")
        _invoke_remote(url or DEFAULT_URL, function, event or b"{}")
    from skylift.gateway.server import run

    target = _target(app, template, parameter_overrides)
    overrides = _overrides(env_vars)
    failed = False

    async def once() -> None:
        nonlocal failed
        from skylift.engine.platform import Platform
        from skylift.events import samples
        from skylift.gateway.refuser import refusing
        from skylift.observe.report import invocation_log

        # No server here: the function's AWS calls are refused at once, never sent to AWS.
        async with refusing(NO_SERVER) as environment:
            platform = await Platform.start(target, environment=environment, overrides=overrides)
            async with platform:
                name = function or _only_function(list(platform.specs))
                payload = event
                if payload is None and name in platform.specs:
                    sample = samples.for_function(platform.specs[name], platform.region)
                    payload = b"{}" if sample is None else orjson.dumps(sample)
                result = await platform.invoker.invoke(name, payload or b"{}")
                sys.stderr.write(invocation_log(platform.specs[name], result))
                sys.stdout.write(result.payload.decode("utf-8", "replace") + "\n")
                failed = result.error is not None

    try:
        run(once)
    except SkyliftError as exc:
        _fail(str(exc))
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("app", required=False)
@click.option("--template", "-t", type=click.Path(dir_okay=False), help="An AWS SAM template.")
@click.option("--count", "-n", default=3, show_default=True, help="Fire times to show for each.")
@parameter_overrides_option
def schedules(
    app: str | None, template: str | None, count: int, parameter_overrides: tuple[str, ...]
) -> None:
    """List APP's schedules and their next fire times (UTC).

    Rates count from when `skylift up` starts; here, as if it started now.
    """
    from skylift.gateway.server import run

    target = _target(app, template, parameter_overrides)

    async def show() -> None:
        from skylift.engine.platform import Platform
        from skylift.sources.scheduler import Scheduler, entries

        async with await Platform.start(target) as platform:
            found = entries(list(platform.specs.values()), platform.region)
            scheduler = Scheduler(found, platform.invoker.invoke, platform.region)
            if not found:
                click.echo("no schedules")
            for entry in found:
                times: list[str] = []
                when = None
                while entry.trigger.enabled and len(times) < count:
                    when = scheduler.next_fire(entry, after=when)
                    if when is None:
                        break
                    times.append(f"{when:%Y-%m-%d %H:%M}Z")
                state = "enabled" if entry.trigger.enabled else "disabled"
                click.echo(
                    f"{entry.function}\t{entry.trigger.expression}\t{state}\t"
                    + (", ".join(times) or "never")
                )

    try:
        run(show)
    except SkyliftError as exc:
        _fail(str(exc))


def _function_and_app(function: str | None, app: str | None) -> tuple[str | None, str | None]:
    """Read `invoke`'s positionals: a lone APP (a path or module:attr) names no function."""
    if app is not None and app.endswith(".json") and os.path.isfile(app):
        _fail(f"{app!r} is a JSON file, not an app: to send it as the event, use -e {app}")
    # Lambda function names hold only letters, digits, '-' and '_'.
    if (
        function is not None
        and app is None
        and (any(c in function for c in "/.:") or os.path.isdir(function))
    ):
        return None, function
    return function, app


def _only_function(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    raise SkyliftError(
        f"the app declares {len(names)} functions ({', '.join(sorted(names)) or 'none'}): "
        "name the one to invoke, e.g. skylift invoke FUNCTION APP"
    )


def _invoke_async(url: str, function: str, event: bytes) -> NoReturn:
    from skylift.client import Client

    try:
        request_id = Client(url).invoke_async(function, event)
    except SkyliftError as exc:
        _fail(str(exc))
    click.echo(request_id)
    sys.exit(0)


def _invoke_remote(url: str, function: str, event: bytes) -> NoReturn:
    from skylift.client import Client

    try:
        result, error, log = Client(url).invoke(function, event)
    except SkyliftError as exc:
        _fail(str(exc))
    sys.stderr.write(log if log.endswith("\n") or not log else log + "\n")
    sys.stdout.write(result.decode("utf-8", "replace") + "\n")
    sys.exit(1 if error else 0)


def _register() -> None:
    from skylift.cli_alerts import COMMANDS as ALERTS
    from skylift.cli_backup import COMMANDS as BACKUP
    from skylift.cli_events import COMMANDS as EVENTS
    from skylift.cli_export import COMMANDS as EXPORT
    from skylift.cli_init import COMMANDS as INIT
    from skylift.cli_logs import COMMANDS as LOGS
    from skylift.cli_resources import COMMANDS
    from skylift.cli_scaling import COMMANDS as SCALING
    from skylift.cli_up import COMMANDS as UP

    for command in (*UP, *COMMANDS, *SCALING, *EXPORT, *LOGS, *BACKUP, *ALERTS, *EVENTS, *INIT):
        main.add_command(command)
    main.add_command(__import__("skylift.cli_load", fromlist=["load"]).load)  # skylift load
    main.add_command(__import__("skylift.cli_build", fromlist=["build"]).build)  # skylift build


_register()


def _read_event(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()  # noqa: SIM115
    except OSError as exc:
        _fail(f"cannot read the event file: {exc}")
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        source = "stdin" if path == "-" else repr(path)
        _fail(f"the event from {source} is not valid JSON ({exc}); pass a JSON document")
    return data


if __name__ == "__main__":
    main()

"""The `skylift` command line."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import click
import orjson

from skylift.client import DEFAULT_URL
from skylift.errors import SkyliftError
from skylift.loader import Target, resolve_target

if TYPE_CHECKING:
    from skylift.gateway.guard import Guard

APP_HELP = "a directory holding app.py or template.yaml, a .py file, or module:attribute"


def _fail(message: str) -> NoReturn:
    click.echo(f"skylift: {message}", err=True)
    sys.exit(2)


def _target(app: str | None, template: str | None) -> Target:
    try:
        return resolve_target(app, template)
    except SkyliftError as exc:
        _fail(str(exc))


def _overrides(path: str | None) -> dict[str, dict[str, str]]:
    if path is None:
        return {}
    from skylift import env_vars

    try:
        return env_vars.load(path)
    except SkyliftError as exc:
        _fail(str(exc))


NO_SERVER = (
    "`skylift invoke` without --url runs the function with no server to serve AWS APIs. "
    "Start `skylift up` and run `skylift invoke FUNCTION --url URL` to use its queues, "
    "buckets and functions."
)
ENV_VARS_HELP = (
    'SAM CLI\'s env-vars JSON: {"Parameters": {"VAR": "v"}, "Function": {"VAR": "v"}} '
    "overrides variables the functions declare."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="skylift")
def main() -> None:
    """skylift: run AWS Lambda functions locally, with every trigger."""


@main.command()
@click.argument("app", required=False)
@click.option("--template", "-t", type=click.Path(dir_okay=False), help="An AWS SAM template.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", "-p", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--quiet", "-q", is_flag=True, help="Do not print each invocation's log.")
@click.option(
    "--concurrency",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Invocations that may run at once, across all functions; past it, 429s.",
)
@click.option(
    "--fast-retries",
    is_flag=True,
    help="Retry failed asynchronous invocations after 1 s and 2 s, not Lambda's 1 and 2 min.",
)
@click.option(
    "--idle-timeout",
    default=300.0,
    show_default=True,
    type=click.FloatRange(0, 86400, min_open=True),
    help="Seconds an idle instance stays warm (a function's idle_timeout overrides it).",
)
@click.option(
    "--scale-up-rate",
    default=10.0,
    show_default=True,
    type=click.FloatRange(1, 1000, min_open=True),
    help="The autoscaler's target grows at most this many times per tick.",
)
@click.option(
    "--no-autoscale",
    is_flag=True,
    help="Start instances on demand only; do not pre-warm from observed concurrency.",
)
@click.option("--env-vars", "env_vars", default=None, metavar="FILE", help=ENV_VARS_HELP)
@click.option(
    "--sandbox",
    type=click.Choice(["on", "off"]),
    default="on",
    show_default=True,
    help="off: instances run without their own namespaces, read-only files, private /tmp "
    "and memory limit (for debugging only).",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Another Host name (and its subdomains) this server answers to, e.g. a shared "
    "server's DNS name. Requests naming any other host get 421.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    metavar="ORIGIN",
    help="A web origin (https://app.example) whose browser pages may call the AWS and "
    "control APIs; others are refused. '*' allows any (not advised).",
)
@click.option(
    "--state",
    "state_url",
    default=None,
    metavar="URL",
    help="Keep the queues in this Redis (redis://HOST:PORT/DB), shared with other nodes.",
)
def up(
    app: str | None,
    template: str | None,
    host: str,
    port: int,
    quiet: bool,
    concurrency: int,
    fast_retries: bool,
    idle_timeout: float,
    scale_up_rate: float,
    no_autoscale: bool,
    env_vars: str | None,
    sandbox: str,
    allow_hosts: tuple[str, ...],
    cors_origins: tuple[str, ...],
    state_url: str | None,
) -> None:
    """Serve APP's functions over HTTP (APP: directory, file, or module:attribute)."""
    from skylift.engine.autoscaler import Policy
    from skylift.engine.platform import Platform
    from skylift.gateway.server import run, serve
    from skylift.sources.http import Router

    target = _target(app, template)
    overrides = _overrides(env_vars)
    guard = _guard(host, allow_hosts, cors_origins)
    if state_url is not None:
        from skylift.queues import redis_url

        try:
            redis_url.check(state_url)  # fail now, not after the init phase
        except SkyliftError as exc:
            _fail(str(exc))

    def ready(platform: Platform, router: Router, bound: int) -> None:
        base = f"http://{host}:{bound}"
        count = len(platform.specs)
        click.echo(f"skylift: {count} function{'s' * (count != 1)}, serving on {base}", err=True)
        for method, route_target in sorted(router.routes, key=lambda r: (r[1].route.path, r[0])):
            path = route_target.route.path
            shown = f"{base}{path}" if path.startswith("/") else f"{base}/* ($default)"
            click.echo(f"  {method:<7} {shown}  -> {route_target.function}", err=True)
        for spec in platform.specs.values():
            for queue in spec.queues:
                click.echo(
                    f"  queue {queue.queue} (batch {queue.batch_size})  -> {spec.name}", err=True
                )
            for upload in spec.uploads:
                where = f"{upload.bucket}/{upload.prefix}*{upload.suffix}"
                click.echo(f"  {', '.join(upload.events)} {where}  -> {spec.name}", err=True)
        if platform.state is not None:
            where = str(platform.state.directory)
            if state_url is not None:
                from skylift.queues import redis_url

                where = f"{where}, queues in {redis_url.shown(state_url)}"
            click.echo(f"  SQS and S3 APIs for boto3 at {base} (state in {where})", err=True)
        if platform.sources is not None:
            scheduler = platform.sources.scheduler
            for entry in scheduler.entries:
                when = scheduler.next_fire(entry) if entry.trigger.enabled else None
                shown = f"next {when:%Y-%m-%d %H:%M:%S}Z" if when else "disabled"
                click.echo(
                    f"  {entry.trigger.expression}  -> {entry.function}  ({shown})", err=True
                )
        line = platform.sandbox_line()
        if line is not None:
            click.echo(f"  {line}", err=True)
        for name, fault in platform.faults.items():
            click.echo(
                f"skylift: warning: function {name!r} failed its init phase; every "
                f"invocation will return {fault['errorType']}: {fault['errorMessage']}",
                err=True,
            )

    try:
        run(
            lambda: serve(
                target,
                host,
                port,
                on_ready=ready,
                quiet=quiet,
                concurrency=concurrency,
                fast_retries=fast_retries,
                idle_timeout=idle_timeout,
                policy=None if no_autoscale else Policy(max_scale_up_rate=scale_up_rate),
                overrides=overrides,
                sandbox=sandbox == "on",
                guard=guard,
                state_url=state_url,
            )
        )
    except SkyliftError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


def _guard(host: str, allow_hosts: tuple[str, ...], cors_origins: tuple[str, ...]) -> Guard:
    from skylift.gateway.guard import Guard, loopback

    token = None
    if not loopback(host):
        import os
        import secrets

        chosen = os.environ.get("SKYLIFT_TOKEN")
        token = chosen or secrets.token_urlsafe(24)
        click.echo(
            f"skylift: warning: listening on {host} exposes this server beyond this machine: "
            "the app's routes and the SQS and S3 APIs to anyone who reaches the port; the "
            "control and Lambda APIs need the token "
            + ("in SKYLIFT_TOKEN" if chosen else f"{token} (choose one with SKYLIFT_TOKEN)")
            + ", sent as `Authorization: Bearer TOKEN` or as the AWS access key id. "
            "See docs/security.md.",
            err=True,
        )
    return Guard.build(host, allow_hosts, cors_origins, token)


@main.command()
@click.argument("function")
@click.argument("app", required=False)
@click.option("--template", "-t", type=click.Path(dir_okay=False), help="An AWS SAM template.")
@click.option(
    "--event", "-e", "event_path", default=None, help="JSON event file, or - for stdin. Default: {}"
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
def invoke(
    function: str,
    app: str | None,
    template: str | None,
    event_path: str | None,
    url: str | None,
    asynchronous: bool,
    env_vars: str | None,
) -> None:
    """Invoke FUNCTION once: result JSON on stdout, its log on stderr, exit 1 on error."""
    event = _read_event(event_path)
    if asynchronous:
        _invoke_async(url or DEFAULT_URL, function, event)
    if url is not None:
        _invoke_remote(url, function, event)
        return
    from skylift.gateway.server import run

    target = _target(app, template)
    overrides = _overrides(env_vars)
    failed = False

    async def once() -> None:
        nonlocal failed
        from skylift.engine.platform import Platform
        from skylift.gateway.refuser import refusing
        from skylift.observe.report import invocation_log

        # No server here: the function's AWS calls are refused at once, never sent to AWS.
        async with refusing(NO_SERVER) as environment:
            platform = await Platform.start(target, environment=environment, overrides=overrides)
            async with platform:
                result = await platform.invoker.invoke(function, event)
                sys.stderr.write(invocation_log(platform.specs[function], result))
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
def schedules(app: str | None, template: str | None, count: int) -> None:
    """List APP's schedules and their next fire times (UTC).

    Rates count from when `skylift up` starts; here, as if it started now.
    """
    from skylift.gateway.server import run

    target = _target(app, template)

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
    from skylift.cli_export import COMMANDS as EXPORT
    from skylift.cli_logs import COMMANDS as LOGS
    from skylift.cli_resources import COMMANDS
    from skylift.cli_scaling import COMMANDS as SCALING

    for command in (*COMMANDS, *SCALING, *EXPORT, *LOGS):
        main.add_command(command)
    main.add_command(__import__("skylift.cli_load", fromlist=["load"]).load)  # skylift load


_register()


def _read_event(path: str | None) -> bytes:
    if path is None:
        return b"{}"
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

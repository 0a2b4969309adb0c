"""`skylift up`: serve an app (its options, the guard it listens with)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from skylift.cli.common import (
    ENV_VARS_HELP,
    _overrides,
    _target,
    debug_mode,
    fail,
    parameter_overrides_option,
)
from skylift.errors import SkyliftError

if TYPE_CHECKING:
    from skylift.gateway.guard import Guard


@click.command()
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
    "--credentials",
    default=None,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="AWS credentials file ([profile] with aws_access_key_id, aws_secret_access_key): "
    "every SQS, S3 and Lambda request must carry a SigV4 signature by one of its keys.",
)
@click.option(
    "--reload/--no-reload",
    default=True,
    show_default=True,
    help="Load the code again when a .py or template file changes (old instances finish).",
)
@click.option(
    "--state",
    "state_url",
    default=None,
    metavar="URL",
    help="Keep the queues in this Redis (redis://HOST:PORT/DB), shared with other nodes.",
)
@click.option(
    "--objects",
    "objects_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep buckets in this folder (default .skylift/objects), e.g. one all nodes share.",
)
@click.option(
    "--no-queue-polling",
    is_flag=True,
    help="With --state: take messages through the SQS API but leave their processing to "
    "the other nodes on that Redis (a front node whose queue workers scale apart, even to "
    "zero).",
)
@click.option(
    "--schedule-speed",
    type=click.FloatRange(min=1.0),
    default=1.0,
    help="For tests: run schedules N times faster (60: a rate(1 minute) fires every second).",
)
@click.option(
    "--debug",
    "debug_function",
    default=None,
    metavar="FUNCTION",
    help="Debug FUNCTION: its instance uses this terminal (breakpoint(), pdb), one at a "
    "time, with no timeout; implies --no-reload.",
)
@click.option(
    "--debug-port",
    type=int,
    default=None,
    metavar="PORT",
    help="With --debug: start its instance under debugpy on 127.0.0.1:PORT instead.",
)
@click.option(
    "--keep-alive",
    "keep_alive",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Close a client's connection after it has been idle this long.",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help=(
        "Answer 408 and close when a request's line and headers take longer to arrive, "
        "or its body stalls that long."
    ),
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Open connections at most (beyond: 503). Default: the file-descriptor limit "
    "(ulimit -n) less a reserve for the server's own files.",
)
@click.option(
    "--no-observe",
    is_flag=True,
    help="Serve without stored logs, metrics (/metrics) and alerting (for measuring "
    "what they cost; `skylift logs` then reads only older logs).",
)
@parameter_overrides_option
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
    credentials: str | None,
    reload: bool,
    state_url: str | None,
    debug_function: str | None,
    debug_port: int | None,
    keep_alive: float,
    header_timeout: float,
    max_connections: int | None,
    no_observe: bool,
    parameter_overrides: tuple[str, ...],
    schedule_speed: float,
    objects_dir: Path | None,
    no_queue_polling: bool,
) -> None:
    """Serve APP's functions over HTTP (APP: directory, file, or module:attribute)."""
    from skylift.engine.autoscaler import Policy
    from skylift.engine.platform import Platform
    from skylift.gateway.front import connection_cap
    from skylift.gateway.front_types import Limits
    from skylift.gateway.server import run, serve
    from skylift.sources.http import Router

    target = _target(app, template, parameter_overrides)
    overrides = _overrides(env_vars)
    debugging = None
    if debug_port is not None and debug_function is None:
        fail("--debug-port goes with --debug FUNCTION: name the function to debug")
    if debug_function is not None:
        debugging = debug_mode(debug_function, debug_port is None, debug_port)
        reload = False  # a reload would start the function afresh, without its debugger
    guard = _guard(host, allow_hosts, cors_origins, credentials)
    if no_queue_polling and state_url is None:
        fail(
            "--no-queue-polling needs --state redis://...: with the app's own state no other "
            "node could ever process the messages this one takes"
        )
    if state_url is not None:
        from skylift.queues import redis_url

        try:
            redis_url.check(state_url)  # fail now, not after the init phase
        except SkyliftError as exc:
            fail(str(exc))
    else:
        # One server per app folder: a second would share its databases and server.json.
        # Nodes sharing a Redis state coordinate there, and may share a folder.
        from pathlib import Path

        from skylift import server_file
        from skylift.loader import home

        try:
            lock = server_file.hold(Path(home(target)) / ".skylift")  # noqa: F841 (held)
        except SkyliftError as exc:
            fail(str(exc))

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
                polled = "polled by the other nodes, " if no_queue_polling else ""
                click.echo(
                    f"  queue {queue.queue} ({polled}batch {queue.batch_size})  -> {spec.name}",
                    err=True,
                )
            for upload in spec.uploads:
                where = f"{upload.bucket}/{upload.prefix}*{upload.suffix}"
                click.echo(f"  {', '.join(upload.events)} {where}  -> {spec.name}", err=True)
            if spec.url is not None and platform.state is not None:
                from skylift.api.lambda_urls import local_url

                url = local_url(spec.name, platform.state.region, bound)
                click.echo(
                    f"  URL     {url} (or {base}/_skylift/url/{spec.name}/, "
                    f"AuthType {spec.url.auth_type})  -> {spec.name}",
                    err=True,
                )
        if platform.state is not None:
            where = str(platform.state.directory)
            if state_url is not None:
                from skylift.queues import redis_url

                where = f"{where}, queues in {redis_url.shown(state_url)}"
            if objects_dir is not None:
                where = f"{where}, buckets in {objects_dir}"
            click.echo(f"  SQS and S3 APIs for boto3 at {base} (state in {where})", err=True)
        if not no_observe:
            click.echo(f"  dashboard at {base}/_skylift/", err=True)
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
                reload=reload,
                debug=debugging,
                observe=not no_observe,
                schedule_speed=schedule_speed,
                objects_dir=objects_dir,
                poll_queues=not no_queue_polling,
                limits=Limits(
                    head_timeout=header_timeout,
                    keep_alive=keep_alive,
                    max_connections=connection_cap(max_connections),
                ),
            )
        )
    except SkyliftError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass


def _guard(
    host: str,
    allow_hosts: tuple[str, ...],
    cors_origins: tuple[str, ...],
    credentials: str | None = None,
) -> Guard:
    """Who may drive the server. A token guards the control and Lambda APIs whenever
    anyone beyond this machine may reach them: listening beyond loopback, a name given
    with --allow-host (a reverse proxy in front), SKYLIFT_TOKEN set, or --credentials
    (whose keys then sign every AWS API request)."""
    import os
    import secrets

    from skylift.gateway import credentials as credentials_file
    from skylift.gateway.guard import Guard, loopback

    keys = None
    if credentials is not None:
        try:
            keys = credentials_file.load(credentials)
        except SkyliftError as exc:
            fail(str(exc))
    chosen = os.environ.get("SKYLIFT_TOKEN") or None
    exposed = not loopback(host)
    if not (exposed or allow_hosts or chosen or keys):
        return Guard.build(host, allow_hosts, cors_origins, None)
    token = chosen or secrets.token_urlsafe(24)
    shown = "in SKYLIFT_TOKEN" if chosen else f"{token} (choose one with SKYLIFT_TOKEN)"
    if keys is not None:
        count = len(keys)
        click.echo(
            f"skylift: the SQS, S3 and Lambda APIs need a SigV4 signature by one of the "
            f"{count} key{'s' * (count != 1)} in {credentials}; the control API needs the token "
            f"{shown}.",
            err=True,
        )
    elif exposed:
        click.echo(
            f"skylift: warning: listening on {host} exposes this server beyond this machine: "
            "the app's routes and the SQS and S3 APIs to anyone who reaches the port; the "
            f"control and Lambda APIs need the token {shown}, sent as `Authorization: Bearer "
            "TOKEN` or as the AWS access key id. See docs/security.md.",
            err=True,
        )
    else:
        click.echo(
            f"skylift: the control and Lambda APIs need the token {shown}, sent as "
            "`Authorization: Bearer TOKEN` or as the AWS access key id.",
            err=True,
        )
    if keys is not None and exposed:
        click.echo(
            f"skylift: warning: listening on {host}: the app's own routes are open to anyone "
            "who reaches the port. See docs/security.md.",
            err=True,
        )
    return Guard.build(host, allow_hosts, cors_origins, token, keys)


COMMANDS = (up,)

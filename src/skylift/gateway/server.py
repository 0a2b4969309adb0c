"""Serve a platform over HTTP: skylift's front (httptools + uvloop) before the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from skylift import server_file
from skylift.aio import run as run  # the command line's runner, re-exported
from skylift.asgi_types import Asgi
from skylift.engine.autoscaler import DEFAULT_POLICY, Policy
from skylift.engine.budget import DEFAULT_CONCURRENCY
from skylift.engine.platform import Platform
from skylift.engine.pool import DEFAULT_IDLE_TIMEOUT
from skylift.engine.reload import Reloader
from skylift.env_vars import Overrides
from skylift.gateway.asgi import Gateway
from skylift.gateway.front import Front, connection_cap
from skylift.gateway.front_types import KEEP_ALIVE, Limits
from skylift.gateway.guard import Guard
from skylift.loader import AppTarget, Target
from skylift.observe.alerts_api import AlertsApi
from skylift.observe.alerts_service import Alerting, policy_for
from skylift.observe.console import UNBOUNDED, ConsoleLog
from skylift.observe.dashboard import INTERVAL, Dashboard
from skylift.observe.dashboard_data import Board
from skylift.observe.events import alert_events
from skylift.observe.observability import Observability, logs_stored
from skylift.openapi_served import TemplateDocs
from skylift.runtime.environ import ACCOUNT_ID, aws_environment
from skylift.sources.http import Router


async def serve(
    target: Target,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    on_ready: Callable[[Platform, Router, int], None] | None = None,
    quiet: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    fast_retries: bool = False,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    policy: Policy | None = DEFAULT_POLICY,
    overrides: Overrides | None = None,
    sandbox: bool = True,
    guard: Guard | None = None,
    state_url: str | None = None,
    reload: bool = False,
    state_dir: Path | None = None,
    stop: asyncio.Event | None = None,
    tune_gc: bool = True,
    debug: Mapping[str, str] | None = None,
    observe: bool = True,
    schedule_speed: float = 1.0,
    objects_dir: Path | str | None = None,
    poll_queues: bool = True,
    keep_alive: float = KEEP_ALIVE,
    max_connections: int | None = None,
    limits: Limits | None = None,
) -> None:
    """Load `target`, then serve it until cancelled or interrupted, or `stop` is set
    (then as after Ctrl-C: in-flight requests finish, connections close, then the platform).

    `guard` checks who may drive the server (Host, browser origins, the token); by
    default it admits only this machine's names (`Guard.build(host)`). `observe=False`
    (`--no-observe`) serves without stored logs, metrics and alerting. `keep_alive`
    (`--keep-alive`) closes idle connections; `max_connections` (`--max-connections`)
    caps open ones, below the file-descriptor limit; `limits` sets every limit at once.
    """
    limits = limits or Limits(
        keep_alive=keep_alive, max_connections=connection_cap(max_connections)
    )
    guard = guard or Guard.build(host)
    alert_policy = policy_for(target)  # a bad skylift.toml fails before anything starts
    alerting: Alerting | None = None
    sock = listen(host, port)  # before loading: a busy port should fail fast and clearly
    # Known before the init phase, so clients created at import point at this server.
    url = f"http://{url_host(host)}:{sock.getsockname()[1]}"
    environment = aws_environment(url)
    if guard.functions_key is not None:  # the server's own functions may call its Lambda API
        environment["AWS_ACCESS_KEY_ID"] = guard.functions_key
    if guard.functions_secret is not None:  # ...signed with a secret only they hold
        environment["AWS_SECRET_ACCESS_KEY"] = guard.functions_secret
    try:
        platform = await Platform.start(
            target,
            concurrency=concurrency,
            idle_timeout=idle_timeout,
            policy=policy,
            environment=environment,
            overrides=overrides,
            sandbox=sandbox,
            state_dir=state_dir,
            debug=debug,
        )
    except BaseException:
        sock.close()
        raise
    # Bounded under load only where every invocation is in the stored logs: without them
    # the terminal is the one place an invocation's log appears.
    stored = observe and logs_stored(os.environ)
    console = ConsoleLog() if stored else ConsoleLog(per_second=UNBOUNDED)
    if not quiet:
        platform.invoker.observers.append(console)
        platform.invoker.output_observers.append(console.output)
    # Even when quiet: what a shutdown cut off is said, one line each.
    platform.invoker.cancel_observers.append(console.cancelled)
    # Stored logs and metrics; without them (--no-observe) nothing watches either.
    observability = Observability.from_environment(platform) if observe else None
    if observability is None:
        alert_policy = None
    # Long-lived startup objects never need collecting again, and a request makes
    # short-lived cycles rarely: fewer, cheaper collections trim the latency tail.
    if tune_gc:  # not in a test's process (skylift.testing.Client): its GC is its own
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
    reloader: Reloader | None = None
    watching: asyncio.Task[None] | None = None
    try:
        await platform.start_sources(
            fast_retries=fast_retries,
            state_url=state_url,
            schedule_speed=schedule_speed,
            # How other nodes and operators reach this one: its host name when it listens
            # on every interface (`url` is then loopback, right only for this machine).
            node_url=url.replace(url_host(host), socket.gethostname(), 1)
            if host in ("0.0.0.0", "", "::")
            else url,
            objects_dir=objects_dir,
            poll_queues=poll_queues,
        )
        if reload:  # routes follow the code; the router is swapped whole, never mutated
            reloader = Reloader(platform, lambda specs: setattr(gateway, "router", Router(specs)))
        if observability is not None:
            alerting = Alerting.attach(alert_policy, observability.metrics, platform, reloader)
        router = Router(platform.specs.values())
        services = aws_services(platform)
        services["url"] = function_urls(platform, guard)
        if observability is not None:
            services.update(observability.services(router))
        engine = alerting.engine if alerting is not None else None
        alerts_api = AlertsApi(platform.state_dir, services["control"], engine)
        control: Asgi = backup_api(platform, state_url, alerts_api)
        dashboard: Dashboard | None = None
        if observability is not None:  # events for describe, past invocations for replay
            control = observability.control(control)
            if engine is not None:
                engine.send = alert_events(engine.send, observability.events.record)
            if reloader is not None:
                reloader.record = observability.events.record
        if observability is not None:  # its numbers are the metrics'
            assert observability.endpoint is not None
            dashboard = Dashboard(
                control,
                Board(observability.endpoint),
                alerts_api,
                platform.state_dir,
                interval=INTERVAL,
            )
            control = dashboard
        services["control"] = control
        docs = template_docs(target, platform)
        gateway = Gateway(router, platform.invoker, services=services, guard=guard, docs=docs)
        if reloader is not None:
            watching = asyncio.ensure_future(reloader.run())
        await platform.warm_routes()  # the port opens ready: no cold first request
        app = observability.wrap(gateway) if observability is not None else gateway
        front = Front(
            gateway,
            app,
            limits,
            metrics=observability.metrics if observability is not None else None,
            host=host,
            port=sock.getsockname()[1],
        )
        start_listening(sock, host, port)
        await front.start(sock)
        bound = sock.getsockname()[1]  # the real port, for port 0
        server_file.announce(platform.state_dir, url, guard.token)
        if on_ready is not None:
            on_ready(platform, router, bound)
        if dashboard is not None:
            dashboard.stopping = lambda: front.stopping  # open event streams end at once
        await _serve_until_stopped(front, stop, platform.leave_cluster)
    finally:
        server_file.withdraw(platform.state_dir)
        console.flush()
        if watching is not None:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watching
        if alerting is not None:
            await alerting.close()
        await platform.close()
        if reloader is not None:
            await reloader.close()
        if observability is not None:
            observability.close()


async def _serve_until_stopped(
    front: Front, stop: asyncio.Event | None, leave: Callable[[], Awaitable[None]]
) -> None:
    """Serve until `stop` is set, or Ctrl-C or SIGTERM (in the main thread), or the task
    is cancelled; then `leave` the cluster's list at once (a node that stops is no
    member, however long its in-flight work takes) and stop `front` in order: in-flight
    requests finish first."""
    stopped = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    main = threading.current_thread() is threading.main_thread()
    if main:
        for sig in signals:
            loop.add_signal_handler(sig, stopped.set)
    try:
        await stopped.wait()
    finally:
        if main:
            for sig in signals:
                loop.remove_signal_handler(sig)
            # SIGTERM stays an exception (aio.run) for the platform's orderly close.
            signal.signal(signal.SIGTERM, signal.default_int_handler)
        await leave()
        await front.shutdown()


def url_host(host: str) -> str:
    """How a client on this machine reaches a server listening on `host`."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def function_urls(platform: Platform, guard: Guard) -> Asgi:
    """The function URLs of the platform's functions (gateway/function_url.py)."""
    from skylift.gateway.function_url import FunctionUrls

    assert platform.state is not None
    region = platform.state.region
    return FunctionUrls(platform.specs, platform.invoker, region=region, verifier=guard.verifier())


def aws_services(platform: Platform) -> dict[str, Asgi]:
    """The AWS-compatible APIs over the platform's state, keyed by service name."""
    from skylift.api.control import ControlApi
    from skylift.api.lambda_api import LambdaApi
    from skylift.api.lambda_concurrency import ConcurrencyApi
    from skylift.api.lambda_functions import FunctionsApi
    from skylift.api.lambda_mappings import MappingsApi
    from skylift.api.lambda_service import lambda_service
    from skylift.api.lambda_urls import UrlsApi
    from skylift.api.s3 import S3Api
    from skylift.api.sqs import SqsApi
    from skylift.api.unserved import Unserved

    assert platform.state is not None and platform.sources is not None
    mappings = platform.sources.mappings

    def paused(function: str, queue: str) -> bool:
        return any(m.paused for m in mappings if (m.function, m.trigger.queue) == (function, queue))

    state = platform.state
    return {
        "sqs": SqsApi(state.queues, region=state.region, account_id=ACCOUNT_ID),
        "s3": S3Api(state.objects, region=state.region, on_change=platform.sources.notifier),
        "lambda": lambda_service(
            LambdaApi(
                platform.invoker,
                platform.specs,
                region=state.region,
                enqueue=platform.sources.async_invocations.enqueue,
            ),
            ConcurrencyApi(platform.pools, platform.budget, region=state.region),
            FunctionsApi(platform.specs, platform.pools, region=state.region),
            MappingsApi(platform.specs, region=state.region, paused=paused),
            UrlsApi(platform.specs, region=state.region),
        ),
        "control": ControlApi(
            platform.pools, platform.budget, platform.autoscaler, platform.sandbox_line()
        ),
        "unserved": Unserved(),
    }


def template_docs(target: Target, platform: Platform) -> TemplateDocs | None:
    """/openapi.json and /docs for a SAM template's routes (an App opts in with docs=True)."""
    if isinstance(target, AppTarget):
        return None
    name = Path(target.path).parent.resolve().name or "app"
    # The functions served now: a reload's new routes are documented at once.
    return TemplateDocs(lambda: platform.specs.values(), name)


def backup_api(platform: Platform, state_url: str | None, inner: Asgi) -> Asgi:
    """`POST /_skylift/backup` (`skylift backup FILE --url URL`) before the other paths."""
    from skylift.backup.served import BackupApi, app_files

    config = app_files(platform.target)[1] if platform.target is not None else []
    return BackupApi(platform.state_dir, config, state_url, inner)


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, or an OSError that says what to do."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port}: {exc.strerror}; if another server has the "
            "port, stop it or choose another with --port"
        ) from None
    # Not listening yet: connections are refused, not queued, until the server is ready
    # (asyncio listens when serving starts). A port another server listens on fails
    # here already, before the init phase.
    return sock


def start_listening(sock: socket.socket, host: str, port: int) -> None:
    """Open the bound port, or an OSError that says what to do (another server bound it
    meanwhile: with SO_REUSEADDR two binds succeed until one listens)."""
    try:
        sock.listen(2048)
    except OSError as exc:
        raise OSError(
            f"cannot listen on {host}:{port}: {exc.strerror}; another server took the port "
            "while this one started: stop it or choose another with --port"
        ) from None

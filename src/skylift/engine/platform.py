"""The composition root: load an app, start its zygotes, own its pools and invoker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skylift.engine.autoscaler import DEFAULT_POLICY, Autoscaler, Policy
from skylift.engine.budget import DEFAULT_CONCURRENCY, Budget
from skylift.engine.invoker import Invoker
from skylift.engine.loading import load_checked
from skylift.engine.pool import DEFAULT_IDLE_TIMEOUT, DEFAULT_WAIT, Pool
from skylift.engine.sandboxing import Sandbox
from skylift.engine.zygote import Zygote
from skylift.env_vars import Overrides
from skylift.loader import Target
from skylift.loader import home as app_home
from skylift.runtime.environ import offline_environment, region
from skylift.spec import FunctionSpec, Resources

if TYPE_CHECKING:
    from skylift.cluster.members import Membership
    from skylift.engine.state import State
    from skylift.sources.runner import Sources

logger = logging.getLogger("skylift.cluster")
LEAVE_WAIT = 5.0  # seconds a stopping node waits for Redis to take it off the list


class Platform:
    """A loaded app: its functions' specs, warm zygotes, and an invoker for them."""

    def __init__(
        self,
        zygotes: list[Zygote],
        specs: list[FunctionSpec],
        owners: dict[str, Zygote | None],
        resources: Resources,
        state_dir: Path,
        *,
        idle_timeout: float,
        concurrency: int,
        wait: float,
        policy: Policy | None,
        environment: Mapping[str, str],
    ) -> None:
        self.zygotes = zygotes
        self.environment = environment
        self.sandbox: Sandbox | None = None
        self.target: Target | None = None  # what was loaded, and how: for a reload
        self.overrides: Overrides = {}
        self.resources = with_trigger_resources(resources, specs)
        self.state_dir = state_dir
        self.state: State | None = None
        self.sources: Sources | None = None
        self.membership: Membership | None = None  # with a Redis state: this node's entry
        self.specs = {spec.name: spec for spec in specs}
        self.faults: dict[str, dict[str, Any]] = {}
        for zygote in zygotes:
            self.faults.update(zygote.ready.get("faults", {}))
        self.budget = Budget(concurrency)
        self._pool_settings = {"idle_timeout": idle_timeout, "wait": wait}
        self.pools = {
            spec.name: Pool(
                spec,
                owners.get(spec.name),
                idle_timeout=idle_timeout,
                budget=self.budget,
                wait=wait,
                environment=environment,
            )
            for spec in specs
        }
        self.invoker = Invoker(self.pools)
        self.region = region()
        self.autoscaler = Autoscaler(self.pools, policy)
        self._scaling: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        target: Target,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
        wait: float = DEFAULT_WAIT,
        state_dir: Path | None = None,
        policy: Policy | None = DEFAULT_POLICY,
        environment: Mapping[str, str] | None = None,
        overrides: Overrides | None = None,
        sandbox: bool = True,
        debug: Mapping[str, str] | None = None,
    ) -> Platform:
        """Load `target` and run its init phase. Raises DeclarationError / LoadError.

        `state_dir` (default: `.skylift/` beside the app) is only touched by
        `start_sources`, so `skylift invoke` leaves no trace. `policy` drives the
        autoscaler (None: instances start on demand only). `environment` is the
        platform's part of every instance's environment, set before its init phase
        (`environ.aws_environment(server_url)`; by default endpoints that reach nothing);
        `overrides` are `--env-vars` values. `sandbox` puts every forked instance in a
        sandbox of its own (`engine/sandboxing.py`). `debug` names functions whose
        instances a debugger drives, and how (`engine/debugging.py`).
        """
        environment = dict(offline_environment() if environment is None else environment)
        overrides = overrides or {}
        state_dir = state_dir or Path(app_home(target)) / ".skylift"
        loaded, jail = await load_checked(
            target,
            environment,
            overrides,
            sandbox=sandbox,
            state_dir=state_dir,
            debug=debug,
            concurrency=concurrency,
        )
        platform = cls(
            loaded.zygotes,
            loaded.specs,
            loaded.owners,
            loaded.resources,
            state_dir,
            idle_timeout=idle_timeout,
            concurrency=concurrency,
            wait=wait,
            policy=policy,
            environment=environment,
        )
        platform.sandbox = jail
        for pool in platform.pools.values():  # spawned and Runtime API instances enter it too
            pool.sandbox = jail.settings()
        platform.target, platform.overrides = target, overrides
        platform._scaling = asyncio.ensure_future(platform.autoscaler.run())
        return platform

    def sandbox_line(self) -> str | None:
        """What the instance sandbox does on this host, in one line."""
        if self.sandbox is None:
            return None
        reports = [z.ready.get("namespaces") for z in self.zygotes]
        line = self.sandbox.describe(all(reports) if reports and self.sandbox.enabled else None)
        problems = sorted(
            {str(p) for z in self.zygotes if (p := z.ready.get("namespaces_problem"))}
        )
        return line + (f" ({'; '.join(problems)})" if problems else "")

    async def start_sources(
        self,
        *,
        fast_retries: bool = False,
        state_url: str | None = None,
        schedule_speed: float = 1.0,
        node_url: str = "",
        objects_dir: Path | str | None = None,
        poll_queues: bool = True,
    ) -> None:
        """Open the app's state, create its queues and buckets, and start the triggers
        that fire by themselves (schedules, queue pollers, upload notifications).

        `state_url` (`redis://host:port/db`) keeps the queues and async events in Redis
        instead of `queues.db` and `async.db`, and makes this server a node of the cluster
        on that Redis, listed with `node_url`. Objects stay in `state_dir`, or in
        `objects_dir`, a folder other nodes may share, or an S3 endpoint (an `s3://` URL).
        `poll_queues=False` leaves the queues' messages to the other nodes (a front node
        whose workers scale apart).
        """
        from skylift.cluster.members import Membership
        from skylift.engine.state import State
        from skylift.sources.runner import Sources

        self.state = State.open(self.state_dir, self.region, state_url, objects_dir)
        await self.state.ensure(self.resources)
        self.sources = Sources(
            list(self.specs.values()),
            self.invoker,
            self.state,
            fast_retries=fast_retries,
            schedule_speed=schedule_speed,
            poll_queues=poll_queues,
        )
        await self.sources.open()
        if self.state.node is not None:
            self.membership = Membership(self.state.node, node_url, self._node_report)
            await self.membership.join()
            self.state.node.health.start()  # logs and counts Redis outages
        self.sources.start()
        for pool in self.pools.values():
            # Provisioned instances are warm before the first request; one that cannot
            # start is logged and tried again later, as Lambda retries provisioning.
            await pool.fill_or_log()
        self.autoscaler.prewarm = True  # only a server keeps instances warm ahead of use

    def add_function(self, spec: FunctionSpec, zygote: Zygote | None) -> None:
        """Serve a function a reload added (its triggers follow with `sources.apply`)."""
        self.pools[spec.name] = Pool(
            spec,
            zygote,
            budget=self.budget,
            environment=self.environment,
            idle_timeout=self._pool_settings["idle_timeout"],
            wait=self._pool_settings["wait"],
        )
        # Sandboxed as the pools made at start: spawned and Runtime API instances too.
        self.pools[spec.name].sandbox = self.sandbox.settings() if self.sandbox else None
        self.specs[spec.name] = spec

    def remove_function(self, name: str) -> None:
        """Stop serving a function a reload removed: its instances stop (a running
        invocation of it ends as cut off) and new invocations get ResourceNotFound."""
        self.specs.pop(name, None)
        pool = self.pools.pop(name, None)
        if pool is not None:
            pool.close()

    async def warm_routes(self) -> None:
        """One warm instance of every function with HTTP routes, so a server opens its port
        ready: the first request there pays no cold start."""
        await asyncio.gather(
            *(
                self.pools[spec.name].fill_or_log(1)
                for spec in self.specs.values()
                if spec.routes and spec.debug is None  # a debugged one waits for its debugger
            )
        )

    def _node_report(self) -> dict[str, Any]:
        return {
            "functions": sorted(self.specs),
            "instances": sum(pool.size for pool in self.pools.values()),
        }

    async def leave_cluster(self) -> None:
        """Take this node off the cluster's list now (a stop's first step), within
        `LEAVE_WAIT` seconds (a Redis that does not answer: it is shown lost later)."""
        membership, self.membership = self.membership, None
        if membership is not None:
            try:
                await asyncio.wait_for(membership.leave(), LEAVE_WAIT)
            except TimeoutError:
                logger.warning("cluster: leaving the node list took over %s s", LEAVE_WAIT)

    async def close(self) -> None:
        await self.leave_cluster()
        if self.sources is not None:
            await self.sources.stop()
        if self._scaling is not None:
            self._scaling.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._scaling
        for pool in self.pools.values():
            pool.close()
        await asyncio.gather(*(z.close() for z in self.zygotes))
        if self.sandbox is not None:
            self.sandbox.close()
        if self.state is not None:
            await self.state.close()

    async def __aenter__(self) -> Platform:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def with_trigger_resources(declared: Resources, specs: list[FunctionSpec]) -> Resources:
    """The declared resources plus the queues and buckets triggers name (defaults)."""
    queues = {name: dict(attributes) for name, attributes in declared.queues.items()}
    buckets = list(declared.buckets)
    for spec in specs:
        for queue in spec.queues:
            queues.setdefault(queue.queue, {})
        for upload in spec.uploads:
            if upload.bucket not in buckets:
                buckets.append(upload.bucket)
        config = spec.async_config
        for destination in (config.on_success, config.on_failure):
            if destination and destination.kind == "queue":
                queues.setdefault(destination.name, {})
        if config.dead_letter_queue:
            queues.setdefault(config.dead_letter_queue, {})
    return Resources(queues, tuple(buckets))

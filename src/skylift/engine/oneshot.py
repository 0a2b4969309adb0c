"""One invocation with no server: what `skylift invoke` runs without --url.

The app loads exactly as `Platform.start` loads it (`loading.load_checked`: its zygotes,
the init phase, the checks, the sandbox), one instance starts as a pool would start it
(`driver.start_instance`), runs the event, and everything stops. There are no pools,
concurrency budget, autoscaler or triggers: for a single invocation none of them has
anything to do, and importing them is ~10 % of a small `skylift invoke`.

>>> async with await OneShot.start(target) as shot:  # doctest: +SKIP
...     result = await shot.invoke("change", b'{"body": "{}"}')
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path

from skylift.engine.budget import DEFAULT_CONCURRENCY
from skylift.engine.driver import start_instance
from skylift.engine.instance import InvocationResult
from skylift.engine.loading import Loaded, load_checked
from skylift.engine.sandboxing import Sandbox
from skylift.env_vars import Overrides
from skylift.errors import RESERVED_LIMIT, FunctionNotFound, TenantMismatch, Throttled
from skylift.loader import Target
from skylift.loader import home as app_home
from skylift.runtime.environ import new_trace_id, offline_environment, region
from skylift.spec import FunctionSpec


class OneShot:
    """A loaded app that runs single invocations, each on a new instance."""

    def __init__(self, loaded: Loaded, sandbox: Sandbox, environment: Mapping[str, str]):
        self.loaded = loaded
        self.sandbox = sandbox
        self.environment = environment
        self.specs: dict[str, FunctionSpec] = {spec.name: spec for spec in loaded.specs}
        self.region = region()

    @classmethod
    async def start(
        cls,
        target: Target,
        *,
        environment: Mapping[str, str] | None = None,
        overrides: Overrides | None = None,
        debug: Mapping[str, str] | None = None,
        sandbox: Sandbox | None = None,
    ) -> OneShot:
        """Load `target` and run its init phase, as `Platform.start` with its defaults
        (sandbox on; no state: `skylift invoke` leaves no trace beside the app).

        `sandbox`: made beforehand, as this would make it (taken over): `skylift
        invoke` makes it before its spare zygote starts.
        """
        environment = dict(offline_environment() if environment is None else environment)
        loaded, jail = await load_checked(
            target,
            environment,
            overrides or {},
            sandbox=True,
            state_dir=Path(app_home(target)) / ".skylift",
            debug=debug,
            concurrency=DEFAULT_CONCURRENCY,
            made=sandbox,
        )
        return cls(loaded, jail, environment)

    async def invoke(
        self, function: str, event: bytes, *, tenant_id: str | None = None
    ) -> InvocationResult:
        """Run `function` once on a new instance, as `Invoker.invoke` runs it.

        Function errors, timeouts and crashes come back in the result, never raised.
        """
        spec = self.specs.get(function)
        if spec is None:
            raise FunctionNotFound(function, list(self.specs))
        if spec.tenant_isolation != (tenant_id is not None):
            raise TenantMismatch(function, spec.tenant_isolation)
        if spec.max_concurrency == 0:  # reserved concurrency 0: the function is turned off
            raise Throttled(spec.name, RESERVED_LIMIT, 0)
        instance = await start_instance(
            spec, self.loaded.owners.get(function), self.environment, self.sandbox.settings()
        )
        try:
            result = await instance.invoke(
                str(uuid.uuid4()), event, trace_id=new_trace_id(), tenant_id=tenant_id
            )
        finally:
            instance.close()
        result.event = event
        return result

    async def close(self) -> None:
        await self.loaded.close()
        self.sandbox.close()

    async def __aenter__(self) -> OneShot:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

"""The composition root: load an app, start its zygotes, own its pools and invoker."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from skylift.engine.invoker import Invoker
from skylift.engine.pool import DEFAULT_IDLE_TIMEOUT, DEFAULT_LIMIT, Pool
from skylift.engine.zygote import Zygote
from skylift.loader import AppTarget, Target
from skylift.runtime.environ import region
from skylift.spec import FunctionSpec, validate_app

if TYPE_CHECKING:
    from skylift.sources.scheduler import Scheduler

REAP_INTERVAL = 1.0


class Platform:
    """A loaded app: its functions' specs, warm zygotes, and an invoker for them."""

    def __init__(
        self,
        zygotes: list[Zygote],
        specs: list[FunctionSpec],
        owners: dict[str, Zygote],
        *,
        idle_timeout: float,
        limit: int,
    ) -> None:
        self.zygotes = zygotes
        self.specs = {spec.name: spec for spec in specs}
        self.faults: dict[str, dict[str, Any]] = {}
        for zygote in zygotes:
            self.faults.update(zygote.ready.get("faults", {}))
        self.pools = {
            spec.name: Pool(spec, owners[spec.name], idle_timeout=idle_timeout, limit=limit)
            for spec in specs
        }
        self.invoker = Invoker(self.pools)
        self.region = region()
        self.scheduler: Scheduler | None = None
        self._reaper: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        target: Target,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        limit: int = DEFAULT_LIMIT,
    ) -> Platform:
        """Load `target` and run its init phase. Raises DeclarationError / LoadError."""
        zygotes: list[Zygote] = []
        owners: dict[str, Zygote] = {}
        specs: list[FunctionSpec] = []
        try:
            if isinstance(target, AppTarget):
                zygote = Zygote(
                    {
                        "mode": "app",
                        "code_dir": target.code_dir,
                        "module": target.module,
                        "attribute": target.attribute,
                    },
                    label=f"app {target.module!r} in {target.code_dir}",
                )
                zygotes.append(zygote)
                ready = await zygote.start()
                specs = [FunctionSpec.from_dict(s) for s in ready["specs"]]
                owners = {spec.name: zygote for spec in specs}
            else:
                from skylift.sam import load_template

                specs = load_template(target.path)
                # One zygote per function: its environment must be set before its import.
                for spec in specs:
                    zygote = Zygote(
                        {"mode": "functions", "code_dir": spec.code_dir, "specs": [spec.to_dict()]},
                        label=f"function {spec.name!r}",
                    )
                    zygotes.append(zygote)
                    owners[spec.name] = zygote
                await asyncio.gather(*(z.start() for z in zygotes))
            validate_app(specs)
        except BaseException:
            await asyncio.gather(*(z.close() for z in zygotes))
            raise
        platform = cls(zygotes, specs, owners, idle_timeout=idle_timeout, limit=limit)
        platform._reaper = asyncio.ensure_future(platform._reap_forever())
        return platform

    def start_sources(self) -> None:
        """Start the triggers that fire by themselves (schedules), as `skylift up` does."""
        from skylift.sources.scheduler import Scheduler, entries

        self.scheduler = Scheduler(
            entries(list(self.specs.values()), self.region), self.invoker, self.region
        )
        self.scheduler.start()

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(REAP_INTERVAL)
            for pool in self.pools.values():
                pool.reap()

    async def close(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for pool in self.pools.values():
            pool.close()
        await asyncio.gather(*(z.close() for z in self.zygotes))

    async def __aenter__(self) -> Platform:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

"""Loading an app's code: its zygotes (one per app, or one per SAM function), the init
phase, and the specs they report. `Platform.start` loads once (`load_checked`, as
`skylift invoke`'s `OneShot` does); a reload loads again."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skylift.engine import debugging
from skylift.engine.sandboxing import Sandbox
from skylift.engine.zygote import Zygote
from skylift.env_vars import Overrides, ignored, override
from skylift.errors import DeclarationError
from skylift.loader import AppTarget, Target
from skylift.spec import FunctionSpec, Resources
from skylift.spec_checks import validate_app, validate_destinations

logger = logging.getLogger("skylift.platform")

# Given the code folders, the sandbox settings every zygote passes to its workers.
SandboxSettings = Callable[[list[str]], dict[str, Any] | None]


@dataclass
class Loaded:
    zygotes: list[Zygote]
    owners: dict[str, Zygote | None]  # the zygote that forks each function's instances
    specs: list[FunctionSpec]
    resources: Resources

    async def close(self) -> None:
        await asyncio.gather(*(z.close() for z in self.zygotes))


async def load_code(
    target: Target,
    environment: Mapping[str, str],
    overrides: Overrides,
    sandbox: SandboxSettings,
) -> Loaded:
    """Start `target`'s zygotes and run its init phase; their specs come back.

    Raises DeclarationError / LoadError, with every zygote it started closed.
    """
    loaded = Loaded([], {}, [], Resources())
    try:
        if isinstance(target, AppTarget):
            zygote = Zygote(
                {
                    "mode": "app",
                    "code_dir": target.code_dir,
                    "module": target.module,
                    "attribute": target.attribute,
                    "environment": dict(environment),
                    "overrides": overrides,
                    "sandbox": sandbox([target.code_dir]),
                },
                label=f"app {target.module!r} in {target.code_dir}",
            )
            loaded.zygotes.append(zygote)
            ready = await zygote.start()
            loaded.specs = [FunctionSpec.from_dict(s) for s in ready["specs"]]
            loaded.owners = {spec.name: zygote for spec in loaded.specs}
            loaded.resources = Resources.from_dict(ready.get("resources", {}))
            return loaded
        from skylift.sam import build, load

        # Requirements not installed yet are installed first, pip's output on stderr.
        specs, loaded.resources = load(
            target.path,
            dict(target.parameters),
            lambda installs: build.run(installs, echo=lambda line: print(line, file=sys.stderr)),
        )
        loaded.specs = [override(spec, overrides) for spec in specs]
        # The template's folder too: its .skylift-build/ (a reload may add a folder there)
        # and layers stay readable when the app lives under /tmp.
        home = os.path.dirname(os.path.abspath(target.path))
        settings = sandbox(
            [home, *(d for spec in loaded.specs for d in (spec.code_dir, *spec.python_path))]
        )
        # One zygote per function: its environment must be set before its import.
        for spec in loaded.specs:
            if spec.runtime_command or spec.spawn:
                continue  # each instance is a process of its own: nothing to fork
            zygote = Zygote(
                {
                    "mode": "functions",
                    "code_dir": spec.code_dir,
                    "specs": [spec.to_dict()],
                    "environment": dict(environment),
                    "sandbox": settings,
                },
                label=f"function {spec.name!r}",
            )
            loaded.zygotes.append(zygote)
            loaded.owners[spec.name] = zygote
        await asyncio.gather(*(z.start() for z in loaded.zygotes))
        return loaded
    except BaseException:
        await loaded.close()
        raise


async def load_checked(
    target: Target,
    environment: Mapping[str, str],
    overrides: Overrides,
    *,
    sandbox: bool,
    state_dir: Path,
    debug: Mapping[str, str] | None,
    concurrency: int,
    made: Sandbox | None = None,
) -> tuple[Loaded, Sandbox]:
    """Load `target` in its sandbox (`Platform.start`'s arguments) and check what it
    declares: the loaded code with the specs to serve, and the sandbox, which the caller
    closes after the zygotes. Raises DeclarationError / LoadError with nothing left open.

    `made`: the sandbox, made beforehand for the code's folders (taken over, closed on
    failure), e.g. before a spare zygote starts (`skylift invoke`).
    """
    jail: Sandbox | None = made

    def settings(code_dirs: list[str]) -> dict[str, Any] | None:
        nonlocal jail
        if jail is None:
            jail = Sandbox(sandbox, state_dir, code_dirs)
        return jail.zygote_settings()

    try:
        loaded = await load_code(target, environment, overrides, settings)
        try:
            specs = loaded.specs
            validate_app(specs)
            validate_destinations(specs)
            if debug:  # after validation: a debugged function has no timeout
                specs = debugging.apply(specs, debug)
            warm = sum(spec.min_instances for spec in specs)
            if warm > concurrency:
                raise DeclarationError(
                    f"the functions' minimum instances add up to {warm}, over the "
                    f"server's --concurrency {concurrency}: lower min_instances (SAM "
                    "ProvisionedConcurrencyConfig) or raise --concurrency"
                )
            for note in ignored(specs, overrides):
                logger.warning("%s", note)
        except BaseException:
            await loaded.close()
            raise
    except BaseException:
        if jail is not None:
            jail.close()
        raise
    assert jail is not None  # every load asks for the sandbox's settings
    loaded.specs = specs
    return loaded, jail

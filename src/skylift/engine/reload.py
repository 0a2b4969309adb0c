"""Hot reload: watch the app's code and, on a change, load it again beside the old one.

The new code runs its init phase in new zygotes while the old ones keep serving. Only
when it loaded do the pools switch to it: new invocations get instances of the new code,
idle old instances stop, busy ones finish what they run and stop, and each old zygote
closes once no instance of it is left. A change that no longer loads (a syntax error, a
bad declaration) changes nothing: the old code keeps serving and the error is printed.
Routes of existing functions follow the new code too; added or removed functions, queue,
schedule or upload triggers, and scaling or asynchronous settings need a restart, which
the reload says. What the Lambda API changed (UpdateFunctionConfiguration: environment,
timeout, memory) is kept across reloads, as UpdateFunctionCode keeps it on Lambda.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from skylift.engine.loading import Loaded, load_code
from skylift.engine.zygote import Zygote
from skylift.errors import LoadError, SkyliftError
from skylift.loader import AppTarget
from skylift.spec import FunctionSpec, validate_app, validate_destinations

if TYPE_CHECKING:
    from skylift.engine.platform import Platform

logger = logging.getLogger("skylift.reload")
IGNORED_DIRS = (".skylift", ".skylift-build", ".aws-sam")
# Code and templates; data files a function or a test writes beside them do not reload.
WATCHED_SUFFIXES = (".py", ".yaml", ".yml", "requirements.txt")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Reloader:
    """Reloads `platform`'s code when its files change; `on_specs` hears the new specs
    (the server rebuilds its routes from them)."""

    def __init__(
        self,
        platform: Platform,
        on_specs: Callable[[Iterable[FunctionSpec]], None] | None = None,
        say: Callable[[str], None] = _say,
    ) -> None:
        self.platform = platform
        self.on_specs = on_specs
        self.say = say
        self.reloads = 0
        self._retiring: set[asyncio.Task[None]] = set()
        self._old: set[Zygote] = set()  # replaced zygotes whose instances still run
        # What the code declared at the last load: a spec that differs from it now was
        # changed through the Lambda API (UpdateFunctionConfiguration), and keeps that.
        self._declared: dict[str, FunctionSpec] = dict(platform.specs)
        self._lock = asyncio.Lock()

    def paths(self) -> list[str]:
        """The folders to watch: the app's, or the template's and every CodeUri."""
        target = self.platform.target
        if target is None:
            return []
        if isinstance(target, AppTarget):
            return [target.code_dir]
        folders = {str(Path(target.path).resolve().parent)}
        folders |= {spec.code_dir for spec in self.platform.specs.values()}
        # Watching a folder covers those inside it.
        return sorted(f for f in folders if not any(Path(o) in Path(f).parents for o in folders))

    async def run(self) -> None:
        """Watch until cancelled; reload after each burst of changes."""
        from watchfiles import Change, DefaultFilter, awatch

        ignored = DefaultFilter(ignore_dirs=(*DefaultFilter.ignore_dirs, *IGNORED_DIRS))

        def watched(change: Change, path: str) -> bool:
            return path.endswith(WATCHED_SUFFIXES) and ignored(change, path)

        async for changes in awatch(
            *self.paths(), watch_filter=watched, debounce=50, step=10, recursive=True
        ):
            paths = {path for _, path in changes}
            try:
                _forget_bytecode(paths)
                await self.reload(", ".join(sorted({Path(path).name for path in paths})))
            except Exception:  # a reload that breaks must not end reloading for good
                logger.exception("skylift: the reload failed; still serving the previous code")

    async def reload(self, what: str = "the code") -> bool:
        """Load the code again and switch to it; False (old code kept) if it failed."""
        async with self._lock:
            started = time.monotonic()
            platform = self.platform
            assert platform.target is not None
            sandbox = platform.sandbox
            try:
                loaded = await load_code(
                    platform.target,
                    platform.environment,
                    platform.overrides,
                    lambda _: sandbox.settings() if sandbox is not None else None,
                )
            except SkyliftError as exc:
                self.say(
                    f"skylift: {what} changed but does not load; still serving the "
                    f"previous code:\n{exc}"
                )
                return False
            try:
                validate_app(loaded.specs)
                validate_destinations(loaded.specs)
                _check_init(loaded)
            except SkyliftError as exc:
                await loaded.close()
                self.say(
                    f"skylift: {what} changed but does not load; still serving the "
                    f"previous code:\n{exc}"
                )
                return False
            self._switch(loaded)
            self.reloads += 1
            elapsed = (time.monotonic() - started) * 1000
            self.say(f"skylift: reloaded after a change to {what} ({elapsed:.0f} ms)")
            return True

    def _switch(self, loaded: Loaded) -> None:
        platform = self.platform
        new = {spec.name: spec for spec in loaded.specs}
        added = sorted(set(new) - set(platform.specs))
        removed = sorted(set(platform.specs) - set(new))
        changed = sorted(
            name
            for name in set(new) & set(platform.specs)
            if _triggers(new[name]) != _triggers(platform.specs[name])
        )
        for name, declared in new.items():
            pool = platform.pools.get(name)
            if pool is None:
                continue
            spec, kept_environment = self._keep_api_changes(name, declared)
            # A zygote loaded the code with its declared environment: with one set through
            # the API instead, new instances are fresh interpreters given the spec.
            pool.update(spec, None if kept_environment else loaded.owners.get(name))
            platform.specs[name] = spec
        self._declared = dict(new)
        if self.on_specs is not None:
            self.on_specs(platform.specs.values())
        old = platform.zygotes
        kept = [z for z in old if any(p.zygote is z for p in platform.pools.values())]
        platform.zygotes = [*loaded.zygotes, *kept]
        for zygote in old:
            if zygote not in kept:
                self._old.add(zygote)
                task = asyncio.ensure_future(self._retire(zygote))
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)
        unapplied = [
            f"{label}: {', '.join(names)}"
            for label, names in (
                ("new functions", added),
                ("removed functions", removed),
                ("changed triggers, scaling, async or start settings", changed),
            )
            if names
        ]
        if unapplied:
            self.say(
                "skylift: restart `skylift up` to apply "
                + "; ".join(unapplied)
                + " (the code of the others is reloaded)"
            )

    def _keep_api_changes(self, name: str, declared: FunctionSpec) -> tuple[FunctionSpec, bool]:
        """`declared` with what the Lambda API changed since the last load kept; True
        when that includes the environment."""
        current, before = self.platform.specs.get(name), self._declared.get(name)
        if current is None or before is None:
            return declared, False
        changes = {
            field: getattr(current, field)
            for field in ("environment", "timeout", "memory")
            if getattr(current, field) != getattr(before, field)
        }
        return dataclasses.replace(declared, **changes), "environment" in changes

    async def _retire(self, zygote: Zygote) -> None:
        """Close an old zygote once no instance forked from it is left."""
        while any(pool.forked_from(zygote) for pool in self.platform.pools.values()):
            await asyncio.sleep(0.1)
        await zygote.close()
        self._old.discard(zygote)  # only now: a close cut off at shutdown is finished there

    async def close(self) -> None:
        """Close the old zygotes still waiting for their instances (the server stops)."""
        for task in list(self._retiring):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(zygote.close() for zygote in self._old))
        self._old.clear()


def _forget_bytecode(paths: Iterable[str]) -> None:
    """Remove the cached bytecode of changed modules: Python trusts a .pyc whose source
    has the same size and modification second, so an edit saved within a second of the
    last import (a digit changed) would otherwise load the old code."""
    import importlib.util

    for path in paths:
        if path.endswith(".py"):
            with contextlib.suppress(OSError, ValueError):
                Path(importlib.util.cache_from_source(path)).unlink()


def _check_init(loaded: Loaded) -> None:
    """A SAM function whose import failed would answer every invocation with the error:
    on a reload, keep the old code instead."""
    for zygote in loaded.zygotes:
        for name, fault in zygote.ready.get("faults", {}).items():
            raise LoadError(f"function {name!r}: {fault['errorType']}: {fault['errorMessage']}")


def _triggers(spec: FunctionSpec) -> tuple[object, ...]:
    """What a reload does not apply (a restart does): triggers that fire by themselves,
    scaling settings, asynchronous settings, and how instances start."""
    return (
        spec.queues,
        spec.schedules,
        spec.uploads,
        spec.min_instances,
        spec.max_concurrency,
        spec.idle_timeout,
        spec.async_config,
        spec.code_dir,
        spec.spawn,
        spec.runtime_command,
    )

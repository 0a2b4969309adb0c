"""Hot reload: watch the app's code and, on a change, load it again beside the old one.

The new code runs its init phase in new zygotes while the old ones keep serving. Only
when it loaded do the pools switch to it: new invocations get instances of the new code,
idle old instances stop, busy ones finish what they run and stop, and each old zygote
closes once no instance of it is left. A change that no longer loads (a syntax error, a
bad declaration) changes nothing: the old code keeps serving and the error is printed.
Routes follow the new code too, and so do added and removed functions and their queue,
schedule and upload triggers (new queues and buckets are created); scaling, asynchronous
and start settings of existing functions need a restart, which the reload says. What
the Lambda API changed (UpdateFunctionConfiguration: environment, timeout, memory) is
kept across reloads, as UpdateFunctionCode keeps it on Lambda.

With `keep_previous` (an alert policy with a `rollback` action sets it), the version a
reload replaces stays loaded, its zygotes up, until the next reload: `rollback(name)`
switches a function back to it, and `undo_rollback` forward again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from skylift.engine import watch, zygote_process
from skylift.engine.loading import Loaded, load_code
from skylift.engine.recording import Record, ignore
from skylift.engine.zygote import Zygote
from skylift.errors import LoadError, SkyliftError
from skylift.loader import AppTarget
from skylift.spec import FunctionSpec
from skylift.spec_checks import validate_app, validate_destinations

if TYPE_CHECKING:
    from skylift.engine.platform import Platform

logger = logging.getLogger("skylift.reload")
IGNORED_DIRS = (".skylift", ".skylift-build", ".aws-sam")
# Code and templates; data files a function or a test writes beside them do not reload.
WATCHED_SUFFIXES = (".py", ".yaml", ".yml", "requirements.txt")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Version:
    """What the pools ran before a reload, kept loaded while a rollback may want it."""

    loaded_at: float
    pools: dict[str, tuple[FunctionSpec, Zygote | None]]
    declared: dict[str, FunctionSpec]
    zygotes: tuple[Zygote, ...]


@dataclass(frozen=True)
class Switched:
    """A function a rollback switched to its previous version: what undo goes back to."""

    function: str
    spec: FunctionSpec
    zygote: Zygote | None
    declared: FunctionSpec | None
    reload: int  # the reload it undid: after a later one, undo has nothing to go back to
    loaded_at: float  # when the version now served was loaded
    replaced_loaded_at: float  # when the version switched away from was loaded


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
        self.sources_changed = False  # by the last switch: triggers to restart
        self.record: Record = ignore  # reloads are events `skylift describe` lists
        self._retiring: set[asyncio.Task[None]] = set()
        self._old: set[Zygote] = set()  # replaced zygotes whose instances still run
        # What the code declared at the last load: a spec that differs from it now was
        # changed through the Lambda API (UpdateFunctionConfiguration), and keeps that.
        self._declared: dict[str, FunctionSpec] = dict(platform.specs)
        self._lock = asyncio.Lock()
        self.keep_previous = False
        self.previous: Version | None = None
        self.loaded_at = time.time()  # of the code the pools serve

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
        self._keep_spares()
        async for paths in watch.code_changes(self.paths(), IGNORED_DIRS, WATCHED_SUFFIXES):
            try:
                _forget_bytecode(paths)
                names = ", ".join(sorted({Path(path).name for path in paths}))
                await self.reload(names or "the code")  # none: the kernel lost them
            except Exception:  # a reload that breaks must not end reloading for good
                logger.exception("skylift: the reload failed; still serving the previous code")
            self._keep_spares()

    def _keep_spares(self) -> None:
        """Keep one zygote interpreter started ahead for each code folder, so the next
        reload's new zygote skips the interpreter's start (~40 ms of the reload): one
        idle process per folder while reloading is on (`--no-reload` starts none)."""
        try:
            for zygote in self.platform.zygotes:
                zygote_process.start_spare(zygote.setup["code_dir"])
        except OSError as exc:  # no process to spare (a limit): reloads start their own
            logger.warning("skylift: could not start a spare zygote: %s", exc)

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
                    lambda _: sandbox.zygote_settings() if sandbox is not None else None,
                )
            except SkyliftError as exc:
                self._failed(what, exc)
                return False
            try:
                validate_app(loaded.specs)
                validate_destinations(loaded.specs)
                _check_init(loaded)
            except SkyliftError as exc:
                await loaded.close()
                self._failed(what, exc)
                return False
            self._switch(loaded)
            if self.sources_changed:
                try:
                    await self._apply_sources(loaded)
                except Exception as exc:  # the code switched; its triggers did not all follow
                    self.say(
                        f"skylift: reloaded {what}, but its queue, schedule or upload triggers "
                        f"could not all be applied ({exc}); restart `skylift up` to apply them"
                    )
            self.reloads += 1
            elapsed = (time.monotonic() - started) * 1000
            self.say(f"skylift: reloaded after a change to {what} ({elapsed:.0f} ms)")
            for name in platform.specs:
                self.record(name, "Reloaded", f"new code after a change to {what}")
            return True

    def _failed(self, what: str, exc: SkyliftError) -> None:
        self.say(
            f"skylift: {what} changed but does not load; still serving the previous code:\n{exc}"
        )
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        # The first line says what failed; an import's traceback ends with why.
        first = " … ".join(lines[:1] + lines[-1:] if len(lines) > 1 else lines)
        first = first or type(exc).__name__
        for name in self.platform.specs:
            self.record(name, "ReloadFailed", f"{what} does not load, old code kept: {first}")

    def _switch(self, loaded: Loaded) -> None:
        platform = self.platform
        before = {name: (pool.spec, pool.zygote) for name, pool in platform.pools.items()}
        declared_before = dict(self._declared)
        new = {spec.name: spec for spec in loaded.specs}
        added = sorted(set(new) - set(platform.specs))
        removed = sorted(set(platform.specs) - set(new))
        changed = sorted(
            name
            for name in set(new) & set(platform.specs)
            if _settings(new[name]) != _settings(platform.specs[name])
        )
        self.sources_changed = bool(added or removed) or any(
            _sources(new[name]) != _sources(platform.specs[name])
            for name in set(new) & set(platform.specs)
        )
        for name in removed:
            platform.remove_function(name)
        for name in added:
            platform.add_function(new[name], loaded.owners.get(name))
            platform.faults.update(
                {k: v for z in loaded.zygotes for k, v in z.ready.get("faults", {}).items()}
            )
        for name, declared in new.items():
            pool = platform.pools.get(name)
            if pool is None or name in added:
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
        leaving = [z for z in old if z not in kept]
        if self.keep_previous:
            earlier = self.previous.zygotes if self.previous is not None else ()
            held = {z for _, z in before.values() if z is not None}
            candidates = list(dict.fromkeys([*leaving, *earlier]))
            self.previous = Version(
                self.loaded_at,
                before,
                declared_before,
                tuple(z for z in candidates if z in held),
            )
            leaving = [z for z in candidates if z not in held and z not in platform.zygotes]
        self.loaded_at = time.time()
        for zygote in leaving:
            self._old.add(zygote)
            task = asyncio.ensure_future(self._retire(zygote))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        for label, names in (("added", added), ("removed", removed)):
            if names:
                self.say(f"skylift: {label} {', '.join(names)}")
        if changed:
            self.say(
                "skylift: restart `skylift up` to apply the changed scaling, async or start "
                f"settings of {', '.join(changed)} (their code is reloaded)"
            )

    async def _apply_sources(self, loaded: Loaded) -> None:
        """New queues and buckets created; queue mappings, schedules, upload
        notifications and asynchronous invocations follow the new triggers."""
        from skylift.engine.platform import with_trigger_resources

        platform = self.platform
        specs = list(platform.specs.values())
        platform.resources = with_trigger_resources(loaded.resources, specs)
        if platform.state is not None:
            await platform.state.ensure(platform.resources)
        if platform.sources is not None:
            await platform.sources.apply(specs)

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

    def rollback(self, name: str) -> Switched:
        """Serve function `name` from the version before the last reload again.

        Raises ValueError saying why there is nothing to go back to.
        """
        previous, pool = self.previous, self.platform.pools.get(name)
        if not self.keep_previous or previous is None or pool is None:
            raise ValueError(f"{name}'s code has not been reloaded since the server started")
        spec, zygote = previous.pools.get(name, (None, None))
        if spec is None or zygote is None or zygote not in previous.zygotes:
            raise ValueError(
                f"{name}'s previous version is not kept loaded: only a function forked from "
                "its code's zygote (not spawn, not a runtime command) keeps it"
            )
        if pool.zygote is zygote:
            raise ValueError(f"{name} serves its previous version already")
        switched = Switched(
            name, pool.spec, pool.zygote, self._declared.get(name), self.reloads,
            previous.loaded_at, self.loaded_at,
        )  # fmt: skip
        self._serve(name, spec, zygote, previous.declared.get(name))
        self.say(
            f"skylift: rolled back {name} to the code it ran before the last reload "
            "(the files on disk are unchanged; the next edit reloads as usual)"
        )
        return switched

    def undo_rollback(self, switched: Switched) -> None:
        """Serve what `rollback` switched away from again. Raises ValueError when a
        reload replaced it since."""
        if switched.reload != self.reloads or switched.zygote not in self.platform.zygotes:
            raise ValueError(
                f"the code was reloaded since the rollback: {switched.function} serves "
                "the newest code already"
            )
        self._serve(switched.function, switched.spec, switched.zygote, switched.declared)
        self.say(f"skylift: {switched.function} serves its reloaded code again (rollback undone)")

    def _serve(
        self, name: str, spec: FunctionSpec, zygote: Zygote | None, declared: FunctionSpec | None
    ) -> None:
        self.platform.pools[name].update(spec, zygote)
        self.platform.specs[name] = spec
        if declared is not None:
            self._declared[name] = declared
        if self.on_specs is not None:
            self.on_specs(self.platform.specs.values())

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
        zygote_process.drop_spares()
        kept = set(self.previous.zygotes) if self.previous is not None else set()
        await asyncio.gather(*(zygote.close() for zygote in self._old | kept))
        self._old.clear()
        self.previous = None


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


def _sources(spec: FunctionSpec) -> tuple[object, ...]:
    """The triggers that fire by themselves: a reload restarts what changed of them."""
    return (spec.queues, spec.schedules, spec.uploads)


def _settings(spec: FunctionSpec) -> tuple[object, ...]:
    """What a reload does not apply (a restart does): scaling settings, asynchronous
    settings, and how instances start."""
    return (
        spec.min_instances,
        spec.max_concurrency,
        spec.idle_timeout,
        spec.async_config,
        spec.code_dir,
        spec.spawn,
        spec.runtime_command,
    )

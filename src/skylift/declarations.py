"""Functions declared by `App`'s decorators: the settings a decorator takes, and how
stacked decorators on one handler merge into one `FunctionSpec` (a trigger each, the
settings once: two decorators that set one setting differently fail)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypedDict

from skylift.errors import DeclarationError
from skylift.log_config import LogConfig
from skylift.spec import DEFAULT_MEMORY, DEFAULT_TIMEOUT, DEFAULT_TMP, FunctionSpec
from skylift.spec_checks import validate_function
from skylift.triggers import AsyncConfig


class TriggerOptions(TypedDict, total=False):
    """Settings every decorator accepts for the function it declares."""

    timeout: float
    memory: int
    environment: Mapping[str, str] | None
    log_format: str  # "Text" (default) or "JSON": Lambda's LoggingConfig.LogFormat
    log_level: str | None  # ApplicationLogLevel (JSON only): TRACE, DEBUG, INFO, ...


class FunctionOptions(TriggerOptions, total=False):
    max_concurrency: int | None  # reserved concurrency of the function
    min_instances: int  # instances kept warm (provisioned concurrency)
    idle_timeout: float | None  # seconds an idle instance stays warm (None: the server's)
    spawn: bool  # a fresh interpreter per instance instead of a fork of the app's zygote
    ephemeral_storage: int  # MB of /tmp (Lambda's EphemeralStorage), 512 to 10240


_SETTINGS = (
    "timeout",
    "memory",
    "environment",
    "max_concurrency",
    "min_instances",
    "async_config",
    "runtime_command",
    "idle_timeout",
    "spawn",
    "log_format",
    "log_level",
    "ephemeral_storage",
)


@dataclass
class Declared:
    """A handler and the spec its decorators declare so far."""

    spec: FunctionSpec
    fn: Callable[..., Any]
    explicit: dict[str, Any]  # settings a decorator gave, to merge stacked decorators


def declare(
    functions: dict[str, Declared],
    fn: Callable[..., Any],
    name: str | None,
    options: Mapping[str, Any],
) -> Declared:
    """The function `fn` declares (under `name`, else its own) with a decorator's
    `options`, added to `functions`: a second decorator on the same handler adds its
    triggers and settings to the first's, and may not contradict them."""
    if not callable(fn):
        raise DeclarationError(f"{fn!r} is not callable: decorate a function")
    fname = name or fn.__name__
    explicit = {k: options[k] for k in _SETTINGS if k in options}
    existing = functions.get(fname)
    if existing is None:
        spec = FunctionSpec(
            name=fname,
            handler=f"{fn.__module__}.{fn.__name__}",
            code_dir="",
            timeout=explicit.get("timeout", DEFAULT_TIMEOUT),
            memory=explicit.get("memory", DEFAULT_MEMORY),
            environment=dict(explicit.get("environment") or {}),
            max_concurrency=explicit.get("max_concurrency"),
            min_instances=explicit.get("min_instances", 0),
            async_config=explicit.get("async_config", AsyncConfig()),
            runtime_command=tuple(explicit.get("runtime_command", ())),
            idle_timeout=explicit.get("idle_timeout"),
            spawn=explicit.get("spawn", False),
            log_config=LogConfig(explicit.get("log_format", "Text"), explicit.get("log_level")),
            ephemeral_storage=explicit.get("ephemeral_storage", DEFAULT_TMP),
        )
        validate_function(spec)
        declared = functions[fname] = Declared(spec, fn, explicit)
        return declared
    if existing.fn is not fn:
        raise DeclarationError(
            f"function name {fname!r} is declared twice (by {existing.fn.__qualname__} "
            f"and {fn.__qualname__}): rename one, or pass name=..."
        )
    for key, value in explicit.items():
        if key in existing.explicit and existing.explicit[key] != value:
            raise DeclarationError(
                f"stacked decorators give different values for {key} "
                f"({existing.explicit[key]!r} and {value!r}): set it on one decorator",
                function=fname,
            )
    existing.explicit.update(explicit)
    if "environment" in explicit:
        explicit["environment"] = dict(explicit["environment"] or {})
    if "log_format" in explicit or "log_level" in explicit:
        explicit["log_config"] = LogConfig(
            explicit.pop("log_format", existing.spec.log_config.format),
            explicit.pop("log_level", existing.spec.log_config.level),
        )
    existing.spec = replace(existing.spec, **explicit)
    return existing

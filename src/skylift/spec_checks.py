"""Declaration-time checks of `FunctionSpec`s, one by one and as an app: each failure is
a `DeclarationError` that names the function and says what to change."""

from __future__ import annotations

import re
from collections.abc import Iterable

from skylift.errors import DeclarationError
from skylift.spec import (
    CONTROL_PREFIX,
    DEFAULT_TMP,
    HTTP_METHODS,
    MAX_IDLE_TIMEOUT,
    MAX_MEMORY,
    MAX_TIMEOUT,
    MAX_TMP,
    MIN_MEMORY,
    PROVIDED_RUNTIMES,
    PYTHON_RUNTIME,
    RESERVED_ENV,
    FunctionSpec,
    HttpRoute,
)
from skylift.triggers import QueueTrigger, ScheduleTrigger, UploadTrigger

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ENV_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_HANDLER = re.compile(r"^[^\s.][^\s]*\.[A-Za-z_][A-Za-z0-9_]*$")
_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_.-]*)(\+?)\}$")


def validate_function(spec: FunctionSpec) -> FunctionSpec:
    """Check one spec on its own; raise `DeclarationError` saying what to change."""
    name = spec.name

    def fail(message: str) -> DeclarationError:
        return DeclarationError(message, function=name)

    if not _NAME.match(name):
        raise DeclarationError(
            f"function name {name!r} is invalid: use 1-64 letters, digits, '-' or '_'"
        )
    if spec.runtime_command:
        # Any process speaking the Runtime API: the handler is the runtime's business.
        if spec.runtime not in PROVIDED_RUNTIMES and not PYTHON_RUNTIME.match(spec.runtime):
            raise fail(
                f"runtime {spec.runtime!r} is not supported: use provided.al2023, "
                "provided.al2 or python3.x"
            )
        if not all(isinstance(part, str) and part for part in spec.runtime_command):
            raise fail("runtime_command must be a list of non-empty strings")
    else:
        if not _HANDLER.match(spec.handler):
            raise fail(
                f"handler {spec.handler!r} is invalid: write it as 'module.function', "
                "e.g. 'app.lambda_handler'"
            )
        if not PYTHON_RUNTIME.match(spec.runtime):
            hint = (
                "a provided runtime needs a bootstrap executable in CodeUri"
                if spec.runtime in PROVIDED_RUNTIMES
                else "use python3.x, e.g. python3.11"
            )
            raise fail(f"runtime {spec.runtime!r} is not supported here: {hint}")
    if isinstance(spec.timeout, bool) or not isinstance(spec.timeout, int | float):
        raise fail(f"timeout must be a number of seconds, got {spec.timeout!r}")
    if not 1 <= spec.timeout <= MAX_TIMEOUT:
        raise fail(f"timeout {spec.timeout} is out of range: use 1 to {MAX_TIMEOUT} seconds")
    if isinstance(spec.memory, bool) or not isinstance(spec.memory, int):
        raise fail(f"memory must be a whole number of MB, got {spec.memory!r}")
    if not MIN_MEMORY <= spec.memory <= MAX_MEMORY:
        raise fail(f"memory {spec.memory} MB is out of range: use {MIN_MEMORY} to {MAX_MEMORY}")
    tmp = spec.ephemeral_storage
    if isinstance(tmp, bool) or not isinstance(tmp, int) or not DEFAULT_TMP <= tmp <= MAX_TMP:
        raise fail(f"ephemeral_storage (MB of /tmp) must be {DEFAULT_TMP} to {MAX_TMP}: {tmp!r}")
    if spec.max_concurrency is not None and (
        isinstance(spec.max_concurrency, bool)
        or not isinstance(spec.max_concurrency, int)
        or spec.max_concurrency < 0
    ):
        raise fail(
            "max_concurrency must be a whole number >= 0 (0 turns the function off) or None, "
            f"got {spec.max_concurrency!r}"
        )
    if (
        isinstance(spec.min_instances, bool)
        or not isinstance(spec.min_instances, int)
        or spec.min_instances < 0
    ):
        raise fail(f"min_instances must be a whole number >= 0, got {spec.min_instances!r}")
    if spec.max_concurrency is not None and spec.min_instances > spec.max_concurrency:
        raise fail(
            f"min_instances {spec.min_instances} exceeds max_concurrency "
            f"{spec.max_concurrency}: lower one or raise the other"
        )
    if spec.idle_timeout is not None and (
        isinstance(spec.idle_timeout, bool)
        or not isinstance(spec.idle_timeout, int | float)
        or not 0 < spec.idle_timeout <= MAX_IDLE_TIMEOUT
    ):
        raise fail(
            f"idle_timeout must be a number of seconds from 0 to {MAX_IDLE_TIMEOUT} "
            f"(or None for the server's default), got {spec.idle_timeout!r}"
        )
    if (problem := spec.log_config.problem()) is not None:
        raise fail(problem)
    if not isinstance(spec.spawn, bool):
        raise fail(f"spawn must be True or False, got {spec.spawn!r}")
    if spec.spawn and spec.runtime_command:
        raise fail(
            "spawn and runtime_command both choose how instances start: a runtime_command "
            "process is already a fresh one, so drop spawn=True"
        )
    for key, value in spec.environment.items():
        if not isinstance(key, str) or not _ENV_KEY.match(key):
            raise fail(
                f"environment variable name {key!r} is invalid: start with a letter, "
                "then letters, digits or '_'"
            )
        if key in RESERVED_ENV:
            raise fail(f"environment variable {key} is reserved by Lambda: choose another name")
        if not isinstance(value, str):
            raise fail(
                f"environment variable {key} must be a string, got {type(value).__name__}: quote it"
            )
    for route in spec.routes:
        validate_route(route, name)
    if spec.url is not None:
        spec.url.validate(name)
        if spec.tenant_isolation:
            raise fail(
                "a function URL cannot invoke a function with tenant isolation (it passes no "
                "tenant id): drop the URL or the tenant isolation"
            )
    triggers: list[QueueTrigger | ScheduleTrigger | UploadTrigger] = [
        *spec.queues,
        *spec.schedules,
        *spec.uploads,
    ]
    for trigger in triggers:
        trigger.validate(name)
    spec.async_config.validate(name)
    return spec


def validate_route(route: HttpRoute, function: str) -> None:
    def fail(message: str) -> DeclarationError:
        return DeclarationError(message, function=function)

    if route.payload not in ("1.0", "2.0"):
        raise fail(f"payload format {route.payload!r} is unknown: use '1.0' (REST) or '2.0'")
    if route.api == "rest" and route.payload != "1.0":
        raise fail("a REST API route delivers payload format 1.0 only: drop payload='2.0'")
    if not route.methods:
        raise fail(f"route {route.path!r} has no methods: list at least one, or 'ANY'")
    for method in route.methods:
        if method not in HTTP_METHODS:
            raise fail(
                f"HTTP method {method!r} on {route.path!r} is unknown: use one of "
                + ", ".join(sorted(HTTP_METHODS))
            )
    if route.path == "$default":
        if route.api != "http":
            raise fail("'$default' is an HTTP API route; use '/{proxy+}' for a REST API")
        return
    if not route.path.startswith("/"):
        raise fail(f"route path {route.path!r} must start with '/'")
    if route.path.split("/")[1] == CONTROL_PREFIX.strip("/"):
        raise fail(
            f"route path {route.path!r} is under {CONTROL_PREFIX}, skylift's control API "
            "(`skylift status`, `skylift scale`): choose another path"
        )
    segments = route.path.split("/")[1:]
    seen: set[str] = set()
    for i, segment in enumerate(segments):
        if segment == "" and i != len(segments) - 1:
            raise fail(f"route path {route.path!r} has an empty segment ('//'): remove it")
        if "{" in segment or "}" in segment:
            match = _PARAM.match(segment)
            if not match:
                raise fail(
                    f"route path {route.path!r}: segment {segment!r} is not a parameter; "
                    "write a whole segment as {name} or a last segment as {name+}"
                )
            param, greedy = match.groups()
            if greedy and i != len(segments) - 1:
                raise fail(f"route path {route.path!r}: greedy {{{param}+}} must be last")
            if param in seen:
                raise fail(f"route path {route.path!r} repeats the parameter {param!r}")
            seen.add(param)


def validate_app(specs: Iterable[FunctionSpec]) -> list[FunctionSpec]:
    """Validate every spec and the set as a whole (unique names, unique routes)."""
    checked: list[FunctionSpec] = []
    names: set[str] = set()
    routes: dict[tuple[str, str], str] = {}
    for spec in specs:
        validate_function(spec)
        if spec.name in names:
            raise DeclarationError(
                f"function name {spec.name!r} is declared twice: give each function its own"
            )
        names.add(spec.name)
        for route in spec.routes:
            # One port serves both payload formats, and parameter names do not
            # distinguish routes: /a/{x} (REST) and /a/{y} (HTTP API) collide.
            shape = re.sub(r"\{[^}+]+\}", "{}", re.sub(r"\{[^}]+\+\}", "{+}", route.path))
            for method in route.methods:
                key = (method, shape)
                if key in routes:
                    raise DeclarationError(
                        f"route {method} {route.path} is already served by function "
                        f"{routes[key]!r}: change the path or the method",
                        function=spec.name,
                    )
                routes[key] = spec.name
        checked.append(spec)
    return checked


def validate_destinations(specs: Iterable[FunctionSpec]) -> None:
    """Check, once the whole app is known, that destination functions exist."""
    specs = list(specs)
    names = {spec.name for spec in specs}
    for spec in specs:
        for destination in (spec.async_config.on_success, spec.async_config.on_failure):
            if destination and destination.kind == "function" and destination.name not in names:
                raise DeclarationError(
                    f"destination function {destination.name!r} is not declared: declare it, "
                    "or send the records to a queue",
                    function=spec.name,
                )

"""The one internal model of a function and its triggers.

Both front doors (the `App` decorators and the SAM template loader) produce
`FunctionSpec`s; everything downstream (zygotes, pools, the gateway) reads only these.
Validation happens here, at declaration time, so a bad declaration fails when the app
loads with a message naming the function and what to change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from skylift.errors import DeclarationError
from skylift.function_urls import FunctionUrl
from skylift.log_config import LogConfig
from skylift.route_access import RouteAccess
from skylift.triggers import AsyncConfig, QueueTrigger, ScheduleTrigger, UploadTrigger

PayloadVersion = Literal["1.0", "2.0"]
ApiKind = Literal["rest", "http"]

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})
DEFAULT_TIMEOUT = 3
MAX_TIMEOUT = 900
CONTROL_PREFIX = "/_skylift/"  # the server's own API; no route may live under it
MAX_IDLE_TIMEOUT = 86400  # a day: an instance idle longer than that is surely not needed
DEFAULT_MEMORY = 128
MIN_MEMORY, MAX_MEMORY = 128, 10240
# /tmp's size in MB (Lambda's EphemeralStorage): 512 by default, up to 10,240.
DEFAULT_TMP, MAX_TMP = 512, 10240
DEFAULT_RUNTIME = "python3.11"

# Lambda refuses these in a function's Environment.Variables; so do we.
RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ENV_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_HANDLER = re.compile(r"^[^\s.][^\s]*\.[A-Za-z_][A-Za-z0-9_]*$")
_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_.-]*)(\+?)\}$")
PYTHON_RUNTIME = re.compile(r"^python3\.\d+$")
PROVIDED_RUNTIMES = frozenset({"provided.al2023", "provided.al2"})


@dataclass(frozen=True)
class HttpRoute:
    """One HTTP trigger: `methods` on `path`, delivered as an API Gateway event.

    `api` is the kind of API Gateway in front: "rest" (payload "1.0" only) or "http"
    (payload "2.0", or "1.0" when a SAM HttpApi event asks for it); it decides the error
    responses. `path` may hold `{name}` parameters and a final greedy `{name+}`;
    "$default" catches everything.
    """

    path: str
    methods: tuple[str, ...] = ("ANY",)
    payload: PayloadVersion = "2.0"
    api: ApiKind | None = None  # None: "rest" for payload 1.0, "http" for 2.0
    # Authorizer, API key and request checks before the function runs (SAM's Auth, ...).
    access: RouteAccess | None = None

    def __post_init__(self) -> None:
        if self.api is None:
            object.__setattr__(self, "api", "rest" if self.payload == "1.0" else "http")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "methods": list(self.methods),
            "payload": self.payload,
            "api": self.api,
            "access": None if self.access is None else self.access.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HttpRoute:
        access = data.get("access")
        return cls(
            data["path"],
            tuple(data["methods"]),
            data["payload"],
            data.get("api"),
            None if access is None else RouteAccess.from_dict(access),
        )


@dataclass(frozen=True)
class FunctionSpec:
    """Everything skylift needs to run one function, as plain data.

    >>> FunctionSpec(name="change", handler="app.change", code_dir="/srv/app")
    ... # doctest: +SKIP
    """

    name: str
    handler: str
    code_dir: str
    runtime: str = DEFAULT_RUNTIME
    timeout: float = DEFAULT_TIMEOUT
    memory: int = DEFAULT_MEMORY
    environment: Mapping[str, str] = field(default_factory=dict)
    max_concurrency: int | None = None
    min_instances: int = 0  # kept warm, like provisioned concurrency
    routes: tuple[HttpRoute, ...] = ()
    queues: tuple[QueueTrigger, ...] = ()
    schedules: tuple[ScheduleTrigger, ...] = ()
    uploads: tuple[UploadTrigger, ...] = ()
    async_config: AsyncConfig = field(default_factory=AsyncConfig)
    # A process speaking the Lambda Runtime API runs each instance instead of a fork.
    runtime_command: tuple[str, ...] = ()
    # Seconds an instance stays warm without work before it is reaped (None: the server's).
    idle_timeout: float | None = None
    # A fresh interpreter per instance (imports the code itself) instead of a fork.
    spawn: bool = False
    log_config: LogConfig = field(default_factory=LogConfig)
    ephemeral_storage: int = DEFAULT_TMP  # MB of /tmp
    # How a debugger reaches its instances (a run mode, never declared): "pdb" (the
    # instance's stdio is the terminal) or "debugpy:PORT"; see engine/debugging.py.
    debug: str | None = None
    # Folders imported from after code_dir, in order: installed requirements, layers.
    python_path: tuple[str, ...] = ()
    url: FunctionUrl | None = None  # its function URL (FunctionUrlConfig, AWS::Lambda::Url)
    # The Python its instances run on, when not skylift's own (the version `runtime` names;
    # see interpreters.py): they are then spawned with it, as a fork would be skylift's.
    interpreter: str | None = None
    # TenancyConfig PER_TENANT: every invocation names a tenant, and an instance serves one.
    tenant_isolation: bool = False

    @property
    def module(self) -> str:
        """The importable module of `handler`, as the Python runtime derives it."""
        return self.handler.rsplit(".", 1)[0].replace("/", ".")

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "handler": self.handler,
            "code_dir": self.code_dir,
            "runtime": self.runtime,
            "timeout": self.timeout,
            "memory": self.memory,
            "environment": dict(self.environment),
            "max_concurrency": self.max_concurrency,
            "min_instances": self.min_instances,
            "routes": [r.to_dict() for r in self.routes],
            "queues": [q.to_dict() for q in self.queues],
            "schedules": [s.to_dict() for s in self.schedules],
            "uploads": [u.to_dict() for u in self.uploads],
            "async_config": self.async_config.to_dict(),
            "runtime_command": list(self.runtime_command),
            "idle_timeout": self.idle_timeout,
            "spawn": self.spawn,
            "log_config": self.log_config.to_dict(),
            "ephemeral_storage": self.ephemeral_storage,
            "debug": self.debug,
            "python_path": list(self.python_path),
            "url": self.url.to_dict() if self.url is not None else None,
            "interpreter": self.interpreter,
            "tenant_isolation": self.tenant_isolation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FunctionSpec:
        return cls(
            name=data["name"],
            handler=data["handler"],
            code_dir=data["code_dir"],
            runtime=data["runtime"],
            timeout=data["timeout"],
            memory=data["memory"],
            environment=dict(data["environment"]),
            max_concurrency=data["max_concurrency"],
            min_instances=data.get("min_instances", 0),
            routes=tuple(HttpRoute.from_dict(r) for r in data["routes"]),
            queues=tuple(QueueTrigger.from_dict(q) for q in data.get("queues", ())),
            schedules=tuple(ScheduleTrigger.from_dict(s) for s in data.get("schedules", ())),
            uploads=tuple(UploadTrigger.from_dict(u) for u in data.get("uploads", ())),
            async_config=AsyncConfig.from_dict(data["async_config"])
            if data.get("async_config")
            else AsyncConfig(),
            runtime_command=tuple(data.get("runtime_command", ())),
            idle_timeout=data.get("idle_timeout"),
            spawn=data.get("spawn", False),
            log_config=LogConfig.from_dict(data.get("log_config")),
            ephemeral_storage=data.get("ephemeral_storage", DEFAULT_TMP),
            debug=data.get("debug"),
            python_path=tuple(data.get("python_path", ())),
            url=FunctionUrl.from_dict(data["url"]) if data.get("url") else None,
            interpreter=data.get("interpreter"),
            tenant_isolation=data.get("tenant_isolation", False),
        )


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


@dataclass(frozen=True)
class Resources:
    """The queues and buckets an app declares; skylift creates missing ones at startup.

    `queues` maps a queue name to its SQS attributes (string values, SQS's attribute
    names: VisibilityTimeout, RedrivePolicy, FifoQueue, ...).
    """

    queues: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    buckets: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "queues": {k: dict(v) for k, v in self.queues.items()},
            "buckets": list(self.buckets),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Resources:
        return cls(
            {k: dict(v) for k, v in data.get("queues", {}).items()}, tuple(data.get("buckets", ()))
        )

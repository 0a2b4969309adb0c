"""The one internal model of a function and its triggers.

Both front doors (the `App` decorators and the SAM template loader) produce
`FunctionSpec`s; everything downstream (zygotes, pools, the gateway) reads only these.
They are checked at declaration time (`spec_checks.py`), so a bad declaration fails when
the app loads with a message naming the function and what to change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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

"""One `AWS::Serverless::Function`'s merged Properties read into a `FunctionSpec`.

Every error names the function's logical id and the property; intrinsics are resolved
by the template's `Resolver`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skylift import interpreters
from skylift.errors import DeclarationError
from skylift.interpreters import CURRENT
from skylift.sam.api_auth import TemplateApis
from skylift.sam.async_config import async_config
from skylift.sam.build import install_for
from skylift.sam.cfn_yaml import NO_VALUE, Physical, Resolver, Unresolvable, is_intrinsic, kind
from skylift.sam.code import code_dir
from skylift.sam.context import TemplateContext
from skylift.sam.events import read_events
from skylift.sam.function_url import function_url
from skylift.sam.layers import python_path
from skylift.sam.log_config import logging_config
from skylift.sam.resources import function_physical, warn_stand_ins
from skylift.sam.scaling import ephemeral_storage, provisioned_concurrency, reserved_concurrency
from skylift.sam.unhonoured import HONOURED, HONOURED_CFN, IAM, INSTEAD
from skylift.spec import (
    DEFAULT_MEMORY,
    DEFAULT_TIMEOUT,
    PROVIDED_RUNTIMES,
    PYTHON_RUNTIME,
    FunctionSpec,
    HttpRoute,
)
from skylift.triggers import QueueTrigger, ScheduleTrigger, UploadTrigger

_INTEGER = re.compile(r"^-?\d+$")


@dataclass(frozen=True)
class Function:
    """One function's merged Properties, read with errors that name its logical id."""

    logical_id: str
    properties: Mapping[str, Any]
    resolver: Resolver
    context: TemplateContext = field(default_factory=lambda: TemplateContext(Path(".")))
    serverless: bool = True  # AWS::Serverless::Function; False: AWS::Lambda::Function

    @property
    def buckets(self) -> Collection[str]:
        return self.context.buckets

    @property
    def apis(self) -> TemplateApis:
        if self.context.apis is None:  # a function read on its own (tests, exports)
            return TemplateApis({}, {}, self.resolver, self.context.notes, "")
        return self.context.apis

    def note(self, where: str, instead: str) -> None:
        self.context.notes.add(f"function {self.logical_id!r} {where}", instead)

    def fail(self, message: str) -> DeclarationError:
        return DeclarationError(message, function=self.logical_id)

    def resolve(self, value: Any, where: str) -> Any:
        """`value` with intrinsics evaluated; None when absent or AWS::NoValue."""
        before = len(self.resolver.stand_ins)
        try:
            value = self.resolver.resolve(value)
        except Unresolvable as exc:
            raise self.fail(
                f"{where} cannot be resolved: {exc}; "
                "use a literal value or a parameter with a Default"
            ) from None
        warn_stand_ins(self.resolver.stand_ins[before:], f"function {self.logical_id!r}: {where}")
        return None if value is NO_VALUE else value

    def string_value(self, value: Any, where: str) -> str | None:
        value = self.resolve(value, where)
        if value is not None and not isinstance(value, str):
            raise self.fail(f"{where} must be a string, got {kind(value)}: quote it")
        return value

    def integer_value(self, value: Any, where: str) -> int | None:
        value = self.resolve(value, where)
        if isinstance(value, str) and _INTEGER.match(value.strip()):
            return int(value)  # a parameter's value, or a quoted number: CFN takes both
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.fail(f"{where} must be a whole number, got {value!r}")
        return value

    def boolean_value(self, value: Any, where: str) -> bool | None:
        value = self.resolve(value, where)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"  # a parameter's value is text
        if value is not None and not isinstance(value, bool):
            raise self.fail(f"{where} must be true or false, got {value!r}")
        return value

    def string(self, key: str) -> str | None:
        return self.string_value(self.properties.get(key), key)

    def integer(self, key: str) -> int | None:
        return self.integer_value(self.properties.get(key), key)

    def name(self) -> str:
        return self.string("FunctionName") or self.logical_id

    def physical(self) -> Physical:
        return function_physical(self.name(), self.resolver.region)

    def spec(self) -> FunctionSpec:
        if self.string("PackageType") == "Image":
            raise self.fail(
                "PackageType Image is not supported: skylift runs zip functions; "
                "set CodeUri to the folder with your code and Runtime to python3.x"
            )
        self.context.notes.properties(
            f"function {self.logical_id!r}",
            self.properties,
            HONOURED if self.serverless else HONOURED_CFN,
            "ignored",
            INSTEAD,
        )
        if any(key in self.properties for key in IAM):
            self.context.notes.iam(self.logical_id)
        runtime = self.string("Runtime")
        if runtime is None:
            raise self.fail("Runtime is missing: set Runtime: python3.12 (or in Globals.Function)")
        provided = runtime in PROVIDED_RUNTIMES
        if not provided and not PYTHON_RUNTIME.match(runtime):
            raise self.fail(
                f"Runtime {runtime!r} is not supported: skylift runs python3.x runtimes and "
                "provided.al2023 / provided.al2 (a bootstrap executable in CodeUri)"
            )
        handler = self.string("Handler")
        if handler is None and not provided:
            raise self.fail("Handler is missing: set Handler, e.g. app.lambda_handler")
        reserved = reserved_concurrency(self, self.integer("ReservedConcurrentExecutions"))
        timeout, memory = self.integer("Timeout"), self.integer("MemorySize")
        triggers = read_events(self, self.properties.get("Events"))
        code = code_dir(self, self.properties)
        python = interpreters.for_runtime(runtime, self.logical_id) if not provided else CURRENT
        owner = f"function {self.logical_id!r}"
        own = install_for(owner, Path(code), self.context.build_root, python)
        if own is not None:
            self.context.installs.append(own)
        layers = python_path(self, self.properties.get("Layers"), runtime)
        url_config = self.properties.get("FunctionUrlConfig") if self.serverless else None
        return FunctionSpec(
            name=self.name(),
            handler=handler or "bootstrap",
            code_dir=code,
            runtime=runtime,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            memory=DEFAULT_MEMORY if memory is None else memory,
            environment=self.environment(),
            max_concurrency=reserved,
            min_instances=provisioned_concurrency(self, dict(self.properties)),
            routes=tuple(t for t in triggers if isinstance(t, HttpRoute)),
            queues=tuple(t for t in triggers if isinstance(t, QueueTrigger)),
            schedules=tuple(t for t in triggers if isinstance(t, ScheduleTrigger)),
            uploads=tuple(t for t in triggers if isinstance(t, UploadTrigger)),
            async_config=async_config(self, dict(self.properties)),
            runtime_command=self.bootstrap(code) if provided else (),
            log_config=logging_config(self, dict(self.properties)),
            ephemeral_storage=ephemeral_storage(self, dict(self.properties)),
            python_path=((str(own.folder),) if own else ()) + layers,
            url=function_url(self, url_config) if url_config is not None else None,
            # Another Python cannot fork from skylift's zygote: each instance is spawned.
            spawn=not python.own,
            interpreter=None if python.own else python.path,
            tenant_isolation=self.tenancy(triggers, url_config),
        )

    def tenancy(self, triggers: list[Any], url_config: Any) -> bool:
        """Whether `TenancyConfig` isolates tenants (PER_TENANT); refused, as AWS refuses
        it, with what cannot invoke such a function (a URL, queues, schedules, uploads)."""
        config = self.resolve(self.properties.get("TenancyConfig"), "TenancyConfig")
        if config is None:
            return False
        mode = config.get("TenantIsolationMode") if isinstance(config, dict) else None
        if mode != "PER_TENANT":
            raise self.fail(
                f"TenancyConfig.TenantIsolationMode {mode!r} is not valid: the one mode is "
                "PER_TENANT (or drop TenancyConfig)"
            )
        if url_config is not None:
            raise self.fail(
                "a function URL cannot invoke a function with TenancyConfig (it passes no "
                "tenant id): drop FunctionUrlConfig or TenancyConfig"
            )
        others = [t for t in triggers if not isinstance(t, HttpRoute)]
        if others:
            raise self.fail(
                "with TenancyConfig only API Gateway and the Invoke API (with a tenant id) may "
                f"invoke it, not a {type(others[0]).__name__}: drop the event or TenancyConfig"
            )
        if any(isinstance(t, HttpRoute) for t in triggers):
            self.note(
                "TenancyConfig with Api/HttpApi events",
                "requests to its routes carry no tenant id (a mapping template would add "
                "X-Amz-Tenant-Id on AWS), so they fail with 500; invoke it with a tenant id",
            )
        return True

    def bootstrap(self, code: str) -> tuple[str, ...]:
        """A provided runtime's command: CodeUri's executable `bootstrap`, as on Lambda."""
        path = Path(code) / "bootstrap"
        if not path.is_file():
            raise self.fail(
                f"Runtime {self.string('Runtime')} runs CodeUri's bootstrap, but {path} does "
                "not exist: add your runtime's bootstrap executable there"
            )
        if not os.access(path, os.X_OK):
            raise self.fail(f"{path} is not executable: chmod +x it")
        return (str(path),)

    def environment(self) -> dict[str, str]:
        # Resolve level by level, so an unresolvable value is reported with its name.
        environment = self.properties.get("Environment")
        if is_intrinsic(environment):
            environment = self.resolve(environment, "Environment")
        if environment is None:
            return {}
        if not isinstance(environment, dict):
            raise self.fail("Environment must be a mapping holding Variables")
        variables = environment.get("Variables")
        if is_intrinsic(variables):
            variables = self.resolve(variables, "Environment.Variables")
        if variables is None:
            return {}
        if not isinstance(variables, dict):
            raise self.fail("Environment.Variables must be a mapping of names to values")
        result: dict[str, str] = {}
        for key, raw in variables.items():
            where = f"environment variable {key}"
            if raw is None:
                result[str(key)] = ""  # `NAME:` with no value; sam local passes "" too
                continue
            value = self.resolve(raw, where)
            if value is None:
                continue  # AWS::NoValue removes the variable
            if not isinstance(value, str | int | float):  # bool is an int
                raise self.fail(f"{where} must be a single value, got {kind(value)}")
            result[str(key)] = self.resolver.text(value)
        return result


def check_handler_file(spec: FunctionSpec, logical_id: str) -> None:
    """Fail unless the handler's module has a file, without importing it (never in-process)."""
    *package, module = spec.module.split(".")
    base = Path(spec.code_dir, *package)
    candidates = (base / f"{module}.py", base / module / "__init__.py")
    if not any(path.is_file() for path in candidates):
        raise DeclarationError(
            f"Handler {spec.handler!r} needs module {spec.module!r}, but neither "
            f"{candidates[0]} nor {candidates[1]} exists: fix Handler or CodeUri",
            function=logical_id,
        )

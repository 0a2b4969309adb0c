"""Load an AWS SAM template into validated `FunctionSpec`s and the `Resources` they use.

Only what changes how a function runs is read: `AWS::Serverless::Function` resources
(with `Globals.Function` merged in as SAM merges it), their Handler, CodeUri, Runtime,
Timeout, MemorySize, Environment, ReservedConcurrentExecutions, FunctionName and events
(see `events`), plus the `AWS::SQS::Queue` and `AWS::S3::Bucket` resources skylift
creates (see `resources`). Intrinsics are resolved the way a deploy with every
parameter at its Default would resolve them, in the region of the environment
(AWS_REGION); `!GetAtt` of a resource skylift does not create gets a stand-in value and
a warning, and what only a real deploy knows (`!ImportValue`, ...) is an error naming
the function and the property. User code is never imported: the handler check only
looks for the module's file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from skylift.errors import DeclarationError, LoadError
from skylift.loader import TEMPLATE_NAMES
from skylift.runtime import environ
from skylift.sam import cfn_yaml
from skylift.sam.async_config import async_config
from skylift.sam.cfn_yaml import NO_VALUE, Physical, Resolver, Unresolvable, is_intrinsic, kind
from skylift.sam.events import read_events
from skylift.sam.log_config import logging_config
from skylift.sam.resources import TemplateResources, function_physical, warn_stand_ins
from skylift.sam.scaling import provisioned_concurrency, reserved_concurrency
from skylift.spec import (
    DEFAULT_MEMORY,
    DEFAULT_TIMEOUT,
    PROVIDED_RUNTIMES,
    PYTHON_RUNTIME,
    FunctionSpec,
    HttpRoute,
    Resources,
    validate_app,
)
from skylift.triggers import QueueTrigger, ScheduleTrigger, UploadTrigger

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
_INTEGER = re.compile(r"^-?\d+$")


def load_template(path: str | os.PathLike[str]) -> list[FunctionSpec]:
    """The functions of the SAM template at `path`; see `load`."""
    return load(path)[0]


def load(path: str | os.PathLike[str]) -> tuple[list[FunctionSpec], Resources]:
    """Read the SAM template at `path` (or `template.yaml` in a directory).

    Returns the functions' specs and the queues and buckets to create for them:

    >>> specs, resources = load("template.yaml")  # doctest: +SKIP
    >>> resources.queues  # doctest: +SKIP
    {'Jobs': {'VisibilityTimeout': '60'}, 'JobsDLQ': {}}

    Raises `LoadError` when the template cannot be used at all and `DeclarationError`
    (naming the function's, queue's or bucket's logical id) when one cannot run on
    skylift.
    """
    template_path = _find_template(Path(path))
    doc = _read(template_path)
    resources = doc.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise LoadError(
            f"template {template_path} has no Resources section: declare your functions "
            f"under Resources with Type: {SERVERLESS_FUNCTION}"
        )
    global_function = _section(doc.get("Globals"), "Globals").get("Function")
    global_properties = _section(global_function, "Globals.Function")
    resolver = Resolver(doc, region=environ.region())
    # Queues and buckets first, so a function's `!Ref Queue` or `!GetAtt Queue.Arn` resolves.
    template_resources = TemplateResources(resources, resolver)

    declared: list[tuple[str, dict[str, Any]]] = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != SERVERLESS_FUNCTION:
            continue  # queues, tables, roles, APIs, other Lambdas: not skylift's to run
        if not _condition_holds(resolver, str(logical_id), resource.get("Condition")):
            continue
        local = resource.get("Properties") or {}
        if not isinstance(local, dict):
            raise DeclarationError("Properties must be a mapping", function=str(logical_id))
        declared.append((str(logical_id), _merge(global_properties, local)))
    if not declared:
        raise LoadError(
            f"template {template_path} declares no {SERVERLESS_FUNCTION} resources "
            "(or each one's Condition is false with the parameter defaults): "
            "skylift runs those; other resource types are ignored"
        )

    # Names first, so a `!Ref OtherFunction` anywhere resolves to the name skylift uses.
    for logical_id, properties in declared:
        resolver.declare(logical_id, _Function(logical_id, properties, resolver).physical)
    template_resources.check_names()
    logical_ids: dict[str, str] = {}
    for logical_id, _ in declared:
        physical = resolver.physical(logical_id)
        assert physical is not None  # declared just above
        name = physical.ref
        if name in logical_ids:
            raise DeclarationError(
                f"FunctionName {name!r} is also used by {logical_ids[name]!r}: "
                "give each function its own FunctionName",
                function=logical_id,
            )
        logical_ids[name] = logical_id

    base_dir = template_path.parent
    buckets = template_resources.bucket_names
    specs = [_Function(lid, props, resolver, buckets).spec(base_dir) for lid, props in declared]
    try:
        specs = validate_app(specs)
    except DeclarationError as exc:
        raise _relabel(exc, logical_ids) from None
    for spec in specs:
        if not spec.runtime_command:
            _check_handler_file(spec, logical_ids[spec.name])
    return specs, template_resources.resources(specs)


# --- the template file ---------------------------------------------------------------


def _find_template(path: Path) -> Path:
    if path.is_dir():
        for name in TEMPLATE_NAMES:
            if (path / name).is_file():
                return path / name
        raise LoadError(
            f"no {' / '.join(TEMPLATE_NAMES)} in {path}: pass the path of your SAM template"
        )
    if not path.is_file():
        raise LoadError(f"template {path} not found: pass the path of your SAM template")
    return path


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(f"cannot read template {path}: {exc}") from exc
    try:
        doc = cfn_yaml.parse(text)
    except yaml.YAMLError as exc:
        raise LoadError(
            f"template {path} is not valid YAML or JSON: {_describe(exc)}; fix it and reload"
        ) from exc
    if not isinstance(doc, dict):
        raise LoadError(
            f"template {path} is not a CloudFormation template (its top level is not a "
            "mapping with a Resources section)"
        )
    return doc


def _describe(exc: yaml.YAMLError) -> str:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return str(exc)
    text = " ".join(part for part in (exc.context, exc.problem) if part)
    mark = exc.problem_mark or exc.context_mark
    return f"{text} at line {mark.line + 1}, column {mark.column + 1}" if mark else text


def _section(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LoadError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _merge(global_value: Any, local_value: Any) -> Any:
    """Merge a Globals value under a function's, by SAM's rules.

    Mappings merge key by key (recursively), lists concatenate (globals first), and
    anything else, including an intrinsic standing for a value, is the function's own.
    """
    if (
        isinstance(global_value, dict)
        and isinstance(local_value, dict)
        and not is_intrinsic(global_value)
        and not is_intrinsic(local_value)
    ):
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = _merge(merged[key], value) if key in merged else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return global_value + local_value
    return local_value


def _condition_holds(resolver: Resolver, logical_id: str, condition: Any) -> bool:
    if condition is None:
        return True
    try:
        return resolver.condition(condition)
    except Unresolvable as exc:
        raise DeclarationError(
            f"Condition {condition!r} cannot be evaluated: {exc}", function=logical_id
        ) from None


def _relabel(exc: DeclarationError, logical_ids: Mapping[str, str]) -> DeclarationError:
    """Name the logical id, as the template does, when a FunctionName renamed a function."""
    name = exc.function
    if name is None or logical_ids.get(name, name) == name:
        return exc
    detail = str(exc).removeprefix(f"function {name!r}: ")
    return DeclarationError(f"{detail} (FunctionName {name!r})", function=logical_ids[name])


# --- one function ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Function:
    """One function's merged Properties, read with errors that name its logical id."""

    logical_id: str
    properties: Mapping[str, Any]
    resolver: Resolver
    buckets: Collection[str] = frozenset()  # the names of the template's buckets

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

    def spec(self, base_dir: Path) -> FunctionSpec:
        if self.string("PackageType") == "Image":
            raise self.fail(
                "PackageType Image is not supported: skylift runs zip functions; "
                "set CodeUri to the folder with your code and Runtime to python3.x"
            )
        if "InlineCode" in self.properties:
            raise self.fail(
                "InlineCode is not supported: put the code in a file and point CodeUri "
                "at its folder"
            )
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
        return FunctionSpec(
            name=self.name(),
            handler=handler or "bootstrap",
            code_dir=self.code_dir(base_dir),
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
            runtime_command=self.bootstrap(base_dir) if provided else (),
            log_config=logging_config(self, dict(self.properties)),
        )

    def bootstrap(self, base_dir: Path) -> tuple[str, ...]:
        """A provided runtime's command: CodeUri's executable `bootstrap`, as on Lambda."""
        path = Path(self.code_dir(base_dir)) / "bootstrap"
        if not path.is_file():
            raise self.fail(
                f"Runtime {self.string('Runtime')} runs CodeUri's bootstrap, but {path} does "
                "not exist: add your runtime's bootstrap executable there"
            )
        if not os.access(path, os.X_OK):
            raise self.fail(f"{path} is not executable: chmod +x it")
        return (str(path),)

    def code_dir(self, base_dir: Path) -> str:
        raw = self.properties.get("CodeUri")
        if (isinstance(raw, dict) and not is_intrinsic(raw)) or (
            isinstance(raw, str) and raw.startswith("s3://")
        ):
            raise self.fail(
                f"CodeUri {raw!r} is in S3, but skylift runs code from a local directory: "
                "set CodeUri to the folder holding your handler, relative to the template"
            )
        code_uri = self.string("CodeUri") or "."
        path = (base_dir / code_uri).resolve()
        if not path.is_dir():
            found = "is a file, not a directory" if path.exists() else "does not exist"
            raise self.fail(
                f"CodeUri {code_uri!r} ({path}) {found}: set CodeUri to the folder holding "
                "your handler, relative to the template's directory"
            )
        return str(path)

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


def _check_handler_file(spec: FunctionSpec, logical_id: str) -> None:
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

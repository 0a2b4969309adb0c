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
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from skylift.errors import DeclarationError, LoadError
from skylift.runtime import environ
from skylift.sam.api_auth import TemplateApis
from skylift.sam.build import Install
from skylift.sam.cfn_yaml import Resolver, Unresolvable
from skylift.sam.context import TemplateContext
from skylift.sam.event import SamEvent
from skylift.sam.function import Function, check_handler_file
from skylift.sam.function_url import url_resources
from skylift.sam.layers import read_layers
from skylift.sam.parameters import check as check_parameters
from skylift.sam.resources import TemplateResources
from skylift.sam.schedules import schedule_v2_event, scheduler_properties
from skylift.sam.template import find_template, merge, read, section
from skylift.sam.unhonoured import note_resource
from skylift.spec import (
    PROVIDED_RUNTIMES,
    PYTHON_RUNTIME,
    FunctionSpec,
    Resources,
)
from skylift.spec_checks import validate_app
from skylift.triggers import ScheduleTrigger

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
LAMBDA_FUNCTION = "AWS::Lambda::Function"
SAM_BUILD = ".aws-sam"
SCHEDULER_SCHEDULE = "AWS::Scheduler::Schedule"


def load_template(
    path: str | os.PathLike[str], parameters: Mapping[str, str] | None = None
) -> list[FunctionSpec]:
    """The functions of the SAM template at `path`; see `load`."""
    return load(path, parameters)[0]


def load(
    path: str | os.PathLike[str],
    parameters: Mapping[str, str] | None = None,
    build: Callable[[list[Install]], object] | None = None,
) -> tuple[list[FunctionSpec], Resources]:
    """Read the SAM template at `path` (or `template.yaml` in a directory).

    `build` (e.g. `skylift.sam.build.run`) is given the requirements.txt installs the
    functions and layers need, before the template's notes are logged.

    `parameters` are the `--parameter-overrides`: a value for each parameter the template
    declares, over its Default.

    Returns the functions' specs and the queues and buckets to create for them:

    >>> specs, resources = load("template.yaml")  # doctest: +SKIP
    >>> resources.queues  # doctest: +SKIP
    {'Jobs': {'VisibilityTimeout': '60'}, 'JobsDLQ': {}}

    Raises `LoadError` when the template cannot be used at all and `DeclarationError`
    (naming the function's, queue's or bucket's logical id) when one cannot run on
    skylift.
    """
    template_path = find_template(Path(path))
    doc = read(template_path)
    resources = doc.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise LoadError(
            f"template {template_path} has no Resources section: declare your functions "
            f"under Resources with Type: {SERVERLESS_FUNCTION}"
        )
    global_function = section(doc.get("Globals"), "Globals").get("Function")
    global_properties = section(global_function, "Globals.Function")
    overrides = dict(parameters or {})
    check_parameters(section(doc.get("Parameters"), "Parameters"), overrides)
    resolver = Resolver(doc, region=environ.region(), overrides=overrides)
    # Queues and buckets first, so a function's `!Ref Queue` or `!GetAtt Queue.Arn` resolves.
    template_resources = TemplateResources(resources, resolver)

    base_dir = template_path.parent
    context = TemplateContext(
        base_dir,
        template_resources.bucket_names,
        read_layers(resources, resolver, base_dir),
    )
    declared: list[tuple[str, dict[str, Any], bool]] = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict):
            continue
        kind_ = resource.get("Type")
        if kind_ not in (SERVERLESS_FUNCTION, LAMBDA_FUNCTION):
            note_resource(context.notes, str(logical_id), resource)
            continue
        if not _condition_holds(resolver, str(logical_id), resource.get("Condition")):
            continue
        local = resource.get("Properties") or {}
        if not isinstance(local, dict):
            raise DeclarationError("Properties must be a mapping", function=str(logical_id))
        serverless = kind_ == SERVERLESS_FUNCTION
        if not serverless and not _runnable(context, str(logical_id), local):
            continue
        properties = merge(global_properties, local) if serverless else local
        declared.append((str(logical_id), properties, serverless))
    if not declared:
        raise LoadError(
            f"template {template_path} declares no {SERVERLESS_FUNCTION} (or "
            f"{LAMBDA_FUNCTION}) resources, or each one's Condition is false with these "
            "parameters: skylift runs those"
        )

    # Names first, so a `!Ref OtherFunction` anywhere resolves to the name skylift uses.
    for logical_id, properties, _ in declared:
        resolver.declare(logical_id, Function(logical_id, properties, resolver).physical)
    template_resources.check_names()
    logical_ids: dict[str, str] = {}
    for logical_id, _, _ in declared:
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

    # The APIs once functions are named: an authorizer's FunctionArn is a `!GetAtt Fn.Arn`.
    context = replace(
        context,
        apis=TemplateApis(
            resources,
            section(doc.get("Globals"), "Globals"),
            resolver,
            context.notes,
            str(template_path.resolve()),
            base_dir,
            set(logical_ids),
        ),
    )
    functions = [Function(lid, props, resolver, context, sl) for lid, props, sl in declared]
    scheduled = _scheduler_schedules(resources, resolver, functions)
    urls = url_resources(resources, functions)
    specs = [
        replace(
            spec,
            schedules=spec.schedules + tuple(scheduled.get(function.logical_id, ())),
            url=urls.get(function.logical_id, spec.url),
        )
        for function in functions
        for spec in (function.spec(),)
    ]
    try:
        specs = validate_app(specs)
    except DeclarationError as exc:
        raise _relabel(exc, logical_ids) from None
    for spec in specs:
        if not spec.runtime_command:
            check_handler_file(spec, logical_ids[spec.name])
    if build is not None and SAM_BUILD not in template_path.parts:
        build(context.installs)  # `sam build` output carries its dependencies already
    context.notes.report(str(template_path))
    return specs, template_resources.resources(specs)


def _runnable(context: TemplateContext, logical_id: str, properties: Mapping[str, Any]) -> bool:
    """Whether a plain AWS::Lambda::Function is skylift's to run: a Python or provided
    runtime and local code. Others (often a custom resource's helper) get a note."""
    runtime, code = properties.get("Runtime"), properties.get("Code")
    where = f"resource {logical_id!r} ({LAMBDA_FUNCTION})"
    if isinstance(runtime, str) and not (
        PYTHON_RUNTIME.match(runtime) or runtime in PROVIDED_RUNTIMES
    ):
        context.notes.add(where, f"not run: its Runtime {runtime} is not a python3.x runtime")
        return False
    if isinstance(code, dict) and ("S3Bucket" in code or "ImageUri" in code):
        context.notes.add(where, "not run: its Code is in S3 or an image, not a local folder")
        return False
    return True


def _scheduler_schedules(
    resources: Mapping[str, Any], resolver: Resolver, functions: list[Function]
) -> dict[str, list[ScheduleTrigger]]:
    """The `AWS::Scheduler::Schedule` resources' triggers, by their target's logical id."""
    by_arn: dict[Any, Function] = {}
    for function in functions:
        physical = resolver.physical(function.logical_id)
        if physical is not None:
            by_arn[physical.attributes.get("Arn")] = function
    found: dict[str, list[ScheduleTrigger]] = {}
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != SCHEDULER_SCHEDULE:
            continue
        if not _condition_holds(resolver, str(logical_id), resource.get("Condition")):
            continue
        properties = resource.get("Properties") or {}
        target = properties.get("Target") if isinstance(properties, dict) else None
        try:
            arn = resolver.resolve(target.get("Arn")) if isinstance(target, dict) else None
        except Unresolvable:
            arn = None
        target_function = by_arn.get(arn)
        if target_function is None:
            functions[0].context.notes.add(
                f"resource {logical_id!r} ({SCHEDULER_SCHEDULE}) Target {arn}",
                "never fires: its target is not a function of this template",
            )
            continue
        event = SamEvent(
            function, f"{logical_id} ({SCHEDULER_SCHEDULE})", scheduler_properties(properties)
        )
        trigger = schedule_v2_event(event)
        if trigger is not None:
            found.setdefault(function.logical_id, []).append(trigger)
    return found


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

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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skylift.errors import DeclarationError, LoadError
from skylift.runtime import environ
from skylift.sam.cfn_yaml import Resolver, Unresolvable
from skylift.sam.function import Function, check_handler_file
from skylift.sam.parameters import check as check_parameters
from skylift.sam.resources import TemplateResources
from skylift.sam.template import find_template, merge, read, section
from skylift.spec import (
    FunctionSpec,
    Resources,
    validate_app,
)

SERVERLESS_FUNCTION = "AWS::Serverless::Function"


def load_template(
    path: str | os.PathLike[str], parameters: Mapping[str, str] | None = None
) -> list[FunctionSpec]:
    """The functions of the SAM template at `path`; see `load`."""
    return load(path, parameters)[0]


def load(
    path: str | os.PathLike[str], parameters: Mapping[str, str] | None = None
) -> tuple[list[FunctionSpec], Resources]:
    """Read the SAM template at `path` (or `template.yaml` in a directory).

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

    declared: list[tuple[str, dict[str, Any]]] = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != SERVERLESS_FUNCTION:
            continue  # queues, tables, roles, APIs, other Lambdas: not skylift's to run
        if not _condition_holds(resolver, str(logical_id), resource.get("Condition")):
            continue
        local = resource.get("Properties") or {}
        if not isinstance(local, dict):
            raise DeclarationError("Properties must be a mapping", function=str(logical_id))
        declared.append((str(logical_id), merge(global_properties, local)))
    if not declared:
        raise LoadError(
            f"template {template_path} declares no {SERVERLESS_FUNCTION} resources "
            "(or each one's Condition is false with the parameter defaults): "
            "skylift runs those; other resource types are ignored"
        )

    # Names first, so a `!Ref OtherFunction` anywhere resolves to the name skylift uses.
    for logical_id, properties in declared:
        resolver.declare(logical_id, Function(logical_id, properties, resolver).physical)
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
    specs = [Function(lid, props, resolver, buckets).spec(base_dir) for lid, props in declared]
    try:
        specs = validate_app(specs)
    except DeclarationError as exc:
        raise _relabel(exc, logical_ids) from None
    for spec in specs:
        if not spec.runtime_command:
            check_handler_file(spec, logical_ids[spec.name])
    return specs, template_resources.resources(specs)


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

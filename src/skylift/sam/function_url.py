"""Function URLs in a template: a function's `FunctionUrlConfig` and `AWS::Lambda::Url`
resources (whose `TargetFunctionArn` is a function of the template), read into
`FunctionUrl`s. `InvokeMode: RESPONSE_STREAM` is served buffered, with a note; a URL on a
`Qualifier` (an alias) is the function's own, as skylift serves `$LATEST` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from skylift.errors import DeclarationError
from skylift.function_urls import FunctionUrl, UrlCors
from skylift.sam.cfn_yaml import Resolver
from skylift.sam.context import TemplateContext
from skylift.sam.event import FunctionContext

LAMBDA_URL = "AWS::Lambda::Url"
_CORS_LISTS = ("AllowHeaders", "AllowMethods", "AllowOrigins", "ExposeHeaders")
_KNOWN = frozenset({"AuthType", "Cors", "InvokeMode", "TargetFunctionArn", "Qualifier"})


class UrlOwner(FunctionContext, Protocol):
    """A function of the template (`sam.function.Function`), as its URL reads it."""

    @property
    def properties(self) -> Mapping[str, Any]: ...

    @property
    def resolver(self) -> Resolver: ...

    @property
    def context(self) -> TemplateContext: ...


def function_url(
    function: FunctionContext, config: Any, where: str = "FunctionUrlConfig"
) -> FunctionUrl:
    """The URL `config` (a FunctionUrlConfig or an AWS::Lambda::Url's Properties) declares."""
    config = function.resolve(config, where)
    if not isinstance(config, dict):
        raise function.fail(f"{where} must be a mapping with AuthType (NONE or AWS_IAM)")
    auth = function.string_value(config.get("AuthType"), f"{where}.AuthType")
    if auth is None:
        raise function.fail(f"{where}.AuthType is missing: set it to NONE or AWS_IAM")
    mode = function.string_value(config.get("InvokeMode"), f"{where}.InvokeMode") or "BUFFERED"
    if mode == "RESPONSE_STREAM":
        function.note(
            f"{where}.InvokeMode RESPONSE_STREAM",
            "the response is sent whole when the function returns (BUFFERED)",
        )
    for key in config:
        if key not in _KNOWN:
            function.note(f"{where}.{key}", "ignored")
    cors = _cors(function, config.get("Cors"), f"{where}.Cors")
    created = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    url = FunctionUrl(auth, cors, mode, created)
    url.validate(function.logical_id)
    return url


def _cors(function: FunctionContext, value: Any, where: str) -> UrlCors | None:
    value = function.resolve(value, where)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise function.fail(f"{where} must be a mapping (AllowOrigins, AllowMethods, ...)")
    lists: dict[str, tuple[str, ...]] = {}
    for key in _CORS_LISTS:
        items = function.resolve(value.get(key), f"{where}.{key}")
        if items is None:
            items = []
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise function.fail(f"{where}.{key} must be a list of strings")
        lists[key] = tuple(items)
    credentials = function.boolean_value(value.get("AllowCredentials"), f"{where}.AllowCredentials")
    return UrlCors(
        allow_credentials=bool(credentials),
        allow_headers=lists["AllowHeaders"],
        allow_methods=lists["AllowMethods"],
        allow_origins=lists["AllowOrigins"],
        expose_headers=lists["ExposeHeaders"],
        max_age=function.integer_value(value.get("MaxAge"), f"{where}.MaxAge"),
    )


def url_resources(
    resources: Mapping[str, Any], functions: Sequence[UrlOwner]
) -> dict[str, FunctionUrl]:
    """The `AWS::Lambda::Url` resources' URLs, by their target function's logical id."""
    found: dict[str, FunctionUrl] = {}
    if not functions:
        return found
    resolver = functions[0].resolver
    by_target: dict[Any, UrlOwner] = {}
    for function in functions:
        physical = resolver.physical(function.logical_id)
        if physical is not None:
            by_target[physical.ref] = function
            by_target[physical.attributes.get("Arn")] = function
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != LAMBDA_URL:
            continue
        properties = resource.get("Properties") or {}
        where = f"resource {logical_id!r} ({LAMBDA_URL})"
        if not isinstance(properties, dict):
            raise DeclarationError(f"{where}: Properties must be a mapping")
        target = functions[0].resolve(
            properties.get("TargetFunctionArn"), f"{where} TargetFunctionArn"
        )
        owner = by_target.get(target)
        if owner is None:
            functions[0].context.notes.add(
                f"{where} TargetFunctionArn {target}",
                "not served: its target is not a function of this template",
            )
            continue
        if owner.logical_id in found or "FunctionUrlConfig" in owner.properties:
            raise owner.fail(
                f"{where} is a second URL for this function: a function has one URL; "
                "drop the resource or the FunctionUrlConfig"
            )
        found[owner.logical_id] = function_url(owner, properties, str(logical_id))
    return found

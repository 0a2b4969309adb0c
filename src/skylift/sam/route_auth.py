"""An Api or HttpApi event's `Auth`, `RequestModel` and `RequestParameters`, read into
its route's `RouteAccess` against the API it belongs to (see `api_auth`)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from skylift.route_access import JwtAuthorizer, RequestCheck, RouteAccess
from skylift.sam.api_auth import TemplateApis
from skylift.sam.event import SamEvent


def _api_id(event: SamEvent, key: str) -> str | None:
    raw = event.properties.get(key)
    if isinstance(raw, dict) and isinstance(raw.get("Ref"), str):
        return str(raw["Ref"])  # the API's logical id, whatever its Ref would resolve to
    value = event.value(key)
    return value if isinstance(value, str) else None


def route_access(event: SamEvent, apis: TemplateApis, api_kind: str) -> RouteAccess | None:
    """The checks API Gateway makes before this event's function runs, or None."""
    api = apis.api(_api_id(event, "RestApiId" if api_kind == "rest" else "ApiId"), api_kind)
    auth = event.mapping(event.value("Auth"), "Auth")
    name = auth.get("Authorizer", api.default_authorizer)
    authorizer = None
    if name == "AWS_IAM":
        event.function.note(
            f"event {event.name!r} Auth.Authorizer AWS_IAM", "not enforced: requests are let in"
        )
    elif name not in (None, "NONE"):
        authorizer = api.authorizers.get(str(name))
        if authorizer is None and str(name) not in api.unenforced:
            raise event.fail(
                f"Auth.Authorizer {name!r} is not among the API's Auth.Authorizers "
                f"({', '.join(api.authorizers) or 'none declared'}): declare it or use NONE"
            )
    scopes = auth.get("AuthorizationScopes")
    if isinstance(authorizer, JwtAuthorizer) and isinstance(scopes, list):
        authorizer = replace(authorizer, scopes=tuple(str(s) for s in scopes))
    key_required = auth.get("ApiKeyRequired", api.api_key_required) is True
    check = _request_check(event, api.models) if api_kind == "rest" else None
    if authorizer is None and not key_required and check is None:
        return None
    plans = tuple(api.plans) if key_required else ()
    return RouteAccess(api.logical_id, authorizer, key_required, plans, check)


def _request_check(event: SamEvent, models: dict[str, Any]) -> RequestCheck | None:
    model = event.mapping(event.value("RequestModel"), "RequestModel")
    if not model:
        return None
    name = model.get("Model")
    if name not in models:
        raise event.fail(
            f"RequestModel.Model {name!r} is not among the API's Models "
            f"({', '.join(models) or 'none declared'}): declare it under the Api's Models"
        )
    schema = json.dumps(models[name], sort_keys=True) if model.get("ValidateBody") else None
    required: list[str] = []
    if model.get("ValidateParameters"):
        for item in event.value("RequestParameters") or []:
            if isinstance(item, dict):
                for key, settings in item.items():
                    if isinstance(settings, dict) and settings.get("Required") is True:
                        required.append(str(key))
    if schema is None and not required:
        return None
    return RequestCheck(str(name), schema, tuple(required))

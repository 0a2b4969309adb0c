"""The APIs a template declares, as far as their routes' access goes: authorizers
(`Auth.Authorizers`, `DefaultAuthorizer`), API keys and usage plans, and Models.

`AWS::Serverless::Api` / `AWS::Serverless::HttpApi` resources (and the implicit
`ServerlessRestApi` / `ServerlessHttpApi`, configured by `Globals.Api` / `Globals.HttpApi`)
become `ApiAuth`s by logical id; `AWS::ApiGateway::ApiKey`, `UsagePlan` and
`UsagePlanKey` resources (and SAM's `Auth.UsagePlan`) attach keys to them. Each event
then asks `ApiAuth.route_access` for its route's `RouteAccess` (see `sam.route_auth`).
What is declared but not enforced (Cognito and IAM authorizers, resource policies, stage
settings, ...) gets a note.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skylift.errors import DeclarationError
from skylift.route_access import (
    DEFAULT_REST_TTL,
    ApiKey,
    Authorizer,
    JwtAuthorizer,
    LambdaAuthorizer,
    UsagePlan,
    is_loopback_url,
)
from skylift.sam.cfn_yaml import NO_VALUE, Resolver, Unresolvable
from skylift.sam.template import merge, section
from skylift.sam.unhonoured import Notes

REST_API = "AWS::Serverless::Api"
HTTP_API = "AWS::Serverless::HttpApi"
IMPLICIT = {"rest": "ServerlessRestApi", "http": "ServerlessHttpApi"}
API_KEY = "AWS::ApiGateway::ApiKey"
USAGE_PLAN = "AWS::ApiGateway::UsagePlan"
USAGE_PLAN_KEY = "AWS::ApiGateway::UsagePlanKey"
# Api properties that change nothing about how a route runs locally.
_QUIET = {"StageName", "Name", "Description", "Tags", "OpenApiVersion", "Auth", "Models"}
_AUTH_READ = {
    "rest": {"Authorizers", "DefaultAuthorizer", "ApiKeyRequired", "UsagePlan"},
    "http": {"Authorizers", "DefaultAuthorizer"},
}


@dataclass
class ApiAuth:
    """One API's authorizers, default authorizer, API key requirement, plans and models."""

    logical_id: str
    kind: str  # "rest" or "http"
    authorizers: dict[str, Authorizer] = field(default_factory=dict)
    default_authorizer: str | None = None
    api_key_required: bool = False
    plans: list[UsagePlan] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)
    unenforced: set[str] = field(default_factory=set)  # authorizers noted as not enforced


def _fail(where: str, message: str) -> DeclarationError:
    return DeclarationError(f"{where}: {message}")


def generated_key(logical_id: str, salt: str) -> str:
    """A stand-in for the key value AWS would generate: stable for the template."""
    return hashlib.sha256(f"{salt}:{logical_id}".encode()).hexdigest()[:40]


class TemplateApis:
    """Every API of a template, read before the functions' events."""

    def __init__(
        self,
        resources: Mapping[str, Any],
        globals_: Mapping[str, Any],
        resolver: Resolver,
        notes: Notes,
        salt: str,
        base_dir: Path | None = None,
        functions: Collection[str] | None = None,
    ) -> None:
        self.base_dir = base_dir or Path(".")
        self.functions = functions  # the template's function names; None: not checked
        self.resolver = resolver
        self.notes = notes
        self.salt = salt
        self.apis: dict[str, ApiAuth] = {}
        self.jwks: Mapping[str, Any] = {}  # the API being read: JWKS by authorizer name
        for api_kind, global_key in (("rest", "Api"), ("http", "HttpApi")):
            global_props = section(globals_.get(global_key), f"Globals.{global_key}")
            self._read(IMPLICIT[api_kind], api_kind, global_props)
            for logical_id, resource in resources.items():
                if isinstance(resource, dict) and resource.get("Type") == (
                    REST_API if api_kind == "rest" else HTTP_API
                ):
                    props = section(resource.get("Properties"), f"resource {logical_id!r}")
                    metadata = section(resource.get("Metadata"), f"resource {logical_id!r}")
                    jwks = section(metadata.get("skylift"), "Metadata.skylift").get("jwks")
                    self.jwks = section(jwks, "Metadata.skylift.jwks")
                    self._read(str(logical_id), api_kind, merge(global_props, props))
                    self.jwks = {}
        self._plans(resources)

    def api(self, logical_id: str | None, api_kind: str) -> ApiAuth:
        if logical_id is None:
            logical_id = IMPLICIT[api_kind]
        found = self.apis.get(logical_id)
        if found is None:
            found = self.apis[logical_id] = ApiAuth(logical_id, api_kind)
        return found

    def value(self, value: Any, where: str) -> Any:
        try:
            resolved = self.resolver.resolve(value)
        except Unresolvable as exc:
            raise _fail(where, f"cannot be resolved: {exc}; use a literal value") from None
        return None if resolved is NO_VALUE else resolved

    # --- APIs ---------------------------------------------------------------------------

    def _read(self, logical_id: str, api_kind: str, props: Mapping[str, Any]) -> None:
        where = f"resource {logical_id!r} ({REST_API if api_kind == 'rest' else HTTP_API})"
        if logical_id in IMPLICIT.values():  # its settings are the Globals'
            where = f"Globals.{'Api' if api_kind == 'rest' else 'HttpApi'}"
        api = self.api(logical_id, api_kind)
        for key in props:
            if key not in _QUIET:
                self.notes.add(f"{where} property {key}", "ignored")
        auth = section(self.value(props.get("Auth"), f"{where} Auth"), f"{where} Auth")
        for key in auth:
            if key not in _AUTH_READ[api_kind]:
                self.notes.add(f"{where} Auth.{key}", "ignored: not enforced")
        models = self.value(props.get("Models"), f"{where} Models") or {}
        api.models.update(section(models, f"{where} Models"))
        default = auth.get("DefaultAuthorizer")
        api.default_authorizer = default if isinstance(default, str) else None
        api.api_key_required = bool(auth.get("ApiKeyRequired"))
        for name, definition in section(
            auth.get("Authorizers"), f"{where} Auth.Authorizers"
        ).items():
            found = self._authorizer(
                f"{where} authorizer {name!r}", str(name), api_kind, definition
            )
            if found is not None:
                api.authorizers[str(name)] = found
            else:
                api.unenforced.add(str(name))
        plan = auth.get("UsagePlan")
        if isinstance(plan, dict) and plan.get("CreateUsagePlan") in ("PER_API", "SHARED"):
            # SAM's names: one plan and key per API, or one shared by every API (counted once).
            prefix = logical_id if plan["CreateUsagePlan"] == "PER_API" else "Serverless"
            key_id = f"{prefix}ApiKey"
            value = generated_key(key_id, self.salt)
            self.notes.add(
                f"{where} Auth.UsagePlan",
                f"AWS generates its API key's value; skylift's is {value} (send it as x-api-key)",
            )
            api.plans.append(
                self._plan(f"{prefix}UsagePlan", plan, (ApiKey(key_id, key_id, value),))
            )

    def _authorizer(
        self, where: str, name: str, api_kind: str, definition: Any
    ) -> Authorizer | None:
        definition = section(definition, where)
        if "JwtConfiguration" in definition:
            return self._jwt(where, name, definition)
        arn = definition.get("FunctionArn")
        if arn is None:
            instead = "not enforced: Cognito" if "UserPoolArn" in definition else "not enforced"
            self.notes.add(where, f"{instead}; routes using it let every request through")
            return None
        arn = self.value(arn, f"{where} FunctionArn")
        if not isinstance(arn, str) or ":function:" not in arn:
            raise _fail(where, f"FunctionArn {arn!r} is not a function ARN: use !GetAtt Fn.Arn")
        function = arn.split(":function:", 1)[1].split(":")[0]
        if self.functions is not None and function not in self.functions:
            raise _fail(
                where,
                f"FunctionArn names function {function!r}, which this template does not "
                "declare: declare the authorizer's function here and use !GetAtt Fn.Arn",
            )
        identity = section(definition.get("Identity"), f"{where} Identity")
        if identity.get("StageVariables"):
            self.notes.add(
                f"{where} Identity.StageVariables",
                "skylift has no stage variables: that identity source is always missing (401)",
            )
        ttl = identity.get("ReauthorizeEvery")
        if api_kind == "http":
            payload = str(definition.get("AuthorizerPayloadFormatVersion") or "")
            if payload not in ("1.0", "2.0"):
                raise _fail(where, "AuthorizerPayloadFormatVersion must be '1.0' or '2.0': set it")
            sources = [f"$request.header.{h}" for h in identity.get("Headers") or []]
            sources += [f"$request.querystring.{q}" for q in identity.get("QueryStrings") or []]
            sources += [f"$context.{c}" for c in identity.get("Context") or []]
            sources += [f"$stageVariables.{s}" for s in identity.get("StageVariables") or []]
            simple = bool(self.value(definition.get("EnableSimpleResponses"), where))
            if simple and payload != "2.0":
                raise _fail(where, "EnableSimpleResponses needs AuthorizerPayloadFormatVersion 2.0")
            return LambdaAuthorizer(
                name, function, "REQUEST", tuple(sources), int(ttl or 0), None, payload, simple
            )
        if definition.get("FunctionPayloadType", "TOKEN") == "REQUEST":
            sources = [f"method.request.header.{h}" for h in identity.get("Headers") or []]
            sources += [
                f"method.request.querystring.{q}" for q in identity.get("QueryStrings") or []
            ]
            sources += [f"context.{c}" for c in identity.get("Context") or []]
            sources += [f"stageVariables.{s}" for s in identity.get("StageVariables") or []]
            ttl = DEFAULT_REST_TTL if ttl is None else int(ttl)
            return LambdaAuthorizer(name, function, "REQUEST", tuple(sources), ttl)
        header = identity.get("Header") or "Authorization"
        validation = identity.get("ValidationExpression")
        return LambdaAuthorizer(
            name,
            function,
            "TOKEN",
            (f"method.request.header.{header}",),
            DEFAULT_REST_TTL if ttl is None else int(ttl),
            validation if isinstance(validation, str) else None,
        )

    def _jwt(self, where: str, name: str, definition: Mapping[str, Any]) -> JwtAuthorizer:
        config = section(self.value(definition.get("JwtConfiguration"), where), where)
        issuer = config.get("issuer") or config.get("Issuer")
        audience = config.get("audience") or config.get("Audience") or []
        if not isinstance(issuer, str) or not audience:
            raise _fail(where, "JwtConfiguration needs issuer and audience: add them")
        source = definition.get("IdentitySource") or "$request.header.Authorization"
        scopes = definition.get("AuthorizationScopes") or ()
        jwks = self.jwks.get(name)
        if isinstance(jwks, str) and jwks.startswith(("http://", "https://")):
            if not is_loopback_url(jwks):
                raise _fail(
                    where,
                    f"Metadata.skylift.jwks URL {jwks} is not on loopback: "
                    "skylift reads keys only from this machine; give a file or a "
                    "127.0.0.1 URL",
                )
        elif isinstance(jwks, str):
            jwks = str((self.base_dir / jwks).resolve())
            if not Path(jwks).is_file():
                raise _fail(where, f"Metadata.skylift.jwks file {jwks} does not exist")
        elif is_loopback_url(issuer):
            jwks = issuer.rstrip("/") + "/.well-known/openid-configuration"  # as AWS finds it
        else:
            jwks = ""
            self.notes.add(
                where,
                f"its issuer {issuer} is not on this machine, so its keys are unknown: every "
                "request gets 401; name a JWKS file or loopback URL in the API's "
                f"Metadata: {{skylift: {{jwks: {{{name}: ./jwks.json}}}}}}",
            )
        return JwtAuthorizer(
            name,
            issuer,
            tuple(audience if isinstance(audience, list) else [audience]),
            jwks,
            (str(source),),
            tuple(scopes),
        )

    # --- usage plans --------------------------------------------------------------------

    def _plan(self, plan_id: str, props: Mapping[str, Any], keys: tuple[ApiKey, ...]) -> UsagePlan:
        where = f"usage plan {plan_id!r}"
        quota = section(self.value(props.get("Quota"), where), f"{where} Quota")
        throttle = section(self.value(props.get("Throttle"), where), f"{where} Throttle")
        limit, rate, burst = (
            quota.get("Limit"),
            throttle.get("RateLimit"),
            throttle.get("BurstLimit"),
        )
        return UsagePlan(
            plan_id,
            keys,
            None if limit is None else int(limit),
            str(quota.get("Period") or "DAY").upper(),
            None if rate is None else float(rate),
            None if burst is None else int(burst),
        )

    def _plans(self, resources: Mapping[str, Any]) -> None:
        declared: dict[str, dict[str, dict[str, Any]]] = {API_KEY: {}, USAGE_PLAN: {}}
        plan_keys: list[dict[str, Any]] = []
        for logical_id, resource in resources.items():
            kind_ = resource.get("Type") if isinstance(resource, dict) else None
            if kind_ not in (API_KEY, USAGE_PLAN, USAGE_PLAN_KEY):
                continue
            where = f"resource {logical_id!r} ({kind_})"
            props = section(self.value(resource.get("Properties"), where), where)
            if kind_ == USAGE_PLAN_KEY:
                plan_keys.append(props)
            else:
                declared[str(kind_)][str(logical_id)] = props
        keys: dict[str, ApiKey] = {}
        for logical_id, props in declared[API_KEY].items():
            value = props.get("Value")
            if value is None:
                value = generated_key(logical_id, self.salt)
                self.notes.add(
                    f"resource {logical_id!r} ({API_KEY}) Value",
                    f"not set: AWS generates one; skylift's is {value}",
                )
            enabled = props.get("Enabled", True) in (True, "true")
            name = str(props.get("Name") or logical_id)
            keys[logical_id] = ApiKey(logical_id, name, str(value), enabled)
        members: dict[str, list[ApiKey]] = {plan: [] for plan in declared[USAGE_PLAN]}
        for props in plan_keys:
            key = keys.get(str(props.get("KeyId")))
            plan_id = str(props.get("UsagePlanId"))
            if key is not None and plan_id in members:
                members[plan_id].append(key)
        for plan_id, props in declared[USAGE_PLAN].items():
            usage = self._plan(plan_id, props, tuple(members[plan_id]))
            for stage in props.get("ApiStages") or []:
                api_id = stage.get("ApiId") if isinstance(stage, dict) else None
                if isinstance(api_id, str):
                    self.api(api_id, "rest").plans.append(usage)

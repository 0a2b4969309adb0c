"""What API Gateway checks between matching a route and invoking its function.

One entry point for the gateway: `Admission.check` takes the matched route and the
request (body read) and returns either the response refusing it or the `RequestIds`
to build the event with (carrying `requestContext.authorizer` and the API key). The
order is API Gateway's: authorizer, then API key and usage plan, then validation.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from skylift.events.http import HttpRequest, HttpResponse, RequestIds, RouteMatch
from skylift.gateway import request_checks
from skylift.gateway.api_keys import ApiKeys
from skylift.gateway.authorizers import Invoke, LambdaAuthorizers
from skylift.route_access import JwtAuthorizer
from skylift.sources.http import Target

if TYPE_CHECKING:
    from skylift.gateway.jwt_auth import JwtAuthorizers


class Admission:
    """Authorizers, API keys and request validation, with their caches and counts."""

    def __init__(self, invoke: Invoke) -> None:
        self.lambdas = LambdaAuthorizers(invoke)
        self.jwts: JwtAuthorizers | None = None  # made (and imported) on first use
        self.keys = ApiKeys()

    async def check(
        self, target: Target, request: HttpRequest, match: RouteMatch, ids: RequestIds
    ) -> HttpResponse | RequestIds:
        """The refusal to send, or `ids` with what the event's requestContext gains."""
        route = target.route
        access = route.access
        if access is None:
            return ids
        authorizer = access.authorizer
        if isinstance(authorizer, JwtAuthorizer):
            if self.jwts is None:
                from skylift.gateway.jwt_auth import JwtAuthorizers  # httpx, PyJWT: 25 MiB

                self.jwts = JwtAuthorizers()
            found = await self.jwts.authorize(authorizer, request)
            if isinstance(found, HttpResponse):
                return found
            ids = replace(ids, authorizer=found)
        elif authorizer is not None:
            found = await self.lambdas.authorize(
                access.api_id, authorizer, route, request, match, ids
            )
            if isinstance(found, HttpResponse):
                return found
            ids = replace(ids, authorizer=found)
        if access.api_key_required:
            key = self.keys.check(access, request)
            if isinstance(key, HttpResponse):
                return key
            ids = replace(ids, api_key=key.value, api_key_id=key.key_id)
        if access.check is not None:
            refused = request_checks.check(access.check, request, match)
            if refused is not None:
                return refused
        return ids

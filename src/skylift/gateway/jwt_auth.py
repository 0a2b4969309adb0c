"""HTTP API JWT authorizers: the token's signature, issuer, audience and times checked.

The signing keys are a JWKS read from a local file or a URL on loopback (never the
internet: skylift does not reach out), cached five minutes and read again for a key id
it does not know. PyJWT (with its crypto extra) verifies. As API Gateway answers: 401
`{"message":"Unauthorized"}` with a `www-authenticate` header naming what was wrong;
403 `{"message":"Forbidden"}` when the route wants a scope the token lacks. An
admitted request's `requestContext.authorizer` is `{"jwt": {"claims": ..., "scopes": ...}}`.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import jwt

from skylift.events import _common
from skylift.events.http import HttpRequest, HttpResponse, RequestIds
from skylift.gateway.authorizers import identity_value
from skylift.route_access import JwtAuthorizer, is_loopback_url

logger = logging.getLogger("skylift.gateway")
JWKS_TTL = 300.0
_NO_IDS = RequestIds("", 0)  # a JWT's identity source is a header or query string
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]


async def _fetch(url: str) -> Any:
    if not is_loopback_url(url):
        raise ValueError(f"{url} is not on loopback; skylift reads keys only from this machine")
    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(url)).raise_for_status().json()


def _challenge(description: str | None) -> HttpResponse:
    response = _common.json_response(401, b'{"message":"Unauthorized"}')
    value = "Bearer"
    if description is not None:
        value = f'Bearer scope="" error="invalid_token" error_description="{description}"'
    response.headers.append(("www-authenticate", value))
    return response


def _claim_text(value: Any) -> str:
    """Claims as API Gateway passes them on: text, lists as `[a b]`."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_claim_text(v) for v in value) + "]"
    return str(value)


class JwtAuthorizers:
    """Verifies tokens for routes with a JWT authorizer, caching each JWKS."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[float, jwt.PyJWKSet]] = {}

    async def _key_set(self, source: str, refresh: bool = False) -> jwt.PyJWKSet:
        cached = self._keys.get(source)
        if cached is not None and not refresh and cached[0] > time.monotonic():
            return cached[1]
        if source.startswith(("http://", "https://")):
            document = await _fetch(source)
            if source.endswith("/.well-known/openid-configuration"):
                document = await _fetch(str(document.get("jwks_uri")))
        else:
            document = json.loads(Path(source).read_text())
        keys = jwt.PyJWKSet.from_dict(document)
        self._keys[source] = (time.monotonic() + JWKS_TTL, keys)
        return keys

    async def authorize(
        self, authorizer: JwtAuthorizer, request: HttpRequest
    ) -> HttpResponse | dict[str, Any]:
        """The refusal, or requestContext.authorizer for the event."""
        token = identity_value(authorizer.identity_sources[0], request, _NO_IDS)
        if not token:
            return _challenge(None)
        if not authorizer.jwks:  # noted at load: no keys to verify with
            return _challenge("unable to find a signing key that matches")
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError:
            return _challenge("the token is malformed")
        try:
            keys = await self._key_set(authorizer.jwks)
            if kid is None or kid not in {k.key_id for k in keys.keys}:
                keys = await self._key_set(authorizer.jwks, refresh=True)
        except (OSError, ValueError, httpx.HTTPError, jwt.PyJWKSetError) as exc:
            logger.error("JWT authorizer %r cannot read its JWKS: %s", authorizer.name, exc)
            return _common.json_response(500, b'{"message":"Internal Server Error"}')
        key = next((k for k in keys.keys if kid is None or k.key_id == kid), None)
        if key is None:
            return _challenge("unable to find a signing key that matches")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                issuer=authorizer.issuer,
                options={"verify_aud": False, "require": ["exp", "iss"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            return _challenge("the token has expired")
        except jwt.ImmatureSignatureError:
            return _challenge("the token is not valid yet")
        except jwt.InvalidIssuerError:
            return _challenge("the token does not have a valid issuer")
        except jwt.InvalidSignatureError:
            return _challenge("the token signature is invalid")
        except jwt.InvalidTokenError as exc:
            return _challenge(f"the token is invalid: {exc}")
        audiences = claims.get("aud", claims.get("client_id"))
        if isinstance(audiences, str):
            audiences = [audiences]
        if not isinstance(audiences, list) or not set(audiences) & set(authorizer.audience):
            return _challenge("the token does not have a valid audience")
        granted = str(claims.get("scope", claims.get("scp", "")))
        scopes = granted.split() if granted else []
        if authorizer.scopes and not set(scopes) & set(authorizer.scopes):
            return _common.json_response(403, b'{"message":"Forbidden"}')
        return {
            "jwt": {
                "claims": {name: _claim_text(value) for name, value in claims.items()},
                "scopes": scopes or None,
            }
        }

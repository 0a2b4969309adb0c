"""HTTP API JWT authorizers: the token's signature, issuer, audience and times checked.

The signing keys are a JWKS read from a local file or a URL on loopback (never the
internet: skylift does not reach out), cached five minutes and read again for a key id
it does not know, at most once every ten seconds per JWKS (so that clients sending
made-up key ids cannot make every request a fetch). A token without a key id is checked
against the cached keys for its algorithm. PyJWT (with its crypto extra) verifies.
As API Gateway answers: 401 `{"message":"Unauthorized"}` with a `www-authenticate`
header naming what was wrong; 403 `{"message":"Forbidden"}` when the route wants a
scope the token lacks. An admitted request's `requestContext.authorizer` is
`{"jwt": {"claims": ..., "scopes": ...}}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
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
JWKS_MIN_REFRESH = 10.0  # seconds between reads of one JWKS for an unknown key id
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


def _decode(token: str, key: jwt.PyJWK, issuer: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        key=key,
        algorithms=ALGORITHMS,
        issuer=issuer,
        options={"verify_aud": False, "require": ["exp", "iss"]},
        leeway=0,
    )
    return claims


class JwtAuthorizers:
    """Verifies tokens for routes with a JWT authorizer, caching each JWKS."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._keys: dict[str, tuple[float, jwt.PyJWKSet]] = {}  # -> (read at, keys)
        self._locks: dict[str, asyncio.Lock] = {}
        self._tried: dict[str, float] = {}  # when each source was last read, or tried

    async def _key_set(self, source: str, kid: str | None) -> jwt.PyJWKSet:
        """The cached keys, read again when stale or (rate-limited) when `kid` is new."""
        async with self._locks.setdefault(source, asyncio.Lock()):  # one read at a time
            cached = self._keys.get(source)
            now = self._monotonic()
            if cached is not None:
                read_at, keys = cached
                fresh = now - read_at < JWKS_TTL
                known = kid is None or kid in {k.key_id for k in keys.keys}
                recent = now - self._tried.get(source, read_at) < JWKS_MIN_REFRESH
                if fresh and (known or recent):
                    return keys
            self._tried[source] = now  # a failing read is rate-limited too
            if source.startswith(("http://", "https://")):
                document = await _fetch(source)
                if source.endswith("/.well-known/openid-configuration"):
                    document = await _fetch(str(document.get("jwks_uri")))
            else:
                document = json.loads(Path(source).read_text())
            keys = jwt.PyJWKSet.from_dict(document)
            self._keys[source] = (self._monotonic(), keys)
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
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return _challenge("the token is malformed")
        kid = header.get("kid")
        try:
            keys = await self._key_set(authorizer.jwks, kid)
        except (OSError, ValueError, httpx.HTTPError, jwt.PyJWKSetError) as exc:
            logger.error("JWT authorizer %r cannot read its JWKS: %s", authorizer.name, exc)
            return _common.json_response(500, b'{"message":"Internal Server Error"}')
        if kid is not None:
            candidates = [k for k in keys.keys if k.key_id == kid]
        else:  # no key id: each signing key for the token's algorithm, or the only key
            alg = header.get("alg")
            candidates = [
                k for k in keys.keys if k.algorithm_name == alg and k.public_key_use != "enc"
            ]
            if not candidates and len(keys.keys) == 1:
                candidates = keys.keys  # PyJWT then says why it does not fit
        if not candidates:
            return _challenge("unable to find a signing key that matches")
        return self._verified(authorizer, token, candidates)

    def _verified(
        self, authorizer: JwtAuthorizer, token: str, candidates: list[jwt.PyJWK]
    ) -> HttpResponse | dict[str, Any]:
        """The token checked with the first candidate key whose signature matches."""
        try:
            for key in candidates[:-1]:
                try:
                    claims = _decode(token, key, authorizer.issuer)
                    break
                except jwt.InvalidSignatureError:
                    continue  # another key may have signed it
            else:
                claims = _decode(token, candidates[-1], authorizer.issuer)
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

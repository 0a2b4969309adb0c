"""A function URL's `Cors`, applied as Lambda applies it, before and after the function.

- A preflight (OPTIONS with `Origin` and `Access-Control-Request-Method`) is answered by the
  URL itself, 200 with the configured headers; the function never runs for it.
- Every other response gets `Access-Control-Allow-Origin` (the request's Origin when the
  configuration lists it, `*` when it lists `*`, none otherwise),
  `Access-Control-Allow-Credentials: true` when allowed, and `Access-Control-Expose-Headers`.
  The function's own values of these three headers are dropped, so the URL's configuration
  is the one answer a browser sees.

Without a `Cors` configuration nothing is added, and OPTIONS requests reach the function.
"""

from __future__ import annotations

from skylift.events.http import HttpResponse
from skylift.function_urls import UrlCors


def is_preflight(method: str, headers: list[tuple[str, str]]) -> bool:
    if method != "OPTIONS":
        return False
    names = {name.lower() for name, _ in headers}
    return "origin" in names and "access-control-request-method" in names


def _origin(headers: list[tuple[str, str]]) -> str | None:
    return next((value for name, value in headers if name.lower() == "origin"), None)


def _allowed_origin(cors: UrlCors, origin: str | None) -> str | None:
    if "*" in cors.allow_origins:
        return "*"
    if origin is not None and origin.rstrip("/") in (o.rstrip("/") for o in cors.allow_origins):
        return origin
    return None


def _common(cors: UrlCors, origin: str | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    allowed = _allowed_origin(cors, origin)
    if allowed is not None:
        out.append(("Access-Control-Allow-Origin", allowed))
    if cors.allow_credentials:
        out.append(("Access-Control-Allow-Credentials", "true"))
    return out


def preflight(cors: UrlCors, headers: list[tuple[str, str]]) -> HttpResponse:
    """The URL's own answer to a browser's preflight request."""
    out = _common(cors, _origin(headers))
    if cors.allow_methods:
        out.append(("Access-Control-Allow-Methods", ",".join(cors.allow_methods)))
    if cors.allow_headers:
        out.append(("Access-Control-Allow-Headers", ",".join(cors.allow_headers)))
    if cors.expose_headers:
        out.append(("Access-Control-Expose-Headers", ",".join(cors.expose_headers)))
    if cors.max_age is not None:
        out.append(("Access-Control-Max-Age", str(cors.max_age)))
    return HttpResponse(200, out, b"")


def apply(cors: UrlCors, headers: list[tuple[str, str]], response: HttpResponse) -> None:
    """Add the configured CORS headers to the function's `response` (in place)."""
    added = _common(cors, _origin(headers))
    if cors.expose_headers:
        added.append(("Access-Control-Expose-Headers", ",".join(cors.expose_headers)))
    kept = [(k, v) for k, v in response.headers if k.lower() not in _REPLACED]
    response.headers = kept + added


# What `apply` decides: the function's own values for these are dropped.
_REPLACED = frozenset(
    {
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-expose-headers",
    }
)

"""`skylift load FUNCTION`: what to send to reach a function by name on a running server.

The server says which functions it serves and their HTTP routes (`GET /_skylift/status`,
with its token). A function with a route of a fixed path (no `{parameter}`) is loaded
through that route, as its callers reach it; one with none (a queue consumer, a plain
`@app.function()`) through the Lambda Invoke API, `POST
/2015-03-31/functions/NAME/invocations`, with the body as its event, as boto3 would.
Standard library only: it runs before Locust patches the process.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from skylift.errors import SkyliftError

INVOKE_PATH = "/2015-03-31/functions/{}/invocations"


class TargetError(SkyliftError):
    """The function cannot be loaded as asked: the message says why and what to do."""


@dataclass(frozen=True)
class Resolved:
    url: str
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    how: str = ""  # one line for the user: which route, or the Invoke API
    invoke: bool = False


def functions(base: str, token: str | None) -> dict[str, Any]:
    """The server's functions, from its control API's status."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(base.rstrip("/") + "/_skylift/status", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            found: dict[str, Any] = json.loads(response.read())["functions"]
            return found
    except urllib.error.HTTPError as exc:
        if exc.code == 403:
            raise TargetError(
                f"the server at {base} needs its token to say which functions it serves: "
                "set SKYLIFT_TOKEN to it"
            ) from None
        raise TargetError(f"{base}/_skylift/status answered {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise TargetError(f"no skylift server answers at {base} ({exc})") from None


def resolve_function(
    base: str, name: str, token: str | None, method: str | None, has_body: bool
) -> Resolved:
    """How to load the function `name` of the server at `base`."""
    served = functions(base, token)
    if name not in served:
        known = ", ".join(sorted(served)) or "none"
        raise TargetError(
            f"TARGET {name!r} is not a function this server serves (functions: {known}); "
            "give a function, METHOD PATH, or a URL"
        )
    routes = served[name].get("routes", [])
    fixed = [r for r in routes if "{" not in r["path"] and r["path"] != "$default"]
    for route in fixed:
        methods = [m for m in route["methods"] if m != "ANY"]
        if method is not None and methods and method not in methods:
            continue
        chosen = method or (methods[0] if methods else ("POST" if has_body else "GET"))
        return Resolved(
            base.rstrip("/") + route["path"], chosen, how=f"{name}'s route {chosen} {route['path']}"
        )
    if method not in (None, "POST"):
        raise TargetError(
            f"{name} has no route that takes {method}: it is loaded through the Lambda "
            "Invoke API, which takes POST (leave out --method)"
        )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    path = INVOKE_PATH.format(urllib.parse.quote(name, safe=""))
    return Resolved(
        base.rstrip("/") + path,
        "POST",
        headers,
        f"{name} through the Lambda Invoke API (POST {path}; it has no route of a fixed path)",
        invoke=True,
    )

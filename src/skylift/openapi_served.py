"""/openapi.json and /docs for an app loaded from a SAM template.

A decorator app serves them as two of its own functions (`App(docs=True)`, see
`swagger.py`); a template has no such switch, and its functions are the user's. So the
gateway answers these paths itself for a template app, from the routes it serves now
(paths, methods and path parameters: a template declares no models or docstrings), and
only where the template declares no route of its own: a function at `/docs` keeps it.
Swagger UI's files come from the `swagger-ui-py` package (`skylift[openapi]`); without it
/docs says what to install, and /openapi.json still answers.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from skylift import openapi, swagger
from skylift.asgi_types import Receive, Scope, Send
from skylift.errors import DeclarationError
from skylift.spec import FunctionSpec


class TemplateDocs:
    """Serves the OpenAPI document of `specs()` titled `title`, and Swagger UI for it."""

    def __init__(self, specs: Callable[[], Iterable[FunctionSpec]], title: str) -> None:
        self.specs = specs
        self.title = title

    @staticmethod
    def handles(method: str, path: str) -> bool:
        if method not in ("GET", "HEAD"):
            return False
        return path in (swagger.SPEC_PATH, swagger.UI_PATH) or (
            path.startswith(swagger.UI_PATH + "/") and path.count("/") == 2
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path == swagger.SPEC_PATH:
            document = openapi.document(self.title, openapi.operations(self.specs()))
            await _send(send, 200, "application/json", orjson.dumps(document))
            return
        try:
            folder = swagger.assets()
        except DeclarationError as exc:
            await _send(send, 404, "application/json", orjson.dumps({"message": str(exc)}))
            return
        if path == swagger.UI_PATH:
            await _send(send, 200, "text/html; charset=utf-8", swagger.page(self.title).encode())
            return
        name = path.rsplit("/", 1)[1]
        if name not in swagger.asset_names(folder):
            await _send(send, 404, "application/json", b'{"message":"Not Found"}')
            return
        response: dict[str, Any] = swagger.asset_file(folder / name)
        body = response["body"]
        data = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
        headers = response["headers"]
        await _send(send, 200, headers["Content-Type"], data, headers.get("Cache-Control"))


async def _send(send: Send, status: int, kind: str, body: bytes, cache: str | None = None) -> None:
    headers = [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode())]
    if cache is not None:
        headers.append((b"cache-control", cache.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

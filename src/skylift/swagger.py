"""`App(docs=True)`: the app's OpenAPI document and Swagger UI, served by two functions.

GET /openapi.json answers the document of the app's routes; GET /docs the Swagger UI
page, whose scripts and styles (GET /docs/ASSET) come from the `swagger-ui-py` package
installed with skylift's `openapi` extra: no CDN, so the page works offline, and
"Try it out" calls the server that served the page. They are ordinary functions of the
app, so they appear in `skylift status` and scale like any other.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from skylift.errors import DeclarationError

# How an app declares an HTTP route: `App.http` (passed in, so this module needs no App).
Declare = Callable[..., Callable[[Callable[..., Any]], Any]]

SPEC_PATH = "/openapi.json"
UI_PATH = "/docs"
_TYPES = {
    ".js": "application/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".html": "text/html; charset=utf-8",
}
_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} - Swagger UI</title>
  <link rel="stylesheet" href="{ui}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{ui}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{ui}/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{spec}",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis],
    }});
  </script>
</body>
</html>
"""


def assets() -> Path:
    """The folder of Swagger UI's files, or DeclarationError saying what to install."""
    try:
        import swagger_ui
    except ImportError:
        raise DeclarationError(
            "App(docs=True) serves Swagger UI from the swagger-ui-py package: "
            "pip install 'skylift[openapi]'"
        ) from None
    return Path(swagger_ui.__file__).parent / "static"


def declare(http: Declare, document: Callable[[], dict[str, Any]], title: str) -> None:
    """Add the functions serving /openapi.json (`document()`) and /docs with `http`."""
    folder = assets()  # at declaration: a missing package fails `skylift up`, not a request
    served = asset_names(folder)

    @cache
    def spec_body() -> str:
        # At the first request, not at import: every route is declared by then.
        return json.dumps(document())

    def openapi(event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The OpenAPI document of this app."""
        return _response(200, "application/json", spec_body())

    def swagger_ui(event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Swagger UI for this app's OpenAPI document."""
        asset = (event.get("pathParameters") or {}).get("asset")
        if asset is None:
            return _response(200, _TYPES[".html"], page(title))
        if asset not in served:  # names only: no path reaches outside the folder
            return _response(404, "application/json", '{"message":"Not Found"}')
        return asset_file(folder / asset)

    http(SPEC_PATH, methods=["GET"], name="openapi")(openapi)
    http(UI_PATH, methods=["GET"], name="swagger-ui")(swagger_ui)
    http(UI_PATH + "/{asset}", methods=["GET"], name="swagger-ui")(swagger_ui)


def asset_names(folder: Path) -> frozenset[str]:
    """The files of `folder` that /docs/NAME serves (by name only: nothing outside it)."""
    return frozenset(p.name for p in folder.iterdir() if p.suffix in _TYPES and p.is_file())


def page(title: str) -> str:
    escaped = title.replace("&", "&amp;").replace("<", "&lt;")
    return _PAGE.format(title=escaped, ui=UI_PATH, spec=SPEC_PATH)


@cache
def asset_file(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    kind = _TYPES[path.suffix]
    if path.suffix == ".png":
        return {
            "statusCode": 200,
            "headers": {"Content-Type": kind, "Cache-Control": "max-age=3600"},
            "body": base64.b64encode(data).decode(),
            "isBase64Encoded": True,
        }
    response = _response(200, kind, data.decode("utf-8"))
    response["headers"]["Cache-Control"] = "max-age=3600"
    return response


def _response(status: int, kind: str, body: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": kind}, "body": body}

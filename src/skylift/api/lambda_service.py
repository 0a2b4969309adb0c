"""Lambda's API as one ASGI app: each request goes to the app serving its operation, and
every other path under Lambda's API versions gets Lambda's UnknownOperationException.

- ``POST /2015-03-31/functions/{name}/invocations``: `LambdaApi` (Invoke);
- ``/2015-03-31/functions[/{name}[/configuration]]``, ``/2017-03-31/tags/{arn}``:
  `FunctionsApi`;
- ``/2015-03-31/event-source-mappings[/{uuid}]``: `MappingsApi`;
- ``/2017-10-31/functions/``, ``/2019-09-30/functions/``, ``/2016-08-19/account-settings``:
  `ConcurrencyApi`;
- ``/2021-10-31/functions/{name}/url[s]``: `UrlsApi` (function URL configurations).
"""

from __future__ import annotations

from skylift.api.lambda_api import LambdaApi
from skylift.api.lambda_concurrency import ConcurrencyApi, is_concurrency_request
from skylift.api.lambda_functions import FunctionsApi
from skylift.api.lambda_mappings import MappingsApi
from skylift.api.lambda_rest import serve_operation, unknown_operation
from skylift.asgi_types import Asgi, Receive, Scope, Send, lifespan

FUNCTIONS = ("/2015-03-31/functions", "/2017-03-31/tags/")
MAPPINGS = "/2015-03-31/event-source-mappings"
URLS = "/2021-10-31/functions/"


def lambda_service(
    invoke: LambdaApi,
    concurrency: ConcurrencyApi,
    functions: FunctionsApi,
    mappings: MappingsApi,
    urls: Asgi | None = None,
) -> Asgi:
    """One ASGI app for Lambda's API over the apps serving its operations.

    Example: ``lambda_service(LambdaApi(...), ConcurrencyApi(...), FunctionsApi(...),
    MappingsApi(...))``, served where the gateway sends paths under `LAMBDA_PREFIXES`.
    """

    async def unknown(scope: Scope, receive: Receive, send: Send) -> None:
        async def refuse(scope: Scope, body: bytes | None, request_id: str, send: Send) -> None:
            raise unknown_operation(scope)

        await serve_operation(scope, receive, send, refuse)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        path: str = scope.get("path", "")
        target: Asgi
        invocation = scope.get("method") == "POST" and path.endswith("/invocations")
        if invocation and path.startswith("/2015-03-31/functions/"):
            target = invoke
        elif is_concurrency_request(scope):
            target = concurrency
        elif path.startswith(FUNCTIONS):
            target = functions
        elif path.startswith(MAPPINGS):
            target = mappings
        elif urls is not None and path.startswith(URLS):
            target = urls
        else:
            target = unknown
        await target(scope, receive, send)

    return app

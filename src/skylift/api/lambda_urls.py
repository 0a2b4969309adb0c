"""Lambda's function URL operations, read only, as boto3's ``lambda`` client speaks them:

- ``GET /2021-10-31/functions/{FunctionName}/url`` GetFunctionUrlConfig;
- ``GET /2021-10-31/functions/{FunctionName}/urls`` ListFunctionUrlConfigs (one URL per
  function: skylift serves `$LATEST` only).

`FunctionUrl` is where skylift serves the URL, `http://{url-id}.lambda-url.localhost:PORT/`
(the port the request came in on), not AWS's `https://{url-id}.lambda-url.{region}.on.aws/`;
everything else has AWS's shape. A function without a URL is ResourceNotFoundException
"The resource you requested does not exist.", as on AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from skylift.account import ACCOUNT_ID
from skylift.api.lambda_rest import (
    FunctionRef,
    function_not_found,
    invalid_parameter,
    not_found,
    query,
    respond,
    segments,
    serve_operation,
    unknown_operation,
)
from skylift.asgi_types import Receive, Scope, Send
from skylift.function_urls import FunctionUrl, url_id
from skylift.spec import FunctionSpec

PREFIX = "/2021-10-31/functions/"


class UrlsApi:
    """GetFunctionUrlConfig and ListFunctionUrlConfigs over the platform's (live) specs.

    Example::

        api = UrlsApi(platform.specs, region="us-east-1")
        # boto3.client("lambda", ...).get_function_url_config(FunctionName="hello")
    """

    def __init__(
        self, specs: Mapping[str, FunctionSpec], *, region: str, account_id: str = ACCOUNT_ID
    ) -> None:
        self.specs = specs
        self.region = region
        self.account_id = account_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_operation(scope, receive, send, self._answer)

    async def _answer(self, scope: Scope, body: bytes | None, request_id: str, send: Send) -> None:
        parts = segments(scope)
        if scope["method"] != "GET" or len(parts) != 5 or parts[4] not in ("url", "urls"):
            raise unknown_operation(scope)
        params = query(scope)
        name = self._resolve(parts[3], params.get("Qualifier"))
        spec = self.specs[name]
        port = _port(scope)
        if parts[4] == "url":
            if spec.url is None:
                raise not_found("The resource you requested does not exist.")
            answer: dict[str, Any] = self.config(name, spec.url, port)
        else:
            configs = [self.config(name, spec.url, port)] if spec.url is not None else []
            answer = {"FunctionUrlConfigs": configs}
        await respond(send, 200, orjson.dumps(answer), request_id)

    def config(self, name: str, url: FunctionUrl, port: int) -> dict[str, Any]:
        """The FunctionUrlConfig shape of `name`'s URL."""
        answer: dict[str, Any] = {
            "FunctionUrl": local_url(name, self.region, port),
            "FunctionArn": f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}",
            "AuthType": url.auth_type,
            "CreationTime": url.created,
            "LastModifiedTime": url.created,
            "InvokeMode": url.invoke_mode,
        }
        if url.cors is not None:
            answer["Cors"] = url.cors.to_dict()
            if url.cors.max_age is None:
                del answer["Cors"]["MaxAge"]
        return answer

    def _resolve(self, raw: str, qualifier: str | None) -> str:
        ref = FunctionRef.parse(raw)
        if qualifier is not None and qualifier != "$LATEST":
            raise invalid_parameter(f"Qualifier {qualifier}: skylift serves $LATEST only")
        arn = f"arn:aws:lambda:{ref.region or self.region}:{ref.account or self.account_id}"
        arn += f":function:{ref.name}"
        ref.check_home(arn, self.region, self.account_id)
        if ref.name not in self.specs:
            raise function_not_found(arn, self.specs)
        return ref.name


def local_url(function: str, region: str, port: int) -> str:
    """Where skylift serves `function`'s URL on this machine."""
    return f"http://{url_id(function, region)}.lambda-url.localhost:{port}/"


def _port(scope: Scope) -> int:
    server = scope.get("server")
    return int(server[1]) if server else 80

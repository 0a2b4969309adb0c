"""Lambda's function operations as an ASGI app, as boto3's ``lambda`` client and the AWS
CLI speak them: what tools read before they invoke, and the one change they make.

- ``GET /2015-03-31/functions/`` ListFunctions (``Marker``, ``MaxItems``: pages of at most
  50, in name order);
- ``GET /2015-03-31/functions/{FunctionName}`` GetFunction (Configuration, Code, Tags,
  and Concurrency when reserved); its ``Code.Location`` (``.../{FunctionName}/code.zip``,
  not an AWS path) serves the code as a zip;
- ``GET|PUT /2015-03-31/functions/{FunctionName}/configuration``
  GetFunctionConfiguration and UpdateFunctionConfiguration (Environment, Timeout,
  MemorySize, Description: new instances get them, idle ones are retired);
- ``GET /2017-03-31/tags/{ARN}`` ListTags.

skylift has one version of each function, ``$LATEST``; changes last until the server stops.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import zipfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import orjson

from skylift.account import ACCOUNT_ID
from skylift.api.lambda_config import CodeMeasure, Revision, configuration
from skylift.api.lambda_rest import (
    FunctionRef,
    function_not_found,
    invalid_parameter,
    json_body,
    max_items,
    query,
    read_marker,
    respond,
    segments,
    serve_operation,
    unknown_operation,
    write_marker,
)
from skylift.api.lambda_update import plan_update
from skylift.asgi_types import Receive, Scope, Send
from skylift.engine.pool import Pool
from skylift.spec import FunctionSpec

logger = logging.getLogger("skylift.api.lambda")
PAGE = 50  # ListFunctions answers at most this many, whatever MaxItems asks
Answer = tuple[int, dict[str, Any]]


class FunctionsApi:
    """An ASGI app serving Lambda's function operations over a platform's specs and pools.

    `specs` is the platform's own mapping: UpdateFunctionConfiguration replaces a spec in
    it (so Invoke and the console log see the change) and hands the pool the new one.

    Example::

        api = FunctionsApi(platform.specs, platform.pools, region=platform.region)
        # boto3.client("lambda", ...).get_function_configuration(FunctionName="resize")
    """

    def __init__(
        self,
        specs: MutableMapping[str, FunctionSpec],
        pools: MutableMapping[str, Pool],
        *,
        region: str,
        account_id: str = ACCOUNT_ID,
    ) -> None:
        self.specs = specs
        self.pools = pools
        self.region = region
        self.account_id = account_id
        self.revisions = {name: Revision() for name in specs}
        self.measure = CodeMeasure()
        self._updating = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_operation(scope, receive, send, self._answer)

    async def _answer(self, scope: Scope, body: bytes | None, request_id: str, send: Send) -> None:
        parts = segments(scope)
        method: str = scope["method"]
        code = parts[1:3] == ["2015-03-31", "functions"] and parts[4:] == ["code.zip"]
        if code and parts[3] and method == "GET":
            await self._send_zip(parts[3], request_id, send)
            return
        status, answer = await self._dispatch(scope, parts, method, body)
        await respond(send, status, orjson.dumps(answer), request_id)

    async def _dispatch(
        self, scope: Scope, parts: list[str], method: str, body: bytes | None
    ) -> Answer:
        params = query(scope)
        if parts[1:3] == ["2015-03-31", "functions"]:
            rest = parts[3:]
            if rest in ([], [""]) and method == "GET":
                return 200, await self.list_functions(params)
            if len(rest) == 1 and rest[0] and method == "GET":
                return 200, await self.get_function(rest[0], params.get("Qualifier"), scope)
            if len(rest) == 2 and rest[0] and rest[1] == "configuration":
                if method == "GET":
                    return 200, await self.get_configuration(rest[0], params.get("Qualifier"))
                if method == "PUT":
                    return 200, await self.update_configuration(rest[0], json_body(body))
        if parts[1:3] == ["2017-03-31", "tags"] and len(parts) == 4 and method == "GET":
            return 200, self.list_tags(parts[3])
        raise unknown_operation(scope)

    # -- reading ---------------------------------------------------------------------------

    async def list_functions(self, params: dict[str, str]) -> dict[str, Any]:
        limit = max_items(params.get("MaxItems"), PAGE)
        names = sorted(self.specs)
        start = 0
        marker = params.get("Marker")
        if marker:
            after = read_marker(marker)
            start = next((i for i, name in enumerate(names) if name >= after), len(names))
        page = names[start : start + limit]
        answer: dict[str, Any] = {
            "Functions": [await self._configuration(name, listed=True) for name in page]
        }
        if start + limit < len(names):
            answer["NextMarker"] = write_marker(names[start + limit])
        return answer

    async def get_function(
        self, raw_name: str, qualifier: str | None, scope: Scope
    ) -> dict[str, Any]:
        name = self._resolve(raw_name, qualifier)
        answer: dict[str, Any] = {
            "Configuration": await self._configuration(name),
            "Code": {"RepositoryType": "S3", "Location": _code_url(scope, name)},
            "Tags": {},
        }
        pool = self.pools.get(name)
        if pool is not None and pool.reserved:
            answer["Concurrency"] = {"ReservedConcurrentExecutions": pool.limit}
        return answer

    async def get_configuration(self, raw_name: str, qualifier: str | None) -> dict[str, Any]:
        return await self._configuration(self._resolve(raw_name, qualifier))

    def list_tags(self, arn: str) -> dict[str, Any]:
        ref = FunctionRef.parse(arn)
        if not arn.startswith("arn:") or ref.qualifier:
            raise invalid_parameter(f"Invalid ARN: {arn}")  # ListTags takes a function's ARN
        self._resolve(arn, None)
        return {"Tags": {}}

    # -- changing --------------------------------------------------------------------------

    async def update_configuration(self, raw_name: str, request: dict[str, Any]) -> dict[str, Any]:
        name = self._resolve(raw_name, None)
        async with self._updating:  # one change at a time: each sees the last one's revision
            revision = self.revisions[name]
            current = await self._configuration(name)
            update = plan_update(self.specs[name], request, current, revision.revision_id)
            # Checked in full above: from here on nothing can refuse the change.
            self.specs[name] = update.spec
            self.pools[name].update(update.spec)
            revision.changed(update.description)
            logger.info("%s: configuration updated (revision %s)", name, revision.revision_id)
            return await self._configuration(name)

    # -- helpers ---------------------------------------------------------------------------

    async def _configuration(self, name: str, *, listed: bool = False) -> dict[str, Any]:
        spec = self.specs[name]
        code = await asyncio.to_thread(self.measure, spec.code_dir)
        revision = self.revisions.setdefault(name, Revision())
        return configuration(
            spec,
            revision,
            code,
            region=self.region,
            account_id=self.account_id,
            listed=listed,
        )

    def _resolve(self, raw_name: str, query_qualifier: str | None) -> str:
        """The name of the function `raw_name` names, or Lambda's error."""
        ref = FunctionRef.parse(raw_name)
        if ref.qualifier and query_qualifier and ref.qualifier != query_qualifier:
            raise invalid_parameter(
                "The derived qualifier from the function name does not match the specified "
                "qualifier."
            )
        qualifier = ref.qualifier or query_qualifier
        arn = f"arn:aws:lambda:{ref.region or self.region}:{ref.account or self.account_id}"
        arn += f":function:{ref.name}" + (f":{qualifier}" if qualifier else "")
        ref.check_home(arn, self.region, self.account_id)
        if ref.name not in self.specs or qualifier not in (None, "$LATEST"):
            raise function_not_found(arn, self.specs)
        return ref.name

    async def _send_zip(self, raw_name: str, request_id: str, send: Send) -> None:
        name = self._resolve(raw_name, None)
        archive = await asyncio.to_thread(_zip, Path(self.specs[name].code_dir))
        await respond(
            send,
            200,
            archive,
            request_id,
            extra=[(b"content-disposition", f'attachment; filename="{name}.zip"'.encode())],
            content_type=b"application/zip",
        )


def _code_url(scope: Scope, name: str) -> str:
    """Where the function's code can be downloaded: on Lambda a presigned S3 URL, here
    this server (the Host the client used)."""
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
    if host is None:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"http://{host}/2015-03-31/functions/{name}/code.zip"


def _zip(top: Path) -> bytes:
    """The code directory as a zip, as it would be deployed (without hidden directories and
    bytecode caches); fixed timestamps, so the same code gives the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
            for file in sorted(files):
                path = Path(root, file)
                info = zipfile.ZipInfo(str(path.relative_to(top)), (1980, 1, 1, 0, 0, 0))
                try:
                    info.external_attr = (path.stat().st_mode & 0o777) << 16
                    archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
                except OSError:
                    continue  # removed while we walked
    return buffer.getvalue()

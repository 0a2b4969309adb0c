"""LambdaApi over real HTTP (uvicorn on 127.0.0.1) in front of a real Platform with real
worker processes, driven by the real boto3 Lambda client.

Error expectations are Lambda's, as botocore reads them: the code from ``x-amzn-ErrorType``
picks the ``client.exceptions`` class, the body's members land in ``response``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from skylift.api.lambda_api import LambdaApi, is_lambda_request
from skylift.engine.platform import Platform
from skylift.loader import resolve_target

ACCOUNT = "123456789012"
LIMIT = 6 * 1024 * 1024  # 6291456, Lambda's synchronous payload limit

APP = """
import json
import time

from skylift import App

app = App("invoke-api")


@app.function()
def echo(event, context):
    print("echo got " + json.dumps(event))
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
    }


@app.function()
def size(event, context):
    return len(event)


@app.function()
def fail(event, context):
    raise ValueError("no good")


@app.function()
def chatty(event, context):
    for i in range(200):
        print(f"line {i:03d} " + "\u00e9" * 40)
    return "said a lot"


@app.function()
def client(event, context):
    cc = context.client_context
    if cc is None:
        return None
    return {"app_title": cc.client.app_title, "custom": cc.custom, "env": cc.env}


@app.function(timeout=1)
def slow(event, context):
    time.sleep(5)


@app.function(max_concurrency=1)
def single(event, context):
    time.sleep(event["seconds"])
    return "done"
"""


class Server:
    """A Platform and LambdaApi under uvicorn, sharing one event loop on a background thread."""

    def __init__(self, app_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.platform = self._run(Platform.start(resolve_target(str(app_dir), None)))
        self.region = self.platform.region
        api = LambdaApi(self.platform.invoker, self.platform.specs, region=self.region)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(api, lifespan="on", log_level="warning", ws="none")
        self.server = uvicorn.Server(config)
        self.serving = asyncio.run_coroutine_threadsafe(self.server.serve([sock]), self.loop)
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and not self.serving.done(), "uvicorn did not start"
            time.sleep(0.01)

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.server.should_exit = True
        self.serving.result(10)
        self._run(self.platform.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    app_dir = tmp_path_factory.mktemp("invoke-api")
    (app_dir / "app.py").write_text(APP)
    running = Server(app_dir)
    yield running
    running.close()


@pytest.fixture(scope="module")
def lam(server: Server, lambda_client: Callable[[str], Any]) -> Any:
    return lambda_client(server.url)


def payload(response: dict[str, Any]) -> Any:
    return json.loads(response["Payload"].read())


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response: dict[str, Any] = caught.value.response
    return response


# -- invoking -----------------------------------------------------------------------------


def test_invoke_by_name_returns_the_result(lam: Any, server: Server) -> None:
    response = lam.invoke(FunctionName="echo", Payload=b'{"a": 1}')
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert "LogResult" not in response
    result = payload(response)
    assert result["event"] == {"a": 1}
    # The API's request id is the invocation's: the one the handler saw.
    assert result["request_id"] == response["ResponseMetadata"]["RequestId"]
    assert result["arn"] == f"arn:aws:lambda:{server.region}:{ACCOUNT}:function:echo"


@pytest.mark.parametrize(
    "name",
    [
        "arn:aws:lambda:{region}:{account}:function:echo",
        "arn:aws:lambda:{region}:{account}:function:echo:$LATEST",
        "{account}:function:echo",
        "echo:$LATEST",
    ],
)
def test_invoke_by_arn_partial_arn_and_qualified_name(lam: Any, server: Server, name: str) -> None:
    function = name.format(region=server.region, account=ACCOUNT)
    response = lam.invoke(FunctionName=function, Payload=b'{"by": "arn"}')
    assert payload(response)["event"] == {"by": "arn"}


def test_invoke_with_the_latest_qualifier(lam: Any) -> None:
    response = lam.invoke(FunctionName="echo", Qualifier="$LATEST", Payload=b"[1, 2]")
    assert response["ExecutedVersion"] == "$LATEST"
    assert payload(response)["event"] == [1, 2]


def test_an_empty_payload_is_an_empty_object(lam: Any) -> None:
    assert payload(lam.invoke(FunctionName="echo"))["event"] == {}


def test_any_json_value_is_an_event(lam: Any) -> None:
    assert payload(lam.invoke(FunctionName="echo", Payload=b'"text"'))["event"] == "text"
    assert payload(lam.invoke(FunctionName="echo", Payload=b"null"))["event"] is None


def test_a_function_error_comes_back_as_its_payload(lam: Any) -> None:
    response = lam.invoke(FunctionName="fail", Payload=b"{}")
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = payload(response)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "no good"


def test_a_timeout_is_a_function_error(lam: Any) -> None:
    response = lam.invoke(FunctionName="slow", Payload=b"{}")
    assert response["FunctionError"] == "Unhandled"
    error = payload(response)
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.0" in error["errorMessage"]


def test_log_type_tail_returns_the_invocation_log(lam: Any) -> None:
    response = lam.invoke(FunctionName="echo", Payload=b'{"a": 1}', LogType="Tail")
    request_id = response["ResponseMetadata"]["RequestId"]
    log = base64.b64decode(response["LogResult"]).decode()
    assert log.startswith(f"START RequestId: {request_id} Version: $LATEST\n")
    assert 'echo got {"a": 1}\n' in log
    assert f"END RequestId: {request_id}\n" in log
    assert f"REPORT RequestId: {request_id}\tDuration: " in log


def test_log_tail_is_the_last_4_kb(lam: Any) -> None:
    response = lam.invoke(FunctionName="chatty", LogType="Tail")
    tail = base64.b64decode(response["LogResult"])
    assert 4000 < len(tail) <= 4096
    log = tail.decode()  # whole characters, though the output is full of two-byte ones
    assert "START" not in log and "line 000" not in log
    assert "line 199 " in log
    assert log.splitlines()[-1].startswith("REPORT RequestId: ")


def test_client_context_reaches_the_handler(lam: Any) -> None:
    context = {
        "client": {"app_title": "skylift-tests"},
        "custom": {"tenant": "t1"},
        "env": {"locale": "en_GB"},
    }
    encoded = base64.b64encode(json.dumps(context).encode()).decode()
    response = lam.invoke(FunctionName="client", ClientContext=encoded)
    assert payload(response) == {
        "app_title": "skylift-tests",
        "custom": {"tenant": "t1"},
        "env": {"locale": "en_GB"},
    }
    assert payload(lam.invoke(FunctionName="client")) is None


def test_dry_run_checks_without_invoking(lam: Any) -> None:
    response = lam.invoke(FunctionName="echo", InvocationType="DryRun", Payload=b"{}")
    assert response["StatusCode"] == 204
    assert response["Payload"].read() == b""
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="nope", InvocationType="DryRun")
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke(FunctionName="echo", InvocationType="DryRun", Payload=b"{oops")


def test_a_payload_of_exactly_the_limit_is_invoked(lam: Any) -> None:
    event = b'"' + b"A" * (LIMIT - 2) + b'"'
    assert payload(lam.invoke(FunctionName="size", Payload=event)) == LIMIT - 2


def test_past_reserved_concurrency_an_invocation_is_throttled(
    server: Server, lambda_client: Callable[[str], Any]
) -> None:
    clients = [lambda_client(server.url) for _ in range(2)]

    def invoke(client: Any) -> Any:
        try:
            return payload(client.invoke(FunctionName="single", Payload=b'{"seconds": 1.5}'))
        except ClientError as error:
            return error

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(invoke, clients))
    throttled = [
        o for o in outcomes if isinstance(o, clients[0].exceptions.TooManyRequestsException)
    ]
    assert [o for o in outcomes if not isinstance(o, ClientError)] == ["done"]
    assert len(throttled) == 1
    response = throttled[0].response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert response["Type"] == "User"
    assert response["Error"]["Message"].startswith("Rate Exceeded.")


# -- refusals -----------------------------------------------------------------------------


def test_an_unknown_function_is_not_found(lam: Any, server: Server) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.invoke(FunctionName="nope", Payload=b"{}")
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["Type"] == "User"
    message = response["Error"]["Message"]
    assert message == f"Function not found: arn:aws:lambda:{server.region}:{ACCOUNT}:function:nope"


def test_a_qualifier_other_than_latest_is_not_found(lam: Any, server: Server) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.invoke(FunctionName="echo", Qualifier="7")
    message = caught.value.response["Error"]["Message"]
    assert (
        message == f"Function not found: arn:aws:lambda:{server.region}:{ACCOUNT}:function:echo:7"
    )
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="echo:prod")


def test_conflicting_qualifiers_are_refused(lam: Any) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        lam.invoke(FunctionName="echo:$LATEST", Qualifier="prod")
    assert "does not match the specified qualifier" in caught.value.response["Error"]["Message"]


def test_an_arn_in_another_region_or_account_is_not_found(lam: Any, server: Server) -> None:
    other = "eu-west-3" if server.region != "eu-west-3" else "us-east-1"
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.invoke(FunctionName=f"arn:aws:lambda:{other}:{ACCOUNT}:function:echo")
    message = caught.value.response["Error"]["Message"]
    assert (
        message == f"Functions from '{other}' are not reachable in this region ('{server.region}')"
    )
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        lam.invoke(FunctionName="999999999999:function:echo")
    assert caught.value.response["Error"]["Message"] == (
        f"Function not found: arn:aws:lambda:{server.region}:999999999999:function:echo"
    )


@pytest.mark.parametrize("body", [b"not json", b'{"a": 1', b"{} {}", b"\xff\xfe"])
def test_a_payload_that_is_not_json_is_refused(lam: Any, body: bytes) -> None:
    with pytest.raises(lam.exceptions.InvalidRequestContentException) as caught:
        lam.invoke(FunctionName="echo", Payload=body)
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Message"].startswith(
        "Could not parse request body into json: Could not parse payload into json: "
    )


def test_a_payload_over_6_mb_is_refused_as_lambda_refuses_it(lam: Any) -> None:
    # Lambda's front end answers RequestEntityTooLargeException, a code outside Lambda's model,
    # so boto3 raises a plain ClientError (not RequestTooLargeException), as it does on AWS.
    event = b'"' + b"A" * (LIMIT - 1) + b'"'
    response = error_of(lam.invoke, FunctionName="echo", Payload=event)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert response["Error"] == {
        "Code": "RequestEntityTooLargeException",
        "Message": "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
    }
    # The connection stays usable after the refusal.
    assert payload(lam.invoke(FunctionName="size", Payload=b'"abc"')) == 3


def test_a_chunked_payload_over_6_mb_is_refused(server: Server) -> None:
    # No Content-Length to go by: the limit is found while reading.
    chunks = (b"A" * 1024 * 1024 for _ in range(7))
    url = server.url + "/2015-03-31/functions/echo/invocations"
    response = httpx.post(url, content=chunks)
    assert response.status_code == 413
    assert response.headers["x-amzn-errortype"] == "RequestEntityTooLargeException"


@pytest.mark.parametrize(
    "client_context",
    [
        "not base64!",
        base64.b64encode(b"[1, 2]").decode(),  # JSON, but not an object
        base64.b64encode(b"{oops").decode(),
        base64.b64encode(json.dumps({"custom": "x" * 3000}).encode()).decode(),  # > 3583 bytes
    ],
)
def test_an_invalid_client_context_is_refused(lam: Any, client_context: str) -> None:
    with pytest.raises(lam.exceptions.InvalidRequestContentException) as caught:
        lam.invoke(FunctionName="client", ClientContext=client_context)
    assert "Client context must be" in caught.value.response["Error"]["Message"]


def test_asynchronous_invocation_is_refused_clearly(lam: Any) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        lam.invoke(FunctionName="echo", InvocationType="Event", Payload=b"{}")
    message = caught.value.response["Error"]["Message"]
    # This server has no store for events (only `skylift up` has): it says so.
    assert "Asynchronous invocation (InvocationType Event) needs a running `skylift up`" in (
        message
    )


@pytest.mark.parametrize(
    ("option", "member"), [("InvocationType", "invocationType"), ("LogType", "logType")]
)
def test_unknown_invocation_and_log_types_are_refused(lam: Any, option: str, member: str) -> None:
    response = error_of(lam.invoke, FunctionName="echo", **{option: "Sometimes"})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Code"] == "ValidationException"
    assert (
        f"Value 'Sometimes' at '{member}' failed to satisfy constraint"
        in (response["Error"]["Message"])
    )


def test_other_operations_are_unknown_to_the_invoke_api(lam: Any) -> None:
    # LambdaApi serves Invoke alone; lambda_service routes the others (test_lambda_functions).
    for call, kwargs in [(lam.list_functions, {}), (lam.get_function, {"FunctionName": "echo"})]:
        response = error_of(call, **kwargs)
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert response["Error"]["Code"] == "UnknownOperationException"
        assert response["Error"]["Message"].startswith("Unknown operation GET /2015-03-31/")


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/2015-03-31/functions/echo/invocations", {"X-Amz-Client-Context": "\u00e9t\u00e9"}, 400),
        ("/2015-03-31/functions/echo/invocations", {"X-Amz-Log-Type": "\u00e9"}, 400),
        ("/2015-03-31/functions/%2Fecho/invocations", {}, 404),
        ("/2015-03-31/functions//invocations", {}, 404),
        ("/2015-03-31/functions/a/b/invocations", {}, 404),
        ("/2015-03-31/functions/arn:aws:lambda:x/invocations", {}, 404),
    ],
)
def test_odd_requests_get_lambda_errors_not_500s(
    server: Server, path: str, headers: dict[str, str], status: int
) -> None:
    encoded = {k: v.encode() for k, v in headers.items()}  # raw bytes, as a careless client sends
    response = httpx.post(server.url + path, content=b"{}", headers=encoded)
    assert response.status_code == status
    assert response.headers["x-amzn-errortype"]
    assert response.json()["Type"] == "User"


def test_is_lambda_request() -> None:
    def scope(path: str, kind: str = "http") -> dict[str, Any]:
        return {"type": kind, "path": path, "method": "POST", "headers": []}

    assert is_lambda_request(scope("/2015-03-31/functions/echo/invocations"))
    assert is_lambda_request(scope("/2015-03-31/functions/"))
    assert not is_lambda_request(scope("/2015-03-31/functions"))
    assert not is_lambda_request(scope("/echo"))
    assert not is_lambda_request(scope("/2015-03-31/functions/echo", kind="websocket"))

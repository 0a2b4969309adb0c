"""Lambda's concurrency operations on a real `skylift up` server, driven by the real boto3
Lambda client: reserved concurrency (the function's limit, which throttles past it),
provisioned concurrency (instances kept warm) and the account's settings.

Error expectations are Lambda's, as botocore reads them: the code from ``x-amzn-ErrorType``
picks the ``client.exceptions`` class, the body's members land in ``response``.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from skylift.testing import serve

ACCOUNT = "123456789012"
LIMIT = 500  # the server's concurrency (skylift up --concurrency)

APP = """
import time

from skylift import App

app = App("concurrency-api")


@app.function()
def sleepy(event, context):
    time.sleep(event.get("seconds", 0))
    return "done"


@app.function()
def echo(event, context):
    return event


@app.function()
def warm(event, context):
    return "warm"


@app.function()
def bounded(event, context):
    return "bounded"


@app.function(max_concurrency=5)
def capped(event, context):
    return "capped"


@app.function()
def spare(event, context):
    return "spare"
"""
FUNCTIONS = 6


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app_dir: Path = tmp_path_factory.mktemp("concurrency-api")
    (app_dir / "app.py").write_text(textwrap.dedent(APP))
    with serve(str(app_dir), options=["--quiet", "--concurrency", str(LIMIT)]) as base:
        yield base


@pytest.fixture(scope="module")
def lam(url: str, lambda_client: Callable[[str], Any]) -> Any:
    return lambda_client(url)


def concurrent_invocations(lam: Any, function: str, count: int) -> list[Any]:
    """`count` invocations of `function` at once, each sleeping 1.5 s: results or errors.
    (A boto3 client is safe to share between threads.)"""
    clients = [lam] * count

    def invoke(client: Any) -> Any:
        try:
            response = client.invoke(FunctionName=function, Payload=b'{"seconds": 1.5}')
            return json.loads(response["Payload"].read())
        except ClientError as error:
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(invoke, clients))


# -- reserved concurrency -----------------------------------------------------------------


def test_put_get_and_delete_function_concurrency(lam: Any) -> None:
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="echo")
    response = lam.put_function_concurrency(FunctionName="echo", ReservedConcurrentExecutions=7)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ReservedConcurrentExecutions"] == 7
    got = lam.get_function_concurrency(FunctionName="echo")
    assert got["ReservedConcurrentExecutions"] == 7
    deleted = lam.delete_function_concurrency(FunctionName="echo")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="echo")
    # Deleting what is not there is no error, as on AWS.
    lam.delete_function_concurrency(FunctionName="echo")


def test_a_function_is_named_by_arn_too(lam: Any) -> None:
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:echo"
    lam.put_function_concurrency(FunctionName=arn, ReservedConcurrentExecutions=3)
    try:
        got = lam.get_function_concurrency(FunctionName="echo")
        assert got["ReservedConcurrentExecutions"] == 3
    finally:
        lam.delete_function_concurrency(FunctionName=f"{ACCOUNT}:function:echo")


def test_a_limit_declared_in_the_app_is_reserved_concurrency(lam: Any) -> None:
    assert lam.get_function_concurrency(FunctionName="capped")["ReservedConcurrentExecutions"] == 5


def test_past_reserved_concurrency_an_invocation_is_throttled(lam: Any) -> None:
    lam.put_function_concurrency(FunctionName="sleepy", ReservedConcurrentExecutions=1)
    outcomes = concurrent_invocations(lam, "sleepy", 2)
    assert [o for o in outcomes if not isinstance(o, ClientError)] == ["done"]
    throttled = [o for o in outcomes if isinstance(o, lam.exceptions.TooManyRequestsException)]
    assert len(throttled) == 1
    response = throttled[0].response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"

    # Without the reservation, both run.
    lam.delete_function_concurrency(FunctionName="sleepy")
    assert concurrent_invocations(lam, "sleepy", 2) == ["done", "done"]


def test_reserving_zero_turns_the_function_off(lam: Any) -> None:
    assert lam.invoke(FunctionName="echo", Payload=b"{}")["StatusCode"] == 200
    lam.put_function_concurrency(FunctionName="echo", ReservedConcurrentExecutions=0)
    try:
        got = lam.get_function_concurrency(FunctionName="echo")
        assert got["ReservedConcurrentExecutions"] == 0
        started = time.monotonic()
        with pytest.raises(lam.exceptions.TooManyRequestsException) as caught:
            lam.invoke(FunctionName="echo", Payload=b"{}")
        assert time.monotonic() - started < 0.4  # at once: there is nothing to wait for
        assert caught.value.response["Reason"] == (
            "ReservedFunctionConcurrentInvocationLimitExceeded"
        )
    finally:
        lam.delete_function_concurrency(FunctionName="echo")
    assert lam.invoke(FunctionName="echo", Payload=b"{}")["StatusCode"] == 200


def test_a_reservation_must_leave_100_unreserved(lam: Any) -> None:
    unreserved = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        lam.put_function_concurrency(FunctionName="echo", ReservedConcurrentExecutions=unreserved)
    assert caught.value.response["Error"]["Message"] == (
        "Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [100]."
    )
    allowed = unreserved - 100
    lam.put_function_concurrency(FunctionName="echo", ReservedConcurrentExecutions=allowed)
    lam.delete_function_concurrency(FunctionName="echo")


def test_a_qualified_name_is_refused_for_function_concurrency(lam: Any) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        lam.put_function_concurrency(FunctionName="echo:live", ReservedConcurrentExecutions=2)
    assert "not a version or alias" in caught.value.response["Error"]["Message"]


# -- provisioned concurrency --------------------------------------------------------------


def test_provisioned_concurrency_keeps_instances_warm(lam: Any, url: str) -> None:
    put = lam.put_provisioned_concurrency_config(
        FunctionName="warm", Qualifier="live", ProvisionedConcurrentExecutions=2
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["Status"] in ("IN_PROGRESS", "READY")
    time.strptime(put["LastModified"], "%Y-%m-%dT%H:%M:%S+0000")

    deadline = time.monotonic() + 20
    config = lam.get_provisioned_concurrency_config(FunctionName="warm", Qualifier="live")
    while config["Status"] != "READY":
        assert time.monotonic() < deadline, f"never READY: {config}"
        time.sleep(0.1)
        config = lam.get_provisioned_concurrency_config(FunctionName="warm", Qualifier="live")
    assert config["RequestedProvisionedConcurrentExecutions"] == 2
    assert config["AvailableProvisionedConcurrentExecutions"] == 2
    assert config["AllocatedProvisionedConcurrentExecutions"] == 2
    assert config["LastModified"] == put["LastModified"]
    # The server's own status agrees: two instances, kept as the function's minimum.
    status = httpx.get(f"{url}/_skylift/status").json()["functions"]["warm"]
    assert status["min"] == 2 and status["instances"] >= 2

    listed = lam.list_provisioned_concurrency_configs(FunctionName="warm")
    [item] = listed["ProvisionedConcurrencyConfigs"]
    assert item["FunctionArn"] == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:warm:live"
    assert item["Status"] == "READY"

    deleted = lam.delete_provisioned_concurrency_config(FunctionName="warm", Qualifier="live")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException) as caught:
        lam.get_provisioned_concurrency_config(FunctionName="warm", Qualifier="live")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    listed = lam.list_provisioned_concurrency_configs(FunctionName="warm")
    assert listed["ProvisionedConcurrencyConfigs"] == []
    assert httpx.get(f"{url}/_skylift/status").json()["functions"]["warm"]["min"] == 0


def test_provisioned_above_reserved_is_refused(lam: Any) -> None:
    lam.put_function_concurrency(FunctionName="bounded", ReservedConcurrentExecutions=2)
    try:
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
            lam.put_provisioned_concurrency_config(
                FunctionName="bounded", Qualifier="live", ProvisionedConcurrentExecutions=3
            )
        response = caught.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert response["Error"]["Message"].startswith(
            "Requested Provisioned Concurrency should not be greater than the "
            "reservedConcurrentExecution for function"
        )
        with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
            lam.get_provisioned_concurrency_config(FunctionName="bounded", Qualifier="live")

        # Nor may a reservation go below what is provisioned.
        lam.put_provisioned_concurrency_config(
            FunctionName="bounded", Qualifier="live", ProvisionedConcurrentExecutions=2
        )
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
            lam.put_function_concurrency(FunctionName="bounded", ReservedConcurrentExecutions=1)
        message = caught.value.response["Error"]["Message"]
        assert "below bounded's provisioned concurrency (2)" in message
    finally:
        lam.delete_provisioned_concurrency_config(FunctionName="bounded", Qualifier="live")
        lam.delete_function_concurrency(FunctionName="bounded")


def test_conflicting_qualifiers_are_refused(lam: Any) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
        lam.get_provisioned_concurrency_config(FunctionName="warm:blue", Qualifier="green")
    assert "does not match the specified qualifier" in caught.value.response["Error"]["Message"]


# -- the account --------------------------------------------------------------------------


def test_account_settings_show_the_limit_and_what_is_reserved(lam: Any) -> None:
    before = lam.get_account_settings()
    limit = before["AccountLimit"]
    assert limit["ConcurrentExecutions"] == LIMIT
    # `capped` declares 5 in the app; the other tests release what they reserve.
    assert limit["UnreservedConcurrentExecutions"] == LIMIT - 5
    assert limit["CodeSizeUnzipped"] == 262144000
    assert limit["CodeSizeZipped"] == 52428800
    assert limit["TotalCodeSize"] == 80530636800
    usage = before["AccountUsage"]
    assert usage["FunctionCount"] == FUNCTIONS
    assert usage["TotalCodeSize"] == len(textwrap.dedent(APP).encode())  # app.py alone

    lam.put_function_concurrency(FunctionName="spare", ReservedConcurrentExecutions=40)
    after = lam.get_account_settings()["AccountLimit"]
    assert after["UnreservedConcurrentExecutions"] == LIMIT - 5 - 40
    lam.delete_function_concurrency(FunctionName="spare")
    restored = lam.get_account_settings()["AccountLimit"]
    assert restored["UnreservedConcurrentExecutions"] == LIMIT - 5


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "kwargs"),
    [
        ("put_function_concurrency", {"ReservedConcurrentExecutions": 1}),
        ("get_function_concurrency", {}),
        ("delete_function_concurrency", {}),
        (
            "put_provisioned_concurrency_config",
            {"Qualifier": "live", "ProvisionedConcurrentExecutions": 1},
        ),
        ("get_provisioned_concurrency_config", {"Qualifier": "live"}),
        ("delete_provisioned_concurrency_config", {"Qualifier": "live"}),
    ],
)
def test_an_unknown_function_is_not_found(lam: Any, operation: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as caught:
        getattr(lam, operation)(FunctionName="nope", **kwargs)
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["Type"] == "User"
    assert response["Error"]["Message"] == (
        f"Function not found: arn:aws:lambda:us-east-1:{ACCOUNT}:function:nope"
    )


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"{oops", "InvalidRequestContentException", "Could not parse request body into json"),
        (b"{}", "ValidationException", "Value null at 'reservedConcurrentExecutions'"),
        (b'{"ReservedConcurrentExecutions": "2"}', "InvalidRequestContentException", "whole"),
        (
            b'{"ReservedConcurrentExecutions": -1}',
            "ValidationException",
            "greater than or equal to 0",
        ),
    ],
)
def test_a_malformed_request_is_refused(url: str, body: bytes, code: str, message: str) -> None:
    # What boto3 validates before sending, sent anyway, as another client might.
    response = httpx.put(f"{url}/2017-10-31/functions/echo/concurrency", content=body)
    assert response.status_code == 400
    assert response.headers["x-amzn-errortype"] == code
    assert message in response.json()["message"]


def test_other_operations_under_the_new_paths_are_unknown(url: str) -> None:
    response = httpx.get(f"{url}/2019-09-30/functions/echo/code-signing-config")
    assert response.status_code == 404
    assert response.headers["x-amzn-errortype"] == "UnknownOperationException"
    assert response.json()["message"] == (
        "Unknown operation GET /2019-09-30/functions/echo/code-signing-config"
    )

"""UpdateFunctionConfiguration on a real `skylift up` server, driven by the real boto3
Lambda client and the AWS CLI: a change of Environment, Timeout or MemorySize reaches the
next invocation (forked, spawned and SAM functions); a refused request changes nothing.
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

APP = """
import os
import time

from skylift import App

app = App("update-api")
INSTANCE = {}  # set by each instance's first invocation (a pid is 2 in every sandbox)


def instance_id():
    return INSTANCE.setdefault("id", os.urandom(8).hex())


@app.function(environment={"MODE": "first", "KEEP": "kept"})
def changeable(event, context):
    time.sleep(event.get("seconds", 0))
    return {
        "mode": os.environ.get("MODE"),
        "keep": os.environ.get("KEEP"),
        "instance": instance_id(),
        "memory": context.memory_limit_in_mb,
        "env_memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
    }


@app.function(timeout=5)
def sleeper(event, context):
    time.sleep(event.get("seconds", 0))
    return "awake"


@app.function(spawn=True, environment={"MODE": "first"})
def spawned(event, context):
    return {"mode": os.environ.get("MODE")}


@app.function(environment={"MODE": "mine"})
def bystander(event, context):
    return {"mode": os.environ.get("MODE"), "instance": instance_id()}


@app.function()
def refused(event, context):
    return {"mode": os.environ.get("MODE")}


@app.function(min_instances=1, environment={"MODE": "first"})
def warm(event, context):
    return {"mode": os.environ.get("MODE")}


@app.function()
def by_cli(event, context):
    return {"mode": os.environ.get("MODE")}
"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app_dir: Path = tmp_path_factory.mktemp("update-api")
    (app_dir / "app.py").write_text(textwrap.dedent(APP))
    with serve(str(app_dir), options=["--quiet"]) as base:
        yield base


@pytest.fixture(scope="module")
def lam(url: str, lambda_client: Callable[[str], Any]) -> Iterator[Any]:
    client = lambda_client(url)
    yield client
    client.close()  # its pooled connections, rather than whenever they are collected


def invoke(lam: Any, name: str, event: dict[str, Any] | None = None) -> Any:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode())
    return json.loads(response["Payload"].read())


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response: dict[str, Any] = caught.value.response
    return response


def status(url: str, name: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{url}/_skylift/status").json()["functions"][name]
    return answer


def busy(url: str, name: str) -> int:
    return int(status(url, name)["busy"])


def test_a_change_reaches_the_next_invocation(lam: Any) -> None:
    before = invoke(lam, "changeable")
    assert before["mode"] == "first" and before["memory"] == "128"
    old = lam.get_function_configuration(FunctionName="changeable")
    updated = lam.update_function_configuration(
        FunctionName="changeable",
        Environment={"Variables": {"MODE": "second"}},
        MemorySize=512,
        Timeout=20,
    )
    # The answer is the new configuration, as Lambda's.
    assert updated["Environment"] == {"Variables": {"MODE": "second"}}
    assert updated["MemorySize"] == 512 and updated["Timeout"] == 20
    assert updated["LastUpdateStatus"] == "Successful" and updated["State"] == "Active"
    assert updated["RevisionId"] != old["RevisionId"]
    after = invoke(lam, "changeable")
    assert after["mode"] == "second"
    assert after["keep"] is None  # Variables replace the whole set, as on Lambda
    assert after["memory"] == "512" and after["env_memory"] == "512"
    assert after["instance"] != before["instance"]  # the idle instance was retired
    got = lam.get_function_configuration(FunctionName="changeable")
    assert got["Environment"] == {"Variables": {"MODE": "second"}}
    assert got["RevisionId"] == updated["RevisionId"]


def test_other_functions_keep_their_instances(lam: Any) -> None:
    first = invoke(lam, "bystander")
    lam.update_function_configuration(FunctionName="changeable", Description="unrelated")
    again = invoke(lam, "bystander")
    assert again == first


def test_a_busy_instance_finishes_with_the_old_configuration(lam: Any, url: str) -> None:
    lam.update_function_configuration(
        FunctionName="changeable", Environment={"Variables": {"MODE": "before"}}
    )
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(invoke, lam, "changeable", {"seconds": 1.5})
        deadline = time.monotonic() + 20
        while busy(url, "changeable") == 0:
            assert time.monotonic() < deadline, "the invocation never started"
            time.sleep(0.02)
        lam.update_function_configuration(
            FunctionName="changeable", Environment={"Variables": {"MODE": "after"}}
        )
        assert running.result(30)["mode"] == "before"
    assert invoke(lam, "changeable")["mode"] == "after"


def test_a_shorter_timeout_is_enforced_at_once(lam: Any) -> None:
    assert invoke(lam, "sleeper", {"seconds": 1.5}) == "awake"
    lam.update_function_configuration(FunctionName="sleeper", Timeout=1)
    response = lam.invoke(FunctionName="sleeper", Payload=b'{"seconds": 3}')
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.0" in error["errorMessage"]


def test_waiters_see_the_update_done(lam: Any) -> None:
    lam.update_function_configuration(FunctionName="sleeper", Description="waited for")
    # What deploy tools wait on after an update; skylift's is done when it answers.
    for waiter in ("function_updated", "function_updated_v2", "function_active_v2"):
        lam.get_waiter(waiter).wait(FunctionName="sleeper", WaiterConfig={"Delay": 1})


def test_provisioned_instances_are_replaced_with_the_new_configuration(lam: Any, url: str) -> None:
    deadline = time.monotonic() + 20
    while status(url, "warm")["idle"] < 1:
        assert time.monotonic() < deadline, "the provisioned instance never started"
        time.sleep(0.05)
    lam.update_function_configuration(
        FunctionName="warm", Environment={"Variables": {"MODE": "second"}}
    )
    while status(url, "warm")["idle"] < 1:  # started again, ahead of the next invocation
        assert time.monotonic() < deadline, "the provisioned instance was not replaced"
        time.sleep(0.05)
    cold = status(url, "warm")["cold_starts"]
    assert invoke(lam, "warm")["mode"] == "second"
    assert status(url, "warm")["cold_starts"] == cold


def test_a_spawned_function_gets_the_change(lam: Any) -> None:
    assert invoke(lam, "spawned")["mode"] == "first"
    lam.update_function_configuration(
        FunctionName="spawned", Environment={"Variables": {"MODE": "second"}}
    )
    assert invoke(lam, "spawned")["mode"] == "second"


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (
            {"Timeout": 901},
            "ValidationException",
            "1 validation error detected: Value '901' at 'timeout' failed to satisfy "
            "constraint: Member must have value less than or equal to 900",
        ),
        (
            {"MemorySize": 10241},
            "ValidationException",
            "'MemorySize' value failed to satisfy constraint: Member must have value less "
            "than or equal to 10240",
        ),
        (
            {"Environment": {"Variables": {"MODE": "x", "AWS_REGION": "eu-west-1"}}},
            "InvalidParameterValueException",
            "Lambda was unable to configure your environment variables because the "
            "environment variables you have provided contains reserved keys that are "
            "currently not supported for modification. Reserved keys used in this request: "
            "AWS_REGION",
        ),
        (
            {"Environment": {"Variables": {"BIG": "x" * 4100}}},
            "InvalidParameterValueException",
            "Lambda was unable to configure your environment variables because the "
            "environment variables you have provided exceeded the 4KB limit. String "
            'measured: {"BIG":"' + "x" * 4100 + '"}',
        ),
        (
            {"Environment": {"Variables": {"9LIVES": "x"}}},
            "ValidationException",
            "1 validation error detected: Value at 'environment.variables' failed to satisfy "
            "constraint: Map keys must satisfy constraint: [Member must satisfy regular "
            "expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]",
        ),
        (
            {"RevisionId": "not-the-revision", "Timeout": 9},
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id. Call the "
            "GetFunction/GetAlias API to retrieve the latest Revision Id",
        ),
        (
            {"Handler": "app.other", "Timeout": 9},
            "InvalidParameterValueException",
            "skylift cannot change Handler of a running function",
        ),
    ],
)
def test_a_refused_update_says_why_and_changes_nothing(
    lam: Any, change: dict[str, Any], code: str, message: str
) -> None:
    before = lam.get_function_configuration(FunctionName="refused")
    first = invoke(lam, "refused")
    response = error_of(lam.update_function_configuration, FunctionName="refused", **change)
    assert response["Error"]["Code"] == code
    assert response["Error"]["Message"].startswith(message)
    after = lam.get_function_configuration(FunctionName="refused")
    assert after["RevisionId"] == before["RevisionId"]
    assert after["Timeout"] == before["Timeout"] and "Environment" not in after
    assert invoke(lam, "refused") == first


def test_repeating_the_current_configuration_is_accepted(lam: Any) -> None:
    config = lam.get_function_configuration(FunctionName="refused")
    updated = lam.update_function_configuration(
        FunctionName="refused",
        Handler=config["Handler"],
        Runtime=config["Runtime"],
        Role=config["Role"],
        TracingConfig={"Mode": "PassThrough"},
        RevisionId=config["RevisionId"],
        Description="same code, described",
    )
    assert updated["Description"] == "same code, described"
    assert updated["Handler"] == config["Handler"]


def test_an_unknown_function_cannot_be_updated(lam: Any) -> None:
    response = error_of(lam.update_function_configuration, FunctionName="nope", Timeout=5)
    assert response["Error"]["Code"] == "ResourceNotFoundException"


def test_aws_cli_update_function_configuration(
    url: str, lam: Any, aws_cli: Callable[..., Any]
) -> None:
    updated = aws_cli(
        url,
        "lambda",
        "update-function-configuration",
        "--function-name",
        "by_cli",
        "--environment",
        "Variables={MODE=cli}",
        "--timeout",
        "7",
    )
    assert updated["Timeout"] == 7
    assert updated["Environment"] == {"Variables": {"MODE": "cli"}}
    assert invoke(lam, "by_cli")["mode"] == "cli"


TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Reader:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Environment:
        Variables:
          TABLE: first-table
"""

SAM_CODE = """
import os

TABLE = os.environ["TABLE"]  # read at import, as Lambda code commonly does


def handler(event, context):
    return {"table": TABLE}
"""


def test_a_sam_function_imports_again_with_the_new_environment(
    tmp_path: Path, lambda_client: Callable[[str], Any]
) -> None:
    (tmp_path / "template.yaml").write_text(textwrap.dedent(TEMPLATE))
    (tmp_path / "app.py").write_text(textwrap.dedent(SAM_CODE))
    with serve(template=str(tmp_path / "template.yaml"), options=["--quiet"]) as base:
        lam = lambda_client(base)
        try:
            assert invoke(lam, "Reader") == {"table": "first-table"}
            lam.update_function_configuration(
                FunctionName="Reader", Environment={"Variables": {"TABLE": "second-table"}}
            )
            assert invoke(lam, "Reader") == {"table": "second-table"}
        finally:
            lam.close()

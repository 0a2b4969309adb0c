"""Lambda's read operations (ListFunctions, GetFunction, GetFunctionConfiguration, the
event source mappings) and UpdateFunctionConfiguration on a real `skylift up` server,
driven by the real boto3 Lambda client and the real AWS CLI.

Error expectations are Lambda's, as botocore reads them: the code from ``x-amzn-ErrorType``
picks the ``client.exceptions`` class, the body's members land in ``response``.
"""

from __future__ import annotations

import io
import json
import textwrap
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from skylift.testing import serve

ACCOUNT = "123456789012"
REGION = "us-east-1"

APP = """
import os
import time

from skylift import App

app = App("functions-api")


@app.function(timeout=10, memory=256, environment={"GREETING": "hello"})
def greet(event, context):
    return {
        "greeting": os.environ.get("GREETING"),
        "memory": context.memory_limit_in_mb,
        "env_memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
        "remaining_ms": context.get_remaining_time_in_millis(),
    }


@app.function(max_concurrency=4)
def capped(event, context):
    return "capped"


@app.function(environment={"MODE": "first"})
def changeable(event, context):
    time.sleep(event.get("seconds", 0))
    memory = context.memory_limit_in_mb
    return {"mode": os.environ.get("MODE"), "pid": os.getpid(), "memory": memory}


@app.function(timeout=5)
def sleeper(event, context):
    time.sleep(event.get("seconds", 0))
    return "awake"


@app.function(spawn=True, environment={"MODE": "first"})
def spawned(event, context):
    return {"mode": os.environ.get("MODE")}


@app.function()
def untouched(event, context):
    return {"mode": os.environ.get("MODE")}


@app.http("/{proxy+}", methods=["ANY"])
def catch_all(event, context):
    return {"statusCode": 200, "body": "the app's"}


@app.queue("orders", batch_size=5, max_batching_window=2, report_batch_item_failures=True)
def take(event, context):
    return {"batchItemFailures": []}


@app.queue("audit", max_concurrency=3)
def audit(event, context):
    return None
"""
NAMES = sorted(
    [
        "greet",
        "capped",
        "changeable",
        "sleeper",
        "spawned",
        "untouched",
        "catch_all",
        "take",
        "audit",
    ]
)


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory: Path = tmp_path_factory.mktemp("functions-api")
    (directory / "app.py").write_text(textwrap.dedent(APP))
    return directory


@pytest.fixture(scope="module")
def url(app_dir: Path) -> Iterator[str]:
    with serve(str(app_dir), options=["--quiet"]) as base:
        yield base


@pytest.fixture(scope="module")
def lam(url: str, lambda_client: Callable[[str], Any]) -> Iterator[Any]:
    client = lambda_client(url)
    yield client
    client.close()  # its pooled connections, rather than whenever they are collected


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response: dict[str, Any] = caught.value.response
    return response


def invoke(lam: Any, name: str, event: dict[str, Any] | None = None) -> Any:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode())
    return json.loads(response["Payload"].read())


def arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


# -- GetFunctionConfiguration, GetFunction ----------------------------------------------------


def test_get_function_configuration_reports_the_declaration(lam: Any, app_dir: Path) -> None:
    config = lam.get_function_configuration(FunctionName="greet")
    assert config["FunctionName"] == "greet"
    assert config["FunctionArn"] == arn("greet")
    assert config["Runtime"].startswith("python3.")
    assert config["Handler"].endswith(".greet")
    assert config["Timeout"] == 10
    assert config["MemorySize"] == 256
    assert config["Environment"] == {"Variables": {"GREETING": "hello"}}
    assert config["State"] == "Active"
    assert config["LastUpdateStatus"] == "Successful"
    assert config["PackageType"] == "Zip"
    assert config["Architectures"] in (["x86_64"], ["arm64"])
    assert config["Version"] == "$LATEST"
    assert config["Role"].startswith(f"arn:aws:iam::{ACCOUNT}:role/")
    assert config["TracingConfig"] == {"Mode": "PassThrough"}
    assert config["EphemeralStorage"] == {"Size": 512}
    assert config["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/greet"}
    assert config["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
    assert config["RuntimeVersionConfig"]["RuntimeVersionArn"].startswith(
        f"arn:aws:lambda:{REGION}::runtime:"
    )
    assert config["CodeSize"] == (app_dir / "app.py").stat().st_size
    assert len(config["CodeSha256"]) == 44  # base64 of a SHA-256
    assert config["RevisionId"]
    assert config["LastModified"].endswith("+0000")


def test_code_size_and_hash_follow_the_code(lam: Any, app_dir: Path) -> None:
    before = lam.get_function_configuration(FunctionName="greet")
    extra = app_dir / "helpers.py"
    extra.write_text("VALUE = 1\n")
    try:
        changed = lam.get_function_configuration(FunctionName="greet")
        assert changed["CodeSize"] == before["CodeSize"] + extra.stat().st_size
        assert changed["CodeSha256"] != before["CodeSha256"]
    finally:
        extra.unlink()
    assert (
        lam.get_function_configuration(FunctionName="greet")["CodeSha256"] == (before["CodeSha256"])
    )


def test_a_function_without_variables_has_no_environment(lam: Any) -> None:
    assert "Environment" not in lam.get_function_configuration(FunctionName="capped")


def test_functions_are_named_by_arn_and_latest_too(lam: Any) -> None:
    for name in (arn("greet"), f"{ACCOUNT}:function:greet", "greet:$LATEST"):
        assert lam.get_function_configuration(FunctionName=name)["FunctionName"] == "greet"
    got = lam.get_function_configuration(FunctionName="greet", Qualifier="$LATEST")
    assert got["FunctionName"] == "greet"


@pytest.mark.parametrize(
    ("name", "qualifier", "missing"),
    [
        ("nope", None, arn("nope")),
        ("greet", "1", arn("greet") + ":1"),
        ("greet:live", None, arn("greet") + ":live"),
    ],
)
def test_an_unknown_function_or_version_is_not_found(
    lam: Any, name: str, qualifier: str | None, missing: str
) -> None:
    kwargs = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
    for call in (lam.get_function_configuration, lam.get_function):
        response = error_of(call, **kwargs)
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert response["Error"]["Code"] == "ResourceNotFoundException"
        assert response["Error"]["Message"] == f"Function not found: {missing}"


def test_get_function_has_configuration_code_tags_and_concurrency(lam: Any, app_dir: Path) -> None:
    got = lam.get_function(FunctionName="capped")
    assert got["Configuration"]["FunctionName"] == "capped"
    assert got["Configuration"]["State"] == "Active"
    assert got["Concurrency"] == {"ReservedConcurrentExecutions": 4}
    assert got["Tags"] == {}
    assert got["Code"]["RepositoryType"] == "S3"
    # The code can be downloaded from Location, as from Lambda's presigned URL.
    archive = httpx.get(got["Code"]["Location"])
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as package:
        assert package.read("app.py") == (app_dir / "app.py").read_bytes()
    assert "Concurrency" not in lam.get_function(FunctionName="greet")


def test_list_tags_of_a_function(lam: Any) -> None:
    assert lam.list_tags(Resource=arn("greet"))["Tags"] == {}
    assert error_of(lam.list_tags, Resource=arn("nope"))["Error"]["Code"] == (
        "ResourceNotFoundException"
    )


# -- ListFunctions ----------------------------------------------------------------------------


def test_list_functions_lists_every_function_in_name_order(lam: Any) -> None:
    listed = lam.list_functions()
    assert "NextMarker" not in listed
    functions = listed["Functions"]
    assert [f["FunctionName"] for f in functions] == NAMES
    greet = next(f for f in functions if f["FunctionName"] == "greet")
    assert greet["MemorySize"] == 256 and greet["PackageType"] == "Zip"
    # ListFunctions leaves these to GetFunction, as Lambda does.
    assert "State" not in greet and "LastUpdateStatus" not in greet


def test_list_functions_pages_with_marker_and_max_items(lam: Any) -> None:
    seen: list[str] = []
    marker: str | None = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"MaxItems": 3, **({"Marker": marker} if marker else {})}
        page = lam.list_functions(**kwargs)
        pages += 1
        assert len(page["Functions"]) <= 3
        seen += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if marker is None:
            break
    assert pages == 3
    assert seen == NAMES
    # boto3's paginator follows NextMarker by itself.
    paginator = lam.get_paginator("list_functions")
    names = [
        f["FunctionName"]
        for page in paginator.paginate(PaginationConfig={"PageSize": 2})
        for f in page["Functions"]
    ]
    assert names == NAMES


def test_list_functions_refuses_a_bad_max_items(url: str) -> None:
    response = httpx.get(f"{url}/2015-03-31/functions/?MaxItems=0")
    assert response.status_code == 400
    assert response.headers["x-amzn-errortype"] == "ValidationException"
    assert "greater than or equal to 1" in response.json()["message"]


# -- event source mappings ----------------------------------------------------------------------


def test_queue_triggers_are_event_source_mappings(lam: Any) -> None:
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    by_function = {m["FunctionArn"]: m for m in mappings}
    assert set(by_function) == {arn("take"), arn("audit")}
    take = by_function[arn("take")]
    assert take["EventSourceArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
    assert take["BatchSize"] == 5
    assert take["MaximumBatchingWindowInSeconds"] == 2
    assert take["State"] == "Enabled"
    assert take["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert take["EventSourceMappingArn"].endswith(":event-source-mapping:" + take["UUID"])
    assert "ScalingConfig" not in take
    audit = by_function[arn("audit")]
    assert audit["FunctionResponseTypes"] == []
    assert audit["ScalingConfig"] == {"MaximumConcurrency": 3}
    # GetEventSourceMapping answers the same.
    got = lam.get_event_source_mapping(UUID=take["UUID"])
    assert {k: v for k, v in got.items() if k != "ResponseMetadata"} == take


def test_mappings_are_filtered_by_function_and_by_source(lam: Any) -> None:
    for name in ("take", arn("take")):
        found = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
        assert [m["FunctionArn"] for m in found] == [arn("take")]
    source = f"arn:aws:sqs:{REGION}:{ACCOUNT}:audit"
    found = lam.list_event_source_mappings(EventSourceArn=source)["EventSourceMappings"]
    assert [m["FunctionArn"] for m in found] == [arn("audit")]
    none = lam.list_event_source_mappings(FunctionName="greet")["EventSourceMappings"]
    assert none == []


def test_a_mapping_keeps_its_uuid_across_restarts(
    app_dir: Path, lam: Any, lambda_client: Any, tmp_path: Path
) -> None:
    first = {m["UUID"] for m in lam.list_event_source_mappings()["EventSourceMappings"]}
    # The same app started again (beside the running one: one server per folder).
    (tmp_path / "app.py").write_bytes((app_dir / "app.py").read_bytes())
    with serve(str(tmp_path), options=["--quiet"]) as other:
        client = lambda_client(other)
        again = client.list_event_source_mappings()["EventSourceMappings"]
        client.close()
    assert {m["UUID"] for m in again} == first


def test_an_unknown_mapping_is_not_found(lam: Any) -> None:
    response = error_of(lam.get_event_source_mapping, UUID="0b5c5d5e-0000-4000-8000-000000000000")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["Error"]["Code"] == "ResourceNotFoundException"


# -- what skylift does not serve ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/2015-03-31/functions/greet/versions"),
        ("POST", "/2015-03-31/functions"),  # CreateFunction
        ("DELETE", "/2015-03-31/functions/greet"),
        ("GET", "/2015-03-31/functions/greet/policy"),
        ("GET", "/2019-09-25/functions/greet/event-invoke-config"),
        ("DELETE", "/2021-10-31/functions/greet/url"),  # DeleteFunctionUrlConfig
        ("GET", "/2018-10-31/layers"),
        ("GET", "/2020-04-22/code-signing-configs/"),
        ("GET", "/2017-03-31/nothing-here"),
    ],
)
def test_other_operations_get_lambdas_json_error_not_the_apps_404(
    url: str, method: str, path: str
) -> None:
    response = httpx.request(method, url + path, content=b"{}")
    assert response.status_code == 404
    assert response.headers["x-amzn-errortype"] == "UnknownOperationException"
    assert response.headers["content-type"] == "application/json"
    assert response.json()["Type"] == "User"


def test_the_apps_catch_all_route_still_serves_its_own_paths(url: str) -> None:
    assert httpx.get(f"{url}/2015-03-32/functions").text == "the app's"
    assert httpx.get(f"{url}/hello").text == "the app's"


def test_a_bucket_named_like_a_lambda_api_version_is_still_s3s(url: str) -> None:
    import boto3  # type: ignore[import-untyped]  # boto3 ships no type hints
    from botocore.config import Config  # type: ignore[import-untyped]

    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 0}),
    )
    try:
        s3.create_bucket(Bucket="2024-08-31")
        s3.put_object(Bucket="2024-08-31", Key="report.csv", Body=b"a,b\n")
        assert s3.get_object(Bucket="2024-08-31", Key="report.csv")["Body"].read() == b"a,b\n"
    finally:
        s3.close()


def test_boto3_sees_an_unserved_operation_as_a_client_error(lam: Any) -> None:
    response = error_of(lam.list_versions_by_function, FunctionName="greet")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["Error"]["Code"] == "UnknownOperationException"


# -- the real AWS CLI ---------------------------------------------------------------------------


def test_aws_cli_list_functions(url: str, aws_cli: Callable[..., Any]) -> None:
    # --page-size makes the CLI follow NextMarker through several pages.
    listed = aws_cli(url, "lambda", "list-functions", "--page-size", "3")
    assert [f["FunctionName"] for f in listed["Functions"]] == NAMES


def test_aws_cli_get_function_configuration(url: str, aws_cli: Callable[..., Any]) -> None:
    config = aws_cli(url, "lambda", "get-function-configuration", "--function-name", "greet")
    assert config["FunctionArn"] == arn("greet")
    assert config["Timeout"] == 10
    assert config["State"] == "Active"
    assert config["Environment"] == {"Variables": {"GREETING": "hello"}}


def test_aws_cli_list_event_source_mappings(url: str, aws_cli: Callable[..., Any]) -> None:
    found = aws_cli(url, "lambda", "list-event-source-mappings", "--function-name", "take")
    assert [m["EventSourceArn"] for m in found["EventSourceMappings"]] == [
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
    ]

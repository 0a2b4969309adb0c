"""Function URLs (FunctionUrlConfig, AWS::Lambda::Url) under `skylift up`: real HTTP
requests by host and by path, CORS as Lambda applies it, AWS_IAM signatures, and boto3's
GetFunctionUrlConfig."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from skylift.function_urls import url_id
from skylift.testing import ServerLog, serve

APP = Path(__file__).parents[1] / "sam_apps" / "function-url"
REGION = "us-east-1"
CREDENTIALS = """
[alice]
aws_access_key_id = AKIAALICE0000000001
aws_secret_access_key = alice-secret-0123456789abcdef
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ServerLog]]:
    root = tmp_path_factory.mktemp("urls") / "app"
    shutil.copytree(APP, root)
    log = ServerLog()
    with serve(str(root), log=log, timeout=60) as url:
        yield url, log


def host_of(url: str, function: str) -> str:
    return f"{url_id(function, REGION)}.lambda-url.localhost:{urlsplit(url).port}"


def test_a_url_by_its_host_delivers_the_function_url_event(server: tuple[str, ServerLog]) -> None:
    url, _ = server
    response = httpx.post(
        f"{url}/items/a%20b?x=1&x=2",
        headers={"Host": host_of(url, "Public"), "Cookie": "a=1; b=2"},
        content=b'{"n": 1}',
    )
    assert response.status_code == 200
    event = json.loads(response.text)
    uid = url_id("Public", REGION)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/items/a%20b"
    assert event["rawQueryString"] == "x=1&x=2"
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["body"] == '{"n": 1}'
    assert event["isBase64Encoded"] is False
    assert "pathParameters" not in event
    context = event["requestContext"]
    assert context["domainName"] == f"{uid}.lambda-url.{REGION}.on.aws"
    assert context["domainPrefix"] == uid
    assert context["apiId"] == uid
    assert context["accountId"] == "anonymous"
    assert context["routeKey"] == "$default"
    assert context["stage"] == "$default"
    assert context["http"]["method"] == "POST"
    assert context["http"]["path"] == "/items/a b"
    assert "authorizer" not in context
    assert event["headers"]["x-forwarded-proto"] == "http"


def test_a_url_by_path_prefix_sees_the_path_after_it(server: tuple[str, ServerLog]) -> None:
    url, _ = server
    by_name = httpx.get(f"{url}/_skylift/url/Public/a/b?q=1")
    by_id = httpx.get(f"{url}/_skylift/url/{url_id('Public', REGION)}/")
    assert by_name.status_code == 200
    assert json.loads(by_name.text)["rawPath"] == "/a/b"
    assert json.loads(by_id.text)["rawPath"] == "/"
    # A function without a URL, or none at all: Lambda's 404.
    missing = httpx.get(f"{url}/_skylift/url/NoSuch/")
    assert missing.status_code == 404
    assert missing.json() == {"Message": "Not Found"}


def test_a_result_that_is_not_a_response_is_the_json_body(server: tuple[str, ServerLog]) -> None:
    url, _ = server
    response = httpx.get(f"{url}/x/y", headers={"Host": host_of(url, "Streaming")})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == ["plain", "/x/y"]


def test_cors_preflight_is_answered_by_the_url_and_headers_added(
    server: tuple[str, ServerLog],
) -> None:
    url, _ = server
    origin = "https://app.example.com"
    preflight = httpx.options(
        f"{url}/anything",
        headers={
            "Host": host_of(url, "Public"),
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
        },
    )
    assert preflight.status_code == 200
    assert preflight.content == b""  # the function did not run: it always answers a body
    assert preflight.headers["access-control-allow-origin"] == origin
    assert preflight.headers["access-control-allow-methods"] == "GET,POST"
    assert preflight.headers["access-control-allow-headers"] == "content-type,x-token"
    assert preflight.headers["access-control-max-age"] == "300"
    assert preflight.headers["access-control-allow-credentials"] == "true"

    actual = httpx.get(f"{url}/", headers={"Host": host_of(url, "Public"), "Origin": origin})
    assert actual.headers.get_list("access-control-allow-origin") == [origin]  # not the function's
    assert actual.headers["access-control-expose-headers"] == "x-answer"
    assert actual.headers["x-answer"] == "42"

    stranger = httpx.get(
        f"{url}/", headers={"Host": host_of(url, "Public"), "Origin": "https://other.example"}
    )
    assert "access-control-allow-origin" not in stranger.headers


def _signed(url: str, path: str, body: bytes, service: str = "lambda") -> dict[str, str]:
    request = AWSRequest(method="POST", url=f"{url}{path}", data=body)
    SigV4Auth(Credentials("AKIAFORURLS00000001", "secret"), service, REGION).add_auth(request)
    return dict(request.headers.items())


def logged(log: ServerLog, text: str, seconds: float = 5) -> bool:
    """Whether the server's log shows `text` within `seconds`: its stderr is read by a
    thread, so a line logged as a response goes out may arrive after the response."""
    deadline = time.monotonic() + seconds
    while text not in log.text and time.monotonic() < deadline:
        time.sleep(0.02)
    return text in log.text


def test_aws_iam_needs_a_sigv4_signature_for_lambda(server: tuple[str, ServerLog]) -> None:
    url, log = server
    path = "/_skylift/url/Private/hello"
    unsigned = httpx.post(f"{url}{path}", content=b"{}")
    assert unsigned.status_code == 403
    assert unsigned.json()["Message"].startswith("Forbidden. For troubleshooting Function URL")
    assert logged(log, "AuthType is AWS_IAM")

    wrong_service = httpx.post(
        f"{url}{path}", content=b"{}", headers=_signed(url, path, b"{}", "s3")
    )
    assert wrong_service.status_code == 403

    signed = httpx.post(f"{url}{path}", content=b"{}", headers=_signed(url, path, b"{}"))
    assert signed.status_code == 200
    event = json.loads(signed.text)
    iam = event["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == "AKIAFORURLS00000001"
    assert iam["accountId"] == event["requestContext"]["accountId"]
    assert set(iam) == {
        "accessKey",
        "accountId",
        "callerId",
        "cognitoIdentity",
        "principalOrgId",
        "userArn",
        "userId",
    }


def test_get_function_url_config_answers_where_it_is_served(
    server: tuple[str, ServerLog],
) -> None:
    url, log = server
    client = boto3.client(
        "lambda",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    config = client.get_function_url_config(FunctionName="Public")
    assert config["FunctionUrl"] == f"http://{host_of(url, 'Public')}/"
    assert config["AuthType"] == "NONE"
    assert config["InvokeMode"] == "BUFFERED"
    assert config["Cors"]["AllowOrigins"] == ["https://app.example.com"]
    assert config["FunctionArn"].endswith(":function:Public")
    private = client.get_function_url_config(FunctionName="Private")
    assert private["AuthType"] == "AWS_IAM"
    assert "Cors" not in private
    listed = client.list_function_url_configs(FunctionName="Private")["FunctionUrlConfigs"]
    assert [c["FunctionUrl"] for c in listed] == [private["FunctionUrl"]]
    # The URL it names is served.
    answer = httpx.get(
        config["FunctionUrl"].replace(host_of(url, "Public"), urlsplit(url).netloc),
        headers={"Host": host_of(url, "Public")},
    )
    assert answer.status_code == 200
    with pytest.raises(ClientError) as missing:
        client.get_function_url_config(FunctionName="NoSuch")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # Listed at startup.
    assert f"http://{host_of(url, 'Public')}/" in log.text
    assert "AuthType AWS_IAM" in log.text


def test_with_credentials_aws_iam_verifies_the_signature(tmp_path: Path) -> None:
    root = tmp_path / "app"
    shutil.copytree(APP, root)
    (tmp_path / "credentials").write_text(CREDENTIALS)
    path = "/_skylift/url/Private/"
    log = ServerLog()
    options = ["--credentials", str(tmp_path / "credentials")]
    with serve(str(root), log=log, timeout=60, options=options) as url:
        request = AWSRequest(method="POST", url=f"{url}{path}", data=b"{}")
        alice = Credentials("AKIAALICE0000000001", "alice-secret-0123456789abcdef")
        SigV4Auth(alice, "lambda", REGION).add_auth(request)
        signed = httpx.post(f"{url}{path}", content=b"{}", headers=dict(request.headers.items()))
        stranger = httpx.post(f"{url}{path}", content=b"{}", headers=_signed(url, path, b"{}"))
        tampered = httpx.post(
            f"{url}{path}", content=b'{"x": 1}', headers=dict(request.headers.items())
        )
        public = httpx.get(f"{url}/_skylift/url/Public/")
    assert signed.status_code == 200, log.text
    event = json.loads(signed.text)
    assert event["requestContext"]["authorizer"]["iam"]["accessKey"] == "AKIAALICE0000000001"
    assert stranger.status_code == 403
    assert tampered.status_code == 403
    assert public.status_code == 200  # AuthType NONE: anyone, signed or not

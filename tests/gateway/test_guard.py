"""Who may drive a server: the Host it is reached by, browser origins, and the token a
server listening beyond loopback asks for. Real servers, real HTTP, real boto3."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from skylift.testing import ServerLog, serve

APP = """
    from skylift import App

    app = App()

    @app.http("/hello", methods=["GET", "POST"])
    def hello(event, context):
        return {"hello": "world"}

    @app.function()
    def secret(event, context):
        print("SECRET RAN")
        return "ran"

    @app.function()
    def key(event, context):
        import os
        return os.environ["AWS_ACCESS_KEY_ID"]

    @app.function()
    def relay(event, context):
        import boto3, json
        answer = boto3.client("lambda").invoke(FunctionName="secret", Payload=b"{}")
        return json.loads(answer["Payload"].read())
"""
INVOKE = "/2015-03-31/functions/secret/invocations"


def write_app(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(textwrap.dedent(APP))
    return directory


TOKEN = "test-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    app = write_app(tmp_path_factory.mktemp("guarded"))
    log = ServerLog()
    # A name beyond this machine (a reverse proxy in front): the token is required.
    options = ["--allow-host", "skylift.lan", "--cors-origin", "https://app.example"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SKYLIFT_TOKEN", TOKEN)
        with serve(str(app), log=log, options=options) as url:
            env.delenv("SKYLIFT_TOKEN")
            yield url, log


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_a_host_that_is_not_this_server_is_refused_before_anything_runs(local):
    url, log = local
    port = port_of(url)
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
        answer = httpx.post(url + INVOKE, content=b"{}", headers={"Host": host})
        assert answer.status_code == 421, host
        assert httpx.get(url + "/hello", headers={"Host": host}).status_code == 421
    assert "SECRET RAN" not in log.text
    for host in (
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"[::1]:{port}",
        f"photos.s3.localhost:{port}",
        f"skylift.lan:{port}",
        f"api.skylift.lan:{port}",
    ):
        # (photos.s3.localhost is virtual-hosted S3: the bucket does not exist, 404)
        assert httpx.get(url + "/hello", headers={"Host": host}).status_code in (200, 404), host


def test_a_cross_origin_browser_request_cannot_run_a_function(local):
    url, log = local
    port = port_of(url)
    # What any web page can send without a preflight: a text/plain POST.
    attack = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
    answer = httpx.post(url + INVOKE, content=b"{}", headers=attack)
    assert answer.status_code == 403
    assert answer.headers["x-amzn-errortype"] == "UnrecognizedClientException"
    fetch = {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}
    assert httpx.post(url + INVOKE, content=b"{}", headers=fetch).status_code == 403
    control = httpx.get(url + "/_skylift/status", headers={"Origin": "http://evil.example"})
    assert control.status_code == 403
    time.sleep(0.2)
    assert "SECRET RAN" not in log.text
    # The server's own pages, the allowed origin and SDKs (no Origin) are served.
    own = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin", **BEARER}
    assert httpx.post(url + INVOKE, content=b"{}", headers=own).json() == "ran"
    allowed = {"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site", **BEARER}
    assert httpx.post(url + INVOKE, content=b"{}", headers=allowed).status_code == 200
    assert httpx.post(url + INVOKE, content=b"{}", headers=BEARER).json() == "ran"
    # Behind a proxy (--allow-host), the Lambda API needs the token even on loopback.
    assert httpx.post(url + INVOKE, content=b"{}").status_code == 403
    # The app's own routes keep their own behaviour.
    assert httpx.get(url + "/hello", headers={"Origin": "https://evil.example"}).status_code == 200


def lambda_client(url: str, key: str):
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}),
    )


def test_beyond_loopback_the_control_and_lambda_apis_need_the_token(tmp_path):
    app = write_app(tmp_path / "shared")
    log = ServerLog()
    with serve(str(app), host="0.0.0.0", log=log) as url:
        url = url.replace("0.0.0.0", "127.0.0.1")
        assert "warning: listening on 0.0.0.0" in log.text
        token = log.text.split("need the token ", 1)[1].split(" ", 1)[0]
        assert json.loads((app / ".skylift" / "server.json").read_text())["token"] == token
        assert (app / ".skylift" / "server.json").stat().st_mode & 0o077 == 0
        assert httpx.get(url + "/_skylift/status").status_code == 403
        assert httpx.get(url + "/_skylift/health").status_code == 200  # probes need no token
        bearer = {"Authorization": f"Bearer {token}"}
        assert httpx.get(url + "/_skylift/status", headers=bearer).status_code == 200
        with pytest.raises(ClientError) as refused:
            lambda_client(url, "not-the-token").invoke(FunctionName="secret", Payload=b"{}")
        assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
        answer = lambda_client(url, token).invoke(FunctionName="secret", Payload=b"{}")
        assert json.loads(answer["Payload"].read()) == "ran"
        # The server's own functions call its Lambda API with a key of their own, which
        # opens the Lambda API only: not the control API, and it is not the token.
        answer = lambda_client(url, token).invoke(FunctionName="relay", Payload=b"{}")
        assert json.loads(answer["Payload"].read()) == "ran"
        answer = lambda_client(url, token).invoke(FunctionName="key", Payload=b"{}")
        functions_key = json.loads(answer["Payload"].read())
        assert functions_key.startswith("ASIASKYLIFT") and token not in functions_key
        own = {"Authorization": f"Bearer {functions_key}"}
        assert httpx.get(url + "/_skylift/status", headers=own).status_code == 403
        # The CLI finds the token beside the server's URL.
        status = subprocess.run(
            [sys.executable, "-m", "skylift.cli", "status", str(app)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stderr
        assert "secret" in status.stdout
        # The app's routes stay open, as on API Gateway.
        assert httpx.get(url + "/hello").json() == {"hello": "world"}


def test_minimum_instances_past_the_concurrency_stop_the_start(tmp_path):
    app = tmp_path / "warm"
    app.mkdir()
    (app / "app.py").write_text(
        textwrap.dedent(
            """
            from skylift import App
            app = App()

            @app.function(min_instances=3)
            def a(event, context):
                return 1

            @app.function(min_instances=3)
            def b(event, context):
                return 1
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "skylift.cli", "up", str(app), "--port", "0", "--concurrency", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "minimum instances add up to 6, over the server's --concurrency 5" in done.stderr

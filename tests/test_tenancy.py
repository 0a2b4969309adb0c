"""TenancyConfig PER_TENANT under `skylift up`, through boto3's Invoke with a TenantId:
`context.tenant_id`, one tenant per instance, and AWS's error without a tenant id."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from skylift.errors import DeclarationError
from skylift.sam import load
from skylift.testing import ServerLog, serve

APP = Path(__file__).parent / "sam_apps" / "tenancy"
MESSAGE = (
    "Tenant ID configuration not specified or passed to a function when tenant isolation is "
    "not enabled."
)


@pytest.fixture(scope="module")
def lam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, ServerLog]]:
    root = tmp_path_factory.mktemp("tenancy") / "app"
    shutil.copytree(APP, root)
    log = ServerLog()
    with serve(str(root), log=log, timeout=60) as url:
        client = boto3.client(
            "lambda",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        yield client, log
        client.close()


def call(client: Any, function: str, **extra: Any) -> dict[str, Any]:
    answer = client.invoke(FunctionName=function, Payload=b"{}", **extra)
    result: dict[str, Any] = json.loads(answer["Payload"].read())
    return result


def test_the_tenant_id_reaches_the_context_and_instances_serve_one_tenant(
    lam: tuple[Any, ServerLog],
) -> None:
    client, _ = lam
    blue = call(client, "PerTenant", TenantId="blue")
    green = call(client, "PerTenant", TenantId="green")
    blue_again = call(client, "PerTenant", TenantId="blue")
    assert blue["tenant"] == blue_again["tenant"] == "blue"
    assert green["tenant"] == "green"
    assert blue_again["instance"] == blue["instance"]  # warm, and still blue's
    assert green["instance"] != blue["instance"]
    assert blue_again["seen"] == ["blue"]
    assert green["seen"] == ["green"]


def test_without_a_tenant_id_it_fails_as_on_aws(lam: tuple[Any, ServerLog]) -> None:
    client, log = lam
    with pytest.raises(ClientError) as missing:
        call(client, "PerTenant")
    assert missing.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert missing.value.response["Error"]["Message"] == MESSAGE
    deadline = time.monotonic() + 10  # the server's stderr arrives through a pipe
    while "invoke it with a tenant id" not in log.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "invoke it with a tenant id" in log.text
    with pytest.raises(ClientError) as extra:
        call(client, "Shared", TenantId="blue")
    assert extra.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert call(client, "Shared")["tenant"] is None  # context.tenant_id exists, unset


def test_its_configuration_says_so(lam: tuple[Any, ServerLog]) -> None:
    client, _ = lam
    config = client.get_function_configuration(FunctionName="PerTenant")
    assert config["TenancyConfig"] == {"TenantIsolationMode": "PER_TENANT"}
    assert "TenancyConfig" not in client.get_function_configuration(FunctionName="Shared")


def test_what_cannot_invoke_a_tenant_function_is_refused_at_load(tmp_path: Path) -> None:
    root = tmp_path / "app"
    shutil.copytree(APP, root)
    template = root / "template.yaml"
    text = template.read_text()
    template.write_text(
        text.replace(
            "        TenantIsolationMode: PER_TENANT\n",
            "        TenantIsolationMode: PER_TENANT\n      FunctionUrlConfig: {AuthType: NONE}\n",
            1,
        )
    )
    with pytest.raises(DeclarationError, match="a function URL cannot invoke a function"):
        load(root)
    template.write_text(text.replace("Mode: PER_TENANT", "Mode: PER_REQUEST"))
    with pytest.raises(DeclarationError, match="the one mode is PER_TENANT"):
        load(root)


def test_skylift_invoke_takes_the_tenant_id() -> None:
    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "skylift.cli", "invoke", "PerTenant", str(APP), *args]
        return subprocess.run(command, input="{}", capture_output=True, text=True, timeout=120)

    done = invoke("--tenant-id", "red")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tenant"] == "red"
    missing = invoke()
    assert missing.returncode != 0
    assert "invoke it with a tenant id" in missing.stderr
    assert "skylift invoke --tenant-id" in missing.stderr

"""Any process that speaks the Runtime API is an instance: a `provided.al2023`-style
`bootstrap` written against raw HTTP with urllib, no AWS library."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from skylift.errors import LoadError
from skylift.runtime.environ import function_arn
from skylift.runtimeapi import RuntimeApiInstance
from skylift.spec import FunctionSpec

BOOTSTRAP = """\
#!{python}
import json
import os
import sys
import time
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
print("bootstrap: init for", os.environ["_HANDLER"], flush=True)
if os.path.exists("init-fails"):
    error = {{"errorMessage": "no config", "errorType": "Runtime.NoConfig"}}
    urllib.request.urlopen(urllib.request.Request(
        API + "/init/error", json.dumps(error).encode(), method="POST",
        headers={{"Lambda-Runtime-Function-Error-Type": "Runtime.NoConfig"}},
    )).close()
    sys.exit(2)
if os.path.exists("init-hangs"):
    time.sleep(60)

while True:
    with urllib.request.urlopen(API + "/invocation/next") as next_:
        request_id = next_.headers["Lambda-Runtime-Aws-Request-Id"]
        headers = {{k.lower(): v for k, v in next_.headers.items()}}
        event = json.loads(next_.read())
    print("bootstrap: handling", request_id, flush=True)
    extra = {{}}
    if event.get("fail"):
        path = f"/invocation/{{request_id}}/error"
        body = {{"errorMessage": "asked to fail", "errorType": "Custom.Failure"}}
        extra = {{"Lambda-Runtime-Function-Error-Type": "Custom.Failure"}}
    else:
        path = f"/invocation/{{request_id}}/response"
        body = {{
            "event": event,
            "handler": os.environ["_HANDLER"],
            "task_root": os.environ["LAMBDA_TASK_ROOT"],
            "cwd": os.getcwd(),
            "arn": headers["lambda-runtime-invoked-function-arn"],
            "deadline_ms": int(headers["lambda-runtime-deadline-ms"]),
            "trace": headers["lambda-runtime-trace-id"],
        }}
    urllib.request.urlopen(urllib.request.Request(
        API + path, json.dumps(body).encode(), method="POST",
        headers=extra,
    )).close()
"""


@pytest.fixture
def spec(tmp_path: Path) -> FunctionSpec:
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text(BOOTSTRAP.format(python=sys.executable))
    bootstrap.chmod(0o755)
    return FunctionSpec(
        name="custom", handler="function.handler", code_dir=str(tmp_path), runtime="provided.al2023"
    )


def test_a_raw_http_bootstrap_serves_results_and_errors(run, running, spec):
    async def scenario() -> list[Any]:
        async with running(spec, [os.path.join(spec.code_dir, "bootstrap")]) as instance:
            return [
                await instance.invoke("req-1", b'{"n": 1}'),
                await instance.invoke("req-2", b'{"fail": true}'),
                await instance.invoke("req-3", b'{"n": 3}'),
            ]

    ok, failed, warm = run(scenario())
    assert ok.error is None and ok.init_ms is not None
    answer = ok.decoded()
    assert answer["event"] == {"n": 1}
    assert answer["handler"] == "function.handler"
    assert answer["task_root"] == answer["cwd"] == spec.code_dir
    assert answer["arn"] == function_arn("custom")
    assert answer["trace"].startswith("Root=1-")
    assert b"bootstrap: init for function.handler" in ok.logs
    assert b"bootstrap: handling req-1" in ok.logs
    assert failed.error == "Unhandled"
    assert failed.decoded() == {"errorMessage": "asked to fail", "errorType": "Custom.Failure"}
    assert warm.decoded()["event"] == {"n": 3} and warm.init_ms is None


def test_a_bootstrap_init_error_is_the_invocations_error(run, running, spec):
    Path(spec.code_dir, "init-fails").touch()

    async def scenario() -> Any:
        async with running(spec, [os.path.join(spec.code_dir, "bootstrap")]) as instance:
            result = await instance.invoke("req-1", b"{}")
            return result, await instance.wait()

    result, status = run(scenario())
    assert result.error == "Unhandled"
    assert orjson.loads(result.payload) == {
        "errorMessage": "no config",
        "errorType": "Runtime.NoConfig",
    }
    assert result.init_ms is not None
    assert status in ("exit status 2", "signal: killed")  # it exits, or is killed first


def test_an_init_that_never_ends_times_out(run, running, spec, monkeypatch):
    monkeypatch.setattr("skylift.runtimeapi.instance.INIT_TIMEOUT", 0.2)
    spec = FunctionSpec(
        name=spec.name,
        handler=spec.handler,
        code_dir=spec.code_dir,
        runtime=spec.runtime,
        timeout=1,
    )
    Path(spec.code_dir, "init-hangs").touch()

    async def scenario() -> Any:
        async with running(spec, [os.path.join(spec.code_dir, "bootstrap")]) as instance:
            return await instance.invoke("req-1", b"{}"), instance.alive

    result, alive = run(scenario())
    assert result.decoded() == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: req-1 Error: Task timed out after 1.00 seconds",
    }
    assert b"bootstrap: init for" in result.logs
    assert not alive


def test_a_missing_bootstrap_fails_at_start_saying_what_to_check(run, spec):
    missing = os.path.join(spec.code_dir, "no-such-bootstrap")
    with pytest.raises(LoadError, match=r"cannot start its runtime .* check that the command"):
        run(RuntimeApiInstance.start(spec, [missing], spec.code_dir))

"""AWS's own Python runtime client (`awslambdaric`, unmodified from PyPI) as a skylift
instance: results, context, errors, timeouts, crashes, init errors, output, warm reuse."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from skylift.runtime.environ import function_arn
from skylift.spec import FunctionSpec

if importlib.util.find_spec("awslambdaric") is None:
    if os.environ.get("CI"):
        pytest.fail("awslambdaric is missing: install the test extra (pip install -e '.[test]')")
    pytest.skip("awslambdaric is not installed", allow_module_level=True)

AWSLAMBDARIC = [sys.executable, "-m", "awslambdaric", "app.handler"]

APP = """
    import os
    import signal
    import subprocess
    import sys
    import time

    print("init: importing app")

    def handler(event, context):
        action = event.get("action")
        if action == "context":
            return {
                "function_name": context.function_name,
                "aws_request_id": context.aws_request_id,
                "remaining_ms": context.get_remaining_time_in_millis(),
                "invoked_function_arn": context.invoked_function_arn,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "log_stream_name": context.log_stream_name,
                "custom": context.client_context.custom if context.client_context else None,
                "trace": os.environ.get("_X_AMZN_TRACE_ID"),
            }
        if action == "raise":
            raise ValueError("the input was bad")
        if action == "sleep":
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            print("child", child.pid, flush=True)
            time.sleep(event["seconds"])
        if action == "exit":
            os._exit(event["code"])
        if action == "signal":
            os.kill(os.getpid(), getattr(signal, event["name"]))
        if action == "print":
            print("to stdout", event["n"])
            print("to stderr", event["n"], file=sys.stderr)
        if action == "big":
            return "x" * (7 * 1024 * 1024)
        return {"pid": os.getpid(), "echo": event}
"""


@pytest.fixture
def spec(tmp_path: Path, write_code: Any) -> FunctionSpec:
    write_code(tmp_path, "app.py", APP)
    return FunctionSpec(name="ric-fn", handler="app.handler", code_dir=str(tmp_path), timeout=3)


def event(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def test_a_result_comes_back_and_the_context_is_lambdas(run, running, spec):
    async def scenario():
        async with running(spec, AWSLAMBDARIC) as instance:
            echoed = await instance.invoke("req-echo", event(x=1))
            ctx = await instance.invoke(
                "req-ctx",
                event(action="context"),
                client_context={"custom": {"tenant": "acme"}},
                trace_id="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            )
            return echoed, ctx

    echoed, ctx = run(scenario())
    assert echoed.error is None
    assert echoed.decoded()["echo"] == {"x": 1}
    assert echoed.init_ms is not None and echoed.init_ms > 0
    assert ctx.error is None and ctx.init_ms is None
    fields = ctx.decoded()
    assert fields["function_name"] == "ric-fn"
    assert fields["aws_request_id"] == "req-ctx"
    assert fields["invoked_function_arn"] == function_arn("ric-fn")
    assert 2000 < fields["remaining_ms"] <= 3000
    assert fields["memory_limit_in_mb"] == "128"
    assert "[$LATEST]" in fields["log_stream_name"]
    assert fields["custom"] == {"tenant": "acme"}
    assert fields["trace"].startswith("Root=1-5759e988-bd862e3fe1be46a994272793")


def test_an_exception_comes_back_as_lambdas_error_payload(run, running, spec):
    async def scenario():
        async with running(spec, AWSLAMBDARIC) as instance:
            failed = await instance.invoke("req-raise", event(action="raise"))
            after = await instance.invoke("req-after", event())  # the instance survives
            return failed, after

    failed, after = run(scenario())
    assert failed.error == "Unhandled"
    payload = failed.decoded()
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "the input was bad"
    assert any("raise ValueError" in line for line in payload["stackTrace"])
    assert after.error is None


def test_a_timeout_kills_the_process_group_and_says_sandbox_timedout(run, running, spec):
    spec = FunctionSpec(name=spec.name, handler=spec.handler, code_dir=spec.code_dir, timeout=1)

    async def scenario():
        async with running(spec, AWSLAMBDARIC) as instance:
            started = time.monotonic()
            result = await instance.invoke("req-slow", event(action="sleep", seconds=5))
            return result, time.monotonic() - started, instance.alive, await instance.wait()

    result, elapsed, alive, status = run(scenario())
    assert result.error == "Unhandled"
    payload = result.decoded()
    assert payload["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(
        r"RequestId: req-slow Error: Task timed out after 1\.\d\d seconds", payload["errorMessage"]
    )
    assert elapsed < 2.5
    assert not alive
    assert status == "signal: killed"
    child = int(result.logs.split(b"child ")[1].split()[0])
    assert _gone(child), "the handler's own child outlived the timeout"


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ({"action": "exit", "code": 3}, "exit status 3"),
        ({"action": "signal", "name": "SIGSEGV"}, "signal: segmentation fault"),
        ({"action": "signal", "name": "SIGKILL"}, "signal: killed"),
    ],
)
def test_a_process_that_dies_mid_invocation_is_a_runtime_exit_error(
    run, running, spec, action, status
):
    async def scenario():
        async with running(spec, AWSLAMBDARIC) as instance:
            return await instance.invoke("req-die", orjson.dumps(action)), instance.alive

    result, alive = run(scenario())
    assert result.error == "Unhandled"
    assert result.decoded() == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: req-die Error: Runtime exited with error: {status}",
    }
    assert not alive


def test_an_import_error_is_awslambdarics_init_error(run, running, tmp_path, write_code):
    write_code(tmp_path, "app.py", "import no_such_module\n\ndef handler(event, context): ...\n")
    spec = FunctionSpec(name="broken", handler="app.handler", code_dir=str(tmp_path))

    async def scenario():
        async with running(spec, AWSLAMBDARIC) as instance:
            result = await instance.invoke("req-init", event())
            return result, instance.alive

    result, alive = run(scenario())
    assert result.error == "Unhandled"
    payload = result.decoded()
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert payload["errorMessage"] == (
        "Unable to import module 'app': No module named 'no_such_module'"
    )
    assert b"Runtime.ImportModuleError" in result.logs  # awslambdaric logs it too
    assert not alive  # Lambda inits a fresh sandbox for the next invocation


def test_output_lands_in_its_invocations_logs(run, running, spec):
    async def scenario():
        async with running(spec, AWSLAMBDARIC) as instance:
            first = await instance.invoke("req-1", event(action="print", n=1))
            second = await instance.invoke("req-2", event(action="print", n=2))
            return first, second

    first, second = run(scenario())
    assert b"init: importing app" in first.logs  # init output precedes the first START
    assert b"to stdout 1\n" in first.logs and b"to stderr 1\n" in first.logs
    assert b"to stdout 2\n" in second.logs and b"to stderr 2\n" in second.logs
    assert b" 1\n" not in second.logs and b"init" not in second.logs


def test_sequential_invocations_reuse_the_warm_process(run, running, spec):
    async def scenario():
        async with running(spec, AWSLAMBDARIC) as instance:
            results = [await instance.invoke(f"req-{i}", event(i=i)) for i in range(3)]
            return results, instance.pid, instance.cold, instance.alive

    results, pid, cold, alive = run(scenario())
    assert {r.decoded()["pid"] for r in results} == {pid}
    assert [r.init_ms is not None for r in results] == [True, False, False]
    assert not cold and alive


def test_a_response_over_6_mb_is_function_response_size_too_large(run, running, spec):
    async def scenario():
        async with running(spec, AWSLAMBDARIC) as instance:
            return await instance.invoke("req-big", event(action="big"))

    result = run(scenario())
    assert result.error == "Unhandled"
    payload = result.decoded()
    assert payload["errorType"] == "Function.ResponseSizeTooLarge"
    assert payload["errorMessage"].startswith("Response payload size (7340034 bytes) exceeded")


def test_a_caller_that_gives_up_leaves_no_busy_process_behind(run, running, spec):
    async def scenario():
        async with running(spec, AWSLAMBDARIC) as instance:
            task = asyncio.ensure_future(
                instance.invoke("req-slow", event(action="sleep", seconds=5))
            )
            await asyncio.sleep(0.5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return instance.alive, await instance.wait()

    alive, status = run(scenario())
    assert not alive
    assert status == "signal: killed"


def _gone(pid: int) -> bool:
    # A killed grandchild may linger as a zombie when PID 1 does not reap: that is gone too.
    for _ in range(100):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False

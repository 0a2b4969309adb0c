"""Through real invocations: a function's result and error payloads are the bytes
awslambdaric of its declared `Runtime` sends, on the Python that runtime names where it
is installed (simplejson then runs without its C speedups) and on skylift's own."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from awslambdaric.bootstrap import make_error
from awslambdaric.lambda_runtime_marshaller import to_json

from result_values import values
from skylift.interpreters import CURRENT, find
from skylift.testing import Client
from test_results import lambda_sends

RUNTIMES = {"Py311": "python3.11", "Py312": "python3.12", "Py313": "python3.13"}
FUNCTION = """\
  {name}:
    Type: AWS::Serverless::Function
    Properties: {{Runtime: {runtime}, Handler: result_values.handler, CodeUri: src/}}
"""
JSON_LOGS = {"Json311": "python3.11", "Json312": "python3.12"}
JSON_LOG_FUNCTION = """\
  {name}:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: {runtime}
      Handler: result_values.handler
      CodeUri: src/
      LoggingConfig: {{LogFormat: JSON}}
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("results")
    (root / "src").mkdir()
    shutil.copy(Path(__file__).parent / "result_values.py", root / "src")
    functions = "".join(FUNCTION.format(name=n, runtime=r) for n, r in RUNTIMES.items())
    functions += "".join(JSON_LOG_FUNCTION.format(name=n, runtime=r) for n, r in JSON_LOGS.items())
    (root / "template.yaml").write_text(
        f"Transform: AWS::Serverless-2016-10-31\nResources:\n{functions}"
    )
    with Client(root) as running:
        yield running


@pytest.mark.parametrize("function", list(RUNTIMES))
def test_every_result_is_the_runtimes_bytes(client, function, monkeypatch):
    runtime = RUNTIMES[function]
    for case, value in values().items():
        done = client.invoke(function, {"case": case})
        kind, expected = lambda_sends(runtime, value, monkeypatch)
        if kind == "bytes":
            assert (done.error, done.payload) == (None, expected), case
        elif kind == "marshal_error":
            error = make_error(expected, "Runtime.MarshalError", None, done.request_id)
            assert (done.error, done.payload) == ("Unhandled", to_json(error).encode()), case
        else:  # the runtime dies sending it; so does the instance, and Lambda says so
            assert done.error == "Unhandled", case
            assert done.result["errorType"] == "Runtime.ExitError"
            assert done.result["errorMessage"].endswith("Runtime exited with error: exit status 1")
            assert "UnicodeEncodeError" in done.log


@pytest.mark.parametrize("function", list(RUNTIMES))
def test_an_exceptions_payload_is_the_runtimes_bytes(client, function, monkeypatch):
    monkeypatch.setenv("AWS_EXECUTION_ENV", f"AWS_Lambda_{RUNTIMES[function]}")
    done = client.invoke(function, {"raise": "naïve ☃"})
    stack = orjson.loads(done.payload)["stackTrace"]
    error = make_error("naïve ☃", "ValueError", stack, done.request_id)
    assert (done.error, done.payload) == ("Unhandled", to_json(error).encode())


def test_each_function_runs_on_its_runtimes_python_where_installed(client):
    for function, runtime in RUNTIMES.items():
        version = runtime.removeprefix("python")
        running = client.invoke(function, {"version": True}).result
        assert running == (version if find(version) is not None else CURRENT.version)


@pytest.mark.parametrize("function", list(JSON_LOGS))
def test_the_json_error_log_line_is_written_as_the_runtime_writes_it(client, function):
    done = client.invoke(function, {"raise": "naïve ☃"})
    line = next(x for x in done.log.splitlines() if '"level": "ERROR"' in x)
    written = '"errorMessage": "naïve ☃"'
    if JSON_LOGS[function] == "python3.11":
        written = '"errorMessage": "na\\u00efve \\u2603"'
    assert written in line
    assert orjson.loads(line)["errorType"] == "ValueError"

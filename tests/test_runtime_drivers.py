"""Instances that are processes speaking the Lambda Runtime API, from `skylift up`:
a SAM `provided.al2023` bootstrap, and the real awslambdaric for a decorator app."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import httpx

from skylift.testing import serve

BOOTSTRAP = f"""#!{sys.executable}
# A custom runtime: the Runtime API loop, nothing from skylift.
import json, os, urllib.request

api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    print("custom runtime got", event["rawPath"], flush=True)
    body = json.dumps({{"statusCode": 200, "body": "served by " + os.environ["_HANDLER"]}})
    urllib.request.urlopen(urllib.request.Request(
        api + request_id + "/response", data=body.encode(), method="POST"))
"""

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Custom:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      CodeUri: runtime/
      Handler: my.handler
      Events:
        Get:
          Type: HttpApi
          Properties:
            Path: /custom
            Method: get
"""


def test_a_provided_runtime_bootstrap_serves_an_http_route(tmp_path):
    (tmp_path / "runtime").mkdir()
    bootstrap = tmp_path / "runtime" / "bootstrap"
    bootstrap.write_text(BOOTSTRAP)
    bootstrap.chmod(0o755)
    (tmp_path / "template.yaml").write_text(textwrap.dedent(TEMPLATE))
    with serve(str(tmp_path)) as url:
        response = httpx.get(url + "/custom")
        assert response.status_code == 200
        assert response.text == "served by my.handler"


def test_a_provided_runtime_without_bootstrap_fails_at_load(tmp_path):
    (tmp_path / "runtime").mkdir()
    (tmp_path / "template.yaml").write_text(textwrap.dedent(TEMPLATE))
    done = subprocess.run(
        [sys.executable, "-m", "skylift.cli", "up", str(tmp_path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "function 'Custom'" in done.stderr and "bootstrap" in done.stderr


APP = f"""
import os
from skylift import App

app = App()


@app.function(runtime_command=[{sys.executable!r}, "-m", "awslambdaric", "app.hello"])
def hello(event, context):
    print("hello from awslambdaric, pid", os.getpid())
    return {{"name": context.function_name, "event": event, "pid": os.getpid()}}
"""


def test_awslambdaric_runs_a_decorator_function_unmodified(tmp_path):
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    done = subprocess.run(
        [sys.executable, "-m", "skylift.cli", "invoke", "hello", str(tmp_path), "--event", "-"],
        input='{"x": 1}',
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["name"] == "hello" and result["event"] == {"x": 1}
    assert "hello from awslambdaric" in done.stderr

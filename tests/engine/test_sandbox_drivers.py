"""The sandbox holds for instances that are not forks of a zygote: `spawn=True` (a fresh
interpreter) and Runtime API processes (a custom bootstrap). Real `skylift up`."""

from __future__ import annotations

import base64
import json
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from skylift.testing import ServerLog, serve

LOOK = """
def look(event):
    import os
    seen = {"pid": os.getpid(), "procs": sorted(p for p in os.listdir("/proc") if p.isdigit())}
    try:
        with open(event["state"], "rb") as f:
            seen["state"] = len(f.read())
    except OSError as exc:
        seen["state"] = type(exc).__name__
    try:
        open(os.path.join(event["code"], "written"), "w").close()
        seen["code"] = "written"
    except OSError as exc:
        seen["code"] = type(exc).__name__
    open("/tmp/drivers-654321", "w").close()
    seen["tmp"] = os.statvfs("/tmp").f_blocks * os.statvfs("/tmp").f_frsize // 2**20
    return seen
"""

APP = f"""
{LOOK}
from skylift import App

app = App()


@app.function(spawn=True, ephemeral_storage=1024)
def spawned(event, context):
    return look(event)


@app.function(spawn=True, memory=128)
def spawned_hog(event, context):
    blocks = [bytearray(16 * 1024 * 1024) for _ in range(64)]
    return len(blocks)


@app.function(runtime_command=[{sys.executable!r}, "bootstrap.py"])
def custom(event, context):
    raise AssertionError("the bootstrap answers, not this")
"""

BOOTSTRAP = f"""
# A custom runtime: the Runtime API loop, nothing from skylift.
import json, os, urllib.request
{LOOK}
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    body = json.dumps(look(event)).encode()
    urllib.request.urlopen(urllib.request.Request(
        api + request_id + "/response", data=body, method="POST"))
"""


CLIENT = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}


def invoke(url: str, function: str, event: Any) -> tuple[dict[str, Any], str]:
    lam = boto3.client("lambda", endpoint_url=url, **CLIENT)
    answer = lam.invoke(FunctionName=function, Payload=json.dumps(event).encode(), LogType="Tail")
    lam.close()
    payload = json.loads(answer["Payload"].read())
    if "FunctionError" in answer:
        payload = {"error": payload}
    return payload, base64.b64decode(answer["LogResult"]).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = tmp_path_factory.mktemp("drivers")
    (app / "app.py").write_text(textwrap.dedent(APP))
    (app / "bootstrap.py").write_text(textwrap.dedent(BOOTSTRAP))
    log = ServerLog()
    with serve(str(app), log=log) as url:
        deadline = time.monotonic() + 10
        while "sandbox:" not in log.text and time.monotonic() < deadline:
            time.sleep(0.02)
        if "own PID/mount/IPC namespaces" not in log.text:
            if os.environ.get("CI") == "true":
                pytest.fail(f"the sandbox has no namespaces under CI: {log.text}")
            pytest.skip(f"namespaces unavailable here: {log.text}")
        yield url, app, log


@pytest.mark.parametrize(("function", "tmp_mb"), [("spawned", 1024), ("custom", 512)])
def test_spawned_and_runtime_api_instances_are_sandboxed(server, function, tmp_mb):
    url, app, _ = server
    event = {"state": str(app / ".skylift" / "queues.db"), "code": str(app)}
    seen, _ = invoke(url, function, event)
    assert seen["pid"] == 2 and seen["procs"] == ["1", "2"], seen
    assert seen["state"] == "FileNotFoundError"  # .skylift/ is hidden
    assert seen["code"] == "OSError"  # read-only
    assert not (app / "written").exists()
    assert seen["tmp"] == tmp_mb  # its own /tmp, of its EphemeralStorage size
    assert not Path("/tmp/drivers-654321").exists()


def test_a_spawned_instances_memory_size_is_enforced(server):
    url, _, log = server
    if "memory limit by cgroup" not in log.text:
        pytest.skip("no memory cgroup here: the limit is RLIMIT_AS (MemoryError)")
    answer, tail = invoke(url, "spawned_hog", {})
    assert answer["error"]["errorType"] == "Runtime.OutOfMemory", answer
    assert "Max Memory Used: 128 MB" in tail
    assert invoke(url, "spawned", {"state": "/nonexistent", "code": "/nonexistent"})[0]["pid"] == 2


def test_a_runtime_api_instance_reports_its_sandboxs_peak_memory(server):
    url, app, _ = server
    _, tail = invoke(url, "custom", {"state": "/nonexistent", "code": str(app)})
    used = int(tail.split("Max Memory Used: ")[1].split()[0])
    assert 1 <= used <= 128, tail

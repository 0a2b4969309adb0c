"""A test app whose functions exercise every execution behaviour."""

import ctypes
import json
import logging
import os
import sys
import time

from skylift import App

app = App("probe")
calls = {"n": 0}
# Lambda sets its shared variables before the init phase.
REGION_AT_IMPORT = os.environ.get("AWS_REGION")


@app.function()
def counter(event, context):
    calls["n"] += 1
    return {"n": calls["n"], "pid": os.getpid()}


@app.function(memory=256, environment={"GREETING": "hi"})
def inspect(event, context):
    env = {
        k: os.environ.get(k)
        for k in (
            "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "AWS_LAMBDA_FUNCTION_VERSION",
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "_HANDLER",
            "LAMBDA_TASK_ROOT",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_EXECUTION_ENV",
            "TZ",
            "GREETING",
        )
    }
    return {
        "event": event,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "identity": [
            context.identity.cognito_identity_id,
            context.identity.cognito_identity_pool_id,
        ],
        "client_context": context.client_context,
        "remaining": context.get_remaining_time_in_millis(),
        "cwd": os.getcwd(),
        "region_at_import": REGION_AT_IMPORT,
        "local_zone": time.localtime().tm_zone,
        "env": env,
    }


@app.function()
def boom(event, context):
    raise ValueError("bad thing happened")


@app.function(timeout=1)
def sleepy(event, context):
    print("going to sleep")
    time.sleep(event.get("seconds", 5))
    return "awake"


@app.function()
def exits(event, context):
    print("about to exit")
    os._exit(3)


@app.function()
def segfault(event, context):
    ctypes.string_at(0)


@app.function()
def unserializable(event, context):
    return {"a": {1, 2}}


@app.function()
def unwritable(event, context):
    """A result the encoder cannot write, not with a TypeError: the instance lives on."""
    calls["n"] += 1
    if event and event.get("kind") == "deep":
        deep = []
        for _ in range(100_000):
            deep = [deep]
        return deep  # RecursionError
    result = {"n": calls["n"], "pid": os.getpid()}
    result["self"] = result
    return result  # ValueError: Circular reference detected


@app.function()
def huge(event, context):
    return "x" * (7 * 1024 * 1024)


@app.function()
def chatty(event, context):
    print("from print", event.get("tag"))
    sys.stderr.write("from stderr\n")
    os.write(1, b"from fd 1\n")
    logging.getLogger().warning("from logging")
    return json.dumps(event)


@app.function(max_concurrency=1)
def single(event, context):
    time.sleep(0.3)
    return os.getpid()


def wait_for_gate(event):
    """Say this instance started (a file `started-PID` in `event["gate"]`), then hold it
    until the test opens the gate (a file `open` there): as long as the test needs, on a
    machine however busy."""
    folder = event["gate"]
    open(os.path.join(folder, f"started-{os.getpid()}"), "w").close()
    while not os.path.exists(os.path.join(folder, "open")):
        time.sleep(0.01)
    return "opened"


@app.function(max_concurrency=1, timeout=60)
def gated_single(event, context):
    return wait_for_gate(event)


@app.function(timeout=60)
def gated(event, context):
    return wait_for_gate(event)


@app.function()
def parallel(event, context):
    time.sleep(0.3)
    return os.getpid()


@app.function(timeout=1)
def spawner(event, context):
    import subprocess

    child = subprocess.Popen(["sleep", "300"])
    with open(event["pidfile"], "w") as f:
        f.write(str(child.pid))
    time.sleep(5)


@app.function(timeout=30)
def flood(event, context):
    chunk = "x" * (1 << 20)
    for i in range(event.get("megabytes", 20)):
        print(f"chunk {i} {chunk}")
        if event.get("pause"):
            time.sleep(0.15)  # let the trimmer see it grow
    print("the end")
    return "done"


@app.function(environment={"TZ": "Europe/Berlin", "LANG": "C.UTF-8"})
def zoned(event, context):
    return {"tz": os.environ["TZ"], "zone": time.strftime("%Z"), "lang": os.environ["LANG"]}

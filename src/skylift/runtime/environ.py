"""The standard Lambda environment of one function instance. Pure; used by both sides."""

from __future__ import annotations

import os
import time
import uuid

from skylift.spec import FunctionSpec

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
VERSION = "$LATEST"


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def function_arn(name: str, region_name: str | None = None) -> str:
    return f"arn:aws:lambda:{region_name or region()}:{ACCOUNT_ID}:function:{name}"


def log_group(name: str) -> str:
    return f"/aws/lambda/{name}"


def new_log_stream() -> str:
    # Lambda names a stream per instance: date, version, and a random id.
    return time.strftime("%Y/%m/%d/", time.gmtime()) + f"[{VERSION}]{uuid.uuid4().hex}"


def lambda_environment(spec: FunctionSpec, log_stream: str) -> dict[str, str]:
    """The variables Lambda defines for an instance of `spec`, user variables first."""
    region_name = region()
    env = dict(spec.environment)
    env.update(
        {
            "_HANDLER": spec.handler,
            "AWS_REGION": region_name,
            "AWS_DEFAULT_REGION": region_name,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": VERSION,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": log_group(spec.name),
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "LAMBDA_TASK_ROOT": spec.code_dir,
            "LAMBDA_RUNTIME_DIR": os.path.dirname(os.path.dirname(os.__file__)),
            "PYTHONPATH": spec.code_dir,
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        }
    )
    return env

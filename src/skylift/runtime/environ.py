"""The standard Lambda environment of one function instance. Pure; used by both sides."""

from __future__ import annotations

import os
import time
import uuid

from skylift.account import ACCOUNT_ID, DEFAULT_REGION, region
from skylift.spec import FunctionSpec

__all__ = ["ACCOUNT_ID", "DEFAULT_REGION", "region"]

VERSION = "$LATEST"


def function_arn(name: str, region_name: str | None = None) -> str:
    return f"arn:aws:lambda:{region_name or region()}:{ACCOUNT_ID}:function:{name}"


def log_group(name: str) -> str:
    return f"/aws/lambda/{name}"


def new_log_stream() -> str:
    # Lambda names a stream per instance: date, version, and a random id.
    return time.strftime("%Y/%m/%d/", time.gmtime()) + f"[{VERSION}]{uuid.uuid4().hex}"


def shared_environment(code_dir: str, runtime: str) -> dict[str, str]:
    """The variables every function of a code package shares (set before its init phase).

    Lambda reserves most of these; TZ, LANG, PATH and PYTHONPATH are defaults a function's
    own environment may override (`lambda_environment` applies it after them).
    """
    region_name = region()
    return {
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "PYTHONPATH": code_dir,
        "AWS_REGION": region_name,
        "AWS_DEFAULT_REGION": region_name,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "LAMBDA_TASK_ROOT": code_dir,
        "LAMBDA_RUNTIME_DIR": os.path.dirname(os.path.dirname(os.__file__)),
    }


def apply(env: dict[str, str]) -> None:
    """Set `env` in this process, including the time zone its time functions use."""
    os.environ.update(env)
    time.tzset()


def lambda_environment(spec: FunctionSpec, log_stream: str) -> dict[str, str]:
    """The variables Lambda defines for an instance of `spec`.

    Defaults first, then the function's own variables, then what Lambda reserves (the
    spec's validation already refuses reserved names, so nothing of the user's is lost).
    """
    env = shared_environment(spec.code_dir, spec.runtime)
    env.update(spec.environment)
    env.update(
        {
            "_HANDLER": spec.handler,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": VERSION,
            "AWS_LAMBDA_LOG_GROUP_NAME": log_group(spec.name),
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        }
    )
    return env

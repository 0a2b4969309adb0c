"""The standard Lambda environment of one function instance. Pure; used by both sides.

An instance's environment is built, never inherited: the shell that ran `skylift up`
may hold real AWS credentials (`AWS_PROFILE`, keys, `~/.aws`), and none of it may reach
a function. `host_environment` is the whole list of what passes through.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from skylift.account import ACCOUNT_ID, DEFAULT_REGION, region
from skylift.ids import hex_id

if TYPE_CHECKING:  # not imported: starting a zygote (host_environment) needs no spec
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


# Host variables an instance keeps: what finding programs and shared libraries needs.
PASSED_THROUGH = ("PATH", "LD_LIBRARY_PATH")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

# What Lambda injects from the execution role, here fixed and plainly not AWS's: a call
# that somehow reached AWS with them would be refused, never act on an account.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIASKYLIFTLOCAL0000",
    "AWS_SECRET_ACCESS_KEY": "skylift-local-secret-not-an-aws-key",
    "AWS_SESSION_TOKEN": "skylift-local-session-token-not-an-aws-token",
}
# Services the server answers; botocore's per-service variable is AWS_ENDPOINT_URL_<ID>.
SERVED_SERVICES = ("SQS", "S3", "LAMBDA")
UNSERVED_PATH = "/_skylift/unserved"  # the server refuses any other service's calls here
# A path that never exists: botocore then reads no shared config or credentials file.
NO_AWS_FILE = "/nonexistent/skylift-instances-read-no-aws-files"


def host_environment() -> dict[str, str]:
    """What an instance process starts with: the few host variables it needs, nothing else.

    skylift itself must stay importable: from a virtualenv or site-packages it is (the
    interpreter finds it), from a bare source tree only with its folder on PYTHONPATH.
    """
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    source = _source_root()
    if source is not None:
        env["PYTHONPATH"] = source
    return env


@functools.cache
def _source_root() -> str | None:
    if _installed():  # editable or not
        return None
    import skylift

    return str(Path(skylift.__file__).resolve().parent.parent)


def _installed() -> bool:
    """Whether `importlib.metadata.distribution("skylift")` would find skylift's metadata:
    a `skylift-*.dist-info` or `skylift*.egg-info` folder in a folder of the import path.

    The same search, without importing `importlib.metadata` (10 ms, which every
    `skylift invoke` would wait for); tests/test_cli_speed.py compares the two.
    """
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:  # gone, a file, or a zip archive (no wheel installs as one)
            continue
        for name in names:
            low = name.lower()
            if low.endswith((".dist-info", ".egg-info")):
                project = low.rpartition(".")[0].partition("-")[0]
                if re.sub(r"[-_.]+", "_", project) == "skylift":
                    return True
    return False


def aws_environment(endpoint: str, unserved: str | None = None) -> dict[str, str]:
    """Local credentials and endpoints: every AWS SDK call goes to skylift, never to AWS.

    `endpoint` serves SQS, S3 and Lambda; every other service goes to `unserved` (by
    default the server's refusal path), which answers at once with an error naming it.
    A function's own `AWS_ENDPOINT_URL_<SERVICE>` still wins (it is applied later).
    """
    env = {
        "AWS_ENDPOINT_URL": unserved or endpoint.rstrip("/") + UNSERVED_PATH,
        **{f"AWS_ENDPOINT_URL_{service}": endpoint for service in SERVED_SERVICES},
        "AWS_CONFIG_FILE": NO_AWS_FILE,
        "AWS_SHARED_CREDENTIALS_FILE": NO_AWS_FILE,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.update(LOCAL_CREDENTIALS)
    return env


# Where instances started outside a server (library use) send AWS calls: a closed
# loopback port, so a call fails at once and still never reaches AWS.
OFFLINE_ENDPOINT = "http://127.0.0.1:9"


def offline_environment() -> dict[str, str]:
    return aws_environment(OFFLINE_ENDPOINT, OFFLINE_ENDPOINT)


def new_trace_id() -> str:
    """An X-Ray trace header; Lambda hands every invocation one, sampled or not.

    Its ids are unique, not secret: `skylift.ids.hex_id`, with no syscall per
    invocation (`os.urandom` made two)."""
    return f"Root=1-{int(time.time()):08x}-{hex_id(24)};Parent={hex_id(16)};Sampled=0"


def continued_trace(header: str | None) -> str | None:
    """The trace header of an invocation that continues `header` (an SQS message's
    `AWSTraceHeader`): its Root and sampling decision, with Lambda's own segment as
    Parent. None when it carries no Root (the invocation then starts a trace of its own)."""
    if not header:
        return None
    fields = dict(part.split("=", 1) for part in header.split(";") if "=" in part)
    root = fields.get("Root")
    if not root:
        return None
    sampled = fields.get("Sampled", "0")
    return f"Root={root};Parent={os.urandom(8).hex()};Sampled={sampled}"


def shared_environment(code_dir: str, runtime: str) -> dict[str, str]:
    """The variables every function of a code package shares (set before its init phase).

    Lambda reserves most of these; TZ, LANG, PATH and PYTHONPATH are defaults a function's
    own environment may override (`lambda_environment` applies it after them).
    """
    region_name = region()
    return {
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": os.environ.get("PATH", DEFAULT_PATH),
        "PYTHONPATH": code_dir,
        "AWS_REGION": region_name,
        "AWS_DEFAULT_REGION": region_name,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{_running(runtime)}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "LAMBDA_TASK_ROOT": code_dir,
        "LAMBDA_RUNTIME_DIR": os.path.dirname(os.path.dirname(os.__file__)),
    }


def _running(runtime: str) -> str:
    """The runtime that really runs: a python3.x runtime is this interpreter's version."""
    if runtime.startswith("python3."):
        return f"python{sys.version_info.major}.{sys.version_info.minor}"
    return runtime


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
    env.update(spec.log_config.environment())
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

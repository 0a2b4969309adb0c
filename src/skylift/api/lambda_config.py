"""A function's configuration in Lambda's words: the ``FunctionConfiguration`` shape that
GetFunctionConfiguration, GetFunction, ListFunctions and UpdateFunctionConfiguration
answer with, built from its `FunctionSpec` and what the server tracks beside it.

What a spec does not say is what Lambda reports for a function created without it (no
tracing, 512 MB of /tmp, text logs, no SnapStart); the architecture is the host's, which
is where the function really runs. The code's size and SHA-256 are measured from its
directory (cached until a file changes), so a tool comparing CodeSha256 sees a change.
"""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skylift.spec import FunctionSpec

# What a function gets when its template does not say (as Lambda's CreateFunction).
# Lambda's limit on unzipped code: past it, CodeSha256 hashes the file list, not the bytes.
HASHED_LIMIT = 262_144_000
ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def lambda_timestamp(seconds: float | None = None) -> str:
    """Lambda's LastModified: ``2019-09-24T18:20:35.054+0000``."""
    now = time.time() if seconds is None else seconds
    millis = int(now * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{millis:03d}+0000"


@dataclass
class Revision:
    """What Lambda keeps of a function's configuration beside the spec: when it last
    changed, the id of that revision (RevisionId), and its description."""

    last_modified: str = field(default_factory=lambda_timestamp)
    revision_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    description: str = ""

    def changed(self, description: str) -> None:
        self.last_modified = lambda_timestamp()
        self.revision_id = str(uuid.uuid4())
        self.description = description


@dataclass(frozen=True)
class Code:
    """A function's deployment package as Lambda describes it."""

    size: int
    sha256: str  # base64, as Lambda's CodeSha256


class CodeMeasure:
    """CodeSize and CodeSha256 of code directories, measured again only when a file's
    size or modification time changed (a walk of stat calls; files are read only then).

    Blocking: call it in a thread.
    """

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple[tuple[str, int, int], ...], Code]] = {}
        self._lock = threading.Lock()

    def __call__(self, code_dir: str) -> Code:
        files = _files(Path(code_dir))
        with self._lock:
            known = self._known.get(code_dir)
        if known is not None and known[0] == files:
            return known[1]
        digest = hashlib.sha256()
        size = sum(length for _, length, _ in files)
        if size > HASHED_LIMIT:
            # More than Lambda would take: hash what was listed rather than read it all.
            digest.update(repr(files).encode())
        for relative, _, _ in files if size <= HASHED_LIMIT else ():
            # Name and content both count: a renamed file is a different package.
            digest.update(relative.encode() + b"\0")
            try:
                digest.update(Path(code_dir, relative).read_bytes())
            except OSError:
                pass  # removed while we walked: measured as empty, and measured again next time
        code = Code(size, base64.b64encode(digest.digest()).decode())
        with self._lock:
            self._known[code_dir] = (files, code)
        return code


def _files(top: Path) -> tuple[tuple[str, int, int], ...]:
    """(relative path, size, mtime) of every file of the code; hidden directories (a
    virtualenv, .git, skylift's state) and bytecode caches are not code."""
    found: list[tuple[str, int, int]] = []
    for root, dirs, names in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(names):
            path = os.path.join(root, name)
            try:
                stat = os.lstat(path)
            except OSError:
                continue  # removed while we walked
            found.append((os.path.relpath(path, top), stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def architecture() -> str:
    """The Lambda name of this host's architecture (the one the function runs on)."""
    return ARCHITECTURES.get(platform.machine().lower(), "x86_64")


def role_arn(name: str, account_id: str) -> str:
    """The execution role skylift reports: one per function, as SAM creates them."""
    return f"arn:aws:iam::{account_id}:role/{name}-role"


def runtime_version_arn(runtime: str, region: str) -> str:
    """A RuntimeVersionArn that changes when the interpreter running the function does."""
    version = hashlib.sha256(f"{runtime} {sys.version}".encode()).hexdigest()
    return f"arn:aws:lambda:{region}::runtime:{version}"


def configuration(
    spec: FunctionSpec,
    revision: Revision,
    code: Code,
    *,
    region: str,
    account_id: str,
    listed: bool = False,
) -> dict[str, Any]:
    """The FunctionConfiguration Lambda reports for `spec`. ListFunctions (`listed`)
    leaves out State, LastUpdateStatus and RuntimeVersionConfig, as Lambda does."""
    name = spec.name
    config: dict[str, Any] = {
        "FunctionName": name,
        "FunctionArn": f"arn:aws:lambda:{region}:{account_id}:function:{name}",
        "Runtime": spec.runtime,
        "Role": role_arn(name, account_id),
        "Handler": spec.handler,
        "CodeSize": code.size,
        "Description": revision.description,
        "Timeout": _whole(spec.timeout),
        "MemorySize": spec.memory,
        "LastModified": revision.last_modified,
        "CodeSha256": code.sha256,
        "Version": "$LATEST",
    }
    if spec.environment:
        config["Environment"] = {"Variables": dict(spec.environment)}
    dead_letter = spec.async_config.dead_letter_queue
    if dead_letter:
        config["DeadLetterConfig"] = {
            "TargetArn": f"arn:aws:sqs:{region}:{account_id}:{dead_letter}"
        }
    config["TracingConfig"] = {"Mode": "PassThrough"}
    config["RevisionId"] = revision.revision_id
    if not listed:
        config["State"] = "Active"
        config["LastUpdateStatus"] = "Successful"
    config["PackageType"] = "Zip"
    config["Architectures"] = [architecture()]
    config["EphemeralStorage"] = {"Size": spec.ephemeral_storage}
    config["SnapStart"] = {"ApplyOn": "None", "OptimizationStatus": "Off"}
    if not listed:
        config["RuntimeVersionConfig"] = {
            "RuntimeVersionArn": runtime_version_arn(spec.runtime, region)
        }
    config["LoggingConfig"] = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
    if spec.tenant_isolation:
        config["TenancyConfig"] = {"TenantIsolationMode": "PER_TENANT"}
    return config


def _whole(seconds: float) -> int:
    # Lambda's Timeout is whole seconds; a decorator may declare a fraction (rounded up:
    # the function really may run that long).
    whole = int(seconds)
    return whole if whole == seconds else whole + 1

"""Where a function's code is: a folder, a .zip (unpacked), or inline code (written out).

`CodeUri` (AWS::Serverless::Function) or `Code` (AWS::Lambda::Function) names it,
relative to the template; code in S3 is refused, since skylift runs local code.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Protocol

from skylift.errors import DeclarationError
from skylift.sam.cfn_yaml import is_intrinsic
from skylift.sam.context import TemplateContext

# AWS::Lambda::Function's Code.ZipFile for Python is written as index.py, as Lambda does.
ZIP_FILE_MODULE = "index"


class CodeOwner(Protocol):
    @property
    def logical_id(self) -> str: ...

    @property
    def context(self) -> TemplateContext: ...

    @property
    def serverless(self) -> bool: ...

    def fail(self, message: str) -> DeclarationError: ...

    def string_value(self, value: Any, where: str) -> str | None: ...

    def string(self, key: str) -> str | None: ...


def code_dir(function: CodeOwner, properties: Any) -> str:
    """The folder the function's handler module is in."""
    key = "CodeUri" if function.serverless else "Code"
    raw = properties.get(key)
    inline = _inline(function, properties)
    if inline is not None:
        module = _inline_module(function) if function.serverless else ZIP_FILE_MODULE
        return str(_write_inline(function, module, inline))
    if (isinstance(raw, dict) and not is_intrinsic(raw)) or (
        isinstance(raw, str) and raw.startswith("s3://")
    ):
        raise function.fail(
            f"{key} {raw!r} is in S3, but skylift runs code from a local directory: "
            f"set {key} to the folder holding your handler, relative to the template"
        )
    code_uri = function.string(key) or "."
    path = (function.context.base_dir / code_uri).resolve()
    if path.is_file() and path.suffix == ".zip":
        return str(_unpack(function, key, code_uri, path))
    if not path.is_dir():
        found = "is a file, not a directory or .zip" if path.exists() else "does not exist"
        raise function.fail(
            f"{key} {code_uri!r} ({path}) {found}: set {key} to the folder holding "
            "your handler (or its .zip), relative to the template's directory"
        )
    return str(path)


def _inline(function: CodeOwner, properties: Any) -> str | None:
    if function.serverless:
        if "InlineCode" not in properties:
            return None
        if "CodeUri" in properties:
            raise function.fail("set InlineCode or CodeUri, not both (SAM refuses both)")
        return function.string_value(properties["InlineCode"], "InlineCode")
    code = properties.get("Code")
    if isinstance(code, dict) and "ZipFile" in code:
        return function.string_value(code["ZipFile"], "Code.ZipFile")
    return None


def _inline_module(function: CodeOwner) -> str:
    handler = function.string("Handler") or ""
    module = handler.rpartition(".")[0]
    if not re.fullmatch(r"[A-Za-z_]\w*", module):
        raise function.fail(
            f"Handler {handler!r} must be module.function for InlineCode, e.g. index.handler"
        )
    return module


def _write_inline(function: CodeOwner, module: str, code: str) -> Path:
    folder = function.context.build_root / "inline" / function.logical_id
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{module}.py"
    if not target.is_file() or target.read_text(encoding="utf-8") != code:
        _replace(target, code.encode())
    return folder.resolve()


def _unpack(function: CodeOwner, key: str, code_uri: str, path: Path) -> Path:
    """The zip unpacked under the build folder, once per content."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    folder = function.context.build_root / "zip" / digest
    if folder.is_dir():
        return folder.resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=folder.parent))
    try:
        with zipfile.ZipFile(path) as archive:
            archive.extractall(staging)  # zipfile drops absolute and ".." parts of names
    except (zipfile.BadZipFile, OSError) as exc:
        _remove(staging)
        raise function.fail(f"{key} {code_uri!r} cannot be unpacked: {exc}") from None
    try:
        staging.rename(folder)
    except OSError:  # unpacked meanwhile by another load: theirs is the same content
        _remove(staging)
    return folder.resolve()


def _replace(target: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(temporary, target)


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)

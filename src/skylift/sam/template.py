"""The template file: found, read (YAML with CloudFormation's tags, or JSON), Globals merged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from skylift.errors import LoadError
from skylift.loader import TEMPLATE_NAMES
from skylift.sam import cfn_yaml
from skylift.sam.cfn_yaml import is_intrinsic


def find_template(path: Path) -> Path:
    if path.is_dir():
        for name in TEMPLATE_NAMES:
            if (path / name).is_file():
                return path / name
        raise LoadError(
            f"no {' / '.join(TEMPLATE_NAMES)} in {path}: pass the path of your SAM template"
        )
    if not path.is_file():
        raise LoadError(f"template {path} not found: pass the path of your SAM template")
    return path


def read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(f"cannot read template {path}: {exc}") from exc
    try:
        doc = cfn_yaml.parse(text)
    except yaml.YAMLError as exc:
        raise LoadError(
            f"template {path} is not valid YAML or JSON: {_describe(exc)}; fix it and reload"
        ) from exc
    if not isinstance(doc, dict):
        raise LoadError(
            f"template {path} is not a CloudFormation template (its top level is not a "
            "mapping with a Resources section)"
        )
    return doc


def _describe(exc: yaml.YAMLError) -> str:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return str(exc)
    text = " ".join(part for part in (exc.context, exc.problem) if part)
    mark = exc.problem_mark or exc.context_mark
    return f"{text} at line {mark.line + 1}, column {mark.column + 1}" if mark else text


def section(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LoadError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def merge(global_value: Any, local_value: Any) -> Any:
    """Merge a Globals value under a function's, by SAM's rules.

    Mappings merge key by key (recursively), lists concatenate (globals first), and
    anything else, including an intrinsic standing for a value, is the function's own.
    """
    if (
        isinstance(global_value, dict)
        and isinstance(local_value, dict)
        and not is_intrinsic(global_value)
        and not is_intrinsic(local_value)
    ):
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = merge(merged[key], value) if key in merged else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return global_value + local_value
    return local_value

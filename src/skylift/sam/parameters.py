"""Template parameters: `--parameter-overrides` (SAM CLI's syntax) checked against Parameters.

A deploy needs a value for every parameter: its override, else its Default. A parameter
with neither stops the load, as `sam deploy` and CloudFormation stop.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from skylift.errors import LoadError

OPTION = "--parameter-overrides"


def parse_overrides(values: Iterable[str]) -> dict[str, str]:
    """`Key=Value` pairs (several per value, space-separated, quoted as in a shell), or
    CloudFormation's `ParameterKey=Key,ParameterValue=Value`, as SAM CLI reads them.

    >>> parse_overrides(["Stage=dev 'Greeting=hello there'"])
    {'Stage': 'dev', 'Greeting': 'hello there'}
    """
    result: dict[str, str] = {}
    for value in values:
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise LoadError(f"{OPTION} {value!r} cannot be read: {exc}") from None
        for word in words:
            key, value_ = _pair(word)
            result[key] = value_
    return result


def _pair(word: str) -> tuple[str, str]:
    if word.startswith("ParameterKey="):
        fields = dict(part.split("=", 1) for part in word.split(",", 1) if "=" in part)
        if "ParameterKey" in fields and "ParameterValue" in fields:
            return fields["ParameterKey"], fields["ParameterValue"]
    key, equals, value = word.partition("=")
    if not equals or not key:
        raise LoadError(f"{OPTION} {word!r} is not Key=Value: write e.g. {OPTION} Stage=dev Size=3")
    return key, value


def check(declared: Mapping[str, Any], overrides: Mapping[str, str]) -> None:
    """Fail unless every parameter has a value, every override a parameter, and every
    value is one of the parameter's AllowedValues."""
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        names = ", ".join(sorted(str(n) for n in declared)) or "none"
        raise LoadError(
            f"{OPTION} sets {', '.join(unknown)}, which the template's Parameters do not "
            f"declare (it declares: {names}): fix the name or drop it"
        )
    for name, declaration in declared.items():
        declaration = declaration if isinstance(declaration, dict) else {}
        if name in overrides:
            value: Any = overrides[name]
        elif "Default" in declaration:
            value = declaration["Default"]
        else:
            raise LoadError(
                f"parameter {name} has no Default and no value: pass "
                f"{OPTION} {name}=VALUE (or give it a Default in the template)"
            )
        allowed = declaration.get("AllowedValues")
        if isinstance(allowed, list) and str(value) not in [str(a) for a in allowed]:
            raise LoadError(
                f"parameter {name} is {value!r}, not one of its AllowedValues "
                f"{[str(a) for a in allowed]}: pass {OPTION} {name}=<one of them>"
            )

"""Local environment overrides: SAM CLI's `--env-vars` file.

```json
{"Parameters": {"STAGE": "local"}, "MyFunction": {"TABLE": "orders-local"}}
```

`Parameters` applies to every function, an object named after a function to that one
(it wins over `Parameters`). As with `sam local`, a file overrides the variables a function
declares and adds none: a name the function does not declare is left out, and skylift
says so in its log.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from skylift.errors import DeclarationError
from skylift.spec import FunctionSpec

Overrides = Mapping[str, Mapping[str, str]]
GLOBAL = "Parameters"


def load(path: str | Path) -> dict[str, dict[str, str]]:
    """Read and check an env-vars file; raises DeclarationError saying what to fix."""
    where = f"--env-vars {path}"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeclarationError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeclarationError(f"{where}: cannot read it: {exc}") from None
    except json.JSONDecodeError as exc:
        raise DeclarationError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DeclarationError(
            f'{where}: expected a JSON object such as {{"{GLOBAL}": {{"VAR": "value"}}, '
            f'"FunctionName": {{"VAR": "value"}}}}'
        )
    overrides: dict[str, dict[str, str]] = {}
    for name, variables in data.items():
        if not isinstance(variables, dict):
            raise DeclarationError(
                f'{where}: "{name}" must map variable names to values, '
                f'e.g. {{"{name}": {{"VAR": "value"}}}}'
            )
        overrides[name] = {key: _text(where, name, key, v) for key, v in variables.items()}
    return overrides


def _text(where: str, name: str, key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise DeclarationError(
        f'{where}: "{name}"."{key}" is {type(value).__name__}; a value must be a string, '
        "a number or a boolean"
    )


def override(spec: FunctionSpec, overrides: Overrides) -> FunctionSpec:
    """`spec` with the values `overrides` gives for the variables it declares."""
    declared = spec.environment
    changed = dict(declared)
    for source in (overrides.get(GLOBAL, {}), overrides.get(spec.name, {})):
        changed.update((k, v) for k, v in source.items() if k in declared)
    if changed == dict(declared):
        return spec
    return dataclasses.replace(spec, environment=changed)


def ignored(specs: Iterable[FunctionSpec], overrides: Overrides) -> list[str]:
    """What in `overrides` changed nothing, in words for skylift's log."""
    specs = list(specs)
    names = {spec.name for spec in specs}
    notes = []
    for name, variables in overrides.items():
        if name != GLOBAL and name not in names:
            notes.append(
                f"--env-vars: no function named {name!r} (functions: {', '.join(sorted(names))})"
            )
            continue
        targets = specs if name == GLOBAL else [s for s in specs if s.name == name]
        for key in variables:
            if not any(key in spec.environment for spec in targets):
                where = "no function" if name == GLOBAL else f"function {name!r}"
                notes.append(
                    f"--env-vars: {where} declares {key}, so it is not set; as with "
                    "sam local, declare it in the function's environment to override it"
                )
    return notes

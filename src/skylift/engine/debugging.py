"""Debugging a function: its instances as a debugger needs them.

`skylift invoke FN --debug` / `skylift up --debug FN` ("pdb"): the instance is a fresh
interpreter (spawn) whose stdin, stdout and stderr are the terminal, so `breakpoint()`
and `pdb.set_trace()` are interactive. `--debug-port N` ("debugpy:N"): the instance
starts under debugpy, listening on 127.0.0.1:N, and waits for the editor to attach
before its init phase, so breakpoints in module-level code hit too.

Either way the function's timeout is suspended (a person is stepping through it), one
instance runs at a time, and none is kept warm ahead of use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from skylift.errors import DeclarationError
from skylift.spec import FunctionSpec

# Instead of the function's timeout while a debugger may hold it: a working day.
DEBUG_TIMEOUT = 12 * 3600.0


def mode(pdb: bool, port: int | None) -> str | None:
    """The debug mode for the CLI's options (None: not debugging)."""
    if port is not None:
        if not 1 <= port <= 65535:
            raise DeclarationError(f"--debug-port {port} is not a TCP port (1-65535)")
        return f"debugpy:{port}"
    return "pdb" if pdb else None


def port(debug: str | None) -> int | None:
    """The debugpy port of a mode, or None."""
    if debug is None or not debug.startswith("debugpy:"):
        return None
    return int(debug.split(":", 1)[1])


def apply(specs: Iterable[FunctionSpec], debug: Mapping[str, str]) -> list[FunctionSpec]:
    """`specs` with the functions named in `debug` set up for their debugger."""
    specs = list(specs)
    unknown = sorted(set(debug) - {spec.name for spec in specs})
    if unknown:
        names = ", ".join(sorted(spec.name for spec in specs))
        raise DeclarationError(f"cannot debug {', '.join(unknown)}: the app declares {names}")
    out = []
    for spec in specs:
        chosen = debug.get(spec.name)
        if chosen is not None and spec.runtime_command:
            raise DeclarationError(
                f"{spec.name} runs its own runtime ({' '.join(spec.runtime_command)}): "
                "attach a debugger the way that runtime documents"
            )
        if chosen is not None:
            spec = dataclasses.replace(
                spec,
                spawn=True,
                timeout=DEBUG_TIMEOUT,
                max_concurrency=1,
                min_instances=0,
                debug=chosen,
            )
        out.append(spec)
    return out

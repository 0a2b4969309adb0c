"""How an instance runs: the one protocol both drivers implement, and the choice.

- `Instance` (engine/instance.py): a worker forked from the function's zygote.
- `RuntimeApiInstance` (runtimeapi/instance.py): any process that speaks the Lambda
  Runtime API (`runtime_command`: awslambdaric, a `provided.al2023` bootstrap, ...).
"""

from __future__ import annotations

from typing import Any, Protocol

from skylift.engine.instance import Instance, InvocationResult
from skylift.engine.zygote import Zygote
from skylift.errors import LoadError
from skylift.spec import FunctionSpec


class FunctionInstance(Protocol):
    """One instance of a function: runs one invocation at a time."""

    alive: bool
    cold: bool
    last_used: float
    pid: int

    async def invoke(
        self,
        request_id: str,
        event: bytes,
        *,
        client_context: dict[str, Any] | None = None,
        trace_id: str | None = None,
    ) -> InvocationResult: ...

    def close(self) -> None: ...

    def kill(self) -> None: ...


async def start_instance(spec: FunctionSpec, zygote: Zygote | None) -> FunctionInstance:
    if spec.runtime_command:
        from skylift.runtimeapi.instance import RuntimeApiInstance

        return await RuntimeApiInstance.start(spec, list(spec.runtime_command), spec.code_dir)
    if zygote is None:
        raise LoadError(f"function {spec.name!r} has no zygote to fork its instances from")
    return await Instance.start(spec, zygote)

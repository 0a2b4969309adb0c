"""How an instance runs: the one protocol both drivers implement, and the choice.

- `Instance` (engine/instance.py): a worker forked from the function's zygote, or with
  `spawn=True` a fresh interpreter that imports the code itself (engine/spawner.py).
- `RuntimeApiInstance` (runtimeapi/instance.py): any process that speaks the Lambda
  Runtime API (`runtime_command`: awslambdaric, a `provided.al2023` bootstrap, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from skylift.engine.instance import Instance, InvocationResult
from skylift.engine.zygote import Zygote
from skylift.errors import LoadError
from skylift.spec import FunctionSpec

# Told of an invocation's output while it runs, in whole lines (`on_output`).
OutputSink = Callable[[bytes], None]


class FunctionInstance(Protocol):
    """One instance of a function: runs one invocation at a time."""

    alive: bool
    cold: bool
    last_used: float
    pid: int
    tenant: str | None  # the one tenant it serves (TenancyConfig PER_TENANT)

    async def invoke(
        self,
        request_id: str,
        event: bytes,
        *,
        client_context: dict[str, Any] | None = None,
        trace_id: str | None = None,
        on_output: OutputSink | None = None,
        tenant_id: str | None = None,
    ) -> InvocationResult: ...

    async def warm(self, timeout: float) -> None:
        """Wait (at most `timeout` s) until it is ready to serve; runs no user code."""

    def close(self) -> None: ...

    def kill(self) -> None: ...


async def start_instance(
    spec: FunctionSpec,
    zygote: Zygote | None,
    environment: Mapping[str, str] | None = None,
    sandbox: dict[str, Any] | None = None,
) -> FunctionInstance:
    """A new instance of `spec`; `zygote` is its app's (or its own), None if it has none.

    `environment` is the platform's part of an instance's environment (local credentials
    and endpoints, `environ.aws_environment`), `sandbox` the sandbox's settings (None:
    off); a forked worker has both from its zygote.
    """
    if spec.runtime_command:
        from skylift.runtimeapi.instance import RuntimeApiInstance

        return await RuntimeApiInstance.start(
            spec, list(spec.runtime_command), spec.code_dir, environment, sandbox
        )
    if spec.spawn:
        from skylift.engine.spawner import Spawner, load_setup

        # The zygote is only asked how it loads the code: it need not even be running.
        setup = load_setup(spec, zygote.setup if zygote is not None else None, environment, sandbox)
        return await Instance.start(spec, Spawner(spec, setup))
    if zygote is None:
        raise LoadError(f"function {spec.name!r} has no zygote to fork its instances from")
    return await Instance.start(spec, zygote)

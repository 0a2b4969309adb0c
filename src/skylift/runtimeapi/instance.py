"""A function instance that is any process speaking the Lambda Runtime API.

A drop-in for `skylift.engine.instance.Instance`: a `provided.al2023` bootstrap, or
`python -m awslambdaric module.handler`, runs with the standard Lambda environment plus
AWS_LAMBDA_RUNTIME_API pointing at this instance's own `RuntimeApiServer`.

Lifecycle, as on Lambda:
- init is spawn -> first `/next`; it runs while the first invocation waits, and its
  duration is that invocation's `init_ms`. An init that posts `/init/error` fails the
  invocation with that error (and every later one on this instance), and the instance is
  killed: the next instance inits afresh, as Lambda's next sandbox does.
- the function timeout counts from the moment the runtime takes the invocation (the
  Lambda-Runtime-Deadline-Ms it gets says the same). Init may take Lambda's 10 s init
  limit plus, as Lambda's retried init in the invoke phase does, the function timeout.
  Either way a timeout kills the process group and answers `Sandbox.Timedout`.
- a process that dies before answering gives `Runtime.ExitError` with its exit status
  in the Go runtime's words ("exit status 3", "signal: killed").
The process runs in its own session, so a kill takes whatever it started with it. With
the sandbox on, `runtime/sandbox_exec.py` starts it inside the sandbox a forked worker
gets (the pid here is then the sandbox's waiting parent, the runtime is PID 2 inside).
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from skylift.engine.instance import InvocationResult, exited, failed_result, timed_out
from skylift.errors import LoadError
from skylift.runtime import sandbox, sandbox_exec
from skylift.runtime.environ import (
    function_arn,
    host_environment,
    lambda_environment,
    new_log_stream,
    new_trace_id,
    offline_environment,
)
from skylift.runtime.faults import describe_exit
from skylift.runtimeapi.output import Output
from skylift.runtimeapi.server import Invocation, Job, Outcome, RuntimeApiServer
from skylift.spec import FunctionSpec

INIT_TIMEOUT = 10.0  # Lambda's limit on an on-demand instance's init phase


class RuntimeApiInstance:
    """A warm Runtime API process for one function; runs one invocation at a time.

    >>> instance = await RuntimeApiInstance.start(  # doctest: +SKIP
    ...     spec, [sys.executable, "-m", "awslambdaric", "app.handler"], spec.code_dir
    ... )
    >>> (await instance.invoke("id-1", b'{"x": 1}')).decoded()  # doctest: +SKIP
    """

    def __init__(
        self,
        spec: FunctionSpec,
        server: RuntimeApiServer,
        process: subprocess.Popen[bytes],
        output: Output,
        sandbox: dict[str, Any] | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.spec = spec
        self.pid = process.pid
        self.alive = True
        self.cold = True
        self.tenant: str | None = None  # the one tenant it serves (TenancyConfig PER_TENANT)
        self.spawned_at = self.last_used = time.monotonic()
        self._arn = function_arn(spec.name)
        self._server = server
        self._process = process
        self._output = output
        self._job: Job | None = None
        self._sandbox = sandbox
        self._exited: asyncio.Future[str] = loop.create_future()
        # A pidfd turns readable when the process ends: no SIGCHLD handler, no watcher
        # thread, and the same on uvloop as on asyncio's own loop.
        self._pidfd = os.pidfd_open(process.pid)
        loop.add_reader(self._pidfd, self._on_exit)

    @classmethod
    async def start(
        cls,
        spec: FunctionSpec,
        command: list[str],
        cwd: str,
        environment: Mapping[str, str] | None = None,
        sandbox: dict[str, Any] | None = None,
    ) -> RuntimeApiInstance:
        """Spawn `command` in `cwd` as a new instance of `spec`; its init runs meanwhile.

        Its environment is built, never inherited: the host's few pass-through variables,
        `environment` (local credentials and endpoints; by default ones that reach
        nothing), then Lambda's own. `sandbox`: the sandbox's settings (None: off).
        """
        server = await RuntimeApiServer.start()
        env = host_environment()
        env.update(offline_environment() if environment is None else environment)
        env.update(lambda_environment(spec, new_log_stream()))
        env["AWS_LAMBDA_RUNTIME_API"] = server.address
        read, write = os.pipe()
        try:
            process = subprocess.Popen(
                _sandboxed(command, cwd, spec, sandbox) if sandbox else command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=write,
                stderr=write,  # one pipe keeps stdout and stderr in the order written
                start_new_session=True,
            )
        except OSError as exc:
            server.close()
            os.close(read)
            raise LoadError(
                f"function {spec.name!r}: cannot start its runtime {command!r} in {cwd!r}: "
                f"{exc.strerror or exc}; check that the command exists and is executable"
            ) from None
        finally:
            os.close(write)
        return cls(spec, server, process, Output(read, asyncio.get_running_loop()), sandbox)

    async def invoke(
        self,
        request_id: str,
        event: bytes,
        *,
        client_context: dict[str, Any] | None = None,
        trace_id: str | None = None,
        cognito_identity: dict[str, Any] | None = None,
        on_output: Callable[[bytes], None] | None = None,
        tenant_id: str | None = None,
    ) -> InvocationResult:
        """Run one invocation; never raises for anything the function does.

        `on_output` is not called: a runtime's output is shown when the invocation ends.
        """
        assert self._job is None, "one invocation at a time"
        started = time.monotonic()
        cold, self.cold = self.cold, False
        invocation = Invocation(
            request_id=request_id,
            event=event,
            function_arn=self._arn,
            timeout=self.spec.timeout,
            trace_id=trace_id or new_trace_id(),
            client_context=_json(client_context),
            cognito_identity=_json(cognito_identity),
            tenant_id=tenant_id,
        )
        if self._exited.done() and self._server.init_error is None:
            return self._failed(request_id, started, exited(request_id, self._exited.result()))
        job = self._job = self._server.submit(invocation)
        try:
            return await self._follow(job, started, cold)
        except asyncio.CancelledError:
            # Our caller gave up, but the runtime is still busy with this invocation: it
            # must not serve another, or that one would get this one's answer.
            self.kill()
            self._server.abandon()
            raise
        finally:
            self._job = None
            self.last_used = time.monotonic()

    async def _follow(self, job: Job, started: float, cold: bool) -> InvocationResult:
        request_id = job.invocation.request_id
        timeout = self.spec.timeout
        # The runtime takes the invocation at its next `/next`: at once when warm, after
        # its init when cold.
        await _first(job.delivered, job.outcome, self._exited, timeout=INIT_TIMEOUT + timeout)
        if not job.delivered.done() and not job.outcome.done():
            if self._exited.done():
                return self._failed(request_id, started, exited(request_id, self._exited.result()))
            return self._failed(request_id, started, timed_out(request_id, timeout))
        if not job.outcome.done():
            remaining = job.delivered_at + timeout - time.monotonic()
            await _first(job.outcome, self._exited, timeout=remaining)
        # An answer counts even when the process died right after giving it.
        if job.outcome.done():
            return self._answered(job, job.outcome.result(), started, cold)
        if self._exited.done():
            return self._failed(request_id, started, exited(request_id, self._exited.result()))
        elapsed = time.monotonic() - job.delivered_at
        return self._failed(request_id, started, timed_out(request_id, elapsed))

    def _answered(self, job: Job, outcome: Outcome, started: float, cold: bool) -> InvocationResult:
        now = time.monotonic()
        ended = self._server.init_ended_at
        memory = 0 if self._exited.done() else _peak_rss_mb(self.pid)
        if self._sandbox:  # the pid is the sandbox's waiting parent: ask its cgroup
            memory = sandbox.peak_memory_mb(self._sandbox, self.pid) or memory
        if outcome.init_error:
            self.kill()  # Lambda discards a sandbox whose init failed
        return InvocationResult(
            request_id=job.invocation.request_id,
            payload=outcome.payload,
            error=None if outcome.error_type is None else "Unhandled",
            logs=self._output.take(),
            duration_ms=(now - (job.delivered_at or started)) * 1000,
            init_ms=(ended - self.spawned_at) * 1000 if cold and ended is not None else None,
            max_memory_mb=memory,
        )

    def _failed(self, request_id: str, started: float, payload: dict[str, Any]) -> InvocationResult:
        self.kill()
        logs = self._output.take()
        self.close()
        return failed_result(request_id, started, payload, logs)

    def _on_exit(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        # The process is a zombie until reaped, so its group id cannot have been reused:
        # take its children with it, as a sandbox's end would (they may hold the pipe).
        _kill_group(self.pid)
        returncode = self._process.wait()  # returns at once: the process has ended
        self.alive = False
        self._output.drain()
        self._exited.set_result(sandbox.ended(self._sandbox, self.pid, describe_exit(returncode)))

    async def wait(self) -> str:
        """Wait for the process to end; say how ("exit status 0", "signal: killed").

        After `close`, also wait until the Runtime API's connections are closed, so the
        loop can be closed next without finding a transport still open.
        """
        status = await asyncio.shield(self._exited)
        await self._server.wait_closed()
        return status

    def kill(self) -> None:
        """Kill the process and everything it started; `alive` is False from now on."""
        self.alive = False
        if not self._exited.done():
            _kill_group(self.pid)

    async def warm(self, timeout: float) -> None:
        """Nothing to wait for: its runtime asks for work when its init is done, and an
        invocation waits for that."""

    def close(self) -> None:
        """Stop the process and free the instance's resources. Idempotent."""
        self.kill()
        self._server.close()
        self._output.close()


def _sandboxed(
    command: list[str], cwd: str, spec: FunctionSpec, settings: dict[str, Any]
) -> list[str]:
    """`command`, started inside the sandbox by `runtime/sandbox_exec.py`. Its program is
    looked up here, so a missing one still fails the start (OSError) rather than the
    first invocation."""
    program = command[0]
    found = os.path.join(cwd, program) if os.sep in program else shutil.which(program) or program
    if not os.access(found, os.X_OK) or os.path.isdir(found):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    return [
        sys.executable,
        "-I",
        sandbox_exec.__file__,
        json.dumps(settings),
        str(spec.memory),
        str(spec.ephemeral_storage),
        "--",
        found,
        *command[1:],
    ]


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


async def _first(*futures: asyncio.Future[Any], timeout: float) -> None:
    await asyncio.wait(futures, timeout=max(timeout, 0), return_when=asyncio.FIRST_COMPLETED)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _peak_rss_mb(pid: int) -> int:
    # VmHWM: the process's peak resident set, what Lambda's "Max Memory Used" reports.
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0

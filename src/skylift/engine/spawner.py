"""Instances of a `spawn=True` function: a fresh interpreter each, not a fork.

A `Spawner` stands where a `Zygote` does for an `Instance` (`fork`, `kill`,
`exit_status`), so channels, timeouts, crashes and captured output work as for forked
workers. The process (`skylift.runtime.spawned`) imports the code itself; as with
`RuntimeApiInstance`, it runs in its own session (its pid is the process group a kill
takes down) and a pidfd tells when it ends. With the sandbox on, it enters the same
sandbox as a forked worker before it imports anything of the app.

The init phase (interpreter start, import, after-fork hooks) happens in `fork`, before
the first invocation is sent: as on Lambda, it does not count against the function's
timeout, and the first invocation's `init_ms` reports it.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import errno
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import orjson

from skylift.engine.zygote import Forked
from skylift.errors import LoadError
from skylift.runtime import sandbox
from skylift.runtime.environ import host_environment, offline_environment
from skylift.runtime.faults import describe_exit
from skylift.runtime.spawned import READY, SETUP_VARIABLE
from skylift.runtime.zygote import kill_group
from skylift.runtimeapi.instance import INIT_TIMEOUT
from skylift.spec import FunctionSpec

# Every spawned process not yet reaped. Module-wide, not per Spawner: a process whose
# event loop stopped before its exit was seen must never be collected unreaped (Popen
# would warn, and hand the pid to subprocess's own reaper behind our back).
_UNREAPED: dict[int, subprocess.Popen[bytes]] = {}


def _reap_left() -> None:
    """At the interpreter's exit, the spawned processes whose end no event loop saw (it
    stopped first: a closed instance's channel closes on the loop's next turn): each still
    running is killed with its group, as its server is gone, and each is reaped, so none
    outlives the server and none is left to Popen's finaliser."""
    for pid, process in list(_UNREAPED.items()):
        if pid not in _UNREAPED:  # a loop still running (in a thread) saw it end meanwhile
            continue
        # Not reaped yet (a zombie keeps its pid), so its group id is still its own: what
        # it started goes with it, as when a loop sees it end.
        kill_group(pid)
        try:
            process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            continue
        _UNREAPED.pop(pid, None)


atexit.register(_reap_left)


def load_setup(
    spec: FunctionSpec,
    zygote_setup: dict[str, Any] | None,
    environment: Mapping[str, str] | None = None,
    sandbox: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """How a spawned instance of `spec` loads its code: as its app's zygote does, or
    (a SAM function) by importing its handler module with its environment set first.
    `environment` is the platform's (credentials, endpoints), `sandbox` the settings of
    the sandbox it enters before its import: see `start_instance`."""
    env = dict(offline_environment() if environment is None else environment)
    if zygote_setup is not None and zygote_setup["mode"] == "app":
        keys = ("mode", "code_dir", "module", "attribute")
        setup = {**{key: zygote_setup.get(key) for key in keys}, "environment": env}
    else:
        setup = {"mode": "functions", "code_dir": spec.code_dir, "environment": env}
    return {**setup, "sandbox": sandbox}


def skylift_path() -> list[str]:
    """What another interpreter needs on its path to run skylift's instance side (which
    needs only the stdlib): the folder holding the `skylift` package, then skylift's
    site-packages, last, for pure-Python libraries such as boto3 that Lambda provides
    (compiled ones are built for skylift's Python, and fail to import: jsonlib falls back)."""
    import site

    import skylift

    own = os.path.dirname(os.path.dirname(os.path.abspath(skylift.__file__)))
    rest = [p for p in site.getsitepackages() if p != own]
    return [own, *rest]


class Spawner:
    """Starts fresh-interpreter workers for one function and learns how they exit.

    `start_instance` makes one per instance, so what it remembers goes with the instance.

    >>> spawner = Spawner(spec, load_setup(spec, None))  # doctest: +SKIP
    >>> instance = await Instance.start(spec, spawner)  # doctest: +SKIP
    """

    def __init__(self, spec: FunctionSpec, setup: dict[str, Any]) -> None:
        self.spec = spec
        self.setup = setup
        self._exits: dict[int, asyncio.Future[str]] = {}

    async def fork(self, function: str) -> Forked:
        """Start a worker for `function` and wait for the end of its init phase."""
        if function != self.spec.name:
            raise LoadError(f"this spawner starts {self.spec.name!r}, not {function!r}")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            log_fd = os.memfd_create(f"skylift-{function}", os.MFD_CLOEXEC)
        except OSError as exc:
            ours.close()
            theirs.close()
            raise LoadError(f"function {function!r}: cannot create its log: {exc}") from None
        setup = {**self.setup, "spec": self.spec.to_dict(), "spawned_at": time.monotonic()}
        code_dir = self.setup["code_dir"]
        fds = (theirs.fileno(), log_fd)  # CHANNEL_FD LOG_FD
        env = {**host_environment(), SETUP_VARIABLE: orjson.dumps(setup).decode()}
        if self.spec.interpreter is not None:  # another Python: it finds skylift here
            env["PYTHONPATH"] = os.pathsep.join(skylift_path())
        try:
            process = subprocess.Popen(
                [self.spec.interpreter or sys.executable, "-m", "skylift.runtime.spawned"]
                + [str(fd) for fd in fds],
                pass_fds=fds,
                # Built, not inherited: nothing of the shell's environment reaches it.
                env=env,
                cwd=code_dir,
                # From the interpreter's first byte: even a crash before the import is logged.
                # Under pdb (`--debug`) the terminal instead: the debugger talks there.
                stdin=None if self.spec.debug == "pdb" else subprocess.DEVNULL,
                stdout=None if self.spec.debug == "pdb" else log_fd,
                stderr=None if self.spec.debug == "pdb" else log_fd,
                start_new_session=True,
            )
        except OSError as exc:
            ours.close()
            os.close(log_fd)
            raise LoadError(
                f"function {function!r}: cannot start a new interpreter in {code_dir!r}: "
                f"{exc.strerror or exc}"
                + ("; check that the code directory exists" if exc.errno == errno.ENOENT else "")
            ) from None
        finally:
            theirs.close()
        forked = Forked(process.pid, ours, log_fd)
        try:
            self._watch(process)
            if not await self._init_phase(forked):
                forked = dataclasses.replace(forked, dead=True)
        except BaseException:  # the asker gave up: do not leak the worker
            self.kill(process.pid)
            ours.close()
            os.close(log_fd)
            raise
        return forked

    async def _init_phase(self, forked: Forked) -> bool:
        """Whether the worker finished its init phase (False: it died, or took too long
        and was killed)."""
        # Lambda allows 10 s, then retries the init within the invocation's own timeout.
        limit = INIT_TIMEOUT + self.spec.timeout
        forked.channel.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            return (
                await asyncio.wait_for(loop.sock_recv(forked.channel, len(READY)), limit) == READY
            )
        except TimeoutError:
            self.kill(forked.pid)
            note = f"[skylift] the init phase (importing your code) took over {limit:.0f} s\n"
            os.write(forked.log_fd, note.encode())
        except OSError:
            pass
        return False  # dead (read nothing): the first invocation reports how it ended

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        loop = asyncio.get_running_loop()
        _UNREAPED[process.pid] = process
        self._exits[process.pid] = loop.create_future()
        # A pidfd turns readable when the process ends: no SIGCHLD handler, no thread.
        pidfd = os.pidfd_open(process.pid)
        loop.add_reader(pidfd, self._on_exit, process, pidfd)

    def _on_exit(self, process: subprocess.Popen[bytes], pidfd: int) -> None:
        asyncio.get_running_loop().remove_reader(pidfd)
        os.close(pidfd)
        # Not reaped yet, so its group id cannot have been reused: take its children with
        # it, as a sandbox's end would.
        kill_group(process.pid)
        status = describe_exit(process.wait())  # at once: the process has ended
        status = sandbox.ended(self.setup.get("sandbox"), process.pid, status)
        _UNREAPED.pop(process.pid, None)  # (or `_reap_left`, at exit, took it first)
        exited = self._exits[process.pid]
        if not exited.done():
            exited.set_result(status)

    def kill(self, pid: int) -> None:
        """Kill worker `pid` and everything it started, unless it was already reaped."""
        if pid in _UNREAPED:  # a reaped pid may since belong to another process
            kill_group(pid)

    async def exit_status(self, pid: int, timeout: float = 1.0) -> str | None:
        """How worker `pid` ended ("exit status 1", "signal: killed"), once reaped."""
        exited = self._exits.get(pid)
        if exited is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(exited), timeout)
        except TimeoutError:
            return None

"""An instance's sandbox, entered by a process that no zygote forked: a spawned instance
(`spawned.py`) or a Runtime API command (`sandbox_exec.py`). A zygote's workers are
forked straight into namespaces of their own instead (`sandbox_fork`).

The process W calls `enter`. W joins the instance's cgroups (`sandbox_cgroups`: the
supervisor made a folder for the server; W makes its own below it), then unshares a
user, PID and IPC namespace and starts two processes: first the namespace's PID 1, which
only reaps orphans (`sandbox_init`: a clone sharing W's memory), then, by fork, H, the
process that serves invocations (PID 2), which takes a mount namespace of its own. H sees
only its namespace's processes in `/proc`, cannot name (so cannot signal) any process
outside, and when the instance ends the kernel kills everything it started, whatever
`setsid` or double fork it did. In H's mount namespace the whole file system is
read-only, `/tmp` is a tmpfs of the function's EphemeralStorage size, `/proc` is its own,
and the server's state and the host's secrets are hidden (`sandbox_mounts`). W only
waits for H, ends the namespace, and exits as H did, so the supervisor's reaping and
killing work unchanged (killing W's process group kills all three; killing W alone kills
H by its parent-death signal).

Settings come from the supervisor (`engine/sandboxing.py`).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from skylift.runtime import sandbox_cgroups, sandbox_init

# Read by the zygote and the supervisor through this module.
from skylift.runtime.sandbox_cgroups import oom_killed as oom_killed
from skylift.runtime.sandbox_cgroups import peak_memory_mb as peak_memory_mb
from skylift.runtime.sandbox_cgroups import release as release
from skylift.runtime.sandbox_mounts import (
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    PR_SET_DUMPABLE,
    PR_SET_PDEATHSIG,
    instance_mounts,
    lock,
    mount,
    namespaces,
    own_mounts,
    prctl,
    probe_in_child,
    set_read_only,
    tmpfs_tmp,
)

OOM_SUFFIX = " (out of memory)"  # added to an exit status when the cgroup's OOM killer struck


def enter(settings: dict[str, Any] | None, memory_mb: int, keep: list[int], tmp_mb: int) -> None:
    """Make this new worker a sandboxed instance; returns in H, never in W.

    `keep` are the fds H needs and W must let go (its channel and log), so that when H
    ends the supervisor sees the channel close. `tmp_mb` is the size of its /tmp.
    """
    if not settings:
        return
    sandbox_cgroups.join(settings, os.getpid(), memory_mb)
    if not settings.get("namespaces"):
        return
    namespaces(os.getuid(), os.getgid())
    alive_r, alive_w = os.pipe()
    init = sandbox_init.start()
    child = os.fork()
    if child:
        _wait_as_parent(child, init, alive_r, keep)
    os.close(alive_w)
    prctl(PR_SET_DUMPABLE, 1, "prctl dumpable")  # W is not (it shares PID 1's memory)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL, "prctl pdeathsig")
    os.set_blocking(alive_r, False)
    try:
        if os.read(alive_r, 1) == b"":  # W already died: never serve orphaned
            os._exit(1)
    except BlockingIOError:
        pass
    os.close(alive_r)
    own_mounts()
    instance_mounts(settings, tmp_mb)
    lock()


def probe() -> str | None:
    """Whether namespaces work here: None if they do, else why not (in a forked child,
    before any user code is imported)."""

    def setup() -> tuple[Callable[[], int], Callable[[int], None]]:
        namespaces(os.getuid(), os.getgid())
        init = sandbox_init.start()
        return os.fork, lambda child: os.kill(init, signal.SIGKILL)

    def inside() -> None:
        own_mounts()
        set_read_only("/", True, recursive=True)
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        tmpfs_tmp(1)
        lock()

    return probe_in_child(setup, inside)


def _wait_as_parent(child: int, init: int, alive_r: int, keep: list[int]) -> None:
    """W's whole life after the forks: wait for H, end the namespace, end as H ended."""
    os.close(alive_r)
    for fd in keep:
        os.close(fd)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    status = _wait(child)
    # What H started ends with PID 1; waiting for PID 1 waits for all of it to be gone.
    try:
        os.kill(init, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _wait(init)
    if status is None:
        os._exit(1)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those two have no handler to reset
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status))


def _wait(pid: int) -> int | None:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return None
        except InterruptedError:
            continue


def ended(settings: dict[str, Any] | None, pid: int, status: str) -> str:
    """For a sandboxed process the supervisor started itself (spawned, Runtime API) and
    has just reaped: its exit status, marked when its memory limit killed it; what it
    started dies, and its cgroup folders go."""
    if not settings:
        return status
    if status == "signal: killed" and oom_killed(settings, pid):
        status += OOM_SUFFIX
    sandbox_cgroups.kill(settings, pid)
    release(settings, pid)
    return status

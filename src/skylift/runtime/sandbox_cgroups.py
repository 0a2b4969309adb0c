"""An instance's cgroups: joined by a new worker, read and ended by its zygote.

The supervisor (`engine/cgroup_host.py`) finds what the host offers and makes a folder
for the server in each hierarchy; the settings name them:

- "cgroup2": the server's folder in the cgroup2 hierarchy. Each instance gets a group
  below it (`instance-PID`, PID being the worker the zygote forked), which the kernel
  keeps every descendant in, whatever `setsid` or double fork it did: writing
  `cgroup.kill` ends them all. It needs no controller, so it serves on a hybrid host
  (v1 controllers beside a cgroup2 mount) and with `--sandbox off` too.
- "cgroup2_limits": the controllers enabled for those groups ("memory", "pids") on a
  pure v2 host or a delegated subtree: `memory.max`, `memory.swap.max`, `pids.max`;
  `memory.peak` is "Max Memory Used", `memory.events`'s `oom_kill` an OutOfMemory.
- "memory_cgroup", "pids_cgroup": folders in cgroup v1's memory and pids hierarchies,
  for the limits where v2 has no controllers (`memory.limit_in_bytes`, `pids.max`).
- "rlimit_memory": no memory cgroup at all; RLIMIT_AS stands in (see `join`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import select
import signal
from typing import Any

MIB = 1024 * 1024
# Lambda caps an execution environment at 1,024 processes and threads.
MAX_PIDS = 1024


def folder(base: str, pid: int) -> str:
    return os.path.join(base, f"instance-{pid}")


def join(settings: dict[str, Any], pid: int, memory_mb: int, init: int | None = None) -> None:
    """Put worker `pid` (this process, wherever its PID namespace) in its instance's
    cgroups, with its limits; and `init` (its namespace's PID 1, as this process names
    it) in those that end an instance (cgroup2's group, v1's pids), not in its memory
    cgroup: its few pages were counted where it started."""
    if settings.get("rlimit_memory"):
        # Address space, not resident memory: what the worker maps at fork, plus MemorySize.
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = mapped + memory_mb * MIB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    limit_bytes = memory_mb * MIB
    limits = settings.get("cgroup2_limits") or ()
    # "0" is the writing process in any PID namespace.
    members = ["0"] if init is None else ["0", str(init)]
    if (base := settings.get("cgroup2")) and not limits:
        # Only to end the instance: without it (a cgroup.max.descendants reached, say)
        # the instance still serves, ended by its process group or PID namespace.
        with contextlib.suppress(OSError):
            group = _new(base, pid)
            for member in members:
                _write(group, "cgroup.procs", member)
    elif base:
        group = _new(base, pid)
        if "memory" in limits:
            _write(group, "memory.max", limit_bytes)
            _write(group, "memory.swap.max", 0, optional=True)  # no swapping past it
            _write(group, "memory.oom.group", 1, optional=True)  # the OOM kill takes all
        if "pids" in limits:
            _write(group, "pids.max", MAX_PIDS)
        for member in members:
            _write(group, "cgroup.procs", member)
    if base := settings.get("memory_cgroup"):
        group = _new(base, pid)
        _write(group, "memory.limit_in_bytes", limit_bytes)
        _write(group, "memory.memsw.limit_in_bytes", limit_bytes, optional=True)
        _write(group, "cgroup.procs", "0")
    if base := settings.get("pids_cgroup"):
        group = _new(base, pid)
        _write(group, "pids.max", MAX_PIDS)
        for member in members:
            _write(group, "cgroup.procs", member)


def oom_killed(settings: dict[str, Any], pid: int) -> bool:
    """Whether the memory limit of worker `pid`'s instance was hit and the OOM killer struck."""
    if "memory" in (settings.get("cgroup2_limits") or ()):
        return _field(folder(settings["cgroup2"], pid), "memory.events", "oom_kill") > 0
    if base := settings.get("memory_cgroup"):
        group = folder(base, pid)
        if _field(group, "memory.oom_control", "oom_kill") > 0:
            return True
        return _read_int(group, "memory.failcnt") > 0  # kernels without the oom_kill count
    return False


def peak_memory_mb(settings: dict[str, Any] | None, pid: int) -> int | None:
    """The peak memory of worker `pid`'s instance by its memory cgroup (None without
    one): what Lambda's "Max Memory Used" reports."""
    if not settings:
        return None
    if "memory" in (settings.get("cgroup2_limits") or ()):
        peak = _read_int(folder(settings["cgroup2"], pid), "memory.peak")  # Linux 5.19+
    elif base := settings.get("memory_cgroup"):
        peak = _read_int(folder(base, pid), "memory.max_usage_in_bytes")
    else:
        return None
    return peak // MIB if peak >= 0 else None


def kill(settings: dict[str, Any], pid: int) -> None:
    """End every process worker `pid`'s instance started, wherever it went: by the cgroup2
    group's `cgroup.kill`, else by what its v1 pids group holds. Without waiting for them
    to be gone (the caller serves on): `release` fails until they are."""
    if base := settings.get("cgroup2"):
        kill_group(folder(base, pid), wait=0)
    elif base := settings.get("pids_cgroup"):
        kill_v1(folder(base, pid))


def release(settings: dict[str, Any], pid: int) -> bool:
    """Remove worker `pid`'s cgroup folders; False to retry later (a folder stays busy
    until the last process of the instance is gone)."""
    done = True
    for key in ("cgroup2", "memory_cgroup", "pids_cgroup"):
        if base := settings.get(key):
            try:
                os.rmdir(folder(base, pid))
            except FileNotFoundError:
                pass
            except OSError:
                done = False
    return done


def kill_group(group: str, wait: float = 0.1) -> bool:
    """Kill everything in cgroup2 group `group` and below (Linux 5.14+'s `cgroup.kill`;
    before it, each process it lists), waiting up to `wait` seconds (0: not) for it to empty.
    True when it is empty."""
    if not os.path.isdir(group):
        return True
    if os.path.exists(os.path.join(group, "cgroup.kill")):
        try:
            _write(group, "cgroup.kill", 1)
        except OSError:
            return True  # a group we may not kill holds none of ours
    else:  # before 5.14 (a write to a missing cgroupfs file fails with EACCES, not ENOENT)
        for _ in range(3):  # a process forking meanwhile lands in the group: again
            _kill_listed(group, recursive=True)
    return _wait_empty(group, wait)


def kill_v1(group: str) -> None:
    """Kill what a v1 group holds. There is no atomic kill in v1: a process forking at that
    moment lands in the group after the listing, so list again until it is empty."""
    for _ in range(10):
        if not _kill_listed(group, recursive=False):
            return


def _kill_listed(group: str, recursive: bool) -> int:
    killed = 0
    for path, _, _ in os.walk(group) if recursive else [(group, [], [])]:
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                pids = [int(line) for line in f if line.strip()]
        except OSError:
            continue
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


def _wait_empty(group: str, timeout: float) -> bool:
    """Wait until `cgroup.events` says "populated 0" (the kernel signals each change to it
    as POLLPRI), at most `timeout` seconds."""
    try:
        fd = os.open(os.path.join(group, "cgroup.events"), os.O_RDONLY)
    except OSError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLPRI)
        for _ in range(20):
            try:
                os.lseek(fd, 0, os.SEEK_SET)
                events = os.read(fd, 4096)
            except OSError as exc:  # ENODEV: the group was removed meanwhile, so it is empty
                if exc.errno in (errno.ENODEV, errno.ENOENT):
                    return True
                raise
            if b"populated 0" in events:
                return True
            if not poller.poll(timeout * 1000):
                return False
        return False
    finally:
        os.close(fd)


def _new(base: str, pid: int) -> str:
    group = folder(base, pid)
    os.mkdir(group)
    return group


def _write(group: str, name: str, value: int | str, optional: bool = False) -> None:
    try:
        with open(os.path.join(group, name), "w") as f:
            f.write(str(value))
    except OSError:
        if not optional:
            raise


def _read_int(group: str, name: str) -> int:
    try:
        with open(os.path.join(group, name)) as f:
            return int(f.read())
    except (OSError, ValueError):
        return -1


def _field(group: str, name: str, key: str) -> int:
    """A counter from a flat keyed file such as `memory.events` ("oom_kill 1")."""
    try:
        with open(os.path.join(group, name)) as f:
            for line in f:
                if line.startswith(key + " "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return -1

"""An instance's sandbox, entered by a new worker before any of its user code runs.

A forked worker W calls `enter`. W joins the instance's memory and pids cgroups (the
supervisor made a folder for the server; W makes its own below it), then unshares a
user, PID and IPC namespace and forks H, the process that serves invocations, which
takes a mount namespace of its own. H is PID 1 of its namespace: it sees only its own
processes in `/proc`, cannot name (so cannot signal) any process outside, and when it
dies the kernel kills everything it started, whatever `setsid` or double fork it did.
In H's mount namespace the whole file system is read-only, `/tmp` is a private folder,
`/proc` is its own, and the server's state and the host's secrets are hidden. W only
waits for H, cleans up, and exits as H did, so the zygote's reaping and killing work
unchanged (killing W kills H: parent-death signal).

Settings come from the supervisor (`engine/sandboxing.py`) in the zygote's setup.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
SYS_MOUNT_SETATTR = 442  # x86_64 and aarch64 share it
MOUNT_ATTR_RDONLY = 0x1
AT_RECURSIVE = 0x8000
AT_FDCWD = -100
MIB = 1024 * 1024
# Lambda caps an execution environment at 1,024 processes and threads.
MAX_PIDS = 1024
OOM_SUFFIX = " (out of memory)"  # added to an exit status when the cgroup's OOM killer struck

_libc = ctypes.CDLL(None, use_errno=True)


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def cgroup_folder(base: str, pid: int) -> str:
    return os.path.join(base, f"instance-{pid}")


def enter(settings: dict[str, Any] | None, memory_mb: int, keep: list[int]) -> None:
    """Make this new worker a sandboxed instance; returns in H, never in W.

    `keep` are the fds H needs and W must let go (its channel and log), so that when H
    ends the supervisor sees the channel close.
    """
    if not settings:
        return
    pid = os.getpid()
    _join_cgroups(settings, pid, memory_mb)
    if not settings.get("namespaces"):
        return
    tmp = os.path.join(settings["tmp_root"], str(pid))
    os.mkdir(tmp, 0o1777)
    os.chmod(tmp, 0o1777)
    _namespaces(os.getuid(), os.getgid())
    alive_r, alive_w = os.pipe()
    child = os.fork()
    if child:
        _wait_as_parent(child, alive_r, keep, tmp)
    os.close(alive_w)
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
    os.set_blocking(alive_r, False)
    try:
        if os.read(alive_r, 1) == b"":  # W already died: never serve orphaned
            os._exit(1)
    except BlockingIOError:
        pass
    os.close(alive_r)
    _check(_libc.unshare(CLONE_NEWNS), "unshare mount namespace")
    _mounts(settings, tmp)
    _lock()


def probe() -> str | None:
    """Whether namespaces work here: None if they do, else why not (in a forked child,
    before any user code is imported)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            _namespaces(os.getuid(), os.getgid())
            child = os.fork()
            if child == 0:
                try:
                    _check(_libc.unshare(CLONE_NEWNS), "unshare mount namespace")
                    _mount(None, "/", None, MS_REC | MS_PRIVATE)
                    _read_only_root()
                    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                    _lock()
                except OSError as exc:
                    os.write(write, str(exc).encode())
                    os._exit(1)
                os._exit(0)
            _, status = os.waitpid(child, 0)
            os._exit(os.waitstatus_to_exitcode(status))
        except OSError as exc:
            os.write(write, str(exc).encode())
            os._exit(1)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as f:
        reason = f.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) == 0:
        return None
    return reason or "the namespace probe failed"


def _namespaces(uid: int, gid: int) -> None:
    # W joins the user, PID and IPC namespaces; H takes a mount namespace of its own, so
    # W still sees the host's folders to clean up after it.
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWIPC), "unshare")
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")


def _join_cgroups(settings: dict[str, Any], pid: int, memory_mb: int) -> None:
    if settings.get("rlimit_memory"):
        # Address space, not resident memory: what the worker maps at fork, plus MemorySize.
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = mapped + memory_mb * MIB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    memory = settings.get("memory_cgroup")
    if memory:
        folder = cgroup_folder(memory, pid)
        os.mkdir(folder)
        _write(os.path.join(folder, "memory.limit_in_bytes"), memory_mb * MIB)
        try:  # memory plus swap too, where swap accounting is on: no swapping past it
            _write(os.path.join(folder, "memory.memsw.limit_in_bytes"), memory_mb * MIB)
        except OSError:
            pass
        _write(os.path.join(folder, "cgroup.procs"), pid)
    pids = settings.get("pids_cgroup")
    if pids:
        folder = cgroup_folder(pids, pid)
        os.mkdir(folder)
        _write(os.path.join(folder, "pids.max"), MAX_PIDS)
        _write(os.path.join(folder, "cgroup.procs"), pid)


def _write(path: str, value: int) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _wait_as_parent(child: int, alive_r: int, keep: list[int], tmp: str) -> None:
    """W's whole life after the fork: wait for H, clean up, end as H ended."""
    os.close(alive_r)
    for fd in keep:
        os.close(fd)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
    shutil.rmtree(tmp, ignore_errors=True)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those two have no handler to reset
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status))


def _mounts(settings: dict[str, Any], tmp: str) -> None:
    # Nothing done here may reach the host's mount table.
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # Code folders under /tmp must stay visible once /tmp is the instance's own.
    under_tmp = list(settings.get("under_tmp", ()))
    handles = {d: os.open(d, os.O_PATH | os.O_DIRECTORY) for d in under_tmp}
    _read_only_root()
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mount(tmp, "/tmp", None, MS_BIND)
    _set_read_only("/tmp", False, recursive=False)  # the bind copied the root's read-only
    for folder, fd in handles.items():
        os.makedirs(folder, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", folder, None, MS_BIND | MS_REC)
        _set_read_only(folder, True, recursive=True)
        os.close(fd)
    for path in settings.get("hide", ()):
        _hide(path)


def become_subreaper() -> None:
    """Orphans of this process's descendants become its children (see `kill_orphans`)."""
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def kill_orphans(workers: set[int]) -> None:
    """Kill this process's children that are not `workers`: a sandboxed instance whose
    waiting parent died came here (we are its subreaper). As our unreaped children, their
    pids cannot have been reused. Killing one (PID 1 of its namespace) ends all it started.
    """
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            found = [int(pid) for pid in f.read().split()]
    except OSError:
        return
    for pid in found:
        if pid not in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _lock() -> None:
    """Make the mounts just set up permanent for the handler.

    The process that made them holds every capability in the user namespace that owns
    its mount namespace, so it could unmount or remount them (and reach `.skylift/`, the
    host's /proc or the cgroup files). Entering a new user and mount namespace locks every
    mount it inherits: from here on they cannot be unmounted, made writable or moved.
    No new privileges either: a setuid program cannot gain any.
    """
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare (lock the mounts)")
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl no_new_privs")


def _read_only_root() -> None:
    """Every mount read-only at once (mount_setattr, Linux 5.12+), as Lambda's root is."""
    _set_read_only("/", True, recursive=True)


def _set_read_only(path: str, read_only: bool, *, recursive: bool) -> None:
    flag = MOUNT_ATTR_RDONLY
    attr = _MountAttr(flag if read_only else 0, 0 if read_only else flag, 0, 0)
    _check(
        _libc.syscall(
            SYS_MOUNT_SETATTR,
            AT_FDCWD,
            path.encode(),
            AT_RECURSIVE if recursive else 0,
            ctypes.byref(attr),
            ctypes.sizeof(attr),
        ),
        f"mount_setattr {path}",
    )


def oom_killed(settings: dict[str, Any], pid: int) -> bool:
    """Whether the memory cgroup of worker `pid` hit its limit and its OOM killer struck."""
    memory = settings.get("memory_cgroup")
    if not memory:
        return False
    folder = cgroup_folder(memory, pid)
    try:
        with open(os.path.join(folder, "memory.oom_control")) as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1]) > 0
        with open(os.path.join(folder, "memory.failcnt")) as f:
            return int(f.read()) > 0
    except (OSError, ValueError):
        return False
    return False


def release(settings: dict[str, Any], pid: int) -> bool:
    """Remove what worker `pid` left (its /tmp, its cgroup folders); False to retry later
    (a cgroup folder stays busy until the last process of the instance is gone)."""
    if settings.get("tmp_root"):
        shutil.rmtree(os.path.join(settings["tmp_root"], str(pid)), ignore_errors=True)
    done = True
    for key in ("memory_cgroup", "pids_cgroup"):
        base = settings.get(key)
        if base:
            try:
                os.rmdir(cgroup_folder(base, pid))
            except FileNotFoundError:
                pass
            except OSError:
                done = False
    return done


def _hide(path: str) -> None:
    try:
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=000")
        elif os.path.exists(path):
            _mount(os.devnull, path, None, MS_BIND)
    except OSError as exc:  # say so in the function's log; never serve with it visible
        print(f"[skylift] cannot hide {path} in the sandbox: {exc}", file=sys.stderr)
        os._exit(1)

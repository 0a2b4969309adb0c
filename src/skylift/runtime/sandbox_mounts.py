"""What an instance sees of the system: its namespaces, its mounts, and their lock.

The system calls behind `skylift.runtime.sandbox`, by ctypes (the stdlib has no
`unshare` before 3.12, no `mount` and no `mount_setattr`).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
SYS_MOUNT_SETATTR = 442  # x86_64 and aarch64 share it
MOUNT_ATTR_RDONLY = 0x1
AT_RECURSIVE = 0x8000
AT_FDCWD = -100

libc = ctypes.CDLL(None, use_errno=True)


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def prctl(option: int, value: int, what: str) -> None:
    check(libc.prctl(option, value, 0, 0, 0), what)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    check(
        libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def namespaces(uid: int, gid: int) -> None:
    """New user, PID and IPC namespaces for this process's children (the caller, W,
    stays in the host's PID and mount namespaces to clean up after them)."""
    check(libc.unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWIPC), "unshare")
    map_ids(uid, gid)


def own_mounts() -> None:
    """A mount namespace of our own; nothing done in it reaches the host's mount table."""
    check(libc.unshare(CLONE_NEWNS), "unshare mount namespace")
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def tmpfs_tmp(size_mb: int) -> None:
    """/tmp: a file system of its own, `size_mb` big (a write past it: ENOSPC), gone
    with the mount namespace, so with the instance."""
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size_mb}m,mode=1777")


def instance_mounts(settings: dict[str, Any], tmp_mb: int) -> None:
    """The serving process's view: everything read-only, its own /proc and /tmp, the
    server's state and the host's secrets hidden. Call after `own_mounts`."""
    # Code folders under /tmp must stay visible once /tmp is the instance's own.
    handles = {d: os.open(d, os.O_PATH | os.O_DIRECTORY) for d in settings.get("under_tmp", ())}
    set_read_only("/", True, recursive=True)  # every mount at once, as Lambda's root is
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    tmpfs_tmp(tmp_mb)
    for folder, fd in handles.items():
        os.makedirs(folder, exist_ok=True)
        mount(f"/proc/self/fd/{fd}", folder, None, MS_BIND | MS_REC)
        set_read_only(folder, True, recursive=True)
        os.close(fd)
    for path in settings.get("hide", ()):
        _hide(path)


def lock() -> None:
    """Make the mounts just set up permanent for the handler.

    The process that made them holds every capability in the user namespace that owns
    its mount namespace, so it could unmount or remount them (and reach `.skylift/`, the
    host's /proc or the cgroup files). Entering a new user and mount namespace locks every
    mount it inherits: from here on they cannot be unmounted, made writable or moved.
    No new privileges either: a setuid program cannot gain any.
    """
    uid, gid = os.getuid(), os.getgid()
    check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare (lock the mounts)")
    map_ids(uid, gid)
    prctl(PR_SET_NO_NEW_PRIVS, 1, "prctl no_new_privs")


def map_ids(uid: int, gid: int) -> None:
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")


def set_read_only(path: str, read_only: bool, *, recursive: bool) -> None:
    """mount_setattr (Linux 5.12+): one call for a whole tree of mounts."""
    flag = MOUNT_ATTR_RDONLY
    attr = _MountAttr(flag if read_only else 0, 0 if read_only else flag, 0, 0)
    check(
        libc.syscall(
            SYS_MOUNT_SETATTR,
            AT_FDCWD,
            path.encode(),
            AT_RECURSIVE if recursive else 0,
            ctypes.byref(attr),
            ctypes.sizeof(attr),
        ),
        f"mount_setattr {path}",
    )


def _hide(path: str) -> None:
    try:
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=000")
        elif os.path.exists(path):
            mount(os.devnull, path, None, MS_BIND)
    except OSError as exc:  # say so in the function's log; never serve with it visible
        print(f"[skylift] cannot hide {path} in the sandbox: {exc}", file=sys.stderr)
        os._exit(1)


def probe_in_child(
    setup: Callable[[], tuple[Callable[[], int], Callable[[int], None]]],
    inside: Callable[[], None],
) -> str | None:
    """Whether a sandbox's way works here, tried in a forked child before any user code:
    None if it does, else why not. The child runs `setup` (its outer namespaces), which
    returns how to fork an instance and how to end one; the instance runs `inside`."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            fork, end = setup()
            child = fork()
            if child == 0:
                try:
                    inside()
                except OSError as exc:
                    os.write(write, str(exc).encode())
                    os._exit(1)
                os._exit(0)
            _, status = os.waitpid(child, 0)
            end(child)
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

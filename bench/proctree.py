"""A server's process tree read from /proc: its CPU time and memory, and stopping it.

Every server is started in a session of its own (`start_new_session=True`), so the tree
is the leader's descendants plus whatever else is in its session (a worker that
double-forked is still counted), and stopping it is one signal to the process group.
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import subprocess
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    return text[text.rindex(")") + 2 :].split()


def tree(root: int, session: bool = True) -> list[int]:
    """`root`, its live descendants, and (`session`) the other processes of its session."""
    parents: dict[int, int] = {}
    sessions: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := stat_fields(int(entry))) is not None:
            parents[int(entry)] = int(fields[1])
            sessions[int(entry)] = int(fields[3])
    found = {root} if root in parents else set()
    leader = sessions.get(root) if session else None
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if pid not in found and (parent in found or sessions[pid] == leader):
                found.add(pid)
                changed = True
    return sorted(found)


def cpu_seconds(root: int, session: bool = True) -> float:
    """User + system CPU of the tree, including children it has already reaped.
    `session=False`: descendants only (a process started in its caller's session)."""
    total = 0
    for pid in tree(root, session):
        fields = stat_fields(pid)
        if fields is not None:
            # utime, stime, cutime, cstime: fields 14-17 of stat, 11-14 after the name.
            total += sum(int(f) for f in fields[11:15])
    return total / TICKS


def process_cpu(pid: int) -> float:
    """User + system CPU of one process (all its threads), not its children."""
    fields = stat_fields(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / TICKS


def pss_bytes(root: int) -> int:
    """Proportional set size of the tree: shared pages split among their sharers.

    Processes that share one address space (`clone(CLONE_VM)` without a thread group,
    as a sandboxed instance's PID 1 shares its parent's) each report that space's
    whole PSS: it is counted once.
    """
    total = 0
    seen: dict[int, list[int]] = {}  # RSS in KiB: the pids counted with that RSS
    for pid in tree(root):
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        fields = {ln.split(":")[0]: ln.split()[1] for ln in lines if ln.endswith(" kB")}
        rss = int(fields.get("Rss", 0))
        if any(same_memory(pid, other) for other in seen.get(rss, [])):
            continue
        seen.setdefault(rss, []).append(pid)
        total += int(fields.get("Pss", 0)) * 1024
    return total


_KCMP, _KCMP_VM = 312, 1  # x86-64's kcmp system call; compare address spaces
_libc = ctypes.CDLL(None, use_errno=True)


def same_memory(a: int, b: int) -> bool:
    """Whether processes `a` and `b` share one address space (False where unknown)."""
    if platform.machine() != "x86_64":
        return False
    return bool(_libc.syscall(_KCMP, a, b, _KCMP_VM, 0, 0) == 0)


def alive(pids: list[int]) -> list[int]:
    """Those of `pids` still running (not gone, not zombies)."""
    return [pid for pid in pids if (fields := stat_fields(pid)) is not None and fields[0] != "Z"]


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> list[int]:
    """SIGTERM to the server's process group, then SIGKILL to whatever is left.

    Returns the processes of its tree still running after that (none, unless one
    cannot be killed).
    """
    pids = tree(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc.poll() is None:
        proc.wait()
    # Processes that left the group (a new session of their own) but were in the tree.
    deadline = time.monotonic() + grace
    for pid in pids:
        while (fields := stat_fields(pid)) is not None and fields[0] != "Z":
            if time.monotonic() > deadline:
                break
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.01)
    return alive(pids)

"""The supervisor's side of the instance sandbox: what the host offers, and the settings
every zygote passes to the workers it forks (`skylift.runtime.sandbox` enters them).

- Namespaces (user, PID, mount, IPC): each zygote probes them before importing user code
  and reports whether they work; the first report is said once at start.
- Memory and process limits: cgroup v1's memory and pids controllers when the server may
  create folders in its own cgroups (root on most Linux hosts and VMs); otherwise
  `RLIMIT_AS` (address space, not resident memory: the limit is the worker's address
  space at fork plus the function's MemorySize, so large mappings fail sooner than RSS).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

# Secrets a handler has no business reading, hidden when they exist (under HOME).
HOME_SECRETS = (
    ".aws",
    ".ssh",
    ".gnupg",
    ".config",
    ".docker",
    ".kube",
    ".netrc",
    ".pypirc",
    ".git-credentials",
)
HOST_SECRETS = ("/etc/shadow", "/etc/gshadow")


class Sandbox:
    """Per-server sandbox settings, and their cleanup when the server stops."""

    def __init__(self, enabled: bool, state_dir: Path, code_dirs: list[str]) -> None:
        self.enabled = enabled
        self.memory_cgroup: str | None = None
        self.pids_cgroup: str | None = None
        self.hide: list[str] = []
        self.code_dirs = [str(Path(d).resolve()) for d in code_dirs]
        # What must stay visible once /tmp is the instance's own: code, Python, skylift.
        self.under_tmp = kept_under_tmp(self.code_dirs)
        if not enabled:
            return
        tag = f"skylift-{os.getpid()}"
        sweep_stale()
        self.memory_cgroup = _make_cgroup("memory", tag)
        self.pids_cgroup = _make_cgroup("pids", tag)
        self.hide = hidden_paths(state_dir, code_dirs)

    def settings(self) -> dict[str, Any] | None:
        """What workers need to enter the sandbox (None: sandbox off)."""
        if not self.enabled:
            return None
        return {
            "namespaces": True,
            "memory_cgroup": self.memory_cgroup,
            "pids_cgroup": self.pids_cgroup,
            "rlimit_memory": self.memory_cgroup is None,
            "hide": self.hide,
            "under_tmp": self.under_tmp,
        }

    def describe(self, namespaces: bool | None) -> str:
        """One line for the server's log: what is in force."""
        if not self.enabled:
            return "sandbox off (--sandbox off): instances share the host's view and limits"
        parts = []
        if namespaces is False:
            parts.append("namespaces unavailable here (instances see the host's processes)")
        elif namespaces:
            parts.append("own PID/mount/IPC namespaces, read-only files, private size-limited /tmp")
        else:  # no zygote probed them: each spawned or Runtime API instance does
            parts.append("namespaces where each instance finds them (it says so in its log)")
        parts.append(
            "memory limit by cgroup v1"
            if self.memory_cgroup
            else "memory limit by RLIMIT_AS (address space)"
        )
        return "sandbox: " + ", ".join(parts)

    def close(self) -> None:
        for base in (self.memory_cgroup, self.pids_cgroup):
            if base:
                remove_cgroup(base)


def sweep_stale() -> None:
    """Remove what servers killed before their cleanup left: their cgroup folders (and
    the /tmp folders of versions before /tmp was a tmpfs), named after a pid that no
    longer runs."""
    found = [
        (entry.path, entry.name)
        for entry in os.scandir(tempfile.gettempdir())
        if entry.name.startswith("skylift-") and "-tmp-" in entry.name
    ]
    for controller in ("memory", "pids"):
        mount, own = _v1_mount(controller), _own_cgroup(controller)
        if mount and own:
            parent = os.path.join(mount, own.lstrip("/"))
            with contextlib.suppress(OSError):
                found += [
                    (e.path, e.name) for e in os.scandir(parent) if e.name.startswith("skylift-")
                ]
    for path, name in found:
        pid = name.split("-")[1]
        if pid.isdigit() and not _running(int(pid)):
            if "-tmp-" in name:
                shutil.rmtree(path, ignore_errors=True)
            else:
                remove_cgroup(path)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kept_under_tmp(code_dirs: list[str]) -> list[str]:
    """The folders under /tmp an instance needs (its code, the Python installation and
    import path, skylift itself), outermost only: bound read-only into its own /tmp."""
    import skylift

    tmp = Path("/tmp").resolve()
    candidates = [
        *code_dirs,
        sys.prefix,
        sys.base_prefix,
        str(Path(skylift.__file__).parent.parent),
        *(p for p in sys.path if p),
    ]
    found: set[Path] = set()
    for candidate in candidates:
        path = Path(candidate).resolve()
        if tmp in path.parents and path.is_dir():
            found.add(path)
    outermost = [p for p in found if not any(q in p.parents for q in found)]
    return sorted(str(p) for p in outermost)


def hidden_paths(state_dir: Path, code_dirs: list[str]) -> list[str]:
    """The server's state and the host's usual secrets, except what holds code or Python."""
    home = os.path.expanduser("~")
    paths = [str(state_dir.resolve()), *HOST_SECRETS]
    if home not in ("", "/"):
        paths.extend(os.path.join(home, name) for name in HOME_SECRETS)
    needed = [Path(d).resolve() for d in code_dirs]
    needed += [Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
    return [p for p in paths if not any(Path(p) in (n, *n.parents) for n in needed)]


def _make_cgroup(controller: str, tag: str) -> str | None:
    """A folder for this server in its own cgroup of a v1 `controller`, or None."""
    mount = _v1_mount(controller)
    own = _own_cgroup(controller)
    if mount is None or own is None:
        return None
    folder = os.path.join(mount, own.lstrip("/"), tag)
    try:
        os.mkdir(folder)
    except FileExistsError:
        pass
    except OSError:
        return None
    return folder


def _v1_mount(controller: str) -> str | None:
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields = right.split()
                cgroup = len(fields) >= 3 and fields[0] == "cgroup"
                if cgroup and controller in fields[2].split(","):
                    return left.split()[4]
    except OSError:
        return None
    return None


def _own_cgroup(controller: str) -> str | None:
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if controller in controllers.split(","):
                    return path
    except OSError:
        return None
    return None


def remove_cgroup(folder: str) -> None:
    """Remove a cgroup folder and the instance folders in it (empty ones only)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.is_dir():
                with contextlib.suppress(OSError):
                    os.rmdir(entry.path)
        os.rmdir(folder)

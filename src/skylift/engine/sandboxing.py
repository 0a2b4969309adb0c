"""The supervisor's side of the instance sandbox: what the host offers, and the settings
every zygote passes to the workers it forks (`skylift.runtime.sandbox` enters them).

- Namespaces (user, PID, mount, IPC): each zygote probes them before importing user code
  and reports whether they work; the first report is said once at start.
- cgroups (`engine/cgroup_host.py`): a cgroup2 group per instance, to end everything it
  started (with `--sandbox off` too); memory and process limits by cgroup v2's or v1's
  memory and pids controllers, whichever the server may use; otherwise `RLIMIT_AS`
  (address space, not resident memory: the limit is the worker's address space at fork
  plus the function's MemorySize, so large mappings fail sooner than RSS).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from skylift.engine import cgroup_host

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
        self.hide: list[str] = []
        self.code_dirs = [str(Path(d).resolve()) for d in code_dirs]
        # What must stay visible once /tmp is the instance's own: code, Python, skylift.
        self.under_tmp = kept_under_tmp(self.code_dirs)
        # Before our own groups: what a killed server left must not run on beside us.
        sweep_stale()
        self.cgroups = cgroup_host.find(cgroup_host.server_tag(), limits=enabled)
        if enabled:
            self.hide = hidden_paths(state_dir, code_dirs)

    def settings(self) -> dict[str, Any] | None:
        """What workers need to enter the sandbox (None: sandbox off)."""
        if not self.enabled:
            return None
        return {
            "namespaces": True,
            **self.cgroup_settings(),
            "hide": self.hide,
            "under_tmp": self.under_tmp,
        }

    def zygote_settings(self) -> dict[str, Any] | None:
        """What a zygote's workers enter: with the sandbox off, still their cgroup2 group,
        so that what an instance started ends with it."""
        if self.enabled:
            return self.settings()
        if not self.cgroups.v2:
            return None
        return {"off": True, "namespaces": False, **self.cgroup_settings()}

    def cgroup_settings(self) -> dict[str, Any]:
        groups = self.cgroups
        return {
            "cgroup2": groups.v2,
            "cgroup2_limits": groups.v2_limits,
            "memory_cgroup": groups.memory_v1,
            "pids_cgroup": groups.pids_v1,
            "rlimit_memory": self.enabled
            and not (groups.memory_v1 or "memory" in groups.v2_limits),
        }

    def describe(self, namespaces: bool | None) -> str:
        """One line for the server's log: what is in force."""
        groups = self.cgroups
        ending = (
            "what an instance starts ends with it (cgroup2's cgroup.kill)"
            if groups.v2
            else "what an instance starts ends with its process group or PID namespace"
        )
        if not self.enabled:
            if not groups.v2:
                ending = "what an instance starts ends with its process group (no cgroup2 here)"
            else:
                ending = (
                    "what a forked instance starts ends with it (cgroup2's cgroup.kill); "
                    "a spawn=True or Runtime API instance's, with its process group"
                )
            return (
                f"sandbox off (--sandbox off): instances share the host's view and limits; {ending}"
            )
        parts = []
        if namespaces is False:
            parts.append("namespaces unavailable here (instances see the host's processes)")
        elif namespaces:
            parts.append("own PID/mount/IPC namespaces, read-only files, private size-limited /tmp")
        else:  # no zygote probed them: each spawned or Runtime API instance does
            parts.append("namespaces where each instance finds them (it says so in its log)")
        if "memory" in groups.v2_limits:
            parts.append("memory limit by cgroup v2 (memory.max)")
        elif groups.memory_v1:
            parts.append("memory limit by cgroup v1")
        else:
            parts.append("memory limit by RLIMIT_AS (address space)")
        parts.append(ending)
        return "sandbox: " + ", ".join(parts)

    def close(self) -> None:
        self.cgroups.close()


def sweep_stale() -> None:
    """Remove what servers killed before their cleanup left: what ran on in their cgroups
    (killed first), the cgroups, and the /tmp folders of versions before /tmp was a
    tmpfs, named after a pid that no longer runs."""
    cgroup_host.sweep_stale()
    for entry in os.scandir(tempfile.gettempdir()):
        if entry.name.startswith("skylift-") and "-tmp-" in entry.name:
            pid = entry.name.split("-")[1]
            if pid.isdigit() and not _running(int(pid)):
                shutil.rmtree(entry.path, ignore_errors=True)


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

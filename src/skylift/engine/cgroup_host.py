"""The cgroups a host offers a skylift server, and the server's folders in them.

Three kinds of host, found at start from `/proc/self/mountinfo` and `/proc/self/cgroup`:

- cgroup v2 only (`/sys/fs/cgroup` is cgroup2), or a subtree delegated to the server's
  user (systemd's `Delegate=yes`, a container's own cgroup namespace): the server makes
  `skylift-PID-NS` in its own cgroup and enables the memory and pids controllers for the
  instance groups below it. The "no internal processes" rule forbids a cgroup with
  processes to enable controllers for its children, so when its own cgroup does not
  already do so, the server first moves itself into a leaf, `skylift-PID-NS/server`.
- hybrid (v1 controllers beside a cgroup2 mount, such as `/sys/fs/cgroup/unified`): the
  cgroup2 groups serve only to end an instance (`cgroup.kill`, no controller needed);
  the limits come from v1's memory and pids controllers (`memory_v1`, `pids_v1`).
- v1 only: v1's controllers; an instance ends by what its pids group lists.

Per-instance groups are made and read by `runtime/sandbox_cgroups.py`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

from skylift.runtime import sandbox_cgroups

LIMITS = ("memory", "pids")


@dataclass
class Cgroups:
    """The server's folders: None where the host offers no such hierarchy to it."""

    v2: str | None = None  # in the cgroup2 hierarchy; instance groups go below
    v2_limits: list[str] = field(default_factory=list)  # controllers enabled for them
    moved_from: str | None = None  # the cgroup2 folder the server left for v2/server
    enabled_in_parent: list[str] = field(default_factory=list)  # by us, to undo
    memory_v1: str | None = None
    pids_v1: str | None = None

    def close(self) -> None:
        """End what the instances left and remove the folders (busy ones stay, for the
        next start's `sweep_stale`)."""
        if self.v2:
            for group in _children(self.v2, "instance-"):
                sandbox_cgroups.kill_group(group)
            if self.moved_from:
                self._move_back(self.moved_from, self.v2)
            elif self.enabled_in_parent:  # the root cgroup, exempt from the move
                self._disable(os.path.dirname(self.v2), self.v2)
            remove(self.v2)
        for base in (self.memory_v1, self.pids_v1):
            if base:
                remove(base)

    def _move_back(self, parent: str, base: str) -> None:
        """Undo `delegate`: a cgroup that enables controllers for its children may hold no
        process, so those it enabled go first (unless a sibling uses them too: then the
        server stays in its leaf and the next start removes it)."""
        self._disable(parent, base)
        _move_here(parent)

    def _disable(self, parent: str, base: str) -> None:
        """Turn off the controllers `delegate` turned on, below `base` and in `parent`."""
        for group in _children(base, "instance-"):
            with contextlib.suppress(OSError):
                os.rmdir(group)
        with contextlib.suppress(OSError):
            _write(base, "cgroup.subtree_control", " ".join(f"-{c}" for c in self.v2_limits))
        if self.enabled_in_parent:
            with contextlib.suppress(OSError):
                minus = " ".join(f"-{c}" for c in self.enabled_in_parent)
                _write(parent, "cgroup.subtree_control", minus)


def server_tag() -> str:
    """The server's folder name: its pid, and its PID namespace's, which gives it meaning."""
    return f"skylift-{os.getpid()}-{pid_namespace()}"


def pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def find(tag: str, limits: bool, wanted: tuple[str, ...] = LIMITS) -> Cgroups:
    """Make the server's folder `tag` in each hierarchy it may write to. With `limits`
    False (`--sandbox off`) only the cgroup2 one, to end instances."""
    found = Cgroups()
    parent = own_folder("cgroup2", "")
    if parent is not None:
        found.v2 = _mkdir(os.path.join(parent, tag))
    if found.v2 and limits:
        found.v2_limits, found.moved_from, found.enabled_in_parent = delegate(
            parent or "", found.v2, wanted
        )
    if limits and "memory" not in found.v2_limits:
        found.memory_v1 = _v1_folder("memory", tag)
    if limits and "pids" not in found.v2_limits:
        found.pids_v1 = _v1_folder("pids", tag)
    return found


def delegate(
    parent: str, base: str, wanted: tuple[str, ...]
) -> tuple[list[str], str | None, list[str]]:
    """Enable what of `wanted` `parent` offers for the groups below `base`: the
    controllers enabled, the folder the server left (None if it stayed), and those it
    enabled in `parent` (to undo at close)."""
    want = [c for c in wanted if c in _words(parent, "cgroup.controllers")]
    missing = [c for c in want if c not in _words(parent, "cgroup.subtree_control")]
    moved_from, enabled_in_parent = None, []
    if missing:
        # "No internal processes": the server's cgroup may enable them for its children
        # only once the server has left it (the root alone is exempt).
        if _words(parent, "cgroup.procs") and not _is_root(parent):
            leaf = _mkdir(os.path.join(base, "server"))
            if leaf is None or not _move_here(leaf):
                return [], None, []
            moved_from = parent
        try:
            _write(parent, "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
            enabled_in_parent = missing
        except OSError:  # other processes share the server's cgroup: not those, then
            if moved_from and _move_here(parent):
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(base, "server"))
                moved_from = None
            want = [c for c in want if c not in missing]
    enabled = [c for c in want if _enable(base, c)]
    return enabled, moved_from, enabled_in_parent


def _move_here(folder: str) -> bool:
    """Move the server (all its threads) into cgroup `folder`."""
    try:
        _write(folder, "cgroup.procs", os.getpid())
    except OSError:
        return False
    return True


def _enable(folder: str, controller: str) -> bool:
    try:
        _write(folder, "cgroup.subtree_control", f"+{controller}")
    except OSError:
        return False
    return True


def sweep_stale() -> list[str]:
    """Kill what servers that died before their cleanup left in their groups (a worker
    busy in its handler outlives a SIGKILL of the server's process group) and remove the
    groups: folders named `skylift-PID-NS` after a pid that no longer runs in our PID
    namespace NS (a server in another container sharing the hierarchy is not ours to
    judge; folders of versions before NS was in the name, `skylift-PID`, are removed
    when empty, never killed). The folders swept."""
    swept = []
    for kind in ("cgroup2", "memory", "pids"):
        parent = own_folder(kind, "")
        if parent is None:
            continue
        for path in _children(parent, "skylift-"):
            _, pid, *namespace = os.path.basename(path).split("-")
            if namespace not in ([], [str(pid_namespace())]):
                continue
            if not pid.isdigit() or _running(int(pid)):
                continue
            if not namespace:  # an older version's: its pid may be another namespace's
                remove(path)  # empty groups only: what runs there is not ours to kill
                continue
            if kind == "cgroup2":
                sandbox_cgroups.kill_group(path, wait=1.0)
            else:
                for group in _children(path, "instance-"):
                    sandbox_cgroups.kill_v1(group)
            remove(path)
            swept.append(path)
    return swept


def remove(folder: str) -> None:
    """Remove a cgroup folder and the (empty) groups in it."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.is_dir():
                with contextlib.suppress(OSError):
                    os.rmdir(entry.path)
        os.rmdir(folder)


def own_folder(kind: str, tag: str) -> str | None:
    """This process's folder in the hierarchy of `kind` ("cgroup2", or a v1 controller)."""
    mount, own = _mount(kind), _own(kind)
    if mount is None or own is None:
        return None
    return os.path.join(mount, own.lstrip("/"), tag).rstrip("/")


def _v1_folder(controller: str, tag: str) -> str | None:
    folder = own_folder(controller, tag)
    return _mkdir(folder) if folder else None


def _mount(kind: str) -> str | None:
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields = right.split()
                if kind == "cgroup2" and fields and fields[0] == "cgroup2":
                    return left.split()[4]
                if len(fields) >= 3 and fields[0] == "cgroup" and kind in fields[2].split(","):
                    return left.split()[4]
    except OSError:
        return None
    return None


def _own(kind: str) -> str | None:
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                number, controllers, path = line.rstrip("\n").split(":", 2)
                if kind == "cgroup2" and number == "0" and controllers == "":
                    return path
                if kind in controllers.split(","):
                    return path
    except OSError:
        return None
    return None


def _is_root(folder: str) -> bool:
    # Only the root has no cgroup.type; it alone may hold processes and delegate.
    return not os.path.exists(os.path.join(folder, "cgroup.type"))


def _mkdir(folder: str) -> str | None:
    try:
        os.mkdir(folder)
    except FileExistsError:
        pass
    except OSError:
        return None
    return folder


def _children(folder: str, prefix: str) -> list[str]:
    try:
        return [e.path for e in os.scandir(folder) if e.is_dir() and e.name.startswith(prefix)]
    except OSError:
        return []


def _words(folder: str, name: str) -> list[str]:
    try:
        with open(os.path.join(folder, name)) as f:
            return f.read().split()
    except OSError:
        return []


def _write(folder: str, name: str, value: object) -> None:
    with open(os.path.join(folder, name), "w") as f:
        f.write(str(value))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

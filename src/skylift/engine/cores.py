"""How many cores the server's processes can use: the CPUs it may run on (its affinity),
fewer when its cgroup caps its CPU time (a container's `--cpus`), which the affinity
does not show: a container given 2 CPUs' time on a 64-core host still sees 64.

The cap is the cgroup's quota over its period: cgroup v2's `cpu.max` ("200000 100000":
2 CPUs; "max 100000": none), v1's `cpu.cfs_quota_us` and `cpu.cfs_period_us` (a quota
of -1: none), in the cgroup `/proc/self/cgroup` names (or the mount's root, which a
container without a cgroup namespace sees as its own).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def cpu_max(text: str) -> float | None:
    """CPUs cgroup v2's `cpu.max` allows (None: no cap).

    >>> cpu_max("200000 100000"), cpu_max("max 100000")
    (2.0, None)
    """
    quota, _, period = text.strip().partition(" ")
    if quota == "max":
        return None
    return _ratio(quota, period or "100000")  # the period is optional when written


def cfs_quota(quota: str, period: str) -> float | None:
    """CPUs cgroup v1's `cpu.cfs_quota_us` over `cpu.cfs_period_us` allow (None: no cap).

    >>> cfs_quota("150000", "100000"), cfs_quota("-1", "100000")
    (1.5, None)
    """
    return _ratio(quota.strip(), period.strip())


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def cgroup_cpus(proc_cgroup: Path = PROC_CGROUP, root: Path = CGROUP_ROOT) -> float | None:
    """CPUs this process's cgroup allows it (None: no cap, or none found).

    `proc_cgroup` is `/proc/self/cgroup` ("0::/path" for v2, "4:cpu,cpuacct:/path" for
    v1); `root` is where the cgroup file systems are mounted."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    caps: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        relative = path.strip().lstrip("/")
        if controllers == "":  # v2: one hierarchy, mounted at the root
            text = _first(root / relative / "cpu.max", root / "cpu.max")
            cap = cpu_max(text) if text is not None else None
        elif "cpu" in controllers.split(","):
            cap = _v1_cap(root / controllers, relative)
        else:
            continue
        if cap is not None:
            caps.append(cap)
    return min(caps) if caps else None


def _v1_cap(mount: Path, relative: str) -> float | None:
    for folder in (mount / relative, mount):
        quota = _first(folder / "cpu.cfs_quota_us")
        period = _first(folder / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            return cfs_quota(quota, period)
    return None


def _first(*paths: Path) -> str | None:
    """The text of the first of `paths` that can be read."""
    for path in paths:
        try:
            return path.read_text()
        except OSError:
            continue
    return None


def cores(proc_cgroup: Path = PROC_CGROUP, root: Path = CGROUP_ROOT) -> int:
    """Cores this server may use: its affinity, capped by its cgroup's CPU quota
    (rounded up: 1.5 CPUs' time keeps two cores partly busy)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    cap = cgroup_cpus(proc_cgroup, root)
    return max(1, min(count, math.ceil(cap))) if cap is not None else count

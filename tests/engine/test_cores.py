"""The cores a quick function's steady set is sized by: a cgroup's CPU quota caps the
affinity, which shows every host core inside a container."""

from __future__ import annotations

import os
from pathlib import Path

from skylift.engine.cores import cfs_quota, cgroup_cpus, cores, cpu_max


def files(root: Path, contents: dict[str, str]) -> Path:
    for name, text in contents.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_cgroup_v2_cpu_max():
    assert cpu_max("200000 100000\n") == 2.0
    assert cpu_max("150000 100000") == 1.5
    assert cpu_max("max 100000\n") is None
    assert cpu_max("garbage") is None


def test_cgroup_v1_cfs_quota():
    assert cfs_quota("50000\n", "100000\n") == 0.5
    assert cfs_quota("-1\n", "100000\n") is None


def test_a_v2_quota_in_the_process_cgroup(tmp_path):
    root = files(
        tmp_path / "cg",
        {"cpu.max": "max 100000\n", "app/cpu.max": "300000 100000\n"},
    )
    proc = files(tmp_path, {"self_cgroup": "0::/app\n"}) / "self_cgroup"
    assert cgroup_cpus(proc, root) == 3.0


def test_a_v2_container_sees_its_cgroup_at_the_root(tmp_path):
    root = files(tmp_path / "cg", {"cpu.max": "200000 100000\n"})
    proc = files(tmp_path, {"self_cgroup": "0::/docker/abc\n"}) / "self_cgroup"
    assert cgroup_cpus(proc, root) == 2.0


def test_no_quota_is_no_cap(tmp_path):
    root = files(tmp_path / "cg", {"cpu.max": "max 100000\n"})
    proc = files(tmp_path, {"self_cgroup": "0::/\n"}) / "self_cgroup"
    assert cgroup_cpus(proc, root) is None
    assert cgroup_cpus(tmp_path / "missing", root) is None


def test_a_v1_quota_in_the_cpu_hierarchy(tmp_path):
    root = files(
        tmp_path / "cg",
        {
            "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "150000\n",
            "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
            "memory/docker/abc/memory.limit_in_bytes": "1073741824\n",
        },
    )
    proc = files(
        tmp_path,
        {"self_cgroup": "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n"},
    )
    assert cgroup_cpus(proc / "self_cgroup", root) == 1.5


def test_a_v1_container_sees_its_cgroup_at_the_mount(tmp_path):
    root = files(
        tmp_path / "cg",
        {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
    )
    proc = files(tmp_path, {"self_cgroup": "1:cpu:/docker/abc\n"}) / "self_cgroup"
    assert cgroup_cpus(proc, root) is None
    (root / "cpu/cpu.cfs_quota_us").write_text("100000\n")
    assert cgroup_cpus(proc, root) == 1.0


def test_the_quota_caps_the_affinity_rounded_up(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    proc = files(tmp_path, {"self_cgroup": "0::/\n"}) / "self_cgroup"
    root = files(tmp_path / "cg", {"cpu.max": "50000 100000\n"})
    assert cores(proc, root) == 1  # half a CPU's time still needs a core
    (root / "cpu.max").write_text(f"{affinity * 100000 + 1} 100000\n")
    assert cores(proc, root) == affinity  # a quota above the CPUs it may run on
    (root / "cpu.max").write_text("max 100000\n")
    assert cores(proc, root) == affinity

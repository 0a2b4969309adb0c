"""What the instance sandbox costs: cold start, warm invocation and memory, on vs off.

Rounds alternate the sandbox on and off in one process, so both see the same machine.
Cold start: a new instance from the zygote to its first answer (fork, sandbox, first
invocation). Warm: one more invocation on a warm instance. Memory: the private memory and
proportional set size of a warm instance's processes (with the sandbox: the serving
process and its namespace's PID 1; before runtime/sandbox_fork.py, also the waiting
parent), and the zygote's namespace maker (one per zygote). `--python LABEL=PYTHON`
(repeated) compares versions, each a virtualenv's interpreter with its own skylift,
their rounds interleaved.

    python bench/sandbox_bench.py --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from report import write_section

from skylift.engine.platform import Platform
from skylift.loader import resolve_target

APP = """
from skylift import App

app = App()


@app.function()
def probe(event, context):
    return 1
"""
ROUNDS = 4
COLD = 25
WARM = 400


def memory_kib(pid: int) -> dict[str, int]:
    """The memory of instance `pid`: its process, its children and its namespace's PID 1,
    an address space two of them share counted once. (Before: `pid` was the sandbox's
    waiting parent W, the serving process and PID 1 its children, PID 1 sharing W's
    memory. Now: `pid` is the serving process, PID 2 of its namespace, and PID 1 a
    child of the zygote's namespace maker.)

    - uss: private memory (pages no other process maps): what one more instance costs
      the host;
    - pss: the proportional set size, as smem reports it: private memory plus a share of
      the pages mapped with the zygote and other instances (so it falls as more
      instances share them; the sandbox's waiting parent takes a share too);
    - pte: its page tables (`VmPTE`), which neither counts.
    """
    total = {"uss": 0, "pss": 0, "pte": 0}
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    init = namespace_init(pid)
    if init is not None and init not in pids:
        pids.append(init)
    counted: list[int] = []
    for each in pids:
        if any(_same_memory(each, other) for other in counted):
            continue
        counted.append(each)
        try:
            with open(f"/proc/{each}/smaps_rollup") as f:
                for line in f:
                    if line.startswith(("Private_Clean:", "Private_Dirty:")):
                        total["uss"] += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        total["pss"] += int(line.split()[1])
            with open(f"/proc/{each}/status") as f:
                for line in f:
                    if line.startswith("VmPTE:"):
                        total["pte"] += int(line.split()[1])
        except OSError:
            pass
    return total


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def namespace_init(pid: int) -> int | None:
    """PID 1 of `pid`'s PID namespace, if that is not ours: a child or grandchild of
    `pid`'s parent (the zygote, or its maker)."""
    try:
        ns = os.readlink(f"/proc/{pid}/ns/pid")
        if ns == os.readlink("/proc/self/ns/pid"):
            return None
        with open(f"/proc/{pid}/stat") as f:
            parent = int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None
    for near in children(parent):
        for each in [near, *children(near)]:
            try:
                with open(f"/proc/{each}/status") as f:
                    nspid = next(line for line in f if line.startswith("NSpid:")).split()
                if nspid[-1] == "1" and os.readlink(f"/proc/{each}/ns/pid") == ns:
                    return each
            except (OSError, StopIteration):
                continue
    return None


def makers(zygote: int) -> list[int]:
    """The zygote's namespace maker, if it has one (not an instance's PID 1: that is a
    maker's child, with the maker's name)."""
    found = []
    for each in children(zygote):
        try:
            with open(f"/proc/{each}/comm") as f:
                if f.read().strip() == "skylift-ns-init":
                    found.append(each)
        except OSError:
            continue
    return found


def makers_kib(zygote: int) -> dict[str, int]:
    """The zygote's namespace maker (one per zygote, not per instance): its USS and PSS."""
    total = {"uss": 0, "pss": 0}
    for each in makers(zygote):
        try:
            with open(f"/proc/{each}/smaps_rollup") as f:
                for line in f:
                    if line.startswith(("Private_Clean:", "Private_Dirty:")):
                        total["uss"] += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        total["pss"] += int(line.split()[1])
        except OSError:
            continue
    return total


_libc = ctypes.CDLL(None, use_errno=True)
SYS_KCMP = {"x86_64": 312, "aarch64": 272}.get(platform.machine(), -1)
KCMP_VM = 1


def _same_memory(a: int, b: int) -> bool:
    """Whether processes `a` and `b` share one address space (kcmp(2))."""
    return bool(_libc.syscall(SYS_KCMP, a, b, KCMP_VM, 0, 0) == 0)


async def measure(app: Path, sandbox: bool) -> dict[str, list[float]]:
    platform = await Platform.start(resolve_target(str(app), None), sandbox=sandbox, policy=None)
    pool = platform.pools["probe"]
    cold: list[float] = []
    warm: list[float] = []
    memory: list[float] = []
    pss: list[float] = []
    pte: list[float] = []
    maker: list[float] = []
    cpu: list[float] = []
    zygote = platform.zygotes[0]._proc.pid  # type: ignore[union-attr]
    try:
        for _ in range(COLD):
            # The processes that stay (a killed instance reaped meanwhile must not count).
            before = sum(cpu_ns(p) for p in [zygote, *makers(zygote)])
            started = time.perf_counter()
            instance = await pool._start()
            await instance.invoke("cold", b"{}")
            cold.append((time.perf_counter() - started) * 1000)
            # CPU, not time: on a shared machine the time is mostly waiting for a core.
            # The zygote's and the maker's part, and all of the new instance's.
            mine = {instance.pid, *children(instance.pid)}
            if (init := namespace_init(instance.pid)) is not None:
                mine.add(init)
            spent = sum(cpu_ns(p) for p in [zygote, *makers(zygote)]) - before
            spent += sum(cpu_ns(p) for p in mine)
            cpu.append(spent / 1e6)
            used = memory_kib(instance.pid)
            memory.append(used["uss"] / 1024)
            pss.append(used["pss"] / 1024)
            pte.append(used["pte"])
            if len(cold) == COLD:  # after COLD instances: what it wrote meanwhile shows
                maker.append(makers_kib(parent_of(instance.pid))["uss"] / 1024)
            instance.kill()
            instance.close()
            pool.size -= 1
        instance = await pool._start()
        for _ in range(WARM):
            started = time.perf_counter()
            await instance.invoke("warm", b"{}")
            warm.append((time.perf_counter() - started) * 1e6)
        instance.kill()
        instance.close()
        pool.size -= 1
    finally:
        await platform.close()
    return {
        "cold": cold,
        "warm": warm,
        "memory": memory,
        "pss": pss,
        "pte": pte,
        "maker": maker,
        "cpu": cpu,
    }


def cpu_ns(pid: int) -> int:
    """Time on a CPU of process `pid`, all its threads (schedstat: nanoseconds)."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
    except OSError:
        pass
    return total


def parent_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


KEYS = ("cold", "warm", "memory", "pss", "pte", "maker", "cpu")


async def run(app: Path, rounds: int = ROUNDS) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {
        mode: {key: [] for key in KEYS} for mode in ("on", "off")
    }
    for _ in range(rounds):
        for mode in ("on", "off"):
            for key, values in (await measure(app, mode == "on")).items():
                results[mode][key] += values
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--python",
        action="append",
        help="LABEL=INTERPRETER: compare versions (each a virtualenv's python with its "
        "skylift), their rounds interleaved; the default is this one",
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if args.json:  # one run of a comparison, in the version's interpreter
        with tempfile.TemporaryDirectory() as directory:
            (Path(directory) / "app.py").write_text(APP)
            print(json.dumps(asyncio.run(run(Path(directory), args.rounds))))
        return
    versions = dict(v.split("=", 1) for v in args.python or [f"this={sys.executable}"])
    results: dict[str, dict[str, dict[str, list[float]]]] = {
        label: {mode: {key: [] for key in KEYS} for mode in ("on", "off")} for label in versions
    }
    for _ in range(args.rounds):
        for label, python in versions.items():
            run_ = subprocess.run(
                [python, __file__, "--json", "--rounds", "1"],
                capture_output=True,
                text=True,
                check=True,
            )
            for mode, values in json.loads(run_.stdout.splitlines()[-1]).items():
                for key in KEYS:
                    results[label][mode][key] += values.get(key, [])

    def row(name: str, r: dict[str, Any]) -> str:
        maker = f"{statistics.median(r['maker']):.2f} MiB" if r["maker"] else "-"
        return (
            f"| {name} | {statistics.median(r['cold']):.2f} ms | "
            f"{statistics.median(r['cpu']):.2f} ms | "
            f"{statistics.quantiles(r['cold'], n=10)[-1]:.2f} ms | "
            f"{statistics.median(r['warm']):.0f} µs | {statistics.median(r['memory']):.2f} MiB | "
            f"{statistics.median(r['pss']):.2f} MiB | {statistics.median(r['pte']):.0f} KiB "
            f"| {maker} |"
        )

    lines = [
        "## Sandbox: what an instance's sandbox costs",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
        f"cores (load average {load:.1f} at the start). Command: `make bench` "
        "(`python bench/sandbox_bench.py"
        + "".join(f" --python {label}=…" for label in versions if len(versions) > 1)
        + "`): "
        f"{args.rounds} alternating rounds of {COLD} cold starts (zygote fork to first "
        f"answer) and {WARM} warm invocations each, sandbox on and off"
        + (", versions interleaved" if len(versions) > 1 else "")
        + ". A cold start's CPU: what the zygote (and the maker) spent on it and all the "
        "new instance's processes had spent by their first answer. Memory is the "
        "private memory (USS) and PSS of a new instance's processes "
        "after its first answer (its namespace's PID 1 included); the namespace maker "
        "is one process per zygote, not per instance (its USS after "
        f"{COLD} instances).",
        "",
        "| version | sandbox | cold start p50 | its CPU p50 | cold start p90 "
        "| warm invocation p50 | USS | PSS | page tables | maker (per zygote) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, result in results.items():
        lines.append(row(f"{label} | on (default)", result["on"]))
        lines.append(row(f"{label} | off (`--sandbox off`)", result["off"]))
    lines.append("")
    for label, result in results.items():
        on, off = result["on"], result["off"]
        added = statistics.median(on["cold"]) - statistics.median(off["cold"])
        added_cpu = statistics.median(on["cpu"]) - statistics.median(off["cpu"])
        extra = statistics.median(on["memory"]) - statistics.median(off["memory"])
        lines.append(
            f"{label}: the sandbox adds {added:.2f} ms to a cold start (target: at most "
            f"3 ms), {added_cpu:.2f} ms of CPU time, and {extra:.2f} MiB of USS to an "
            "instance."
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        write_section(args.out, "sandbox", text)


if __name__ == "__main__":
    main()

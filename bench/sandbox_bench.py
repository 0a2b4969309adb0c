"""What the instance sandbox costs: cold start, warm invocation and memory, on vs off.

Rounds alternate the sandbox on and off in one process, so both see the same machine.
Cold start: a new instance from the zygote to its first answer (fork, sandbox, first
invocation). Warm: one more invocation on a warm instance. Memory: the proportional set
size of a warm instance's processes (with the sandbox: the waiting parent, the
namespace's PID 1 and the serving process).

    python bench/sandbox_bench.py --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import platform
import statistics
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
    """The memory of `pid` and its children (the sandbox's serving process and PID 1 are
    W's children), PID 1 counted once (it shares W's memory: one address space, two
    processes):

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
    try:
        for _ in range(COLD):
            started = time.perf_counter()
            instance = await pool._start()
            await instance.invoke("cold", b"{}")
            cold.append((time.perf_counter() - started) * 1000)
            used = memory_kib(instance.pid)
            memory.append(used["uss"] / 1024)
            pss.append(used["pss"] / 1024)
            pte.append(used["pte"])
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
    return {"cold": cold, "warm": warm, "memory": memory, "pss": pss, "pte": pte}


async def run(app: Path) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {
        mode: {"cold": [], "warm": [], "memory": [], "pss": [], "pte": []} for mode in ("on", "off")
    }
    for _ in range(ROUNDS):
        for mode in ("on", "off"):
            for key, values in (await measure(app, mode == "on")).items():
                results[mode][key] += values
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        app = Path(directory)
        (app / "app.py").write_text(APP)
        results = asyncio.run(run(app))

    def row(name: str, r: dict[str, Any]) -> str:
        return (
            f"| {name} | {statistics.median(r['cold']):.2f} ms | "
            f"{statistics.quantiles(r['cold'], n=10)[-1]:.2f} ms | "
            f"{statistics.median(r['warm']):.0f} µs | {statistics.median(r['memory']):.2f} MiB | "
            f"{statistics.median(r['pss']):.2f} MiB | {statistics.median(r['pte']):.0f} KiB |"
        )

    on, off = results["on"], results["off"]
    added = statistics.median(on["cold"]) - statistics.median(off["cold"])
    text = "\n".join(
        [
            "## Sandbox: what an instance's sandbox costs",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
            f"cores (load average {load:.1f} at the start). Command: `make bench` "
            "(`python bench/sandbox_bench.py`): "
            f"{ROUNDS} alternating rounds of {COLD} cold starts (zygote fork to first "
            f"answer) and {WARM} warm invocations each, sandbox on and off. Memory is the "
            "private memory (USS) of a new instance's processes after its first answer.",
            "",
            "| sandbox | cold start p50 | cold start p90 | warm invocation p50 | USS | PSS "
            "| page tables |",
            "|---|---:|---:|---:|---:|---:|---:|",
            row("on (default)", on),
            row("off (`--sandbox off`)", off),
            "",
            f"The sandbox adds {added:.2f} ms to a cold start (target: at most 3 ms).",
        ]
    )
    print(text)
    if args.out:
        write_section(args.out, "sandbox", text)


if __name__ == "__main__":
    main()

"""Worker CPU per invocation, A/B: two or more skylift checkouts serve examples/make-change
side by side and are loaded in alternating wrk slices, so a busy spell on a shared machine
falls on each alike.

    python bench/worker_cpu_bench.py /work/main . --rounds 8 --seconds 5

Each build is a checkout with its own virtualenv (`make setup`), served by its
`.venv/bin/python -m skylift.cli up`: PYTHONPATH would not do, as instances start with
a clean environment and import skylift from where the virtualenv's install points. Per slice: the
CPU time (schedstat's run time, all threads) of the instances (the zygote's children that
run Python: not the zygote, its namespace maker or the PID 1s), of the supervisor, and of
the whole tree, each divided by the requests wrk counted. Prints one line per slice and
the median and range per build.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from bench_common import BODY, EXAMPLE, LUA, free_port, parse_wrk, start_wrk
from proctree import stat_fields, stop, tree


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def roles(root: int) -> dict[str, list[int]]:
    """The tree's pids by role: the supervisor, its zygotes, and the instances."""
    pids = tree(root)
    parent = {p: int(f[1]) for p in pids if (f := stat_fields(p)) is not None}
    # An instance runs Python (its PID 1 and the namespace maker are `skylift-ns-init`),
    # and is neither the supervisor nor a zygote (the supervisor's children).
    workers = [p for p in pids if p != root and parent.get(p, root) != root and comm(p) == "python"]
    return {"supervisor": [root], "workers": workers, "tree": pids}


def run_ns(pid: int) -> int:
    """Nanoseconds on a CPU of all of `pid`'s threads (schedstat: finer than stat's ticks)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for task in tasks:
        try:
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def cpu(pids: list[int]) -> dict[int, int]:
    return {p: run_ns(p) for p in pids}


def start(checkout: str, port: int, app: Path) -> subprocess.Popen[bytes]:
    python = Path(checkout).resolve() / ".venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} is missing: run `make setup` in {checkout}")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    server = subprocess.Popen(
        [str(python), "-m", "skylift.cli", "up", str(app), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.post(f"http://127.0.0.1:{port}/change", content=BODY).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    stop(server)
    raise SystemExit(f"the server from {checkout} did not answer within 30 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("srcs", nargs="+", help="checkouts of the builds to compare")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="skylift-wcpu-"))
    script = work / "post.lua"
    script.write_text(LUA)
    servers: list[tuple[str, int, subprocess.Popen[bytes]]] = []
    results: dict[str, dict[str, list[float]]] = {}
    unsteady: set[int] = set()  # rounds in which a build's instances changed
    print(f"load average at the start: {os.getloadavg()}")
    try:
        for i, src in enumerate(args.srcs):
            app = work / f"app{i}"
            shutil.copytree(EXAMPLE, app)
            port = free_port()
            servers.append((src, port, start(src, port, app)))
            results[src] = {"workers": [], "supervisor": [], "tree": [], "rps": []}
        for _, port, _ in servers:  # warm-up: every instance started
            run = start_wrk(f"http://127.0.0.1:{port}/change", args.connections, 2, str(script))
            run.communicate()
        for r in range(args.rounds):
            order = servers if r % 2 == 0 else servers[::-1]
            for src, port, server in order:
                before = roles(server.pid)
                cpu0 = {k: cpu(v) for k, v in before.items()}
                run = start_wrk(
                    f"http://127.0.0.1:{port}/change", args.connections, args.seconds, str(script)
                )
                out = run.communicate()[0]
                after = roles(server.pid)
                requests, rps, _, _, errors = parse_wrk(out)
                if errors:  # wrk's timeouts on a loaded machine: the CPU per request holds
                    print(f"round {r} {src}: {errors} errors (socket errors or non-2xx)")
                row = results[src]
                if set(before["workers"]) != set(after["workers"]):
                    unsteady.add(r)  # instances started or ended: not the steady state
                for key in ("workers", "supervisor", "tree"):
                    # A new pid (an instance started mid-slice) counts from zero.
                    now = cpu(after[key])
                    used = sum(ns - cpu0[key].get(pid, 0) for pid, ns in now.items())
                    row[key].append(used / requests / 1e3)
                row["rps"].append(rps)
                print(
                    f"round {r} {src}: {rps:,.0f} rps, workers {row['workers'][-1]:.1f} µs, "
                    f"supervisor {row['supervisor'][-1]:.1f} µs, tree {row['tree'][-1]:.1f} µs "
                    f"per request ({len(after['workers'])} instances"
                    f"{', changed' if r in unsteady else ''})",
                    flush=True,
                )
    finally:
        for _, _, server in servers:
            stop(server)
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()}")
    # Only rounds whose instances served throughout, alike in every build.
    steady = [r for r in range(args.rounds) if r not in unsteady]
    print(f"rounds kept: {len(steady)} of {args.rounds} (the others' instances changed)")
    if not steady:
        raise SystemExit("no round kept: run longer, or on a quieter machine")
    results = {
        src: {k: [v[r] for r in steady] for k, v in row.items()} for src, row in results.items()
    }
    first = results[args.srcs[0]]
    for src, row in results.items():
        parts = [
            f"{key} {statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})"
            for key, v in row.items()
        ]
        print(f"{src}: median (range) per request, µs: " + ", ".join(parts))
        if row is not first:  # each round's pair of slices, which ran back to back
            for key in ("workers", "supervisor", "tree"):
                ratios = [b / a for a, b in zip(first[key], row[key], strict=True)]
                print(
                    f"  {key} / {args.srcs[0]}'s, round by round: median "
                    f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})"
                )


if __name__ == "__main__":
    main()

"""What observing costs: POST /change with stored logs, metrics and alerting on, against
`skylift up --no-observe`, with wrk, in interleaved rounds.

    python bench/observe_cost_bench.py --out docs/benchmarks.md

Both servers run a copy of examples/make-change with an `[alerts]` policy sampling every
second (a busier detector than the 15 s default); "off" ignores it. Each round starts a
fresh server per mode, the modes taking turns (which goes first alternates), so a noisy
spell on the shared machine falls on both alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bench_common import EXAMPLE, LUA, free_port, stop, wrk
from report import write_section

ROUNDS = 7
SECONDS = 10
CONNECTIONS = 32
POLICY = """\
[alerts]
interval = "1s"
window = "5m"
min_samples = 20

[alerts.primary]
name = "on-call"
"""
MODES = {"on": [], "off": ["--no-observe"]}


def start(app: Path, port: int, options: list[str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "skylift.cli", "up", str(app), "--port", str(port), *options]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/--ready--", timeout=10)
            return proc
        except httpx.HTTPError:
            time.sleep(0.02)
    stop(proc)
    raise RuntimeError(f"skylift {' '.join(options)} did not start on port {port}")


def cpu_seconds(pid: int) -> float:
    """The process's own user + system CPU time (not its workers')."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process and every live descendant (its workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended meanwhile
                continue
            parents[int(entry.name)] = int(fields[1])
    total = 0.0
    for child in parents:
        ancestor = child
        while ancestor > 1 and ancestor != pid:
            ancestor = parents.get(ancestor, 0)
        if ancestor == pid:
            try:
                total += cpu_seconds(child)
            except OSError:
                continue
    return total


def once(app: Path, options: list[str], script: str) -> tuple[float, float, int, float, float]:
    """(requests/s, p99 ms, errors, the server process's CPU µs per request, and its
    whole tree's, workers included)."""
    port = free_port()
    proc = start(app, port, options)
    try:
        url = f"http://127.0.0.1:{port}/change"
        wrk(url, CONNECTIONS, 2, script)  # warm-up: instances, caches
        before, tree_before = cpu_seconds(proc.pid), tree_cpu_seconds(proc.pid)
        rps, _, p99, errors = wrk(url, CONNECTIONS, SECONDS, script)
        cpu = (cpu_seconds(proc.pid) - before) / (rps * SECONDS) * 1e6
        tree = (tree_cpu_seconds(proc.pid) - tree_before) / (rps * SECONDS) * 1e6
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code
        if metrics != (404 if options else 200):
            raise RuntimeError(f"skylift up {' '.join(options)}: /metrics answered {metrics}")
        return rps, p99, errors, cpu, tree
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    runs: dict[str, list[tuple[float, float, int, float, float]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as directory:
        app = Path(directory) / "make-change"
        shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns(".skylift", "__pycache__"))
        (app / "skylift.toml").write_text(POLICY)
        script = str(Path(directory) / "post.lua")
        Path(script).write_text(LUA)
        for index in range(args.rounds):
            order = list(MODES) if index % 2 == 0 else list(reversed(MODES))
            for mode in order:
                runs[mode].append(once(app, MODES[mode], script))
                rps, _, _, cpu, tree = runs[mode][-1]
                print(mode, f"{rps:,.0f} requests/s, {cpu:.1f} / {tree:.1f} µs", file=sys.stderr)
    on = statistics.median(r[0] for r in runs["on"])
    off = statistics.median(r[0] for r in runs["off"])
    lost = (off - on) / off * 100
    cpu_on = statistics.median(r[3] for r in runs["on"])
    cpu_off = statistics.median(r[3] for r in runs["off"])
    # Per round, on less off (each round's pair shares its spell of load).
    added = statistics.median(a[3] - b[3] for a, b in zip(runs["on"], runs["off"], strict=True))

    def row(mode: str, label: str) -> str:
        found = runs[mode]
        rps = [r[0] for r in found]
        return (
            f"| {label} | {statistics.median(rps):,.0f} | {min(rps):,.0f} - {max(rps):,.0f} | "
            f"{statistics.median(r[1] for r in found):.2f} ms | "
            f"{statistics.median(r[3] for r in found):.0f} µs | "
            f"{statistics.median(r[4] for r in found):.0f} µs | {sum(r[2] for r in found)} |"
        )

    text = "\n".join(
        [
            "## Observability: what logs, metrics and alerting cost",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, load average "
            f"{os.getloadavg()[0]:.1f} at the end. Command: `make bench` "
            "(`python bench/observe_cost_bench.py`): "
            f"wrk -t2 -c{CONNECTIONS} -d{SECONDS}s on POST /change (examples/make-change) "
            "after a 2 s warm-up, a fresh server per run; "
            f"{args.rounds} interleaved rounds of `skylift up` (stored logs, `/metrics`, an "
            "`[alerts]` policy sampling every second) and `skylift up --no-observe`. "
            "Each row is the median round; the range shows the spread across rounds. "
            "Server CPU is the `skylift up` process's user + system time over the run "
            "(/proc), per request served; with its workers, that of the whole process tree.",
            "",
            "| skylift up | requests/s | range | p99 | server CPU / request "
            "| with workers | errors |",
            "|---|---:|---:|---:|---:|---:|---:|",
            row("on", "logs, metrics, alerting on (default)"),
            row("off", "`--no-observe`"),
            "",
            f"Observing costs {lost:.1f}% of the requests/s (target: at most 5%), and "
            f"{cpu_on - cpu_off:.1f} µs of the server process's CPU per request "
            f"({(cpu_on - cpu_off) / cpu_off * 100:.1f}%; its workers' CPU is not counted; "
            f"the median of each round's difference: {added:.1f} µs). "
            "The CPU per request moves far less than requests/s when other work shares "
            "the machine.",
        ]
    )
    print(text)
    if args.out:
        write_section(args.out, "observe-cost", text)


if __name__ == "__main__":
    main()

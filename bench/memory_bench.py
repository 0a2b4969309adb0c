"""Where skylift's memory goes under load: PSS per process of its tree, by role.

    cd bench && python memory_bench.py [--seconds 10] [--rounds 3] \
        [--src main=/path/to/main/src --src new=../src] [--out ../docs/benchmarks.md]

Starts `skylift up` on examples/make-change (as http_bench.py does), measures the tree
idle, warms up 2 s, then runs wrk -t1 -cC POST /change while sampling each process's
PSS (smaps_rollup; an address space two processes share is counted once) every second,
by role (supervisor, zygotes, instances: the sandbox's waiting parent and its serving
process), and the function's pool (`/_skylift/status`: instances, busy, idle, target,
cold starts). At the end: the run's rps, p99, and CPU per request (the tree's, /proc).

With several `--src LABEL=FOLDER` (each a checkout's `src/`, run with this interpreter)
the runs alternate between them, `--rounds` times each, so two versions meet the same
load on a busy machine; the load average is printed with each run. `--out` writes the
runs as the "memory" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import peers
import proctree
from bench_common import LUA, free_ports, parse_wrk, start_wrk
from report import write_section

MIB = 1024 * 1024


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _zygote_like(pid: int) -> bool:
    return b"skylift.runtime.zygote" in Path(f"/proc/{pid}/cmdline").read_bytes()


def role(pid: int, root: int) -> str:
    """supervisor, zygote, instance (the zygote's child: the serving process; before
    runtime/sandbox_fork.py, with the sandbox, the parent that only waits), serving (in
    that older layout, the sandbox's serving process, the instance's child), ns-init (a
    zygote's namespace maker and the PID 1s it makes, `skylift-ns-init`), or other.
    Forked processes keep the zygote's command line: parents tell them apart."""
    try:
        if pid == root:
            return "supervisor"
        if Path(f"/proc/{pid}/comm").read_text().strip() == "skylift-ns-init":
            return "ns-init"
        if not _zygote_like(pid):
            return "other"
        parent = _parent(pid)
        if not _zygote_like(parent):
            return "zygote"
        return "serving" if _zygote_like(_parent(parent)) else "instance"
    except OSError:
        return "gone"


@dataclass
class Sample:
    roles: dict[str, list[int]]  # role: PSS (KiB) of each process
    pool: dict[str, int]

    def total_mib(self) -> float:
        return sum(sum(v) for v in self.roles.values()) / 1024

    def line(self) -> str:
        parts = [f"total {self.total_mib():6.1f} MiB"]
        for name in ("supervisor", "zygote", "instance", "serving", "ns-init", "other"):
            values = self.roles.get(name, [])
            if not values:
                continue
            if len(values) == 1 and name in ("supervisor", "other"):
                parts.append(f"{name} {values[0] / 1024:5.1f}")
            else:
                parts.append(
                    f"{len(values)} {name}s {sum(values) / 1024:5.1f} "
                    f"(mean {statistics.mean(values) / 1024:4.2f})"
                )
        pool = self.pool
        if pool:
            parts.append(
                f"pool: {pool.get('instances')} instances, {pool.get('busy')} busy, "
                f"{pool.get('idle')} idle, target {pool.get('target')}, "
                f"cold starts {pool.get('cold_starts')}, prewarmed {pool.get('prewarmed')}"
            )
        return "  ".join(parts)


def sample(root: int, base: str, client: httpx.Client) -> Sample:
    roles: dict[str, list[int]] = {}
    pids = proctree.tree(root)
    for pid in pids:
        if any(other < pid and proctree.same_memory(pid, other) for other in pids):
            continue  # a sandbox's PID 1 shares its instance's memory: counted there
        roles.setdefault(role(pid, root), []).append(pss_kib(pid))
    try:
        status = client.get(base + "/_skylift/status").json()
        functions = status.get("functions", status)
        pool = next(iter(functions.values())) if isinstance(functions, dict) else {}
    except Exception:
        pool = {}
    return Sample(roles, pool if isinstance(pool, dict) else {})


def run(src: str, folder: Path, args: argparse.Namespace, script: str) -> dict[str, float]:
    app = folder / "app"
    shutil.rmtree(app, ignore_errors=True)
    app.mkdir()
    shutil.copy(peers.EXAMPLE, app / "app.py")
    port = free_ports(1)[0]
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.Popen(
        [sys.executable, "-m", "skylift.cli", "up", str(app), "--port", str(port), *args.up],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(folder / "server.log").open("wb"),
        start_new_session=True,
    )
    try:
        with httpx.Client(timeout=5) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.post(base + "/change", content='{"amount": "1.89"}').is_success:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"skylift from {src} did not answer")
                time.sleep(0.05)
            time.sleep(0.5)
            idle = sample(proc.pid, base, client)
            print(f"  idle:  {idle.line()}", flush=True)
            start_wrk(base + "/change", args.connections, 2, str(script)).communicate()
            cpu_before = proctree.cpu_seconds(proc.pid)
            load = start_wrk(base + "/change", args.connections, args.seconds, str(script))
            samples = []
            while load.poll() is None:
                time.sleep(1)
                if load.poll() is None:
                    samples.append(sample(proc.pid, base, client))
                    print(f"  load:  {samples[-1].line()}", flush=True)
            cpu = proctree.cpu_seconds(proc.pid) - cpu_before
            requests, rps, _, p99, errors = parse_wrk(load.communicate()[0])
            time.sleep(args.after)
            after = sample(proc.pid, base, client)
            print(f"  after {args.after:g} s: {after.line()}", flush=True)
    finally:
        proctree.stop(proc)
    peak = max(samples, key=Sample.total_mib)
    result = {
        "idle_mib": idle.total_mib(),
        "load_mib": peak.total_mib(),
        "workers": max(len(s.roles.get("instance", [])) for s in samples),
        "supervisor_mib": sum(peak.roles.get("supervisor", [])) / 1024,
        "zygotes_mib": sum(peak.roles.get("zygote", [])) / 1024,
        "instances_mib": sum(sum(peak.roles.get(r, [])) for r in ("instance", "serving", "ns-init"))
        / 1024,
        "rps": rps,
        "p99_ms": p99,
        "errors": errors,
        "cpu_us": cpu / max(requests, 1) * 1e6,
        "load_avg": os.getloadavg()[0],
    }
    print(
        "  => idle {idle_mib:.1f} MiB, under load {load_mib:.1f} MiB, {workers} instances, "
        "{rps:.0f} rps, p99 {p99_ms:.2f} ms, {errors} errors, {cpu_us:.0f} us CPU/request, "
        "load average {load_avg:.2f}".format(**result),
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--after", type=float, default=0, help="seconds idle after the load")
    parser.add_argument(
        "--src", action="append", help="[LABEL=]a checkout's src/ (default: this one)"
    )
    parser.add_argument("--out", type=Path, help="write the runs here (Markdown section)")
    parser.add_argument("--up", action="append", default=[], help="an option for skylift up")
    args = parser.parse_args()
    given = args.src or [str(Path(__file__).resolve().parent.parent / "src")]
    labels = {s.split("=", 1)[-1]: s.split("=", 1)[0] if "=" in s else s for s in given}
    sources = list(labels)
    results: dict[str, list[dict[str, float]]] = {s: [] for s in sources}
    started = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="skylift-mem-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(LUA)
        for round_ in range(args.rounds):
            for src in sources:
                print(f"round {round_ + 1}/{args.rounds}: {src}", flush=True)
                results[src].append(run(src, Path(tmp), args, script))
    for src, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"{src}: median of {len(runs)}: idle {med['idle_mib']:.1f} MiB, load "
            f"{med['load_mib']:.1f} MiB, {med['workers']:.0f} instances, {med['rps']:.0f} rps, "
            f"p99 {med['p99_ms']:.2f} ms, {med['cpu_us']:.0f} us CPU/request"
        )
    if args.out:
        ended = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        write_section(args.out, "memory", report(results, labels, args, started, ended))


def report(
    results: dict[str, list[dict[str, float]]],
    labels: dict[str, str],
    args: argparse.Namespace,
    started: str,
    ended: str,
) -> str:
    lines = [
        "## Memory under load: where skylift's PSS goes (bench/memory_bench.py)",
        "",
        f"`python bench/memory_bench.py --rounds {args.rounds} --seconds {args.seconds}"
        f"{' --src LABEL=SRC' * len(labels) if len(labels) > 1 else ''}`: `skylift up` on "
        f"examples/make-change, wrk -t1 -c{args.connections} POST /change for "
        f"{args.seconds} s after a 2 s warm-up; every second the PSS of each process of "
        "the server's tree (smaps_rollup; an address space two processes share, as a "
        "sandboxed instance and its PID 1 do, counted once), by role; the largest sample "
        "is kept. Runs alternate between the versions. Started: "
        f"`{started}`; ended: `{ended}`.",
        "",
        "| version | round | instances | PSS idle | PSS under load | supervisor | zygotes "
        "| instances' PSS | requests/s | p99 | CPU / request | load average |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for src, runs in results.items():
        for i, r in enumerate(runs, 1):
            lines.append(
                f"| {labels[src]} | {i} | {r['workers']:.0f} | {r['idle_mib']:.0f} MiB "
                f"| {r['load_mib']:.0f} MiB | {r['supervisor_mib']:.0f} MiB "
                f"| {r['zygotes_mib']:.0f} MiB | {r['instances_mib']:.0f} MiB "
                f"| {r['rps']:,.0f} | {r['p99_ms']:.1f} ms | {r['cpu_us']:.0f} µs "
                f"| {r['load_avg']:.1f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

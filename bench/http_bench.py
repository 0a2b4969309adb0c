"""POST /change (examples/make-change) on skylift and its peers, interleaved, in one run.

    python bench/http_bench.py --out docs/benchmarks.md [--rounds 3] [--seconds 10]
    python bench/http_bench.py --check        # one request to each peer, bodies compared

Each round starts every server fresh, in turn, on free loopback ports: it times the
first 200 from the start, compares the body with skylift's, measures PSS idle, warms up,
then runs wrk -t1 -c32 while sampling the server's process tree (CPU time, PSS). A peer
that cannot be installed or started is recorded with its reason; the others still run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import peer_servers
import proctree
from bench_common import BODY, EXPECTED, LUA, free_ports, parse_wrk, start_wrk
from peer_servers import LABELS, NAMES, NotRunnable, Server

CHART = "bench-http.png"


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float  # server process tree's CPU per request
    first_ms: float  # process start to the first 200 of POST /change
    open_ms: float  # the port's opening (first connection not refused) to that 200
    pss_idle: int
    pss_load: int


@dataclass
class Peer:
    name: str
    server: Server | None = None
    reason: str = ""  # why it did not run
    failures: list[str] = field(default_factory=list)  # rounds that failed after one ran
    runs: list[Run] = field(default_factory=list)

    def median(self) -> Run:
        return sorted(self.runs, key=lambda r: r.rps)[len(self.runs) // 2]


class Started:
    """A running server: its process (leader of its own session) and its log file."""

    def __init__(self, server: Server, folder: Path) -> None:
        ports = free_ports(server.ports)
        self.url = f"http://127.0.0.1:{ports[0]}/change"
        command = [
            part.format(**{f"port{i}": p for i, p in enumerate(ports)}) for part in server.command
        ]
        self.log = folder / f"{server.name}.log"
        self.started = time.perf_counter()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=server.cwd,
                env=peer_servers.environment(server),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def first_response(self, timeout: float) -> tuple[float, float, str]:
        """Milliseconds from the start to the first 200, from the port's opening (the
        first attempt not refused) to that 200, and that response's body."""
        deadline = self.started + timeout
        opened: float | None = None
        with httpx.Client(timeout=timeout) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise NotRunnable(f"exited with {self.proc.returncode}: {self.last_words()}")
                attempt = time.perf_counter()
                try:
                    answer = client.post(
                        self.url, content=BODY, headers={"content-type": "application/json"}
                    )
                except httpx.ConnectError:
                    time.sleep(0.002)
                    continue
                except httpx.HTTPError:
                    opened = attempt if opened is None else opened
                    time.sleep(0.002)
                    continue
                opened = attempt if opened is None else opened
                if answer.status_code == 200:
                    now = time.perf_counter()
                    return (now - self.started) * 1000, (now - opened) * 1000, answer.text
                time.sleep(0.002)
        raise NotRunnable(f"no 200 from POST /change within {timeout:.0f} s: {self.last_words()}")

    def last_words(self) -> str:
        lines = [
            ln.strip() for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()
        ]
        return " / ".join(lines[-4:]) or "(it printed nothing)"

    def stop(self) -> list[int]:
        return proctree.stop(self.proc)


def measure(server: Server, folder: Path, args: argparse.Namespace, script: str) -> Run:
    running = Started(server, folder)
    try:
        first_ms, open_ms, body = running.first_response(server.start_timeout)
        if body != EXPECTED:
            raise NotRunnable(f"answered {body!r}, not skylift's {EXPECTED!r}")
        time.sleep(0.5)
        pss_idle = proctree.pss_bytes(running.proc.pid)
        warm = start_wrk(running.url, args.connections, 2, script)
        warm.communicate()
        cpu_before = proctree.cpu_seconds(running.proc.pid)
        load = start_wrk(running.url, args.connections, args.seconds, script)
        samples = []
        while load.poll() is None:
            time.sleep(args.seconds / 5)
            samples.append(proctree.pss_bytes(running.proc.pid))
        cpu = proctree.cpu_seconds(running.proc.pid) - cpu_before
        out = load.communicate()[0]
        requests, rps, p50, p99, errors = parse_wrk(out)
        return Run(
            rps,
            p50,
            p99,
            errors,
            cpu / max(requests, 1) * 1e6,
            first_ms,
            open_ms,
            pss_idle,
            max(samples),
        )
    finally:
        running.stop()


def check(names: list[str], folder: Path) -> dict[str, str]:
    """One POST /change to each peer: '' where the body equals skylift's, else why not."""
    verdicts = {}
    for name in names:
        try:
            server = peer_servers.prepare(name, folder)
            running = Started(server, folder)
            try:
                _, _, body = running.first_response(server.start_timeout)
                tree = proctree.tree(running.proc.pid)
            finally:
                running.stop()
            left = proctree.alive(tree)
            verdicts[name] = (
                f"answered {body!r}"
                if body != EXPECTED
                else f"left processes {left} running after its stop"
                if left
                else ""
            )
        except NotRunnable as exc:
            verdicts[name] = f"not runnable: {exc}"
    return verdicts


def run_all(names: list[str], folder: Path, args: argparse.Namespace, script: str) -> list[Peer]:
    peers = [Peer(name) for name in names]
    for peer in peers:
        try:
            peer.server = peer_servers.prepare(peer.name, folder)
        except Exception as exc:  # recorded: one peer's failure must not stop the others
            peer.reason = (
                str(exc) if isinstance(exc, NotRunnable) else f"{type(exc).__name__}: {exc}"
            )
    for round_ in range(args.rounds):
        for peer in peers:
            if peer.server is None or peer.reason:
                continue
            print(f"round {round_ + 1}/{args.rounds}: {peer.name}", file=sys.stderr, flush=True)
            try:
                peer.runs.append(measure(peer.server, folder, args, script))
            except Exception as exc:  # recorded: one peer's failure must not stop the others
                why = str(exc) if isinstance(exc, NotRunnable) else f"{type(exc).__name__}: {exc}"
                if peer.runs:  # it ran before: keep those rounds, say what went wrong
                    peer.failures.append(f"round {round_ + 1}: {why}")
                else:
                    peer.reason = why
    return peers


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}, wrk "
        + subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
        + f". Load at the start: `{uptime}`"
    )


def mib(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB"


def report(peers: list[Peer], args: argparse.Namespace, started_load: str, ended_load: str) -> str:
    ran = {p.name: p.median() for p in peers if p.runs}
    base = ran.get("fastapi")
    lines = [
        "## HTTP: POST /change on skylift and its peers (examples/make-change)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {started_load}; "
        f"at the end: `{ended_load}`.",
        "",
        f"Command: `make bench` (`python bench/http_bench.py --rounds {args.rounds} --seconds "
        f"{args.seconds}`). Every server runs the same handler (examples/make-change/app.py) on "
        f"loopback; each of {args.rounds} rounds starts every server fresh, in turn, so a busy "
        "spell on the machine falls on all of them alike. Per run: the time from the "
        "process's start to its first 200 on POST /change (whose body must equal skylift's) "
        "and from the port's opening (the first connection not refused, polled every 2 ms) "
        "to that 200, "
        "PSS of the server's process tree 0.5 s later (idle), a 2 s warm-up, then "
        f"wrk -t1 -c{args.connections} -d{args.seconds}s with the tree's PSS sampled 5 times "
        "(the largest kept) and its CPU time (/proc/PID/stat, user + system, children "
        "included) divided by the requests served. Each row is the median round by "
        "requests/s (its p50, p99, CPU and memory); the range is the slowest and fastest "
        "round. wrk and the servers share the cores.",
        "",
        "| server | requests/s | range | vs FastAPI | p50 | p99 | CPU / request "
        "| first 200 from start | from port open | PSS idle | PSS under load | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for peer in peers:
        label = LABELS[peer.name]
        if peer.name not in ran:
            lines.append(f"| {label} | not runnable | | | | | | | | | | |")
            continue
        r = ran[peer.name]
        low, high = min(x.rps for x in peer.runs), max(x.rps for x in peer.runs)
        ratio = f"{r.rps / base.rps:.2f}x" if base else "-"
        lines.append(
            f"| {label} | {r.rps:,.0f} | {low:,.0f} - {high:,.0f} | {ratio} | {r.p50_ms:.2f} ms "
            f"| {r.p99_ms:.2f} ms | {r.cpu_us:,.0f} µs | {r.first_ms:,.0f} ms "
            f"| {r.open_ms:,.1f} ms | {mib(r.pss_idle)} | {mib(r.pss_load)} | {r.errors} |"
        )
    lines += ["", "Versions:"]
    lines += [f"- {LABELS[p.name]}: {p.server.versions}" for p in peers if p.server]
    for peer in peers:
        if peer.runs and peer.failures:
            lines.append(f"- {LABELS[peer.name]}: failed in " + "; ".join(peer.failures))
    missing = [p for p in peers if not p.runs]
    if missing:
        lines += ["", "Not runnable here:"]
        lines += [f"- {LABELS[p.name]}: {p.reason}" for p in missing]
    if "skylift" in ran and base:
        s = ran["skylift"]
        lines += [
            "",
            f"skylift against FastAPI in this run: {s.rps / base.rps:.2f}x the requests/s "
            f"(target 2.0x), {s.p99_ms / base.p99_ms:.2f}x the p99 (target <= 0.5x), "
            f"{s.cpu_us / base.cpu_us:.2f}x the CPU per request (target <= 0.6x)"
            + (
                f"; {s.pss_load / ran['serverless'].pss_load:.2f}x serverless-offline's PSS "
                "under load (target <= 0.25x)"
                if "serverless" in ran
                else ""
            )
            + f"; first 200 {s.first_ms:,.0f} ms after the start, {s.open_ms:,.1f} ms after "
            "the port opened (target <= 5 ms). "
            + (
                f"The ceiling (raw ASGI) is {ran['asgi'].rps / s.rps:.2f}x skylift."
                if "asgi" in ran
                else ""
            ),
        ]
    lines += ["", f"![requests/s, p99, CPU per request and PSS under load per server]({CHART})", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="fresh servers per peer (>= 3)")
    parser.add_argument(
        "--peers", default=",".join(NAMES), help="comma-separated, of: " + ", ".join(NAMES)
    )
    parser.add_argument("--check", action="store_true", help="only compare one response per peer")
    parser.add_argument(
        "--out", type=Path, help="write the report here (Markdown) and the chart beside it"
    )
    args = parser.parse_args()
    # A SIGTERM to the bench unwinds like Ctrl-C, so every server started is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    names = args.peers.split(",")
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        sys.exit(f"unknown peers {unknown}: choose among {', '.join(NAMES)}")
    with tempfile.TemporaryDirectory(prefix="skylift-http-bench-") as directory:
        folder = Path(directory)
        if args.check:
            verdicts = check(names, folder)
            for name, verdict in verdicts.items():
                print(f"{name:15} {verdict or 'same body as skylift'}")
            sys.exit(
                1 if any(v and not v.startswith("not runnable") for v in verdicts.values()) else 0
            )
        if shutil.which("wrk") is None:
            sys.exit("wrk is not installed: apt-get install wrk")
        script = folder / "post.lua"
        script.write_text(LUA)
        started_load = machine()
        peers = run_all(names, folder, args, str(script))
    ended_load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    text = report(peers, args, started_load, ended_load)
    print(text)
    if args.out:
        from http_chart import draw
        from report import write_section

        draw(peers, args.out.parent / CHART)
        write_section(args.out, "http", text)


if __name__ == "__main__":
    main()

"""Fault injection: kill -9 the server, its zygote and random instances, and fill the disk,
during a mixed load of HTTP requests, SQS sends and asynchronous invokes; then damage the
queue database between runs. Reports what was acknowledged against what was delivered.

Deliveries are counted outside skylift: the app's functions post each id they handle to a
ledger this script serves on 127.0.0.1, so a kill of the server loses nothing of the count.
`make chaos` runs it for longer; tests/chaos/ runs a short form in the normal suite.

    python chaos.py --duration 120 [--out ../docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench_common import free_port
from chaos_actors import Ledger, Server, Tally, fill_disk, kill_one, load, small_disk

APP = """
import urllib.request

from skylift import App

app = App()
app.declare_queue("orders", visibility_timeout=4)
LEDGER = "http://127.0.0.1:{port}/seen"


def record(ids):
    # Raises when the ledger cannot be told: the message or event is then retried.
    request = urllib.request.Request(LEDGER, data="\\n".join(ids).encode(), method="POST")
    urllib.request.urlopen(request, timeout=5).read()


@app.queue("orders", batch_size=10)
def consume(event, context):
    record([r["body"] for r in event["Records"]])


@app.function(timeout=10)
def work(event, context):
    record([event["id"]])


@app.http("/ping", methods=["GET"])
def ping(event, context):
    return {{"statusCode": 200, "body": "pong"}}
"""


@dataclass
class Result:
    duration: float
    faults: Counter[str]
    acked: dict[str, int]
    delivered: dict[str, int]
    lost: dict[str, list[str]]
    duplicates: int
    http_ok: int
    http_failed: int
    refused: dict[str, int]
    longest_outage: float
    restarts: list[float]
    orphans: list[str]  # what each process of the killed server alive 2 s after was
    damaged_start: dict[str, str]
    tracebacks: list[str]  # the last line of each traceback in the server's log


def run(workdir: Path, duration: float, disk: Path | None, drain: float = 90.0) -> Result:
    """One run on an app in `disk` (a small file system to fill) or `workdir`."""
    rng = random.Random(14)
    ledger = Ledger()
    app = (disk or workdir) / "app"
    app.mkdir()
    (app / "app.py").write_text(textwrap.dedent(APP.format(port=ledger.port)))
    server = Server(app, free_port(), workdir / "server.log")
    tally, stop, faults = Tally(), threading.Event(), Counter[str]()
    server.start()
    began = time.monotonic()
    clients = [threading.Thread(target=load, args=(server, tally, stop, seed)) for seed in range(3)]
    try:
        for thread in clients:
            thread.start()
        plan = _plan(duration, disk is not None)
        for at, fault in plan:
            while time.monotonic() - began < at:
                time.sleep(0.05)
                _keep_up(server, faults)
            if fault == "server":
                server.kill9()
            elif fault == "zygote":
                faults["zygote (none running)"] += not kill_one(server.zygotes(), rng)
            elif fault == "instance":
                faults["instance (none running)"] += not kill_one(server.instances(), rng)
            elif fault == "disk":
                fill_disk(app, 3.0)
            faults[fault] += 1
        while time.monotonic() - began < duration:
            time.sleep(0.05)
            _keep_up(server, faults)
        stop.set()
        for thread in clients:
            thread.join()
        _wait_for(lambda: _missing(tally, ledger) == {}, drain, lambda: _keep_up(server, faults))
        elapsed = time.monotonic() - began
    finally:
        stop.set()
        server.stop()
        ledger.close()
    damaged = damage_between_runs(server)
    lost = _missing(tally, ledger)
    counted = Counter(i for i in ledger.seen.elements() if i)
    return Result(
        duration=elapsed,
        faults=faults,
        acked={k: len(v) for k, v in tally.acked.items()},
        delivered={k: len(v & set(counted)) for k, v in tally.acked.items()},
        lost={k: sorted(v) for k, v in lost.items()},
        duplicates=sum(c - 1 for i, c in counted.items() if i[0] in "qa"),
        http_ok=tally.http_ok,
        http_failed=tally.http_failed,
        refused=dict(tally.refused),
        longest_outage=max(
            (b - a for a, b in zip(tally.successes, tally.successes[1:], strict=False)),
            default=0,
        ),
        restarts=server.restarts,
        orphans=server.orphans,
        damaged_start=damaged,
        tracebacks=_tracebacks(server.log),
    )


def damage_between_runs(server: Server) -> dict[str, str]:
    """Truncate queues.db between runs: `skylift up` must refuse to start on it (not start
    empty), and start again, with the messages, once the backup is put back."""
    db = server.app / ".skylift" / "queues.db"
    backup = db.with_name("queues.backup.db")
    shutil.copy(db, backup)
    outcome: dict[str, str] = {}
    for name, size in (("half", db.stat().st_size // 2), ("empty", 0)):
        with db.open("r+b") as f:
            f.truncate(size)
        command = [sys.executable, "-m", "skylift.cli", "up", str(server.app), "--port", "0"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        said = done.stderr.strip().splitlines()
        first = re.sub(r"\S*/(\.skylift/)", r"\1", said[0]) if said else ""
        outcome[name] = f"exit {done.returncode}: {first}"
    backup.replace(db)
    try:
        server.start()
        outcome["restored"] = "served again"
    finally:
        server.stop()
    return outcome


def _tracebacks(log: Path) -> list[str]:
    """What the server's log shows of internal errors: each traceback's last line."""
    found, inside = [], False
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("Traceback (most recent call last)"):
            inside = True
        elif inside and line and not line[0].isspace():
            found.append(line.strip())
            inside = False
    return found


def _plan(duration: float, disk: bool) -> list[tuple[float, str]]:
    """The faults, spread over the run in cycles of about 20 s."""
    cycle = ["instance", "zygote", "instance", "server", "instance"] + (["disk"] if disk else [])
    cycles = max(1, int(duration // 20))
    plan = []
    for c in range(cycles):
        start, span = c * duration / cycles, duration / cycles
        for i, fault in enumerate(cycle):
            plan.append((start + span * (i + 1) / (len(cycle) + 1), fault))
    return plan


def _keep_up(server: Server, faults: Counter[str]) -> None:
    """A server that died without being killed here is itself a finding: count, restart."""
    if server.proc is not None and server.proc.poll() is not None:
        faults["unexpected server exit"] += 1
        server.start()


def _missing(tally: Tally, ledger: Ledger) -> dict[str, set[str]]:
    with tally.lock:
        acked = {k: set(v) for k, v in tally.acked.items()}
    seen = set(ledger.seen)
    return {k: v - seen for k, v in acked.items() if v - seen}


def _wait_for(done: Callable[[], bool], timeout: float, tick: Callable[[], None]) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        tick()
        time.sleep(0.25)


def report(result: Result, command: str) -> str:
    total = result.http_ok + result.http_failed
    lines = [
        "## Fault injection (`make chaos`)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC. "
        f"`{command}` on {os.cpu_count()} cores: {result.duration:.0f} s of mixed load "
        "(HTTP, SQS sends, async invokes; 3 clients) with faults: "
        + ", ".join(f"{n}x {k}" for k, n in sorted(result.faults.items()) if n)
        + ".",
        "",
        "| | acknowledged | delivered | lost |",
        "|---|---|---|---|",
    ]
    for kind in ("queue", "async"):
        lost = len(result.lost.get(kind, []))
        lines.append(f"| {kind} | {result.acked[kind]} | {result.delivered[kind]} | {lost} |")
    restarts = ", ".join(f"{s:.1f} s" for s in result.restarts) or "none"
    lines += [
        "",
        f"- duplicates (delivered more than once): {result.duplicates}",
        f"- HTTP availability: {result.http_ok} of {total} requests answered 200 "
        f"({100 * result.http_ok / max(total, 1):.1f}%); longest stretch without any "
        f"successful request: {result.longest_outage:.1f} s",
        "- unacknowledged attempts (the client saw an error, so may retry): "
        + ", ".join(f"{k} {n}" for k, n in sorted(result.refused.items())),
        f"- kill -9 of the server to serving again: {restarts}; its processes still alive "
        f"2 s after: {len(result.orphans)}" + "".join(f"; {process}" for process in result.orphans),
        "- queues.db damaged between runs: "
        + "; ".join(f"{k}: {v}" for k, v in result.damaged_start.items()),
        f"- tracebacks in the server's log: {len(result.tracebacks)}"
        + "".join(f"; {line}" for line in sorted(set(result.tracebacks))),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, small_disk() as disk:
        result = run(Path(work), args.duration, disk)
        text = report(result, f"python bench/chaos.py --duration {args.duration:g}")
    print(text)
    if args.out is not None:
        sys.path.insert(0, str(Path(__file__).parent))
        from report import write_section

        write_section(args.out, "chaos", text)
    if any(result.lost.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()

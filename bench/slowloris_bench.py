"""Others' latency under a slowloris: p99 of wrk against `skylift up` alone, then while
N connections each send a header line a second (reconnecting when the header deadline
closes them), interleaved round by round.

    python bench/slowloris_bench.py --connections 1000 --rounds 3 --out docs/benchmarks.md

The front's target (issue 8): the slowloris raises others' p99 at most 2x.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_common import LUA, free_port, wrk  # noqa: E402
from report import write_section  # noqa: E402


def wrk_p99(url: str, script: str, seconds: int) -> tuple[float, float]:
    rps, _, p99, _ = wrk(url, 32, seconds, script, threads=1)
    return rps, p99


def slowloris(port: int, count: int, stop: threading.Event) -> None:
    """`count` connections, each sending one more header line a second, reopened when
    closed; bounded by `stop`."""
    socks: list[socket.socket | None] = [None] * count
    line = 0
    while not stop.is_set():
        for i in range(count):
            sock = socks[i]
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                    sock.setblocking(False)
                    sock.send(b"GET /change HTTP/1.1\r\nHost: localhost\r\n")
                    socks[i] = sock
                sock.send(b"X-Drip-%d: 1\r\n" % line)
            except OSError:
                if sock is not None:
                    sock.close()
                socks[i] = None
        line += 1
        stop.wait(1.0)
    for sock in socks:
        if sock is not None:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--out", type=Path, help="write the report's section here")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC)
    load_before = _load()
    port = free_port()
    cmd = [sys.executable, "-m", "skylift.cli", "up", str(ROOT / "examples" / "make-change")]
    proc = subprocess.Popen([*cmd, "--quiet", "--port", str(port)], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/change"
    script = str(Path(os.environ.get("TMPDIR", "/tmp")) / "slowloris_post.lua")
    Path(script).write_text(LUA)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.post(url, content='{"amount": "1.89"}', timeout=10)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        wrk_p99(url, script, 2)  # warm
        quiet, attacked = [], []
        for _ in range(args.rounds):
            quiet.append(wrk_p99(url, script, args.seconds))
            stop = threading.Event()
            thread = threading.Thread(target=slowloris, args=(port, args.connections, stop))
            thread.start()
            time.sleep(2)  # the connections are open and dripping
            attacked.append(wrk_p99(url, script, args.seconds))
            stop.set()
            thread.join()
        q99 = statistics.median(p for _, p in quiet)
        a99 = statistics.median(p for _, p in attacked)
        print(f"alone:      p99 {q99:.2f} ms, rps {statistics.median(r for r, _ in quiet):.0f}")
        print(f"slowloris:  p99 {a99:.2f} ms, rps {statistics.median(r for r, _ in attacked):.0f}")
        print(f"p99 ratio {a99 / q99:.2f}x with {args.connections} slowloris connections")
        if args.out is not None:
            write_section(
                args.out,
                "slowloris",
                _report(args, started, load_before, quiet, attacked),
            )
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(15)


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _report(
    args: argparse.Namespace,
    started: datetime.datetime,
    load_before: str,
    quiet: list[tuple[float, float]],
    attacked: list[tuple[float, float]],
) -> str:
    q99 = statistics.median(p for _, p in quiet)
    a99 = statistics.median(p for _, p in attacked)
    rows = "\n".join(
        f"| {n} | {qr:,.0f} | {qp:.2f} ms | {ar:,.0f} | {ap:.2f} ms | {ap / qp:.2f}x |"
        for n, ((qr, qp), (ar, ap)) in enumerate(zip(quiet, attacked, strict=True), 1)
    )
    verdict = "met" if a99 / q99 <= 2 else "not met"
    return (
        f"## Slowloris: others' latency while {args.connections:,} connections drip a header "
        "line a second\n\n"
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average {load_before} at the start and {_load()} at "
        f"the end. Command: `make bench` (`python bench/slowloris_bench.py --connections "
        f"{args.connections} --rounds {args.rounds} --seconds {args.seconds}`): `skylift up` "
        "on examples/make-change; per round, wrk -t1 -c32 POST /change alone, then again "
        f"while {args.connections} other connections each send one more header line a second "
        "(reopened when the header deadline closes them).\n\n"
        "| round | requests/s alone | p99 alone | requests/s under slowloris | p99 under "
        "slowloris | p99 ratio |\n|---:|---:|---:|---:|---:|---:|\n"
        f"{rows}\n\n"
        f"Median p99: {q99:.2f} ms alone, {a99:.2f} ms under the slowloris: "
        f"**{a99 / q99:.2f}x** (target: at most 2x, {verdict}).\n"
    )


if __name__ == "__main__":
    main()

"""What the benches share: the make-change request and answer, free ports, stopping a
server, and wrk runs read into numbers. `http_bench.py` stops its peers with
`proctree.stop` instead (each is the leader of its own session)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "make-change"
BODY = '{"amount": "1.89"}'
EXPECTED = '{"res": [{"7": "quarters"}, {"1": "dimes"}, {"4": "pennies"}]}'
LUA = f"""
wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
"""


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 (all held open until all are found)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def to_ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise ValueError(f"wrk printed a latency the bench cannot read: {text!r}")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out: str) -> tuple[int, float, float, float, int]:
    """(requests, rps, p50 ms, p99 ms, errors) from wrk's --latency summary; errors are
    non-2xx/3xx responses and socket errors."""

    def find(pattern: str) -> str:
        found = re.search(pattern, out, re.M)
        if found is None:
            raise ValueError(f"wrk's output lacks {pattern!r}:\n{out}")
        return found.group(1)

    errors = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)) else 0
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if sockets:
        errors += sum(int(g) for g in sockets.groups())
    return (
        int(find(r"(\d+) requests in")),
        float(find(r"Requests/sec:\s+([\d.]+)")),
        to_ms(find(r"^\s+50%\s+(\S+)")),
        to_ms(find(r"^\s+99%\s+(\S+)")),
        errors,
    )


def start_wrk(
    url: str, connections: int, seconds: int, script: str, threads: int = 1
) -> subprocess.Popen[str]:
    """wrk running in the background; read its summary with `parse_wrk`."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    return subprocess.Popen(
        [*command, "-s", script, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wrk(
    url: str, connections: int, seconds: int, script: str, threads: int = 2
) -> tuple[float, float, float, int]:
    """One wrk run: requests/s, p50 and p99 in ms, and errors."""
    run = start_wrk(url, connections, seconds, script, threads)
    out = run.communicate()[0]
    if run.returncode != 0:
        raise subprocess.CalledProcessError(run.returncode, run.args, out)
    _, rps, p50, p99, errors = parse_wrk(out)
    return rps, p50, p99, errors

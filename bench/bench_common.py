"""Helpers the single-purpose benches share (observe cost, first response, slowloris):
the example app, a free port, stopping a server, and one wrk run read into numbers.
`http_bench.py` runs its peers with its own, process-tree-aware versions."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

from http_bench import BODY, EXPECTED, LUA

__all__ = ["BODY", "EXAMPLE", "EXPECTED", "LUA", "free_port", "stop", "to_ms", "wrk"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "make-change"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        raise ValueError(f"wrk printed a latency skylift cannot read: {text!r}")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, connections: int, seconds: int, script: str) -> tuple[float, float, float, int]:
    """One wrk run: requests/s, p50 and p99 in ms, and errors (non-2xx and socket)."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    count = int(bad.group(1)) if bad else 0
    if errors:
        count += sum(int(g) for g in errors.groups())
    return rps, p50, p99, count

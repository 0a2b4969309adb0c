"""The worker loop alone: CPU per invocation of `runtime.worker.serve` in a forked child,
driven over its channel one invocation at a time (no HTTP, no supervisor, no sandbox).

    python bench/worker_loop_bench.py --invocations 20000 --rounds 5
    python bench/worker_loop_bench.py /work/main . --invocations 20000 --rounds 8

Given checkouts (each with its `.venv`), it compares them instead: each round runs one
fresh worker of each, one after the other (in turn first), and prints every round's
ratio to the first checkout's.

The handler is examples/make-change's, the event an API Gateway v2 POST /change as
skylift builds it, every invocation with a new request id and trace header, as the
supervisor sends them. Prints the child's CPU (schedstat: all its threads) per
invocation for each round, then the median and range.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench_common import EXAMPLE

from skylift.runtime import wire
from skylift.spec import FunctionSpec

EVENT = (
    b'{"version": "2.0", "routeKey": "POST /change", "rawPath": "/change", "rawQueryString": "",'
    b' "headers": {"host": "localhost:8080", "accept": "*/*", "content-type": "application/json",'
    b' "user-agent": "wrk", "content-length": "18", "x-forwarded-for": "127.0.0.1",'
    b' "x-forwarded-port": "8080", "x-forwarded-proto": "http"}, "requestContext":'
    b' {"accountId": "123456789012", "apiId": "skylift", "domainName": "localhost:8080",'
    b' "domainPrefix": "localhost", "http": {"method": "POST", "path": "/change", "protocol":'
    b' "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "wrk"}, "requestId":'
    b' "f3dfda41-0c96-4566-9154-bd4a1e2c7f10", "routeKey": "POST /change", "stage": "$default",'
    b' "time": "06/Dec/2026:10:40:00 +0000", "timeEpoch": 1796553600000}, "body":'
    b' "{\\"amount\\": \\"1.89\\"}", "isBase64Encoded": false}'
)


def run_ns(pid: int) -> int:
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
    return total


def context_switches(pid: int) -> int:
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.endswith("ctxt_switches") or "ctxt_switches:" in line:
            total += int(line.split()[1])
    return total


def start_worker() -> tuple[int, socket.socket]:
    from skylift.runtime.worker import serve

    sys.path.insert(0, str(EXAMPLE))
    import app  # examples/make-change

    spec = FunctionSpec(name="change", handler="app.change", code_dir=str(EXAMPLE))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    log_fd = os.memfd_create("bench", os.MFD_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        ours.close()
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        try:
            serve(theirs, log_fd, spec, app.change, time.monotonic())
        finally:
            os._exit(1)
    theirs.close()
    os.close(log_fd)
    return pid, ours


def invoke(
    channel: socket.socket, answers: select.poll, reader: wire.FrameReader, trace: str
) -> None:
    header = {
        "id": str(uuid.uuid4()),
        "deadline": int(time.time() * 1000 + 3000),
        "trace": trace,
    }
    channel.sendall(wire.pack(header, EVENT))
    # Waiting in poll, as the supervisor's event loop does: a recv() waiter would also be
    # woken (for nothing) when the worker takes the invocation off the socket.
    frames: list[tuple[dict[str, Any], bytes, bytes]] = []
    while not frames:
        answers.poll()
        frames = reader.feed(channel.recv(1 << 16))
    if not frames[0][0]["ok"]:
        raise SystemExit(f"the invocation failed: {frames[0][1]!r}")


def compare(checkouts: list[str], invocations: int, rounds: int) -> None:
    """Interleaved rounds of one worker per checkout, each on the checkout's own venv."""
    per: dict[str, list[float]] = {c: [] for c in checkouts}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for r in range(rounds):
        for checkout in checkouts if r % 2 == 0 else checkouts[::-1]:
            python = Path(checkout).resolve() / ".venv" / "bin" / "python"
            command = [str(python), __file__, "--invocations", str(invocations), "--rounds", "1"]
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            line = out.stdout.splitlines()[0]
            per[checkout].append(float(line.split(": ")[1].split()[0]))
            print(f"round {r} {checkout}: {line.split(': ', 1)[1]}", flush=True)
    first = per[checkouts[0]]
    for checkout, values in per.items():
        ratios = [b / a for a, b in zip(first, values, strict=True)]
        print(
            f"{checkout}: median {statistics.median(values):.2f} µs "
            f"({min(values):.2f}-{max(values):.2f}); / {checkouts[0]}'s round by round: "
            f"median {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})"
        )
    print(f"load average at the end: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="*", help="checkouts to compare (default: this)")
    parser.add_argument("--invocations", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.checkouts:
        print(f"load average at the start: {os.getloadavg()}")
        compare(args.checkouts, args.invocations, args.rounds)
        return
    pid, channel = start_worker()
    reader = wire.FrameReader()
    answers = select.poll()
    answers.register(channel, select.POLLIN)
    root = "Root=1-{:08x}-{}" + ";Parent=53995c3f42cd8ad8;Sampled=0"
    for _ in range(2000):  # warm-up
        invoke(channel, answers, reader, root.format(int(time.time()), uuid.uuid4().hex[:24]))
    per: list[float] = []
    for r in range(args.rounds):
        traces = [
            root.format(int(time.time()), uuid.uuid4().hex[:24]) for _ in range(args.invocations)
        ]
        before, switches = run_ns(pid), context_switches(pid)
        for trace in traces:
            invoke(channel, answers, reader, trace)
        per.append((run_ns(pid) - before) / args.invocations / 1e3)
        switched = (context_switches(pid) - switches) / args.invocations
        rss = Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]
        print(
            f"round {r}: {per[-1]:.2f} µs per invocation, {switched:.2f} context switches"
            f" (RSS {rss} KiB)",
            flush=True,
        )
    channel.close()
    os.waitpid(pid, 0)
    print(
        f"median {statistics.median(per):.2f} µs ({min(per):.2f}-{max(per):.2f}), "
        f"load average {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()

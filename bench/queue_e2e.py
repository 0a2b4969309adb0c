"""Queues end to end: send -> event source mapping -> handler -> delete, through a real
`skylift up`, beside the raw SQLite claim+delete ceiling measured in the same run; then
the kill -9 durability run at full size.

    python bench/queue_e2e.py --out docs/benchmarks.md

Each end-to-end run also reports the server process's CPU per message and its whole
tree's (server, zygote, instances), from /proc: under load that is the number to compare.
`--rounds N` (default 3) takes the median run, `--no-kill` skips the kill -9 run, and
`--batch-size N --window S` sets the mapping's BatchSize and MaximumBatchingWindowInSeconds
(default 10 and 0, as `make bench` measures; over 10 needs a window of at least 1 s),
`QUEUE_PROFILE=out.txt` records the server with py-spy (raw format) during each run. For an
A/B against another checkout, run it with `PYTHONPATH=<checkout>/src`: the server started
is then that checkout's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import proctree
from queue_bench import bench as raw_bench
from report import write_section

from skylift.queues.protocol import OutgoingMessage
from skylift.queues.sqlite import SqliteQueues

# The handler tells the bench what it handled in a UDP datagram: an instance's sandbox
# makes the app's files read-only and /tmp its own, but leaves it the loopback.
APP = """
import socket
from skylift import App

app = App()
app.declare_queue("work", visibility_timeout=5)
RECORD = ("127.0.0.1", RECORD_PORT)
SOCKET = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


@app.queue("work", batch_size=10)
def work(event, context):
    SOCKET.sendto(" ".join(r["body"] for r in event["Records"]).encode(), RECORD)
"""


class Recorder:
    """The bodies handled so far, as the handler's datagrams report them."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.01)
        self.port = int(self.socket.getsockname()[1])
        self.seen: list[str] = []

    def drain(self, most: int | None = None) -> int:
        """Reads what has arrived (at most `most` datagrams, so a caller watching the
        count sees it rise while batches keep coming); returns how many bodies were
        handled so far."""
        try:
            while most is None or most > 0:
                self.seen += self.socket.recv(65536).decode().split()
                most = None if most is None else most - 1
        except TimeoutError:
            pass
        return len(self.seen)

    def close(self) -> None:
        self.socket.close()


MAPPING = {"batch_size": 10, "max_batching_window": 0}  # `--batch-size`, `--window`


def start(app: Path, recorder: Recorder) -> tuple[subprocess.Popen[str], str]:
    # A function sees only the environment its app declares, as on Lambda: the port to
    # report to is written into its code.
    mapping = ", ".join(f"{k}={v}" for k, v in MAPPING.items())
    code = textwrap.dedent(APP).replace("batch_size=10", mapping)
    (app / "app.py").write_text(f"RECORD_PORT = {recorder.port}\n" + code)
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-m", "skylift.cli", "up", str(app), "--port", "0", "--quiet"],
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,  # its own session: proctree counts its workers, not wrk
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "serving on" in line:
            return proc, line.rsplit(" ", 1)[-1].strip()
    raise RuntimeError(f"skylift up did not start: exit {proc.wait()}")


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    os.kill(proc.pid, sig)
    proc.wait(30)
    if proc.stderr:
        proc.stderr.close()


SENDERS = 16  # concurrent connections, as a busy producer fleet would hold
SEND_LUA = """
wrk.method = "POST"
wrk.headers["X-Amz-Target"] = "AmazonSQS.SendMessageBatch"
wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
wrk.body = os.getenv("SQS_BODY")
local limit = tonumber(os.getenv("BATCHES_PER_THREAD"))
local done = 0
function response(status, headers, body)
  done = done + 1
  if done >= limit then wrk.thread:stop() end
end
"""


def send_wrk(url: str, messages: int) -> subprocess.Popen[str]:
    """Start wrk sending `messages` with SendMessageBatch over the server's SQS API.

    Each wrk thread stops sending after its share, but wrk waits out its duration:
    interrupt it when done, then read its summary (`finish_wrk`).
    """
    entries = [{"Id": str(i), "MessageBody": "x" * 100} for i in range(10)]
    body = json.dumps({"QueueUrl": f"{url}/123456789012/work", "Entries": entries})
    threads = 2
    script = Path(tempfile.gettempdir()) / "skylift-sqs-send.lua"
    script.write_text(SEND_LUA)
    env = {**os.environ, "SQS_BODY": body, "BATCHES_PER_THREAD": str(messages // 10 // threads)}
    return subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{SENDERS}", "-d300s", "-s", str(script), url + "/"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish_wrk(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(30)
    # A timeout is a request still waiting when wrk was interrupted, after every message
    # was handled: not a failure. A refused or broken connection or a non-2xx answer is.
    errors = re.search(r"connect (\d+), read (\d+), write (\d+)", out)
    if "Non-2xx" in out or (errors and any(int(n) for n in errors.groups())):
        raise RuntimeError(f"some sends failed:\n{out}")


async def remaining(db: Path) -> int:
    queues = SqliteQueues(db)
    stats = await queues.stats("work")
    await queues.close()
    return stats.visible + stats.in_flight + stats.delayed


def wait_empty(db: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while asyncio.run(remaining(db)):
        if time.monotonic() > deadline:
            raise RuntimeError("the queue did not drain in time")
        time.sleep(0.05)


def own_cpu_seconds(pid: int) -> float:
    """User + system CPU of the one process `pid` (not its workers)."""
    fields = proctree.stat_fields(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / proctree.TICKS


def profile(pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy recording the server while $QUEUE_PROFILE names an output file (raw format)."""
    out = os.environ.get("QUEUE_PROFILE")
    if not out:
        return None
    command = ["py-spy", "record", "--pid", str(pid), "--rate", "200", "--format", "raw"]
    return subprocess.Popen([*command, "--output", out, "--nonblocking"])


class Run:
    """One end-to-end run: messages/s, and CPU µs per message of the server process
    alone and of its whole tree (server, zygote, instances)."""

    def __init__(self, rate: float, server_us: float, tree_us: float) -> None:
        self.rate, self.server_us, self.tree_us = rate, server_us, tree_us


def end_to_end(messages: int) -> Run:
    """Messages per second from the first send until the handler has seen them all."""
    with tempfile.TemporaryDirectory() as directory:
        app = Path(directory)
        recorder = Recorder()
        server, url = start(app, recorder)
        try:
            spy = profile(server.pid)
            own, whole = own_cpu_seconds(server.pid), proctree.cpu_seconds(server.pid)
            started = time.perf_counter()
            sender = send_wrk(url, messages)
            deadline = time.monotonic() + 300
            while recorder.drain() < messages:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"only {len(recorder.seen):,} of {messages:,} messages were handled "
                        "in 300 s: see the server's log"
                    )
            elapsed = time.perf_counter() - started
            own = own_cpu_seconds(server.pid) - own
            whole = proctree.cpu_seconds(server.pid) - whole
            finish_wrk(sender)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
            return Run(messages / elapsed, own / messages * 1e6, whole / messages * 1e6)
        finally:
            stop(server)
            recorder.close()


def kill_run(messages: int) -> tuple[int, int, int]:
    """(processed at the kill, missing after restart, duplicates)."""
    with tempfile.TemporaryDirectory() as directory:
        app = Path(directory)
        db = app / ".skylift" / "queues.db"
        recorder = Recorder()
        try:
            server, _ = start(app, recorder)
            asyncio.run(send_numbered(db, messages))
            while recorder.drain(most=10) < messages // 2:
                pass
            stop(server, signal.SIGKILL)
            at_kill = recorder.drain()
            server, _ = start(app, recorder)
            try:
                wait_empty(db, 300)
            finally:
                stop(server)
            recorder.drain()
            seen = recorder.seen[:]
        finally:
            recorder.close()
        missing = len(set(map(str, range(messages))) - set(seen))
        return at_kill, missing, len(seen) - len(set(seen))


async def send_numbered(db: Path, messages: int) -> None:
    queues = SqliteQueues(db)
    for first in range(0, messages, 10):
        await queues.send("work", [OutgoingMessage(str(i)) for i in range(first, first + 10)])
    await queues.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="end-to-end runs (median)")
    parser.add_argument("--no-kill", action="store_true", help="skip the kill -9 run")
    parser.add_argument("--batch-size", type=int, default=10, help="the mapping's BatchSize")
    parser.add_argument("--window", type=float, default=0, help="its batching window (s)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    MAPPING.update(batch_size=args.batch_size, max_batching_window=args.window)
    with tempfile.TemporaryDirectory() as directory:
        raw = asyncio.run(raw_bench(Path(directory) / "q.db", args.messages, 100))
    runs = sorted((end_to_end(args.messages) for _ in range(args.rounds)), key=lambda r: r.rate)
    for run in runs:
        print(
            f"run: {run.rate:,.0f} msg/s, server {run.server_us:.1f} µs/msg, "
            f"tree {run.tree_us:.1f} µs/msg",
            file=sys.stderr,
        )
    e2e = runs[len(runs) // 2]
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    kill = None if args.no_kill else kill_run(args.messages)
    text = "\n".join(
        [
            "## Queues: send -> handler -> delete (event source mapping, batch size "
            f"{args.batch_size}{f', window {args.window:g} s' if args.window else ''})",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
            f"cores. Command: `make bench` (`python bench/queue_e2e.py`), {args.messages:,} "
            "messages of 100 bytes sent with SendMessageBatch (10 per call) over the SQS API "
            f"by wrk with {SENDERS} connections to a running `skylift up`, whose handler "
            "reports each batch's bodies to the bench in a UDP datagram; the clock runs from "
            "the first send until the handler has seen every message. wrk, the server and its "
            f"workers share the cores. The median of {args.rounds} runs (range "
            f"{runs[0].rate:,.0f} - {runs[-1].rate:,.0f}); CPU per message is user + system "
            "time from /proc over the run.",
            "",
            "| measurement | messages/s | server process CPU / message | server + workers |",
            "|---|---:|---:|---:|",
            f"| end to end through skylift (durable, at-least-once) | {e2e.rate:,.0f} | "
            f"{e2e.server_us:.0f} µs | {e2e.tree_us:.0f} µs |",
            f"| raw SQLite claim + delete, same run (the ceiling) | "
            f"{raw['receive 10 + delete 10']:,.0f} | | |",
            f"| raw SQLite send in batches of 10, same run | {raw['send (batches of 10)']:,.0f} "
            "| | |",
            "",
            *(
                []
                if kill is None
                else [
                    f"Kill -9 during a {args.messages:,}-message run: the server was killed "
                    f"after {kill[0]:,} messages were handled and restarted; {kill[1]} accepted "
                    f"messages were lost, {kill[2]} were handled twice (batches in flight at "
                    "the kill).",
                    "",
                ]
            ),
            f"Target (issue 8, 2 cores): end to end >= 20,000 msg/s; measured "
            f"{e2e.rate / 20_000:.2f}x of it, {e2e.rate / raw['receive 10 + delete 10']:.2f}x "
            f"the raw ceiling. Load: `{load}`.",
        ]
    )
    print(text)
    if args.out:
        write_section(args.out, "queues", text)


if __name__ == "__main__":
    main()

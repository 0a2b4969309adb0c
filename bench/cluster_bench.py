"""Queues end to end on Redis with 1, 2 and 3 `skylift up` nodes, beside one node on
SQLite, interleaved in one run; with the Redis server's own CPU (from /proc).

Each configuration: the same app (queue `work`, trigger with batches of 10, the handler
appends each batch to a file), 20,000 messages of 100 bytes sent with SendMessageBatch by
one sender process per node (httpx, 16 connections), spread evenly over the nodes; the
clock runs from the first send until the handlers have seen every message. Redis is a
redis-server of the bench's own (`appendonly yes`, `appendfsync everysec`) on a free
port, so its CPU is this bench's.

    python bench/cluster_bench.py --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import free_port
from report import write_section

TICKS = os.sysconf("SC_CLK_TCK")
# The handler appends each batch to a file named in its source (an instance sees neither
# the host's environment nor, once copied, its app folder's path).
APP = """
from skylift import App

app = App()
app.declare_queue("work", visibility_timeout=5)


@app.queue("work", batch_size=10)
def work(event, context):
    with open({done!r}, "a") as f:
        f.write("".join(r["body"] + "\\n" for r in event["Records"]))
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


SENDERS = 16  # concurrent connections per node


def send(url: str, messages: int) -> subprocess.Popen[str]:
    """Start a process sending `messages` to the node at `url` with SendMessageBatch over
    `SENDERS` connections (`sender_main`); `finish` waits for it."""
    command = [sys.executable, __file__, "--send", url, "--messages", str(messages)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> None:
    out, _ = proc.communicate(300)
    if proc.returncode:
        raise RuntimeError(f"some sends failed: {out}")


def sender_main(url: str, messages: int) -> None:
    import asyncio
    import json

    import httpx

    entries = [{"Id": str(i), "MessageBody": "x" * 100} for i in range(10)]
    body = json.dumps({"QueueUrl": f"{url}/123456789012/work", "Entries": entries})
    headers = {
        "X-Amz-Target": "AmazonSQS.SendMessageBatch",
        "Content-Type": "application/x-amz-json-1.0",
    }
    failures: list[str] = []
    left = messages // 10

    async def connection() -> None:
        nonlocal left
        async with httpx.AsyncClient(timeout=60) as client:
            while left > 0:
                left -= 1
                answer = await client.post(url + "/", content=body, headers=headers)
                if answer.status_code != 200 or "Failed" in answer.json():
                    failures.append(f"{answer.status_code} {answer.text[:300]}")

    async def main() -> None:
        await asyncio.gather(*(connection() for _ in range(SENDERS)))

    asyncio.run(main())
    print(f"{len(failures)} failed: {failures[:3]}")
    sys.exit(1 if failures else 0)


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    args = [
        binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.RedisError:
            time.sleep(0.05)
    client.close()
    return proc, f"redis://127.0.0.1:{port}/0"


def start_node(app: Path, state: str | None) -> tuple[subprocess.Popen[str], str]:
    # The sandbox makes the code folder read-only: off, so the handler can count in a file.
    args = [sys.executable, "-m", "skylift.cli", "up", str(app), "--port", "0", "--quiet"]
    args += ["--sandbox", "off"]
    if state is not None:
        args += ["--state", state]
    log = app / "server.log"  # a file, not a pipe nobody drains once the node is up
    with log.open("w") as out:
        proc = subprocess.Popen(args, stderr=out, stdin=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        for line in log.read_text().splitlines():
            if "serving on" in line:
                return proc, line.rsplit(" ", 1)[-1].strip()
        time.sleep(0.05)
    raise RuntimeError(f"skylift up did not start: {log.read_text()}")


def stop_node(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(60)


def run(messages: int, nodes: int, state: str | None) -> float:
    """Messages per second through `nodes` nodes (SQLite when `state` is None)."""
    with tempfile.TemporaryDirectory() as directory:
        apps = []
        for n in range(nodes):
            app = Path(directory) / f"node{n}"
            app.mkdir()
            (app / "app.py").write_text(APP.format(done=str(app / "done.txt")))
            apps.append(app)
        servers = [start_node(app, state) for app in apps]
        senders: list[subprocess.Popen[str]] = []
        try:
            started = time.perf_counter()
            senders += [send(url, messages // nodes) for _, url in servers]
            expected = (messages // nodes // 10 * 10) * nodes * 101  # whole batches
            deadline = time.monotonic() + 300
            while sum(done.stat().st_size for a in apps if (done := a / "done.txt").exists()) < (
                expected
            ):
                if time.monotonic() > deadline:
                    logs = "".join((a / "server.log").read_text()[-2000:] for a in apps)
                    raise RuntimeError(f"the messages were not all handled in time:\n{logs}")
                time.sleep(0.005)
            elapsed = time.perf_counter() - started
            for sender in senders:
                finish(sender)
            return expected / 101 / elapsed
        finally:
            for sender in senders:  # still sending after a failure: a node would wait for it
                if sender.poll() is None:
                    sender.kill()
                    sender.wait()
            for server, _ in servers:
                stop_node(server)


def flush(state: str) -> None:
    import redis

    client = redis.Redis.from_url(state)
    client.flushdb()
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved; the best is shown")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--send", metavar="URL", help=argparse.SUPPRESS)  # a sender process
    args = parser.parse_args()
    if args.send:
        sender_main(args.send, args.messages)
        return
    load_before = os.getloadavg()
    rates: dict[str, list[float]] = {}
    redis_cpu: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        redis_proc, state = start_redis(Path(folder))
        try:
            for _ in range(args.rounds):
                rates.setdefault("SQLite, 1 node", []).append(run(args.messages, 1, None))
                print(f"SQLite, 1 node {rates['SQLite, 1 node'][-1]:,.0f} msg/s", flush=True)
                for nodes in (1, 2, 3):
                    name = f"Redis, {nodes} node{'s' * (nodes > 1)}"
                    flush(state)
                    cpu, wall = cpu_seconds(redis_proc.pid), time.perf_counter()
                    rates.setdefault(name, []).append(run(args.messages, nodes, state))
                    busy = (cpu_seconds(redis_proc.pid) - cpu) / (time.perf_counter() - wall)
                    redis_cpu.setdefault(name, []).append(busy)
                    print(name, f"{rates[name][-1]:,.0f} msg/s, Redis CPU {busy:.0%}", flush=True)
        finally:
            redis_proc.terminate()
            redis_proc.wait(10)
    load_after = os.getloadavg()
    sqlite = max(rates["SQLite, 1 node"])
    rows = []
    for name, values in rates.items():
        best = max(values)
        cpu = redis_cpu.get(name)
        shown_cpu = f"{cpu[values.index(best)]:.0%}" if cpu else "-"
        rows.append(
            f"| {name} | {best:,.0f} | {best / sqlite:.2f} | {shown_cpu} | "
            + ", ".join(f"{v:,.0f}" for v in values)
            + " |"
        )
    text = "\n".join(
        [
            "## Queues on several nodes: SQLite and Redis with 1, 2 and 3 nodes",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
            f"cores, load average {load_before[0]:.1f} before and {load_after[0]:.1f} after "
            "(other work shared the machine). Command: `make bench` (`python "
            f"bench/cluster_bench.py --messages {args.messages} --rounds {args.rounds}`). "
            f"{args.messages:,} messages of 100 bytes sent with SendMessageBatch by one httpx "
            f"process per node ({SENDERS} connections each, the messages split evenly over "
            "the nodes) to `skylift up` "
            "nodes whose queue trigger (batches of 10) appends each batch to a file; the clock "
            "runs from the first send until every message was handled. Redis: its own "
            "redis-server 7 on the same machine, `appendonly yes`, `appendfsync everysec`. "
            "Configurations run interleaved, "
            f"{args.rounds} rounds; the best round is shown, then every round. Redis CPU: the "
            "server's user + system time over the run (/proc), in cores.",
            "",
            "| configuration | messages/s | vs SQLite | Redis CPU | every round |",
            "|---|---:|---:|---:|---|",
            *rows,
            "",
            "Target (issue 12): Redis with one node >= 0.5 x SQLite; throughput rising with "
            "nodes until Redis' own CPU is the limit. On 2 cores the nodes, the senders and "
            "Redis share the same two cores, so more nodes also means less CPU for each.",
        ]
    )
    print(text)
    if args.out:
        write_section(args.out, "cluster-queues", text)


if __name__ == "__main__":
    main()
